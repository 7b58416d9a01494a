"""The hand-off to the conversation handler: in order per contact, durable, after the answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from engine.clock import FrozenClock
from engine.inbound.dispatcher import Dispatcher
from engine.inbound.handoff import ConversationHandler, Incoming
from engine.models.conversation import Owner
from engine.models.customer_input import InputKind
from engine.store import Store
from engine.store.inbound import Outcome
from tests.inbound_support import (
    ANN,
    RecordingHandler,
    contact_of,
    ingest_json,
    settle,
    text_notification,
)

BEA = "447700900123"

Start = Callable[..., Dispatcher]


@pytest.fixture
async def start(store: Store, clock: FrozenClock) -> AsyncIterator[Start]:
    """Start dispatchers (retrying at once); every one is stopped at the end."""
    started: list[Dispatcher] = []

    def make(
        handler: ConversationHandler | None,
        *,
        concurrency: int = 64,
        batch: int = 256,
        max_attempts: int = 5,
        stop_grace: float = 10.0,
    ) -> Dispatcher:
        dispatcher = Dispatcher(
            store,
            clock,
            lambda: handler,
            concurrency=concurrency,
            batch=batch,
            max_attempts=max_attempts,
            stop_grace=stop_grace,
            retry_delay=0,
            gather=0,
        )
        dispatcher.start()
        started.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in started:
        await dispatcher.stop()


async def say(store: Store, clock: FrozenClock, *texts: str, sender: str = ANN) -> None:
    for text in texts:
        wamid = f"wamid.{sender}.{text}"
        await ingest_json(store, text_notification(text, wamid=wamid, sender=sender), clock.now())


async def outcomes(store: Store) -> dict[Outcome | None, int]:
    async with store.read() as tx:
        return await tx.inbound.count_by_outcome()


async def test_messages_stored_before_the_start_are_handed_over_in_order(
    store: Store, clock: FrozenClock, start: Start
) -> None:
    await say(store, clock, "one", "two", "three")
    await say(store, clock, "hello", sender=BEA)
    handler = RecordingHandler()
    await settle(start(handler))
    assert [i.input.text for i in handler.seen if i.contact.wa_id == ANN] == ["one", "two", "three"]
    assert sorted(handler.texts, key=str) == ["hello", "one", "three", "two"]
    assert [i.new_contact for i in handler.seen if i.contact.wa_id == ANN] == [True, False, False]
    first = handler.seen[0]
    assert first.input.kind is InputKind.TEXT
    assert first.message.payload is not None
    assert first.conversation.owner is Owner.BOT
    assert await outcomes(store) == {Outcome.BOT: 4}


async def test_a_slow_contact_does_not_hold_the_others_back(
    store: Store, clock: FrozenClock, start: Start
) -> None:
    release = asyncio.Event()

    async def hold_ann(incoming: Incoming) -> None:
        if incoming.contact.wa_id == ANN:
            await release.wait()

    handler = RecordingHandler(hold_ann)
    dispatcher = start(handler)
    await say(store, clock, "first", "second")
    await say(store, clock, "hi", sender=BEA)
    dispatcher.wake()
    deadline = asyncio.get_running_loop().time() + 5
    while handler.texts != ["hi"]:
        assert asyncio.get_running_loop().time() < deadline, handler.texts
        await asyncio.sleep(0.005)
    # Bea's hand-off is marked handled just after her handler returns; Ann's two wait.
    waiting = None
    while waiting != 2:
        assert asyncio.get_running_loop().time() < deadline, f"{waiting} hand-offs waiting"
        async with store.read() as tx:
            waiting = await tx.inbound.count_waiting()
        await asyncio.sleep(0.005)
    assert handler.texts == ["hi"], "held messages are not handed over"
    release.set()
    await settle(dispatcher)
    assert handler.texts == ["hi", "first", "second"]


async def test_a_message_whose_handler_did_not_return_is_handed_over_after_a_restart(
    store: Store, clock: FrozenClock, start: Start
) -> None:
    entered = asyncio.Event()

    async def never_returns(incoming: Incoming) -> None:
        entered.set()
        await asyncio.Event().wait()

    crashed = start(RecordingHandler(never_returns), stop_grace=0)
    await say(store, clock, "are you there?")
    crashed.wake()
    await asyncio.wait_for(entered.wait(), 5)
    await crashed.stop()  # gives up on the handler, as a crash would
    assert await outcomes(store) == {None: 1}

    handler = RecordingHandler()
    await settle(start(handler))
    assert handler.texts == ["are you there?"]
    assert await outcomes(store) == {Outcome.BOT: 1}


async def test_while_an_agent_owns_the_conversation_the_bot_is_not_called(
    store: Store, clock: FrozenClock, start: Start
) -> None:
    await say(store, clock, "hello")
    contact = await contact_of(store, ANN)
    await store.write(lambda tx: tx.conversations.set_owner(contact.id, Owner.AGENT, "eve"))
    handler = RecordingHandler()
    await settle(start(handler))
    assert handler.seen == []
    assert await outcomes(store) == {Outcome.AGENT: 1}


async def test_a_takeover_by_the_handler_applies_to_the_next_message(
    store: Store, clock: FrozenClock, start: Start
) -> None:
    async def hand_to_agent(incoming: Incoming) -> None:
        if incoming.input.text == "human please":
            await store.write(
                lambda tx: tx.conversations.set_owner(incoming.contact.id, Owner.AGENT, "eve")
            )

    await say(store, clock, "human please", "hello?")
    handler = RecordingHandler(hand_to_agent)
    await settle(start(handler))
    assert handler.texts == ["human please"]
    assert await outcomes(store) == {Outcome.BOT: 1, Outcome.AGENT: 1}


async def test_without_a_bot_messages_are_closed_unhandled(
    store: Store, clock: FrozenClock, start: Start
) -> None:
    await say(store, clock, "hello")
    await settle(start(None))
    assert await outcomes(store) == {Outcome.NO_HANDLER: 1}


async def test_a_failing_handler_is_retried_in_order(
    store: Store, clock: FrozenClock, start: Start
) -> None:
    failures = {"flaky": 2}

    async def flaky(incoming: Incoming) -> None:
        text = incoming.input.text or ""
        if failures.get(text, 0) > 0:
            failures[text] -= 1
            raise RuntimeError("the flow engine is restarting")

    await say(store, clock, "flaky", "after")
    handler = RecordingHandler(flaky)
    await settle(start(handler))
    assert handler.texts == ["flaky", "after"]
    async with store.read() as tx:
        pending = [await tx.inbound.get_handoff(i.message.id) for i in handler.seen]
    assert [(h.attempts, h.outcome) for h in pending if h] == [(2, Outcome.BOT), (0, Outcome.BOT)]


async def test_a_message_that_always_fails_is_given_up_and_the_contact_moves_on(
    store: Store, clock: FrozenClock, start: Start
) -> None:
    async def poison(incoming: Incoming) -> None:
        if incoming.input.text == "poison":
            raise ValueError("cannot handle this")

    await say(store, clock, "poison", "fine")
    handler = RecordingHandler(poison)
    await settle(start(handler, max_attempts=3))
    assert handler.texts == ["fine"]
    assert await outcomes(store) == {Outcome.FAILED: 1, Outcome.BOT: 1}


async def test_many_contacts_are_all_handed_over(
    store: Store, clock: FrozenClock, start: Start
) -> None:
    senders = [f"1650555{n:04d}" for n in range(120)]
    for sender in senders:
        await say(store, clock, "a", "b", sender=sender)
    handler = RecordingHandler()
    await settle(start(handler, concurrency=8, batch=50))
    assert len(handler.seen) == 240
    for sender in senders:
        assert [i.input.text for i in handler.seen if i.contact.wa_id == sender] == ["a", "b"]


async def say_and_hand_over(
    store: Store, clock: FrozenClock, dispatcher: Dispatcher, *texts: str, sender: str = ANN
) -> None:
    """As the webhook does: each store job's deliveries handed over once committed."""
    for text in texts:
        checkpoint = dispatcher.checkpoint()
        wamid = f"wamid.{sender}.{text}"
        notification = text_notification(text, wamid=wamid, sender=sender)
        result = await ingest_json(store, notification, clock.now())
        dispatcher.hand_over(result.deliveries, checkpoint)


async def test_a_handed_over_message_reaches_the_handler_as_the_store_has_it(
    store: Store, clock: FrozenClock, start: Start
) -> None:
    handler = RecordingHandler()
    dispatcher = start(handler)
    await say_and_hand_over(store, clock, dispatcher, "hello")
    await say_and_hand_over(store, clock, dispatcher, "hi", sender=BEA)
    await settle(dispatcher)
    assert sorted(handler.texts, key=str) == ["hello", "hi"]
    for seen in handler.seen:
        async with store.read() as tx:
            stored = await tx.messages.get(seen.message.id)
            contact = await tx.contacts.get_by_id(seen.contact.id)
            conversation = await tx.conversations.get(seen.contact.id)
        assert seen.message == stored
        assert seen.contact == contact
        assert seen.conversation == conversation
        assert seen.new_contact is True
    assert await outcomes(store) == {Outcome.BOT: 2}


async def test_a_takeover_applies_to_a_message_handed_over_before_it(
    store: Store, clock: FrozenClock, start: Start
) -> None:
    """The second message is stored while the handler of the first is still running:
    what its store job saw of the conversation is out of date when its turn comes."""
    second_stored = asyncio.Event()

    async def hand_to_agent(incoming: Incoming) -> None:
        if incoming.input.text == "human please":
            await second_stored.wait()
            await store.write(
                lambda tx: tx.conversations.set_owner(incoming.contact.id, Owner.AGENT, "eve")
            )

    handler = RecordingHandler(hand_to_agent)
    dispatcher = start(handler)
    await say_and_hand_over(store, clock, dispatcher, "human please")
    await say_and_hand_over(store, clock, dispatcher, "hello?")
    second_stored.set()
    await settle(dispatcher)
    assert handler.texts == ["human please"]
    assert await outcomes(store) == {Outcome.BOT: 1, Outcome.AGENT: 1}
