"""Every cell of the opt-in table in the README, written out independently of the code."""

from __future__ import annotations

import itertools

import pytest

from engine.models.message import Channel
from engine.policy import (
    CONFIRMATION_REQUIRED,
    MARKETING_OPT_OUT,
    QUALITY_RATING_RISK,
    ContentKind,
    Options,
    Verdict,
    decide,
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

# (channel, content, opted_in, opted_in_only, confirmed) -> (verdict, code, notice code)
# Options that a channel does not use are listed both ways to show they change nothing.
TABLE: dict[
    tuple[Channel, ContentKind, bool, bool, bool], tuple[Verdict, str | None, str | None]
] = {}


def row(
    channel: Channel,
    content: ContentKind,
    opted_in: bool,
    expected: tuple[Verdict, str | None, str | None],
    *,
    opted_in_only: bool | None = None,
    confirmed: bool | None = None,
) -> None:
    for only in [opted_in_only] if opted_in_only is not None else [True, False]:
        for conf in [confirmed] if confirmed is not None else [True, False]:
            TABLE[(channel, content, opted_in, only, conf)] = expected


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


def test_the_table_covers_every_combination() -> None:
    combos = set(
        itertools.product(
            [C, B, S, A, BOT], [MKT, UTIL, AUTH, FREE], [True, False], [True, False], [True, False]
        )
    )
    assert set(TABLE) == combos
    assert len(TABLE) == 5 * 4 * 2 * 2 * 2


@pytest.mark.parametrize(
    ("case", "expected"),
    sorted(TABLE.items()),
    ids=lambda v: "-".join(map(str, v)) if isinstance(v, tuple) and len(v) == 5 else "",
)
def test_decision(
    case: tuple[Channel, ContentKind, bool, bool, bool],
    expected: tuple[Verdict, str | None, str | None],
) -> None:
    channel, content, opted_in, only, confirmed = case
    decision = decide(
        channel,
        content,
        opted_in=opted_in,
        options=Options(opted_in_only=only, confirmed_opted_out=confirmed),
    )
    verdict, code, notice = expected
    assert decision.verdict is verdict
    assert decision.code == code
    assert (decision.notice.code if decision.notice else None) == notice
    assert decision.sends == (verdict in (SEND, NOTICE))
    if verdict in (FAIL, EXCLUDE, CONFIRM):
        assert decision.reason, "a refusal carries a sentence for the report"


def test_failure_reasons_say_why_in_words() -> None:
    api = decide(A, MKT, opted_in=False)
    sequence = decide(S, MKT, opted_in=False)
    assert "opted out of marketing" in (api.reason or "")
    assert "moved on to the next step" in (sequence.reason or "")


def test_template_categories_map_onto_content_kinds() -> None:
    from engine.models.template import TemplateCategory

    assert [ContentKind.of_template(c) for c in TemplateCategory] == [MKT, UTIL, AUTH]
