"""The send rules: the only place in the product that decides whether a message may go out.

Every outbound path (compose box, broadcasts, sequences, the API, bot flows) goes
through :func:`engine.outbound.enqueue.enqueue`, which asks :func:`decide`, and the
sender asks it again just before posting (:mod:`engine.outbound.sender`), with what was
kept on the message row, the contact's opt-in of that moment and the window as it is
then. No other module compares a channel with a contact's opt-in or with the window.

:func:`decide` is pure: it takes the channel, the content's kind (a template's
category, or free form), the contact's marketing opt-in, the state of the 24-hour
customer-service window (:func:`window_at`) and the sender's :class:`Options`, and
gives one :class:`Decision`: send, send with a notice, needs the agent's confirmation,
fail (a code and a reason), or exclude. What each channel does is a row of
:data:`RULES`.

The opt-in rule, for a contact whose ``marketing_opt_in`` is NO:

============  ==============================================  ==========================
channel       MARKETING template                              anything else
============  ==============================================  ==========================
compose       needs the agent's confirmation, then sent       sent, with a notice
              with a notice
broadcast     excluded while ``opted_in_only`` (default);     sent
              sent with a ``quality_rating_risk`` notice
              when the toggle is off
sequence      the step fails (``marketing_opt_out``)          sent
api           fails (``marketing_opt_out``)                   sent
bot           sent: opt-in is ignored                         sent
============  ==============================================  ==========================

A contact who is opted in is always sent to. UTILITY and AUTHENTICATION templates
and free-form messages (text, interactive, media) are never blocked by marketing
opt-in; the compose box still shows the notice for an opted-out contact.

The address rule: Meta sends AUTHENTICATION templates to phone numbers only, so one
to a contact known by a user id alone fails with ``authentication_to_user_id`` on
every channel (*refused*; a broadcast excludes the contact) before it costs a try.

The window rule: Meta delivers free-form content only within 24 hours of the contact's
last message; outside it only a template reaches them. Free form with the window
closed fails with ``window_closed`` on every channel, whatever the opt-in, and is
*refused* (:attr:`Decision.refused`): enqueue records nothing and tells the caller,
who can send a template instead (the API answers 422, the compose box says so, a
sequence step is recorded as failed, a bot message is logged). Broadcasts send
templates only; free form there would be excluded. Asked again before sending, a
queued free-form message whose window has closed since is recorded ``failed``.

The template rule: Meta sends only APPROVED templates. A template it paused or
disabled (any other status) makes the API and the compose box refuse the message
(``template_paused``, refused); on the other channels, and for a message already queued,
the message waits (:attr:`Verdict.WAIT`) until Meta approves the template again. The
category asked about is the catalogue's at the moment of asking: a UTILITY template
Meta recategorised as MARKETING obeys the marketing opt-in from then on, queued
messages included.

A contact who opts out while their message waits (a broadcast planned, then STOP) is
treated as one who had opted out before it was queued: excluded, failed, or (compose)
failed for want of a confirmation the agent can no longer give. A queued message whose
rule inputs were not kept (:data:`INPUTS_MISSING`) is not sent.

The marketing limits (``MARKETING_FREQUENCY_CAP``, ``MARKETING_QUIET_HOURS``), for a
MARKETING template the opt-in rule lets go:

============  ==============================  ========================================
channel       over the frequency cap          inside the contact's quiet hours
============  ==============================  ========================================
compose       sent, with a notice             sent
broadcast     excluded (``frequency_cap``)    held: queued until the quiet hours end
sequence      fails (``frequency_cap``)       held
api           fails (``frequency_cap``)       held
bot           sent: the cap is ignored        sent
============  ==============================  ========================================

The caller says whether the cap is reached (``over_cap``: MARKETING templates sent to the
contact in the rolling period, on every channel, against the cap) and when the quiet
hours around this moment end in the contact's local time (``quiet_until``,
:func:`quiet_until`); a :attr:`Verdict.HOLD` carries that time (:attr:`Decision.hold_until`)
and the message waits, queued, until then, when it is asked again. UTILITY,
AUTHENTICATION and free form are neither capped nor held.

>>> decide(Channel.API, ContentKind.MARKETING, opted_in=False, window=Window.OPEN).verdict
<Verdict.FAIL: 'fail'>
>>> decide(Channel.BOT, ContentKind.MARKETING, opted_in=False, window=Window.CLOSED).verdict
<Verdict.SEND: 'send'>
>>> decide(Channel.BOT, ContentKind.FREE_FORM, opted_in=True, window=Window.CLOSED).code
'window_closed'
>>> decide(Channel.API, ContentKind.MARKETING, opted_in=True, window=Window.OPEN,
...        over_cap=True).code
'frequency_cap'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from engine.models.conversation import window_open_at
from engine.models.local_zone import contact_zone
from engine.models.marketing_limits import QuietHours
from engine.models.message import Channel
from engine.models.template import TemplateCategory

MARKETING_OPT_OUT = "marketing_opt_out"
CONFIRMATION_REQUIRED = "marketing_opt_out_confirmation_required"
QUALITY_RATING_RISK = "quality_rating_risk"
WINDOW_CLOSED = "window_closed"
AUTHENTICATION_TO_USER_ID = "authentication_to_user_id"
RULE_INPUTS_MISSING = "send_rules_inputs_missing"
FREQUENCY_CAP = "frequency_cap"
QUIET_HOURS = "quiet_hours"
TEMPLATE_PAUSED = "template_paused"


class ContentKind(StrEnum):
    """What is being sent, as far as the send rules care."""

    MARKETING = "MARKETING"
    UTILITY = "UTILITY"
    AUTHENTICATION = "AUTHENTICATION"
    FREE_FORM = "free_form"  # text, interactive or media: anything that is not a template

    @classmethod
    def of_template(cls, category: TemplateCategory) -> ContentKind:
        return cls(category.value)


class Window(StrEnum):
    """The 24-hour customer-service window: open while the contact wrote in the last 24
    hours (Meta's rule for free-form messages)."""

    OPEN = "open"
    CLOSED = "closed"


def window_at(last_inbound_at: datetime | None, now: datetime) -> Window:
    """The window at ``now`` after the contact's last message (None: they never wrote)."""
    return Window.OPEN if window_open_at(last_inbound_at, now) else Window.CLOSED


class Verdict(StrEnum):
    SEND = "send"
    SEND_WITH_NOTICE = "send_with_notice"
    NEEDS_CONFIRMATION = "needs_confirmation"
    FAIL = "fail"
    EXCLUDE = "exclude"
    HOLD = "hold"
    """Not yet: the message waits, queued, until :attr:`Decision.hold_until`."""
    WAIT = "wait"
    """Not now: the template is not approved at Meta (paused, disabled, ...); a queued
    message waits for it to be approved again."""

    @property
    def sends(self) -> bool:
        return self in (Verdict.SEND, Verdict.SEND_WITH_NOTICE)


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the sender must be shown; it does not stop the message."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    code: str | None = None
    reason: str | None = None
    notice: Notice | None = None
    refused: bool = False
    """A failure the caller is told of instead of a ``failed`` row (nothing is recorded
    at enqueue); a message already queued is recorded ``failed`` all the same."""
    hold_until: datetime | None = None
    """:attr:`Verdict.HOLD`: when the message may go (the end of the quiet hours)."""

    @property
    def sends(self) -> bool:
        return self.verdict.sends


@dataclass(frozen=True, slots=True)
class Options:
    """The choices a sender makes that the rules take into account."""

    opted_in_only: bool = True
    """Broadcasts: the "send to contacts who opted in for marketing" toggle (default on)."""

    confirmed_opted_out: bool = False
    """Compose box: the agent confirmed a MARKETING template to an opted-out contact."""

    quiet_hours: QuietHours | None = None
    """The quiet hours this message keeps: ``MARKETING_QUIET_HOURS``, which enqueue puts
    here (:meth:`with_quiet_hours`), unless the sender chose its own (``own_quiet_hours``)."""

    own_quiet_hours: bool = False
    """Broadcasts: ``quiet_hours`` are the broadcast's own (None: it ignores them)."""

    def with_quiet_hours(self, setting: QuietHours | None) -> Options:
        """These options with the setting's quiet hours, unless they have their own."""
        if self.own_quiet_hours or self.quiet_hours == setting:
            return self
        return replace(self, quiet_hours=setting)


OPTED_OUT_NOTICE = Notice(
    MARKETING_OPT_OUT,
    "This contact has opted out of marketing messages.",
)
QUALITY_NOTICE = Notice(
    QUALITY_RATING_RISK,
    "This contact has opted out of marketing messages; sending marketing to contacts "
    "who opted out may lower the phone number's quality rating.",
)

SEND = Decision(Verdict.SEND)
_SEND_WITH_OPT_OUT_NOTICE = Decision(Verdict.SEND_WITH_NOTICE, notice=OPTED_OUT_NOTICE)
_API_WINDOW_CLOSED = Decision(
    Verdict.FAIL,
    WINDOW_CLOSED,
    "The 24-hour customer-service window is closed (the contact has not written in the "
    "last 24 hours), so only a template can reach them; send a template instead.",
    refused=True,
)

INPUTS_MISSING = Decision(
    Verdict.FAIL,
    RULE_INPUTS_MISSING,
    "The message was queued without what the send rules need to check it again before "
    "sending (its content kind or channel is not recorded), so it was not sent; "
    "send it again.",
)
"""A queued row without its stored rule inputs (queued before they were kept, and
its template no longer in the catalogue): not sent, since nothing says it may be."""


@dataclass(frozen=True, slots=True)
class ChannelRules:
    """What one channel does where the contact's opt-in or the window stops a message."""

    marketing_to_opted_out: Decision
    """A MARKETING template to a contact who opted out."""
    marketing_to_opted_out_chosen: Decision
    """The same when the sender chose to send it anyway (:attr:`chooses`)."""
    other_to_opted_out: Decision
    """UTILITY, AUTHENTICATION or free form to a contact who opted out."""
    free_form_window_closed: Decision
    """Free form outside the 24-hour window, whatever the opt-in."""
    chooses: Callable[[Options], bool] = lambda options: False
    """Whether the sender's options say to send MARKETING to an opted-out contact."""
    marketing_over_cap: Decision = SEND
    """A MARKETING template the opt-in rule lets go, to a contact who has had
    ``MARKETING_FREQUENCY_CAP`` of them in the period."""
    holds_in_quiet_hours: bool = False
    """Whether a MARKETING template waits for the end of the contact's quiet hours."""
    refuses_unapproved: bool = False
    """A template Meta does not let go now (paused, disabled) is refused to the person
    asking (the API answers 422, the compose box says so) rather than queued to wait."""


def _fail(code: str, reason: str) -> Decision:
    return Decision(Verdict.FAIL, code, reason)


FREQUENCY_CAP_NOTICE = Notice(
    FREQUENCY_CAP,
    "This contact has had as many marketing messages as MARKETING_FREQUENCY_CAP allows "
    "in its period; another may lower the phone number's quality rating.",
)
_CAP_REASON = (
    "The contact has had as many MARKETING templates as MARKETING_FREQUENCY_CAP allows in "
    "its rolling period"
)
_QUIET_REASON = "Inside the contact's marketing quiet hours (their local time); it waits"


RULES: Mapping[Channel, ChannelRules] = {
    Channel.COMPOSE: ChannelRules(
        marketing_to_opted_out=Decision(
            Verdict.NEEDS_CONFIRMATION,
            CONFIRMATION_REQUIRED,
            "The contact has opted out of marketing messages; confirm to send this "
            "MARKETING template anyway.",
            OPTED_OUT_NOTICE,
        ),
        marketing_to_opted_out_chosen=_SEND_WITH_OPT_OUT_NOTICE,
        other_to_opted_out=_SEND_WITH_OPT_OUT_NOTICE,
        free_form_window_closed=Decision(
            Verdict.FAIL,
            WINDOW_CLOSED,
            "The 24-hour customer-service window is closed; free text cannot be sent. "
            "Send an approved template instead.",
            refused=True,
        ),
        chooses=lambda options: options.confirmed_opted_out,
        marketing_over_cap=Decision(Verdict.SEND_WITH_NOTICE, notice=FREQUENCY_CAP_NOTICE),
        refuses_unapproved=True,
    ),
    Channel.BROADCAST: ChannelRules(
        marketing_to_opted_out=Decision(
            Verdict.EXCLUDE,
            MARKETING_OPT_OUT,
            "The contact has opted out of marketing messages and the broadcast sends "
            "MARKETING templates to opted-in contacts only.",
        ),
        marketing_to_opted_out_chosen=Decision(Verdict.SEND_WITH_NOTICE, notice=QUALITY_NOTICE),
        other_to_opted_out=SEND,
        free_form_window_closed=Decision(
            Verdict.EXCLUDE,
            WINDOW_CLOSED,
            "The contact has not written in the last 24 hours, so only a template can reach them.",
        ),
        chooses=lambda options: not options.opted_in_only,
        marketing_over_cap=Decision(
            Verdict.EXCLUDE, FREQUENCY_CAP, f"{_CAP_REASON}; the broadcast skipped them."
        ),
        holds_in_quiet_hours=True,
    ),
    Channel.SEQUENCE: ChannelRules(
        marketing_to_opted_out=(
            sequence_opt_out := _fail(
                MARKETING_OPT_OUT,
                "The contact had opted out of marketing messages when this MARKETING step "
                "came due; the step was not sent and the contact moved on to the next step.",
            )
        ),
        marketing_to_opted_out_chosen=sequence_opt_out,
        other_to_opted_out=SEND,
        marketing_over_cap=_fail(
            FREQUENCY_CAP,
            f"{_CAP_REASON}; the step was not sent and the contact moved on to the next step.",
        ),
        holds_in_quiet_hours=True,
        free_form_window_closed=Decision(
            Verdict.FAIL,
            WINDOW_CLOSED,
            "The contact had not written in the last 24 hours when this text step came "
            "due, so only a template could reach them; the step was not sent.",
            refused=True,
        ),
    ),
    Channel.API: ChannelRules(
        marketing_to_opted_out=(
            api_opt_out := _fail(
                MARKETING_OPT_OUT,
                "The contact has opted out of marketing messages (marketing_opt_in is NO); "
                "MARKETING templates are not sent to them.",
            )
        ),
        marketing_to_opted_out_chosen=api_opt_out,
        other_to_opted_out=SEND,
        free_form_window_closed=_API_WINDOW_CLOSED,
        marketing_over_cap=_fail(FREQUENCY_CAP, f"{_CAP_REASON}; the message was not sent."),
        holds_in_quiet_hours=True,
        refuses_unapproved=True,
    ),
    # The bot ignores opt-in; a flow woken after 24 hours cannot reach the contact
    # with free form any more than an integration can.
    Channel.BOT: ChannelRules(
        marketing_to_opted_out=SEND,
        marketing_to_opted_out_chosen=SEND,
        other_to_opted_out=SEND,
        free_form_window_closed=_API_WINDOW_CLOSED,
    ),
}


def template_waits(status: str, *, refused: bool) -> Decision:
    """A template Meta does not send now (any status but APPROVED)."""
    return Decision(
        Verdict.WAIT,
        TEMPLATE_PAUSED,
        f"The template is {status} at Meta, which sends only approved templates; "
        + (
            "send it again once Meta approves it again."
            if refused
            else "the message waits and goes once Meta approves the template again."
        ),
        refused=refused,
    )


# Meta sends authentication templates (one-time codes) to phone numbers only and
# refuses them to a user id (error 131062): refused before it is tried.
_AUTHENTICATION_TO_USER_ID = Decision(
    Verdict.FAIL,
    AUTHENTICATION_TO_USER_ID,
    "AUTHENTICATION templates can only be sent to a phone number; this contact is "
    "known by a user id only (WhatsApp refuses it, error 131062).",
    refused=True,
)
_AUTHENTICATION_TO_USER_ID_IN_BROADCAST = Decision(
    Verdict.EXCLUDE, AUTHENTICATION_TO_USER_ID, _AUTHENTICATION_TO_USER_ID.reason
)


def quiet_until(
    hours: QuietHours | None, moment: datetime, *, wa_id: str | None, timezone: object
) -> datetime | None:
    """When ``hours`` around ``moment`` end in the contact's local time (their
    ``timezone`` attribute, else the zone of their number, else UTC); None when
    ``moment`` is outside them or there are none."""
    if hours is None:
        return None
    attributes = {"timezone": timezone} if isinstance(timezone, str) else {}
    return hours.end_if_inside(moment, contact_zone(wa_id, attributes))


def decide(
    channel: Channel,
    content: ContentKind,
    *,
    opted_in: bool,
    window: Window,
    options: Options = Options(),
    over_cap: bool = False,
    quiet_until: datetime | None = None,
    template_status: str | None = None,
    to_user_id: bool = False,
) -> Decision:
    """Decide whether ``content`` may go to a contact through ``channel``: ``over_cap``
    when the contact has had the frequency cap's MARKETING templates in its period,
    ``quiet_until`` when the moment is inside their quiet hours (when those end),
    ``to_user_id`` when the contact is addressed by a user id (they have no phone
    number).

    ``content`` is the template's category as the catalogue has it at the moment of
    asking (Meta may recategorise a template while its messages wait), and
    ``template_status`` Meta's status of it then (None or APPROVED: it may be sent). A
    message the opt-in rule stops is stopped whatever the template's status; one it lets
    go (or holds for quiet hours) waits while the template is not approved."""
    rules = RULES[channel]
    if to_user_id and content is ContentKind.AUTHENTICATION:
        if channel is Channel.BROADCAST:
            return _AUTHENTICATION_TO_USER_ID_IN_BROADCAST
        return _AUTHENTICATION_TO_USER_ID
    if content is ContentKind.FREE_FORM and window is Window.CLOSED:
        return rules.free_form_window_closed
    decision = _by_opt_in_and_limits(
        rules,
        content,
        opted_in=opted_in,
        options=options,
        over_cap=over_cap,
        quiet_until=quiet_until,
    )
    unapproved = template_status not in (None, "APPROVED") and content is not ContentKind.FREE_FORM
    if unapproved and (decision.sends or decision.verdict is Verdict.HOLD):
        assert template_status is not None
        return template_waits(template_status, refused=rules.refuses_unapproved)
    return decision


def _by_opt_in_and_limits(
    rules: ChannelRules,
    content: ContentKind,
    *,
    opted_in: bool,
    options: Options,
    over_cap: bool,
    quiet_until: datetime | None,
) -> Decision:
    if content is not ContentKind.MARKETING:
        return SEND if opted_in else rules.other_to_opted_out
    if opted_in:
        decision = SEND
    elif rules.chooses(options):
        decision = rules.marketing_to_opted_out_chosen
    else:
        decision = rules.marketing_to_opted_out
    if not decision.sends:
        return decision
    if over_cap:
        capped = rules.marketing_over_cap
        if not capped.sends:
            return capped
        if decision.notice is None:
            decision = capped
    if quiet_until is not None and rules.holds_in_quiet_hours:
        return Decision(
            Verdict.HOLD,
            QUIET_HOURS,
            f"{_QUIET_REASON} until {quiet_until:%Y-%m-%dT%H:%MZ}.",
            hold_until=quiet_until,
        )
    return decision
