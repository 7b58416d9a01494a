"""Why the agents' desk refused a request. Raised inside store jobs, so nothing is kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.agents.wire import json_time
from engine.send_rules import Decision, Notice


class DeskError(Exception):
    """A refusal the agent can act on: a stable ``code``, a sentence, and what to show."""

    code = "desk_error"

    def __init__(self, message: str, *, notices: tuple[Notice, ...] = (), **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.notices = notices
        self.details = details


class UnknownAgent(DeskError):
    code = "unknown_agent"

    def __init__(self, email: str) -> None:
        super().__init__(f"there is no agent with email {email}; create one with POST /agents")
        self.email = email


class ConversationOwned(DeskError):
    """Another agent holds the conversation: two agents never own one."""

    code = "conversation_owned"

    def __init__(self, wa_id: str, owner: str, *, notices: tuple[Notice, ...] = ()) -> None:
        super().__init__(
            f"conversation {wa_id} is owned by agent {owner}; they must release it first",
            notices=notices,
            owner=owner,
        )
        self.owner = owner


class FreeTextOutsideWindow(DeskError):
    """The send rules refuse free text: the 24-hour customer-service window is closed."""

    def __init__(
        self,
        wa_id: str,
        open_until: datetime | None,
        *,
        decision: Decision,
        notices: tuple[Notice, ...],
    ) -> None:
        when = (
            f"closed at {json_time(open_until)}"
            if open_until is not None
            else "not open: the contact has not written yet"
        )
        route = f"POST /api/v1/conversations/{wa_id}/messages"
        super().__init__(
            f"the 24-hour customer-service window is {when}; free text cannot be sent. "
            f'Send an approved template instead: {route} with {{"template": '
            '{"name", "language", "params"}}',
            notices=notices,
            window_open_until=json_time(open_until),
            template_route=route,
        )
        assert decision.code is not None
        self.code = decision.code


class ConfirmationRequired(DeskError):
    """The send rules ask the agent to confirm a MARKETING template to an opted-out contact."""

    def __init__(self, decision: Decision, *, notices: tuple[Notice, ...]) -> None:
        assert decision.code is not None
        super().__init__(
            (decision.reason or decision.code) + ' Resend with "confirm_opted_out": true.',
            notices=notices,
        )
        self.code = decision.code


class InvalidTemplate(DeskError):
    """The template cannot be sent as asked; ``field`` names what is wrong."""

    code = "invalid_request"

    def __init__(self, field: str, message: str, *, notices: tuple[Notice, ...]) -> None:
        super().__init__(f"{field}: {message}", notices=notices)
        self.field = field
        self.field_message = message


class UnknownFlow(DeskError):
    """A release asked to restart a bot flow that is not loaded."""

    code = "invalid_request"

    def __init__(self, name: str) -> None:
        self.field = "restart_flow"
        self.field_message = f"there is no flow named {name}"
        super().__init__(f"{self.field}: {self.field_message}")
