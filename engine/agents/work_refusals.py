"""Refusals of the desk's assignment, notes and saved replies (see
:mod:`engine.agents.refusals` for the compose path's)."""

from __future__ import annotations

from engine.agents.refusals import DeskError


class InvalidField(DeskError):
    """What the agent asked for is malformed; ``field`` names it."""

    code = "invalid_request"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.field_message = message


class NotAllowed(DeskError):
    """The agent's role does not allow it (saved replies are for admins)."""

    code = "forbidden"


class NotFound(DeskError):
    code = "not_found"
