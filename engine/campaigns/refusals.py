"""Why a broadcast or sequence request was refused. Raised inside store jobs, so
nothing is kept."""

from __future__ import annotations


class CampaignRefusal(Exception):
    """A refusal the caller can act on: a sentence saying what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidFields(CampaignRefusal):
    """Bad input: each of ``fields`` names where (e.g. ``steps.1.template``) and what
    is wrong there."""

    def __init__(self, message: str, fields: tuple[tuple[str, str], ...]) -> None:
        super().__init__(message)
        self.fields = fields


class InvalidField(InvalidFields):
    """Bad input in one place: ``field`` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", ((field, message),))
        self.field = field
        self.field_message = message


class BroadcastNotFound(CampaignRefusal):
    def __init__(self, broadcast_id: str) -> None:
        super().__init__(f"broadcast {broadcast_id} was not found")
        self.broadcast_id = broadcast_id


class SequenceNotFound(CampaignRefusal):
    def __init__(self, sequence_id: str) -> None:
        super().__init__(f"sequence {sequence_id} was not found")
        self.sequence_id = sequence_id


class SequenceExists(CampaignRefusal):
    """Another sequence has the name: names are unique."""


class WrongState(CampaignRefusal):
    """The broadcast or enrolment is not in a state that allows the request."""


class AlreadyEnrolled(CampaignRefusal):
    pass


class NotEnrolled(CampaignRefusal):
    pass
