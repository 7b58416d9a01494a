"""The marketing opt-in rule: the only place in the product that decides it.

Every outbound path (compose box, broadcasts, sequences, the API, bot flows) asks
:func:`decide` before it creates a message, and acts on the :class:`Decision`.
No other module compares a channel with a contact's opt-in.

The rule is applied twice: when a message is queued (:mod:`engine.outbound.enqueue`),
and again just before it is sent (:mod:`engine.outbound.sender`), with the content kind
and :class:`Options` kept on the message row and the contact's opt-in of that moment.
A contact who opts out while their message waits (a broadcast planned, then STOP) is
treated as one who had opted out before it was queued: excluded, failed, or (compose)
failed for want of a confirmation the agent can no longer give.

The rule (API.md §3), for a contact whose ``marketing_opt_in`` is NO:

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

>>> decide(Channel.API, ContentKind.MARKETING, opted_in=False).verdict
<Verdict.FAIL: 'fail'>
>>> decide(Channel.BOT, ContentKind.MARKETING, opted_in=False).verdict
<Verdict.SEND: 'send'>
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from engine.models.message import Channel
from engine.models.template import TemplateCategory

MARKETING_OPT_OUT = "marketing_opt_out"
CONFIRMATION_REQUIRED = "marketing_opt_out_confirmation_required"
QUALITY_RATING_RISK = "quality_rating_risk"


class ContentKind(StrEnum):
    """What is being sent, as far as the opt-in rule cares."""

    MARKETING = "MARKETING"
    UTILITY = "UTILITY"
    AUTHENTICATION = "AUTHENTICATION"
    FREE_FORM = "free_form"  # text, interactive or media: anything that is not a template

    @classmethod
    def of_template(cls, category: TemplateCategory) -> ContentKind:
        return cls(category.value)


class Verdict(StrEnum):
    SEND = "send"
    SEND_WITH_NOTICE = "send_with_notice"
    NEEDS_CONFIRMATION = "needs_confirmation"
    FAIL = "fail"
    EXCLUDE = "exclude"

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

    @property
    def sends(self) -> bool:
        return self.verdict.sends


@dataclass(frozen=True, slots=True)
class Options:
    """The choices a sender makes that the rule takes into account."""

    opted_in_only: bool = True
    """Broadcasts: the "send to contacts who opted in for marketing" toggle (default on)."""

    confirmed_opted_out: bool = False
    """Compose box: the agent confirmed a MARKETING template to an opted-out contact."""


OPTED_OUT_NOTICE = Notice(
    MARKETING_OPT_OUT,
    "This contact has opted out of marketing messages.",
)
QUALITY_NOTICE = Notice(
    QUALITY_RATING_RISK,
    "This contact has opted out of marketing messages; sending marketing to contacts "
    "who opted out may lower the phone number's quality rating.",
)

_SEND = Decision(Verdict.SEND)
_SEND_WITH_OPT_OUT_NOTICE = Decision(Verdict.SEND_WITH_NOTICE, notice=OPTED_OUT_NOTICE)

_REASONS = {
    Channel.COMPOSE: "The contact has opted out of marketing messages; confirm to send "
    "this MARKETING template anyway.",
    Channel.BROADCAST: "The contact has opted out of marketing messages and the broadcast "
    "sends MARKETING templates to opted-in contacts only.",
    Channel.SEQUENCE: "The contact had opted out of marketing messages when this MARKETING "
    "step came due; the step was not sent and the contact moved on to the next step.",
    Channel.API: "The contact has opted out of marketing messages (marketing_opt_in is NO); "
    "MARKETING templates are not sent to them.",
}


def decide(
    channel: Channel,
    content: ContentKind,
    *,
    opted_in: bool,
    options: Options = Options(),
) -> Decision:
    """Decide whether ``content`` may go to a contact through ``channel``."""
    if opted_in or channel is Channel.BOT:
        return _SEND
    if content is not ContentKind.MARKETING:
        return _SEND_WITH_OPT_OUT_NOTICE if channel is Channel.COMPOSE else _SEND
    match channel:
        case Channel.COMPOSE:
            if options.confirmed_opted_out:
                return _SEND_WITH_OPT_OUT_NOTICE
            return Decision(
                Verdict.NEEDS_CONFIRMATION,
                CONFIRMATION_REQUIRED,
                _REASONS[channel],
                OPTED_OUT_NOTICE,
            )
        case Channel.BROADCAST:
            if options.opted_in_only:
                return Decision(Verdict.EXCLUDE, MARKETING_OPT_OUT, _REASONS[channel])
            return Decision(Verdict.SEND_WITH_NOTICE, notice=QUALITY_NOTICE)
        case Channel.SEQUENCE | Channel.API:
            return Decision(Verdict.FAIL, MARKETING_OPT_OUT, _REASONS[channel])
    raise AssertionError(f"unhandled channel {channel!r}")  # pragma: no cover
