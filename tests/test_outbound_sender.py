"""The sender against the built-in simulator on loopback: every path a message can take."""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from engine.clock import FrozenClock
from engine.devtools.simulator import SIMULATOR, SIMULATOR_TOKEN
from engine.models.contact import ConsentSource, Contact
from engine.models.content import TemplateContent, TextContent
from engine.models.message import Channel, MessageStatus
from engine.outbound.enqueue import OutboundRequest, Refused
from engine.outbound.sender import Sender, SenderConfig, on_wamids_recorded
from engine.store import Store, Tx
from engine.store.contacts import Consent, NewContact
from engine.store.outbox import Sent
from engine.web.keys import SENDER, SETTINGS, STORE
from engine.whatsapp.client import CloudApiClient
from tests.inbound_support import ingest_json, load, sent_message
from tests.outbound_support import Outbound, enqueue_all, eventually, start_outbound

ANN = "16505551234"


def order_update(reference: str) -> dict[str, Any]:
    return {"name": "order_update", "language": "en_US", "params": [reference, "ready"]}


@pytest.fixture
async def outbound(aiohttp_client: Any, tmp_path: Path, clock: FrozenClock) -> Outbound:
    return await start_outbound(aiohttp_client, tmp_path, clock, OUTBOUND_MAX_TRIES=3)


async def contact(store: Store, wa_id: str) -> Contact:
    found, _ = await store.write(
        lambda tx: tx.contacts.get_or_create(
            NewContact(wa_id=wa_id, marketing_opt_in=True), Consent(ConsentSource.API)
        )
    )
    return found


async def test_throttled_then_sent(outbound: Outbound) -> None:
    await outbound.fail(ANN, 130429, times=1)
    accepted = await outbound.send(to=ANN, template=order_update("A-1"))

    async def waiting_to_retry() -> dict[str, Any] | None:
        message = await outbound.message(accepted["id"])
        return message if message["attempts"] == 1 and message["status"] == "queued" else None

    waiting = await eventually(waiting_to_retry, what="the throttled attempt to be recorded")
    attempt = waiting["history"][-1]
    assert attempt["status"] == "sending"
    assert attempt["failure"] == {
        "code": "130429",
        "reason": "Rate limit hit: simulated failure 130429",
    }
    retry_at = waiting["next_attempt_at"]
    assert retry_at is not None
    assert retry_at > outbound.clock.now().isoformat().replace("+00:00", "Z")

    outbound.advance(seconds=2)  # the first backoff is at most OUTBOUND_BACKOFF_SECONDS
    message = await outbound.wait_for(accepted["id"], "read")
    assert message["attempts"] == 2
    received = await outbound.received(ANN)
    assert [(r["error"] or {}).get("code") for r in received] == [130429, None]


async def test_permanent_error_fails_at_once_with_metas_code_and_title(outbound: Outbound) -> None:
    await outbound.fail(ANN, 131051, delivery="response")
    accepted = await outbound.send(to=ANN, template=order_update("A-2"))
    message = await outbound.wait_for(accepted["id"], "failed")
    assert message["failure"] == {
        "code": "131051",
        "reason": "Unsupported message type: simulated failure 131051",
    }
    assert message["attempts"] == 1
    assert len(await outbound.received(ANN)) == 1


async def test_undeliverable_reported_in_a_failed_status(outbound: Outbound) -> None:
    await outbound.fail(ANN, 131026)  # Meta accepts, then reports it failed
    accepted = await outbound.send(to=ANN, template=order_update("A-3"))
    message = await outbound.wait_for(accepted["id"], "failed")
    assert message["failure"]["code"] == "131026"
    assert message["failure"]["reason"].startswith("Message Undeliverable")
    assert message["wamid"] is not None
    [failed] = [change for change in message["history"] if change["status"] == "failed"]
    assert failed["details"]["errors"][0]["code"] == 131026, "Meta's error is kept"


async def test_free_text_outside_the_window_is_refused_before_anything_is_queued(
    outbound: Outbound,
) -> None:
    store = outbound.app[STORE]
    ann = await contact(store, ANN)  # they never wrote: no window
    with pytest.raises(Refused) as refused:
        await enqueue_all(
            store,
            outbound.clock,
            [OutboundRequest(ann, Channel.BOT, TextContent(body="Still there?"))],
        )
    assert refused.value.code == "window_closed"
    report = await (await outbound.client.get("/api/v1/reports/messages")).json()
    assert report["rows"] == []


async def test_free_text_whose_window_closed_while_it_waited_fails_unposted(
    outbound: Outbound,
) -> None:
    store = outbound.app[STORE]
    ann = await contact(store, ANN)
    wrote = outbound.clock.now()
    await store.write(lambda tx: tx.conversations.record_inbound(ann.id, wrote))
    outbound.clock.advance(hours=23, minutes=59)
    [message_id] = await enqueue_all(
        store, outbound.clock, [OutboundRequest(ann, Channel.BOT, TextContent(body="Still there?"))]
    )
    outbound.advance(seconds=61)  # the sender first looks after the window has closed
    message = await outbound.wait_for(message_id, "failed")
    assert message["failure"]["code"] == "window_closed"
    assert message["attempts"] == 0, "the try is not counted: nothing was posted"
    assert await outbound.received(ANN) == []


async def test_metas_window_closed_fails_the_message_with_its_code(outbound: Outbound) -> None:
    """Meta can find the window closed where we saw it open (131047): the message fails
    with Meta's code, reported in a status or in the answer."""
    store = outbound.app[STORE]
    ann = await contact(store, ANN)
    await store.write(lambda tx: tx.conversations.record_inbound(ann.id, outbound.clock.now()))
    await outbound.fail(ANN, 131047, times=1)
    [message_id] = await enqueue_all(
        store, outbound.clock, [OutboundRequest(ann, Channel.BOT, TextContent(body="Still there?"))]
    )
    outbound.app[SENDER].wake()
    message = await outbound.wait_for(message_id, "failed")
    assert message["failure"]["code"] == "131047"
    assert message["failure"]["reason"].startswith("window closed")

    await outbound.fail(ANN, 131047, delivery="response")  # as some setups answer it at once
    [again] = await enqueue_all(
        store, outbound.clock, [OutboundRequest(ann, Channel.BOT, TextContent(body="Hello?"))]
    )
    outbound.app[SENDER].wake()
    message = await outbound.wait_for(again, "failed")
    assert message["failure"]["code"] == "131047"
    assert message["failure"]["reason"].startswith("window closed")


async def test_server_errors_and_garbage_are_retried_then_failed_with_the_last_reason(
    outbound: Outbound,
) -> None:
    await outbound.fail(ANN, 503)
    accepted = await outbound.send(to=ANN, template=order_update("A-4"))
    for tries in (1, 2):
        await eventually(
            lambda tries=tries: _attempted(outbound, accepted["id"], tries),  # type: ignore[misc]
            what=f"attempt {tries} to be recorded",
        )
        outbound.advance(seconds=8)  # past the nominal backoff, not past the lease
    message = await outbound.wait_for(accepted["id"], "failed")
    assert message["attempts"] == 3
    assert message["failure"] == {
        "code": "http_503",
        "reason": "HTTP 503 from the Cloud API (gave up after 3 tries)",
    }

    bob = "16505550000"
    await outbound.fail(bob, "garbage", times=1)
    garbled = await outbound.send(to=bob, template=order_update("A-5"))
    await eventually(lambda: _attempted(outbound, garbled["id"]), what="the garbled answer")
    outbound.advance(seconds=2)
    message = await outbound.wait_for(garbled["id"], "read")
    assert message["attempts"] == 2
    assert message["ambiguous_attempts"] == 1, "a 200 without a wamid may have been taken"
    assert message["history"][1]["failure"]["code"] == "unreadable_response"


async def _attempted(outbound: Outbound, message_id: str, tries: int = 1) -> bool:
    message = await outbound.message(message_id)
    return message["status"] in ("queued", "failed") and message["attempts"] >= tries


async def test_a_timeout_is_retried(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    outbound = await start_outbound(
        aiohttp_client, tmp_path, clock, OUTBOUND_HTTP_TIMEOUT_SECONDS=0.2
    )
    await outbound.fail(ANN, "timeout", times=1, hold_seconds=0.5)
    accepted = await outbound.send(to=ANN, template=order_update("A-6"))
    await eventually(lambda: _attempted(outbound, accepted["id"]), what="the timed-out attempt")
    outbound.advance(seconds=2)
    message = await outbound.wait_for(accepted["id"], "read")
    assert message["history"][1]["failure"]["code"] == "timeout"
    assert message["ambiguous_attempts"] == 1


async def test_one_recipient_gets_messages_one_at_a_time_in_order(outbound: Outbound) -> None:
    await outbound.fail(ANN, 130429, times=1)
    ids = [(await outbound.send(to=ANN, template=order_update(f"B-{n}")))["id"] for n in range(3)]
    await eventually(lambda: _attempted(outbound, ids[0]), what="the first attempt")
    sender = outbound.app[SENDER]
    looked = sender.stats.looked
    # Later ones had their chance once the sender has looked for due rows a few times.
    await eventually(lambda: _ready(sender.stats.looked >= looked + 3), what="three more looks")
    assert [m["status"] for m in [await outbound.message(i) for i in ids[1:]]] == ["queued"] * 2
    outbound.advance(seconds=2)
    for message_id in ids:
        await outbound.wait_for(message_id, "read")
    accepted = [r["biz_opaque_callback_data"] for r in await outbound.received(ANN) if r["wamid"]]
    assert accepted == ids


async def test_a_burst_to_one_recipient_is_spaced_not_failed(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    outbound = await start_outbound(aiohttp_client, tmp_path, clock, OUTBOUND_PAIR_BURST=2)
    ids = [(await outbound.send(to=ANN, template=order_update(f"C-{n}")))["id"] for n in range(4)]
    for message_id in ids[:2]:
        await outbound.wait_for(message_id, "read")

    slot = _iso(clock.now() + timedelta(seconds=6))

    async def spaced() -> dict[str, Any] | None:
        message = await outbound.message(ids[2])
        return message if message["next_attempt_at"] == slot else None

    third = await eventually(spaced, what="the third message to be put back until its slot")
    assert (third["status"], third["attempts"]) == ("queued", 0)
    outbound.advance(seconds=6)
    await outbound.wait_for(ids[2], "read")
    outbound.advance(seconds=6)
    await outbound.wait_for(ids[3], "read")
    accepted = [r["biz_opaque_callback_data"] for r in await outbound.received(ANN)]
    assert accepted == ids, "each message went once, in order, none refused by the pair limit"


def _iso(moment: Any) -> str:
    return str(moment.isoformat().replace("+00:00", "Z"))


async def test_a_killed_sender_loses_nothing_and_sends_nothing_twice(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    outbound = await start_outbound(aiohttp_client, tmp_path, clock, OUTBOUND_WORKER=False)
    store, settings = outbound.app[STORE], outbound.app[SETTINGS]
    numbers = [f"1650555{n:04d}" for n in range(40)]
    contacts = [await contact(store, number) for number in numbers]
    requests = [
        OutboundRequest(c, Channel.BROADCAST, TemplateContent(**order_update(f"D-{n}")))
        for n, c in enumerate(contacts)
    ]
    # Two more to the first contact, to see the order survive the crash.
    requests += [
        OutboundRequest(contacts[0], Channel.BROADCAST, TemplateContent(**order_update("D-x"))),
        OutboundRequest(contacts[0], Channel.BROADCAST, TemplateContent(**order_update("D-y"))),
    ]
    ids = await enqueue_all(store, clock, requests)
    # Meta takes this one, but its answer comes too late (long after the sender died,
    # however slowly this machine runs): the sender dies waiting for it. Its status
    # webhook still tells which message it was, so it is not sent again.
    await outbound.fail(numbers[5], "slow", times=1, hold_seconds=30)
    # Meta never answers this one: after the crash nothing says whether it went.
    await outbound.fail(numbers[6], "timeout", times=1, hold_seconds=30)

    config = SenderConfig(
        default_phone_number_id=settings.wa_phone_number_id, rate_limit=40, poll_seconds=0.02
    )
    async with aiohttp.ClientSession() as session:
        client = CloudApiClient(
            session,
            graph_base=settings.graph_base,
            api_version=settings.wa_api_version,
            access_token=SIMULATOR_TOKEN,
        )
        first = Sender(store, client, clock, config)
        task = first.start()
        simulator = outbound.app[SIMULATOR]

        # Meta's count, not the recorded one: recording may lag behind the sends (a write
        # that met a deadlock on PostgreSQL waits for its detection before running again).
        def crash_point() -> bool:
            seen = simulator.received()
            return (
                len([r for r in seen if r.wamid]) >= 15
                and any(r.to == numbers[5] and r.wamid for r in seen)
                and any(r.to == numbers[6] for r in seen)
            )

        await eventually(
            lambda: _ready(crash_point()), what="15 messages sent and both slow ones posted"
        )
        task.cancel()  # killed mid-batch: no clean-up, nothing more recorded
        with pytest.raises(asyncio.CancelledError):
            await task

        await simulator.settle()
        accepted_before = [r for r in simulator.received() if r.wamid]
        assert len(accepted_before) < len(ids), "the crash came before the end"
        slow = [r for r in accepted_before if r.to == numbers[5]]
        assert slow, "Meta had taken the slow one when the sender died"

        clock.advance(seconds=config.lease.total_seconds() + 1)
        second = Sender(store, client, clock, config)
        second.start()
        try:
            await eventually(
                lambda: _all_final(store, ids), what="every message to be sent after the restart"
            )
        finally:
            await second.stop()
        await simulator.settle()

    accepted = Counter(r.reference for r in simulator.received() if r.wamid)
    assert set(accepted) == set(ids), "no message lost"
    assert max(accepted.values()) == 1, "no message sent twice"
    firsts = [r.reference for r in simulator.received(numbers[0]) if r.wamid]
    assert firsts == [ids[0], ids[-2], ids[-1]], "one contact's messages kept their order"

    report = await (await outbound.client.get("/api/v1/reports/messages")).json()
    assert report["counts"].get("sending", 0) == 0
    assert report["counts"].get("queued", 0) == 0
    assert second.stats.reclaimed > 0, "the unanswered message was left in sending"
    assert report["counts"]["ambiguous"] == second.stats.reclaimed


async def _ready(value: bool) -> bool:
    return value


async def _all_final(store: Store, ids: list[str]) -> bool:
    async with store.read() as tx:
        messages = [await tx.messages.get(i) for i in ids]
    return all(m is not None and m.status.value in ("sent", "delivered", "read") for m in messages)


def status_notification(wamid: str, status: str, seconds: int) -> dict[str, Any]:
    data = copy.deepcopy(load("status_read"))
    update = data["entry"][0]["changes"][0]["value"]["statuses"][0]
    update.update(id=wamid, status=status, timestamp=str(1772442000 + seconds))
    return data


async def test_statuses_that_overtook_the_answers_are_applied_to_each_message_of_the_batch(
    store: Store, clock: FrozenClock
) -> None:
    # Three messages handed to Meta, whose answers (the wamids) are not recorded yet.
    handed = [
        await sent_message(store, clock.now(), None, wa_id=f"1650555000{n}") for n in range(3)
    ]
    early = [
        ("wamid.first", "delivered", 1),
        ("wamid.other-system", "read", 1),
        ("wamid.second", "delivered", 1),
        ("wamid.first", "read", 2),
    ]
    for wamid, name, seconds in early:
        await ingest_json(store, status_notification(wamid, name, seconds), clock.now())

    # The sender records the batch of answers, and replays what came early, in one job.
    wamids = ("wamid.first", "wamid.second", "wamid.third")
    answers = [Sent(m.id, wamid, 1, None) for m, wamid in zip(handed, wamids, strict=True)]

    async def record(tx: Tx) -> None:
        await tx.outbox.record("sender-1", answers, now=clock.now())
        await on_wamids_recorded(tx, answers)

    await store.write(record)

    async with store.read() as tx:
        messages = [await tx.messages.get(message.id) for message in handed]
    assert [m.status if m else None for m in messages] == [
        MessageStatus.READ,
        MessageStatus.DELIVERED,
        MessageStatus.SENT,
    ]
    first = messages[0]
    assert first is not None
    assert [change.status for change in first.history][-3:] == [
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.READ,
    ], "replayed in the order they came"
    kept = await store.write(
        lambda tx: tx.inbound.take_unmatched_statuses("wamid.first", "wamid.other-system")
    )
    assert [(s.wamid, s.status) for s in kept] == [("wamid.other-system", MessageStatus.READ)]
