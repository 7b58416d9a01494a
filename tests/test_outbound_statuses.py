"""Delivery statuses: order, history, early arrivals, and the 131050 opt-out."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from engine.clock import FrozenClock
from engine.models import ConsentSource
from engine.models.message import Message, MessageStatus
from engine.outbound.statuses import StatusResult, replay_unmatched_statuses_of
from engine.store import Store, Tx
from engine.store.contacts import Consent, NewContact
from engine.store.inbound import UnmatchedStatus
from tests.inbound_support import ANN, contact_of, ingest_json, load, sent_message

WAMID = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI3QTFDNDJGMzg5QUQwMkI0OEEA"
STOPPED = load("status_failed_marketing_stopped")["entry"][0]["changes"][0]["value"]["statuses"][0][
    "errors"
]


def status(name: str, *, seconds: int, wamid: str = WAMID, **extra: Any) -> dict[str, Any]:
    data = copy.deepcopy(load("status_read"))
    update = data["entry"][0]["changes"][0]["value"]["statuses"][0]
    update.update(id=wamid, status=name, timestamp=str(1772442000 + seconds), **extra)
    return data


async def message(store: Store, message_id: str) -> Message:
    async with store.read() as tx:
        found = await tx.messages.get(message_id)
    assert found is not None
    return found


async def test_statuses_move_forward_and_a_late_one_is_kept_in_the_history(
    store: Store, clock: FrozenClock
) -> None:
    sent = await sent_message(store, clock.now(), WAMID)
    for name, seconds in (("delivered", 3), ("read", 60), ("delivered", 4)):
        result = await ingest_json(store, status(name, seconds=seconds), clock.now())
        assert result.statuses == {StatusResult.APPLIED: 1}
    stored = await message(store, sent.id)
    assert stored.status is MessageStatus.READ, "a late delivered does not move read back"
    assert [change.status for change in stored.history][-3:] == [
        MessageStatus.DELIVERED,
        MessageStatus.READ,
        MessageStatus.DELIVERED,
    ]


async def test_a_failure_keeps_meta_s_error(store: Store, clock: FrozenClock) -> None:
    sent = await sent_message(store, clock.now(), WAMID, marketing=False)
    await ingest_json(
        store,
        status("failed", seconds=2, errors=[{"code": 131047, "title": "Re-engagement message"}]),
        clock.now(),
    )
    stored = await message(store, sent.id)
    assert stored.status is MessageStatus.FAILED
    assert stored.failure is not None
    assert stored.failure.code == "131047"
    assert stored.failure.reason.startswith("window closed:"), stored.failure.reason
    assert "send a template instead" in stored.failure.reason
    assert "Re-engagement message" in stored.failure.reason, "Meta's own title is kept"
    assert (await contact_of(store, ANN)).marketing_opt_in is True


async def test_an_unknown_status_value_is_ignored(store: Store, clock: FrozenClock) -> None:
    sent = await sent_message(store, clock.now(), WAMID)
    result = await ingest_json(store, status("deleted", seconds=5), clock.now())
    assert result.statuses == {StatusResult.IGNORED: 1}
    assert (await message(store, sent.id)).status is MessageStatus.SENT


async def test_statuses_that_come_before_the_wamid_is_known_are_replayed_in_order(
    store: Store, clock: FrozenClock
) -> None:
    early = "wamid.early"
    for name, seconds in (("sent", 1), ("read", 9), ("delivered", 2)):
        result = await ingest_json(store, status(name, seconds=seconds, wamid=early), clock.now())
        assert result.statuses == {StatusResult.UNMATCHED: 1}

    queued = await sent_message(store, clock.now(), None)
    assert (await message(store, queued.id)).status is MessageStatus.SENDING

    async def record_wamid(tx: Tx) -> None:
        # What the sender does once Meta answered: record the wamid, replay, one job.
        await tx.messages.change_status(queued.id, MessageStatus.SENT, at=clock.now(), wamid=early)
        await replay_unmatched_statuses_of(tx, {early: queued.id})

    await store.write(record_wamid)
    # nothing left to replay the second time
    await store.write(lambda tx: replay_unmatched_statuses_of(tx, {early: queued.id}))

    stored = await message(store, queued.id)
    assert stored.status is MessageStatus.READ
    replayed = [change.status for change in stored.history if change.details]
    assert replayed == [MessageStatus.SENT, MessageStatus.READ, MessageStatus.DELIVERED]
    assert await store.write(lambda tx: tx.inbound.take_unmatched_statuses(early)) == []


async def test_131050_opts_the_contact_out_also_when_the_message_is_not_known_yet(
    store: Store, clock: FrozenClock
) -> None:
    await sent_message(store, clock.now(), WAMID)  # the contact exists
    await ingest_json(
        store, status("failed", seconds=2, wamid="wamid.unknown", errors=STOPPED), clock.now()
    )
    contact = await contact_of(store, ANN)
    assert contact.marketing_opt_in is False
    async with store.read() as tx:
        events = await tx.contacts.consent_history(contact.id)
    assert (events[-1].marketing_opt_in, events[-1].source) == (
        False,
        ConsentSource.WHATSAPP_ERROR,
    )
    assert "wamid.unknown" in (events[-1].note or "")

    # The customer opts in again; replaying the early failure must not undo that.
    await ingest_json(store, load("user_preferences_resume"), clock.now())
    queued = await sent_message(store, clock.now(), "wamid.unknown")
    await store.write(lambda tx: replay_unmatched_statuses_of(tx, {"wamid.unknown": queued.id}))
    assert (await contact_of(store, ANN)).marketing_opt_in is True
    assert (await message(store, queued.id)).status is MessageStatus.FAILED


async def test_131050_for_an_unknown_recipient_is_applied_when_replayed(
    store: Store, clock: FrozenClock
) -> None:
    lost = status("failed", seconds=2, wamid="wamid.x", errors=STOPPED, recipient_id="447700900123")
    await ingest_json(store, lost, clock.now())
    queued = await sent_message(store, clock.now(), "wamid.x", wa_id="447700900123")
    assert (await contact_of(store, "447700900123")).marketing_opt_in is True
    await store.write(lambda tx: replay_unmatched_statuses_of(tx, {"wamid.x": queued.id}))
    assert (await contact_of(store, "447700900123")).marketing_opt_in is False


async def test_unmatched_statuses_are_forgotten_after_a_while(
    store: Store, clock: FrozenClock
) -> None:
    async def keep(tx: Tx, wamid: str) -> None:
        await tx.inbound.keep_unmatched_status(
            UnmatchedStatus(
                wamid=wamid, status=MessageStatus.SENT, at=clock.now(), received_at=clock.now()
            )
        )

    await store.write(lambda tx: keep(tx, "wamid.old"))
    clock.advance(days=31)
    await store.write(lambda tx: keep(tx, "wamid.new"))
    pruned = await store.write(
        lambda tx: tx.inbound.prune_unmatched_statuses(clock.now() - timedelta(days=30))
    )
    assert pruned == 1
    taken = await store.write(lambda tx: tx.inbound.take_unmatched_statuses("wamid.new"))
    assert [s.wamid for s in taken] == ["wamid.new"]


USER_ID = "US.13491208655302741918"


def by_user_id(fixture: str, wamid: str, *, also_number: bool = False) -> dict[str, Any]:
    """Meta's status sample for a recipient it names by user id (and number, if asked)."""
    data = copy.deepcopy(load(fixture))
    status = data["entry"][0]["changes"][0]["value"]["statuses"][0]
    status["id"] = wamid
    if not also_number:
        del status["recipient_id"]
    status["recipient_user_id"] = USER_ID
    return data


async def test_a_marketing_stop_status_naming_a_user_id_opts_that_contact_out(
    store: Store, clock: FrozenClock
) -> None:
    await store.write(
        lambda tx: tx.contacts.create(
            NewContact(user_id=USER_ID, marketing_opt_in=True), Consent(ConsentSource.API)
        )
    )
    # Meta reports a status for a send we have no record of: the recipient is found by
    # the user id the status names.
    await ingest_json(
        store, by_user_id("status_failed_marketing_stopped", "wamid.unknown"), clock.now()
    )
    contact = await contact_of(store, USER_ID)
    assert contact.marketing_opt_in is False


async def test_a_status_naming_number_and_user_id_links_them(
    store: Store, clock: FrozenClock
) -> None:
    sent = await sent_message(store, clock.now(), "wamid.both")
    await ingest_json(
        store, by_user_id("status_delivered", "wamid.both", also_number=True), clock.now()
    )
    contact = await contact_of(store, USER_ID)
    assert (contact.id, contact.wa_id) == (sent.contact_id, ANN)
    async with store.read() as tx:
        message = await tx.messages.get(sent.id)
    assert message is not None
    assert message.status is MessageStatus.DELIVERED


async def test_a_status_never_makes_a_contact(store: Store, clock: FrozenClock) -> None:
    await ingest_json(
        store, by_user_id("status_delivered", "wamid.nobody", also_number=True), clock.now()
    )
    async with store.read() as tx:
        assert await tx.contacts.list() == []
