"""How a message is recorded after the opt-in rule's decision, wherever it was asked:
at enqueue (:mod:`engine.outbound.enqueue`) or again just before sending
(:mod:`engine.outbound.sender`), so a contact who opts out in between is recorded the
same way as one who had opted out already."""

from __future__ import annotations

from engine.models.message import Failure, MessageStatus
from engine.send_rules import Decision, Verdict

_NOT_SENT = {
    Verdict.FAIL: MessageStatus.FAILED,
    Verdict.EXCLUDE: MessageStatus.SKIPPED,
    # Enqueue asks the agent instead of recording anything; before sending it is too
    # late to ask (the contact opted out after the agent sent it), so it fails.
    Verdict.NEEDS_CONFIRMATION: MessageStatus.FAILED,
}


def recorded_as(decision: Decision) -> tuple[MessageStatus, Failure | None]:
    """The status a message is stored with after ``decision``, and why when it is not
    sent: ``queued`` when the decision sends, holds it for quiet hours (due when the hold
    ends), or waits for its template (a queued message waits in the outbox, see
    :mod:`engine.outbound.sender`)."""
    if decision.sends or decision.verdict in (Verdict.HOLD, Verdict.WAIT):
        return MessageStatus.QUEUED, None
    status = _NOT_SENT[decision.verdict]
    code = decision.code or decision.verdict.value
    return status, Failure(code=code, reason=decision.reason or code)
