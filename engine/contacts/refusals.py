"""Why a request about contacts was refused. Raised inside store jobs, so nothing is kept."""

from __future__ import annotations


class ContactRefusal(Exception):
    """A refusal the caller can act on: a sentence saying what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidAddress(ContactRefusal):
    """A contact named by a phone number that does not parse; ``field`` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.field_message = message


class ContactNotFound(ContactRefusal):
    def __init__(self, address: str) -> None:
        super().__init__(f"contact {address} was not found")
        self.address = address


class ContactExists(ContactRefusal):
    def __init__(self, wa_id: str) -> None:
        super().__init__(f"contact {wa_id} already exists")
        self.wa_id = wa_id
