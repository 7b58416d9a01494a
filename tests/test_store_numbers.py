"""The business numbers repository on the real store (SQLite, and PostgreSQL with
OPTINFLOW_TEST_BACKEND=postgres): registration once, the default number, health
updates found by display number, the 24-hour window per contact and number, and the
count of customers a number reached (its daily limit)."""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.clock import FrozenClock
from engine.ids import new_id
from engine.models.contact import ConsentSource
from engine.models.content import TemplateContent, TextContent
from engine.models.message import Channel, Direction, Message, MessageStatus
from engine.models.number import HealthUpdate, LimitTier, Quality
from engine.outbound.enqueue import OutboundRequest, enqueue
from engine.store import Store, Tx
from engine.store.contacts import Consent, NewContact
from engine.store.numbers import NewNumber
from tests.inbound_support import NEW_ARRIVALS

A, B = "106540352242922", "106540352242923"


async def register_two(store: Store, clock: FrozenClock) -> None:
    async def job(tx: Tx) -> None:
        assert await tx.numbers.register(NewNumber(A, "+1 555-078-3881"), at=clock.now())
        clock.advance(seconds=1)
        assert await tx.numbers.register(NewNumber(B, "15550783882", 5), at=clock.now())

    await store.write(job)


async def contact(store: Store, wa_id: str = "16505551234") -> int:
    async def job(tx: Tx) -> int:
        made = await tx.contacts.create(
            NewContact(wa_id=wa_id, marketing_opt_in=True), Consent(ConsentSource.API)
        )
        return made.id

    return await store.write(job)


async def inbound(store: Store, contact_id: int, number: str | None, at: datetime) -> str:
    """A customer's message stored and recorded as ingest does."""
    message_id = new_id()

    async def job(tx: Tx) -> None:
        moment = at  # the time the customer wrote
        stored = await tx.messages.insert(
            Message(
                id=message_id,
                direction=Direction.INBOUND,
                contact_id=contact_id,
                contact="16505551234",
                kind="text",
                text="hi",
                status=MessageStatus.RECEIVED,
                wamid=f"wamid.{message_id}",
                created_at=moment,
                updated_at=moment,
            ),
            phone_number_id=number,
        )
        assert stored
        await tx.conversations.record_inbound(contact_id, moment)
        if number is not None:
            await tx.numbers.record_inbound(contact_id, number, moment)

    await store.write(job)
    return message_id


async def test_a_number_is_registered_once_and_the_first_is_the_default(
    store: Store, clock: FrozenClock
) -> None:
    await register_two(store, clock)
    again = await store.write(
        lambda tx: tx.numbers.register(NewNumber(B, "15550000000", 99), at=clock.now())
    )
    assert again is None
    async with store.read() as tx:
        listed = await tx.numbers.list()
        default = await tx.numbers.default()
        b = await tx.numbers.get(B)
        missing = await tx.numbers.get("999")
    assert [n.phone_number_id for n in listed] == [A, B]
    assert default == A
    assert b is not None
    assert (b.display_phone_number, b.rate_limit) == ("15550783882", 5)
    assert (b.quality_rating, b.messaging_limit_tier, b.flagged, b.daily_limit) == (
        Quality.UNKNOWN,
        None,
        False,
        None,
    )
    assert missing is None


async def test_health_updates_find_the_number_by_its_display_digits_and_keep_the_rest(
    store: Store, clock: FrozenClock
) -> None:
    await register_two(store, clock)
    async with store.read() as tx:
        found = await tx.numbers.by_display("15550783881")  # registered as +1 555-078-3881
    assert found is not None
    assert found.phone_number_id == A
    first = await store.write(
        lambda tx: tx.numbers.update_health(
            A, HealthUpdate(messaging_limit_tier=LimitTier.TIER_1K), at=clock.now()
        )
    )
    assert first is not None
    assert first.daily_limit == 1000
    assert not first.unhealthy
    flagged = await store.write(
        lambda tx: tx.numbers.update_health(A, HealthUpdate(flagged=True), at=clock.now())
    )
    assert flagged is not None
    assert (flagged.messaging_limit_tier, flagged.flagged, flagged.unhealthy) == (
        LimitTier.TIER_1K,
        True,
        True,
    )
    red = await store.write(
        lambda tx: tx.numbers.update_health(
            B, HealthUpdate(quality_rating=Quality.RED), at=clock.now()
        )
    )
    assert red is not None
    assert red.unhealthy
    assert red.health_updated_at == clock.now()
    assert (
        await store.write(
            lambda tx: tx.numbers.update_health("999", HealthUpdate(flagged=True), at=clock.now())
        )
        is None
    )


async def test_the_window_is_kept_per_contact_and_number(store: Store, clock: FrozenClock) -> None:
    await register_two(store, clock)
    ann = await contact(store)
    written = clock.now()
    first = await inbound(store, ann, B, written)
    async with store.read() as tx:
        to_b = await tx.numbers.last_inbound(ann, B)
        to_a = await tx.numbers.last_inbound(ann, A)
        answers_from = await tx.numbers.last_written_to(ann)
        number_of_message = await tx.numbers.of_message(first)
    assert (to_b, to_a, answers_from, number_of_message) == (written, None, B, B)

    # A message Meta delivers late (written before) changes neither window nor number.
    await inbound(store, ann, A, written - timedelta(hours=1))
    async with store.read() as tx:
        assert await tx.numbers.last_written_to(ann) == B
        assert await tx.numbers.last_inbound(ann, A) == written - timedelta(hours=1)
        assert await tx.numbers.last_inbound(ann, B) == written

    # One to a number not registered here is kept against no number and opens nothing.
    clock.advance(minutes=5)
    unknown = await inbound(store, ann, None, clock.now())
    async with store.read() as tx:
        assert await tx.numbers.of_message(unknown) is None
        assert await tx.numbers.last_written_to(ann) == B


async def test_free_form_goes_out_from_the_number_written_to_and_is_judged_by_its_window(
    store: Store, clock: FrozenClock
) -> None:
    await register_two(store, clock)
    ann = await contact(store)
    await inbound(store, ann, B, clock.now())

    async def reply(channel: Channel, number: str | None) -> tuple[str | None, str]:
        async def job(tx: Tx) -> tuple[str | None, str]:
            who = await tx.contacts.get("16505551234")
            assert who is not None
            request = OutboundRequest(
                who, channel, TextContent(body="hello"), phone_number_id=number
            )
            try:
                enqueued = await enqueue(tx, request, now=clock.now())
            except Exception as refused:  # the API refuses free text outside the window
                return None, type(refused).__name__
            assert enqueued.message is not None
            return await tx.numbers.of_message(enqueued.message.id), enqueued.message.status

        return await store.write(job)

    assert await reply(Channel.BOT, None) == (B, MessageStatus.QUEUED)
    assert await reply(Channel.API, B) == (B, MessageStatus.QUEUED)
    # From A, whose window with Ann never opened: refused like any closed window.
    assert await reply(Channel.API, A) == (None, "Refused")
    assert await reply(Channel.API, None) == (None, "Refused")  # the default is A


async def test_customers_reached_counts_unique_contacts_of_business_initiated_sends(
    store: Store, clock: FrozenClock
) -> None:
    await register_two(store, clock)
    await store.write(lambda tx: tx.templates.put(NEW_ARRIVALS))
    start = clock.now()
    ids = [await contact(store, f"1650555{n:04d}") for n in range(3)]

    async def send(wa_id: str, channel: Channel, number: str) -> None:
        async def job(tx: Tx) -> None:
            who = await tx.contacts.get(wa_id)
            assert who is not None
            content = TemplateContent(name="new_arrivals", language="en_US", params=("x",))
            await enqueue(
                tx, OutboundRequest(who, channel, content, phone_number_id=number), now=clock.now()
            )

        await store.write(job)

    await send("16505550000", Channel.API, A)
    clock.advance(hours=1)
    await send("16505550000", Channel.BROADCAST, A)  # the same customer again
    await send("16505550001", Channel.SEQUENCE, A)
    await send("16505550002", Channel.API, B)  # another number
    await send("16505550002", Channel.BOT, A)  # an answer: not business-initiated
    assert len(ids) == 3
    async with store.read() as tx:
        on_a = await tx.numbers.customers_reached(A, since=start)
        on_b = await tx.numbers.customers_reached(B, since=start)
        later = await tx.numbers.customers_reached(A, since=start + timedelta(minutes=30))
        oldest = await tx.numbers.oldest_reach(A, since=start)
        none = await tx.numbers.oldest_reach(A, since=clock.now() + timedelta(hours=1))
    assert (on_a, on_b, later) == (2, 1, 2)
    assert oldest == start
    assert none is None
