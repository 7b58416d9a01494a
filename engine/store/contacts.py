"""Contacts and their consent ledger.

The ledger is append-only, and :meth:`ContactRepo.set_opt_in` is the only way to
change a contact's ``marketing_opt_in``: it writes the new value and its ledger
entry together.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.models.contact import ConsentEvent, ConsentSource, Contact


@dataclass(frozen=True, slots=True)
class Consent:
    """Why an opt-in value was set: recorded with it in the ledger."""

    source: ConsentSource
    actor: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class NewContact:
    marketing_opt_in: bool
    wa_id: str | None = None
    user_id: str | None = None
    name: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    tags: Sequence[str] = ()

    def __post_init__(self) -> None:
        if self.wa_id is None and self.user_id is None:
            raise ValueError("a contact needs a wa_id or a user_id")


@dataclass(frozen=True, slots=True)
class MergedContact:
    """What the contact kept by a merge becomes, and the ledger entry saying why."""

    wa_id: str | None
    user_id: str | None
    name: str | None
    attributes: dict[str, Any]
    marketing_opt_in: bool
    consent: Consent


def merged_contact(
    kept: Contact, merged: Contact, *, wa_id: str | None = None, user_id: str | None = None
) -> MergedContact:
    """Two contacts found to be one person, as one: the identifiers Meta just gave
    (``wa_id``, ``user_id``), else those of both; the kept one's name and attributes
    before the merged one's; opted in to marketing only if both were (a stop said to
    either stands)."""
    opted_in = kept.marketing_opt_in and merged.marketing_opt_in

    def described(contact: Contact) -> str:
        names = ", ".join(
            f"{label} {value}"
            for label, value in (("wa_id", contact.wa_id), ("user_id", contact.user_id))
            if value
        )
        state = "opted in" if contact.marketing_opt_in else "opted out"
        return f"contact {contact.id} ({names}, {state})"

    note = f"{described(merged)} merged into {described(kept)}: one person; " + (
        "both were opted in" if opted_in else "opted out because one of them was"
    )
    return MergedContact(
        wa_id=wa_id or kept.wa_id or merged.wa_id,
        user_id=user_id or kept.user_id or merged.user_id,
        name=kept.name or merged.name,
        attributes={**merged.attributes, **kept.attributes},
        marketing_opt_in=opted_in,
        consent=Consent(ConsentSource.CONTACT_LINK, actor="whatsapp", note=note),
    )


@dataclass(frozen=True, slots=True)
class ImportedContact:
    """One valid row of a contacts import. ``None`` leaves a field as it is."""

    wa_id: str
    name: str | None
    marketing_opt_in: bool | None
    tags: Sequence[str]


@dataclass(frozen=True, slots=True)
class ContactSearch:
    """Which contacts to list: ``text`` is part of a name (any case) or of a number."""

    text: str | None = None
    tag: str | None = None
    opted_in: bool | None = None
    after_id: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class ImportCounts:
    created: int
    updated: int
    unchanged: int


class ContactRepo(ABC):
    @abstractmethod
    async def get(self, address: str) -> Contact | None:
        """The contact whose ``wa_id`` or ``user_id`` is ``address``."""

    @abstractmethod
    async def get_by_id(self, contact_id: int) -> Contact | None: ...

    @abstractmethod
    async def create(self, new: NewContact, consent: Consent) -> Contact:
        """Create a contact and record its initial opt-in; AlreadyExists if it does."""

    @abstractmethod
    async def get_or_create(self, new: NewContact, consent: Consent) -> tuple[Contact, bool]:
        """The contact with ``new``'s wa_id or user_id (filling in whichever it lacks),
        creating it when there is none; and whether this call created it. When the
        wa_id and the user_id were two contacts, they are one person: the two are
        merged (:meth:`change_number` says how)."""

    @abstractmethod
    async def change_number(self, contact_id: int, new_wa_id: str, consent: Consent) -> Contact:
        """Move the contact to ``new_wa_id``: same contact, opt-in and history, and a
        ledger entry (``consent``) with its opt-in unchanged. When another contact had
        that number, it is merged into this one: its messages, conversation, tags,
        flow session and campaign places move here, and the merged contact is opted in
        only if both were (a ledger entry says why). The merged contact's row stays,
        with its ledger, which :meth:`consent_history` of this one includes."""

    @abstractmethod
    async def update(
        self,
        contact_id: int,
        *,
        name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
    ) -> Contact:
        """Change the given fields: ``attributes`` merge (a ``None`` value removes the
        key), ``tags`` replace. NotFound if there is no such contact."""

    @abstractmethod
    async def add_tags(self, contact_id: int, tags: Sequence[str]) -> None: ...

    @abstractmethod
    async def set_opt_in(self, contact_id: int, value: bool, consent: Consent) -> bool:
        """Set marketing opt-in; append to the ledger and return True when it changed."""

    @abstractmethod
    async def consent_history(self, contact_id: int) -> list[ConsentEvent]:
        """The ledger of one contact, oldest first."""

    @abstractmethod
    async def search(self, where: ContactSearch) -> list[Contact]:
        """Contacts matching ``where`` in creation order, after the ``after_id`` cursor."""

    @abstractmethod
    async def list(
        self, *, tag: str | None = None, after_id: int | None = None, limit: int = 100
    ) -> list[Contact]:
        """Contacts in creation order, starting after the ``after_id`` cursor."""

    @abstractmethod
    async def import_batch(
        self, rows: Sequence[ImportedContact], *, default_opt_in: bool, consent: Consent
    ) -> ImportCounts:
        """Create or update many contacts at once; rows must have distinct wa_ids.
        Tags are added to the ones a contact has. A new contact's opt-in is
        :func:`~engine.models.contact.opt_in_of_new_contact`; opt-in is written as
        :meth:`create` and :meth:`set_opt_in` write it, ledger entry included."""


def like_escape(text: str) -> str:
    """``text`` as a LIKE pattern's literal part (escape character ``\\``).

    >>> like_escape("50%_off")
    '50\\\\%\\\\_off'
    """
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
