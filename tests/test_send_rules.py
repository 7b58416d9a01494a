"""Every cell of the send rules (the opt-in table and the 24-hour window), written out
independently of the code."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from engine.models.marketing_limits import QuietHours
from engine.models.message import Channel
from engine.send_rules import (
    AUTHENTICATION_TO_USER_ID,
    CONFIRMATION_REQUIRED,
    FREQUENCY_CAP,
    MARKETING_OPT_OUT,
    QUALITY_RATING_RISK,
    QUIET_HOURS,
    WINDOW_CLOSED,
    ContentKind,
    Options,
    Verdict,
    Window,
    decide,
    quiet_until,
)

C, B, S, A, BOT = Channel.COMPOSE, Channel.BROADCAST, Channel.SEQUENCE, Channel.API, Channel.BOT
MKT, UTIL, AUTH, FREE = (
    ContentKind.MARKETING,
    ContentKind.UTILITY,
    ContentKind.AUTHENTICATION,
    ContentKind.FREE_FORM,
)
SEND, NOTICE, CONFIRM, FAIL, EXCLUDE = (
    Verdict.SEND,
    Verdict.SEND_WITH_NOTICE,
    Verdict.NEEDS_CONFIRMATION,
    Verdict.FAIL,
    Verdict.EXCLUDE,
)
OPT_OUT_NOTICE, QUALITY = MARKETING_OPT_OUT, QUALITY_RATING_RISK
OPEN, CLOSED = Window.OPEN, Window.CLOSED

Case = tuple[Channel, ContentKind, bool, Window, bool, bool]
# (channel, content, opted_in, window, opted_in_only, confirmed)
#   -> (verdict, code, notice code, refused)
# Options that a channel does not use are listed both ways to show they change nothing;
# the opt-in rows hold with the window open or closed unless a window row says otherwise.
TABLE: dict[Case, tuple[Verdict, str | None, str | None, bool]] = {}


def row(
    channel: Channel,
    content: ContentKind,
    opted_in: bool,
    expected: tuple[Verdict, str | None, str | None] | tuple[Verdict, str, None, bool],
    *,
    window: Window | None = None,
    opted_in_only: bool | None = None,
    confirmed: bool | None = None,
) -> None:
    full = (*expected, False) if len(expected) == 3 else expected
    for state in [window] if window is not None else [OPEN, CLOSED]:
        for only in [opted_in_only] if opted_in_only is not None else [True, False]:
            for conf in [confirmed] if confirmed is not None else [True, False]:
                TABLE[(channel, content, opted_in, state, only, conf)] = full


# Opted-in contacts: every channel sends every kind of content.
for channel, content in itertools.product([C, B, S, A, BOT], [MKT, UTIL, AUTH, FREE]):
    row(channel, content, True, (SEND, None, None))

# Compose box, opted out: a notice on every send; MARKETING needs the agent's confirmation.
row(C, MKT, False, (CONFIRM, CONFIRMATION_REQUIRED, OPT_OUT_NOTICE), confirmed=False)
row(C, MKT, False, (NOTICE, None, OPT_OUT_NOTICE), confirmed=True)
for content in [UTIL, AUTH, FREE]:
    row(C, content, False, (NOTICE, None, OPT_OUT_NOTICE))

# Broadcast, opted out: MARKETING excluded while the toggle is on, sent with a
# quality-rating warning when it is off; other content is sent.
row(B, MKT, False, (EXCLUDE, MARKETING_OPT_OUT, None), opted_in_only=True)
row(B, MKT, False, (NOTICE, None, QUALITY), opted_in_only=False)
for content in [UTIL, AUTH, FREE]:
    row(B, content, False, (SEND, None, None))

# Sequence and API, opted out: MARKETING fails with marketing_opt_out; the rest is sent.
for channel in [S, A]:
    row(channel, MKT, False, (FAIL, MARKETING_OPT_OUT, None))
    for content in [UTIL, AUTH, FREE]:
        row(channel, content, False, (SEND, None, None))

# Bot, opted out: opt-in is ignored.
for content in [MKT, UTIL, AUTH, FREE]:
    row(BOT, content, False, (SEND, None, None))

# The window: free form (never a template) outside it fails with window_closed, whatever
# the opt-in; it is refused (nothing recorded, the caller told) on every channel but
# broadcasts, which send templates only and would exclude it. The bot gets the API's rule.
for opted_in in [True, False]:
    for channel in [C, S, A, BOT]:
        row(channel, FREE, opted_in, (FAIL, WINDOW_CLOSED, None, True), window=CLOSED)
    row(B, FREE, opted_in, (EXCLUDE, WINDOW_CLOSED, None, False), window=CLOSED)


def test_the_table_covers_every_combination() -> None:
    combos = set(
        itertools.product(
            [C, B, S, A, BOT],
            [MKT, UTIL, AUTH, FREE],
            [True, False],
            [OPEN, CLOSED],
            [True, False],
            [True, False],
        )
    )
    assert set(TABLE) == combos
    assert len(TABLE) == 5 * 4 * 2 * 2 * 2 * 2


@pytest.mark.parametrize(
    ("case", "expected"),
    sorted(TABLE.items()),
    ids=lambda v: "-".join(map(str, v)) if isinstance(v, tuple) and len(v) == 6 else "",
)
def test_decision(case: Case, expected: tuple[Verdict, str | None, str | None, bool]) -> None:
    channel, content, opted_in, window, only, confirmed = case
    decision = decide(
        channel,
        content,
        opted_in=opted_in,
        window=window,
        options=Options(opted_in_only=only, confirmed_opted_out=confirmed),
    )
    verdict, code, notice, refused = expected
    assert decision.verdict is verdict
    assert decision.code == code
    assert (decision.notice.code if decision.notice else None) == notice
    assert decision.refused is refused
    assert decision.sends == (verdict in (SEND, NOTICE))
    if verdict in (FAIL, EXCLUDE, CONFIRM):
        assert decision.reason, "a refusal carries a sentence for the report"


def test_failure_reasons_say_why_in_words() -> None:
    api = decide(A, MKT, opted_in=False, window=OPEN)
    sequence = decide(S, MKT, opted_in=False, window=OPEN)
    assert "opted out of marketing" in (api.reason or "")
    assert "moved on to the next step" in (sequence.reason or "")
    text_step = decide(S, FREE, opted_in=True, window=CLOSED)
    assert "had not written in the last 24 hours" in (text_step.reason or "")


def test_a_bot_message_after_the_window_gets_the_api_decision() -> None:
    for opted_in in (True, False):
        bot = decide(BOT, FREE, opted_in=opted_in, window=CLOSED)
        assert bot == decide(A, FREE, opted_in=opted_in, window=CLOSED)


def test_the_window_is_open_for_24_hours_after_the_contact_wrote() -> None:
    from datetime import UTC, datetime, timedelta

    from engine.send_rules import window_at

    wrote = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert window_at(None, wrote) is CLOSED
    assert window_at(wrote, wrote) is OPEN
    assert window_at(wrote, wrote + timedelta(hours=24) - timedelta(microseconds=1)) is OPEN
    assert window_at(wrote, wrote + timedelta(hours=24)) is CLOSED


def test_template_categories_map_onto_content_kinds() -> None:
    from engine.models.template import TemplateCategory

    assert [ContentKind.of_template(c) for c in TemplateCategory] == [MKT, UTIL, AUTH]


# The marketing limits: the frequency cap and quiet hours, written out per channel.
HOLD = Verdict.HOLD
ENDS = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)

# (channel, opted_in, sender chose to send to opted-out, over_cap, quiet) -> (verdict, code, notice)
LIMITS: dict[tuple[Channel, bool, bool, bool, bool], tuple[Verdict, str | None, str | None]] = {
    # Opted in: the cap and the quiet hours decide.
    (C, True, False, True, False): (NOTICE, None, FREQUENCY_CAP),
    (C, True, False, False, True): (SEND, None, None),
    (C, True, False, True, True): (NOTICE, None, FREQUENCY_CAP),
    (B, True, False, True, False): (EXCLUDE, FREQUENCY_CAP, None),
    (B, True, False, False, True): (HOLD, QUIET_HOURS, None),
    (B, True, False, True, True): (EXCLUDE, FREQUENCY_CAP, None),
    (S, True, False, True, False): (FAIL, FREQUENCY_CAP, None),
    (S, True, False, False, True): (HOLD, QUIET_HOURS, None),
    (S, True, False, True, True): (FAIL, FREQUENCY_CAP, None),
    (A, True, False, True, False): (FAIL, FREQUENCY_CAP, None),
    (A, True, False, False, True): (HOLD, QUIET_HOURS, None),
    (A, True, False, True, True): (FAIL, FREQUENCY_CAP, None),
    (BOT, True, False, True, False): (SEND, None, None),
    (BOT, True, False, False, True): (SEND, None, None),
    (BOT, True, False, True, True): (SEND, None, None),
    # Opted out: the opt-in rule first; what it lets go meets the limits as well.
    (C, False, False, True, True): (CONFIRM, CONFIRMATION_REQUIRED, OPT_OUT_NOTICE),
    (C, False, True, True, True): (NOTICE, None, OPT_OUT_NOTICE),
    (B, False, False, True, True): (EXCLUDE, MARKETING_OPT_OUT, None),
    (B, False, True, True, False): (EXCLUDE, FREQUENCY_CAP, None),
    (B, False, True, False, True): (HOLD, QUIET_HOURS, None),
    (B, False, True, False, False): (NOTICE, None, QUALITY),
    (S, False, False, False, True): (FAIL, MARKETING_OPT_OUT, None),
    (A, False, False, False, True): (FAIL, MARKETING_OPT_OUT, None),
    (BOT, False, False, True, True): (SEND, None, None),
}


@pytest.mark.parametrize(("case", "expected"), list(LIMITS.items()), ids=str)
def test_marketing_limits(
    case: tuple[Channel, bool, bool, bool, bool],
    expected: tuple[Verdict, str | None, str | None],
) -> None:
    channel, opted_in, chose, over_cap, quiet = case
    options = Options(opted_in_only=not chose, confirmed_opted_out=chose)
    decision = decide(
        channel,
        MKT,
        opted_in=opted_in,
        window=CLOSED,
        options=options,
        over_cap=over_cap,
        quiet_until=ENDS if quiet else None,
    )
    verdict, code, notice = expected
    assert (decision.verdict, decision.code) == (verdict, code)
    assert (decision.notice.code if decision.notice else None) == notice
    assert decision.hold_until == (ENDS if verdict is HOLD else None)
    if verdict is HOLD:
        assert "2026-03-03T09:00Z" in (decision.reason or "")


@pytest.mark.parametrize("channel", list(Channel))
@pytest.mark.parametrize("content", [UTIL, AUTH, FREE])
def test_only_marketing_is_capped_or_held(channel: Channel, content: ContentKind) -> None:
    for opted_in in (True, False):
        plain = decide(channel, content, opted_in=opted_in, window=OPEN)
        limited = decide(
            channel, content, opted_in=opted_in, window=OPEN, over_cap=True, quiet_until=ENDS
        )
        assert limited == plain


def test_quiet_hours_are_read_in_the_contacts_local_time() -> None:
    hours = QuietHours.parse("21:00-09:00")
    noon_utc = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    # 12:00 UTC is 21:00 in Tokyo (held until 09:00 there, 00:00 UTC) and 04:00 in
    # California (held until 09:00 there, 17:00 UTC); London is outside them.
    assert quiet_until(hours, noon_utc, wa_id="447911123456", timezone="Asia/Tokyo") == (
        datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    )
    assert quiet_until(hours, noon_utc, wa_id="16505551234", timezone=None) == datetime(
        2026, 3, 2, 17, 0, tzinfo=UTC
    )
    assert quiet_until(hours, noon_utc, wa_id="447911123456", timezone=None) is None
    # No number, no attribute: UTC; a zone that does not exist falls back to the number.
    assert quiet_until(hours, noon_utc, wa_id=None, timezone=None) is None
    assert quiet_until(hours, noon_utc, wa_id="16505551234", timezone="Mars/Olympus") == (
        datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    )
    assert quiet_until(None, noon_utc, wa_id="16505551234", timezone=None) is None


# The template rule: Meta sends only APPROVED templates. Written out per channel: the
# API and the compose box refuse a template Meta paused or disabled (the person asking is
# told), the other channels queue it to wait; free form is never a template; a message
# the opt-in rule stops is stopped whatever the template's status.
PAUSED_OUTCOME: dict[Channel, tuple[Verdict, bool]] = {
    C: (Verdict.WAIT, True),
    A: (Verdict.WAIT, True),
    B: (Verdict.WAIT, False),
    S: (Verdict.WAIT, False),
    BOT: (Verdict.WAIT, False),
}


@pytest.mark.parametrize("status", ["PAUSED", "DISABLED", "PENDING", "REJECTED", "IN_APPEAL"])
@pytest.mark.parametrize("channel", [C, B, S, A, BOT])
@pytest.mark.parametrize("content", [MKT, UTIL, AUTH])
def test_a_template_meta_does_not_send_waits_or_is_refused(
    status: str, channel: Channel, content: ContentKind
) -> None:
    from engine.send_rules import TEMPLATE_PAUSED

    decision = decide(channel, content, opted_in=True, window=OPEN, template_status=status)
    verdict, refused = PAUSED_OUTCOME[channel]
    assert (decision.verdict, decision.code, decision.refused) == (
        verdict,
        TEMPLATE_PAUSED,
        refused,
    )
    assert status in (decision.reason or "")
    assert not decision.sends


@pytest.mark.parametrize("channel", [C, B, S, A, BOT])
def test_an_approved_template_is_decided_by_the_opt_in_rule_alone(channel: Channel) -> None:
    for content, opted_in, window, only, confirmed in itertools.product(
        [MKT, UTIL, AUTH], [True, False], [OPEN, CLOSED], [True, False], [True, False]
    ):
        options = Options(opted_in_only=only, confirmed_opted_out=confirmed)
        asked = {"opted_in": opted_in, "window": window, "options": options}
        plain = decide(channel, content, **asked)  # type: ignore[arg-type]
        assert decide(channel, content, template_status="APPROVED", **asked) == plain  # type: ignore[arg-type]


def test_the_opt_in_rule_stops_a_message_whatever_its_templates_status() -> None:
    # An opted-out contact and a paused MARKETING template: the API fails it for the
    # opt-out (it would never go), a broadcast excludes it; neither waits.
    api = decide(A, MKT, opted_in=False, window=OPEN, template_status="PAUSED")
    broadcast = decide(B, MKT, opted_in=False, window=OPEN, template_status="PAUSED")
    assert (api.verdict, api.code) == (FAIL, MARKETING_OPT_OUT)
    assert (broadcast.verdict, broadcast.code) == (EXCLUDE, MARKETING_OPT_OUT)
    # Free form is no template: a status means nothing to it.
    free = decide(A, FREE, opted_in=True, window=OPEN, template_status="PAUSED")
    assert free.verdict is SEND


# The category is the catalogue's at the moment of asking: a UTILITY template Meta
# recategorised as MARKETING is asked about as MARKETING (the sender passes the category
# of the moment), so it obeys the opt-in rule from then on.
RECATEGORISED: dict[Channel, tuple[Verdict, Verdict]] = {
    # channel: (as UTILITY, as MARKETING) to an opted-out contact, toggle on, unconfirmed
    C: (NOTICE, CONFIRM),
    B: (SEND, EXCLUDE),
    S: (SEND, FAIL),
    A: (SEND, FAIL),
    BOT: (SEND, SEND),
}


@pytest.mark.parametrize("channel", [C, B, S, A, BOT])
def test_a_recategorised_template_obeys_its_new_category(channel: Channel) -> None:
    before, after = RECATEGORISED[channel]
    assert decide(channel, UTIL, opted_in=False, window=OPEN).verdict is before
    assert decide(channel, MKT, opted_in=False, window=OPEN).verdict is after


# The address rule: to a contact known by a user id only. Every channel, content and
# opt-in; only AUTHENTICATION is stopped, everything else is decided as to a number.
ADDRESS_TABLE: dict[Channel, tuple[Verdict, bool]] = {
    # channel: (verdict for AUTHENTICATION to a user id, refused)
    C: (FAIL, True),
    B: (EXCLUDE, False),
    S: (FAIL, True),
    A: (FAIL, True),
    BOT: (FAIL, True),
}


@pytest.mark.parametrize(
    ("channel", "content", "opted_in", "window"),
    list(
        itertools.product([C, B, S, A, BOT], [MKT, UTIL, AUTH, FREE], [True, False], [OPEN, CLOSED])
    ),
)
def test_a_user_id_recipient(
    channel: Channel, content: ContentKind, opted_in: bool, window: Window
) -> None:
    by_user_id = decide(channel, content, opted_in=opted_in, window=window, to_user_id=True)
    if content is AUTH:
        verdict, refused = ADDRESS_TABLE[channel]
        assert (by_user_id.verdict, by_user_id.code, by_user_id.refused) == (
            verdict,
            AUTHENTICATION_TO_USER_ID,
            refused,
        )
        assert by_user_id.reason is not None
        assert "131062" in by_user_id.reason
    else:
        assert by_user_id == decide(channel, content, opted_in=opted_in, window=window)


def test_authentication_to_a_phone_number_is_not_stopped() -> None:
    for channel in (C, B, S, A, BOT):
        assert decide(channel, AUTH, opted_in=True, window=CLOSED).verdict is SEND
