"""The catalogue's Meta state, messages waiting for a template, messages deferred by
Meta's per-user marketing limit, and pricing, in the store (SQLite, and PostgreSQL with
``OPTINFLOW_TEST_BACKEND=postgres``)."""

from __future__ import annotations

from datetime import timedelta

from engine.clock import FrozenClock
from engine.models.contact import ConsentSource, Contact
from engine.models.content import TemplateContent
from engine.models.message import Channel, Failure, MessageStatus
from engine.models.template import Template, TemplateCategory
from engine.outbound.enqueue import OutboundRequest, enqueue
from engine.store import Store, Tx
from engine.store.contacts import Consent, NewContact
from engine.store.messages import BillingLine, MessageFilter, Pricing
from engine.store.outbox import Claimed, Deferred, Sent, Waiting
from engine.store.templates import UnknownTemplate

LEASE = timedelta(seconds=60)
PROMO = Template(
    name="promo",
    language="en_US",
    category=TemplateCategory.UTILITY,
    body="Hello {{1}}",
    id="546151681022936",
    status="APPROVED",
    quality_score="GREEN",
)


async def contact(store: Store, wa_id: str = "16505551234") -> Contact:
    return await store.write(
        lambda tx: tx.contacts.create(
            NewContact(wa_id=wa_id, marketing_opt_in=True), Consent(ConsentSource.API)
        )
    )


async def queue_promo(store: Store, clock: FrozenClock, to: Contact) -> str:
    async def job(tx: Tx) -> str:
        content = TemplateContent(name="promo", language="en_US", params=["Ann"])
        enqueued = await enqueue(tx, OutboundRequest(to, Channel.API, content), now=clock.now())
        assert enqueued.message is not None
        return enqueued.message.id

    return await store.write(job)


async def claim(store: Store, clock: FrozenClock, *, expired: bool = True) -> list[Claimed]:
    now = clock.now()
    return await store.write(
        lambda tx: tx.outbox.claim(
            "w1", now=now, lease_until=now + LEASE, limit=10, expired=expired
        )
    )


async def test_a_template_keeps_what_meta_says_of_it(store: Store) -> None:
    await store.write(lambda tx: tx.templates.put(PROMO))
    paused = PROMO.model_copy(update={"status": "PAUSED", "quality_score": "RED"})
    assert not await store.write(lambda tx: tx.templates.put(paused))
    async with store.read() as tx:
        assert await tx.templates.get("promo", "en_US") == paused
        assert await tx.templates.get_by_meta_id("546151681022936") == paused
        assert await tx.templates.get_by_meta_id("1") is None


async def test_an_unknown_template_is_kept_aside_until_the_catalogue_holds_it(
    store: Store, clock: FrozenClock
) -> None:
    heard = UnknownTemplate("promo", "en_US", meta_id="9", status="PAUSED", updated_at=clock.now())
    await store.write(lambda tx: tx.templates.remember_unknown(heard))
    rated = UnknownTemplate("promo", "en_US", quality_score="RED", updated_at=clock.now())
    await store.write(lambda tx: tx.templates.remember_unknown(rated))
    async with store.read() as tx:
        kept = await tx.templates.unknown("promo", "en_US")
    assert kept is not None
    assert (kept.meta_id, kept.status, kept.quality_score) == ("9", "PAUSED", "RED")
    await store.write(lambda tx: tx.templates.put(PROMO))
    async with store.read() as tx:
        assert await tx.templates.unknown("promo", "en_US") is None


async def test_a_claim_reads_the_template_as_it_is_now(store: Store, clock: FrozenClock) -> None:
    await store.write(lambda tx: tx.templates.put(PROMO))
    message_id = await queue_promo(store, clock, await contact(store))
    recategorised = PROMO.model_copy(update={"category": TemplateCategory.MARKETING})
    await store.write(lambda tx: tx.templates.put(recategorised))
    [claimed] = await claim(store, clock)
    assert claimed.message_id == message_id
    assert claimed.policy is not None
    assert claimed.policy.kind.value == "UTILITY"
    assert (claimed.template, claimed.template_category, claimed.template_status) == (
        "promo/en_US",
        "MARKETING",
        "APPROVED",
    )


async def test_a_message_waiting_for_its_template_goes_once_it_is_approved(
    store: Store, clock: FrozenClock
) -> None:
    await store.write(lambda tx: tx.templates.put(PROMO))
    ann, bo = await contact(store), await contact(store, "16505551235")
    waiting_id = await queue_promo(store, clock, ann)
    [_claimed] = await claim(store, clock)
    outcome = Waiting(waiting_id, "promo/en_US", "paused at Meta")
    await store.write(lambda tx: tx.outbox.record("w1", [outcome], now=clock.now()))
    async with store.read() as tx:
        state = await tx.outbox.state(waiting_id)
        message = await tx.messages.get(waiting_id)
        assert await tx.templates.waiting("promo", "en_US") == 1
    assert state is not None
    assert message is not None
    assert (message.status, state.waits_for_template, state.attempts) == (
        MessageStatus.QUEUED,
        "promo/en_US",
        0,
    )
    assert message.history[-1].details == {"waits_for_template": "promo/en_US"}
    clock.advance(hours=5)
    assert await claim(store, clock) == [], "not due while it waits"
    # It holds no one else back: the next message to the same contact may go.
    other = await queue_promo(store, clock, ann)
    assert [c.message_id for c in await claim(store, clock)] == [other]
    sent = Sent(other, "wamid.other", 1)
    await store.write(lambda tx: tx.outbox.record("w1", [sent], now=clock.now()))
    await queue_promo(store, clock, bo)

    paused = PROMO.model_copy(update={"status": "PAUSED"})
    await store.write(lambda tx: tx.templates.put(paused))
    assert waiting_id not in [c.message_id for c in await claim(store, clock)]
    await store.write(lambda tx: tx.templates.put(PROMO))  # approved again
    assert [c.message_id for c in await claim(store, clock)] == [waiting_id]


async def test_a_deferred_message_is_claimed_again_when_its_time_comes(
    store: Store, clock: FrozenClock
) -> None:
    await store.write(lambda tx: tx.templates.put(PROMO))
    message_id = await queue_promo(store, clock, await contact(store))
    await claim(store, clock)
    sent = Sent(message_id, "wamid.first", 1)
    await store.write(lambda tx: tx.outbox.record("w1", [sent], now=clock.now()))
    limited = Failure(code="131049", reason="healthy ecosystem engagement")
    later = clock.now() + timedelta(hours=24)
    assert await store.write(
        lambda tx: tx.outbox.defer(message_id, failure=limited, due_at=later, at=clock.now())
    )
    async with store.read() as tx:
        message = await tx.messages.get(message_id)
        state = await tx.outbox.state(message_id)
        assert await tx.messages.get_by_wamid("wamid.first") is None
    assert message is not None
    assert state is not None
    assert (message.status, message.wamid, state.deferrals) == (MessageStatus.DEFERRED, None, 1)
    assert message.history[-1].details == {
        "retry_at": later.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "previous_wamid": "wamid.first",
    }
    assert await claim(store, clock) == []
    # A late answer to the try Meta held back does not bring its wamid back.
    await store.write(lambda tx: tx.outbox.record("w1", [sent], now=clock.now()))
    async with store.read() as tx:
        late = await tx.messages.get(message_id)
    assert late is not None
    assert (late.status, late.wamid) == (MessageStatus.DEFERRED, None)
    clock.advance(hours=24)
    assert await claim(store, clock, expired=False) == [], "looked for with expired leases"
    [again] = await claim(store, clock)
    assert (again.message_id, again.deferrals, again.attempts) == (message_id, 1, 2)
    # The sender's own deferral applies while its lease holds.
    second = Deferred(message_id, clock.now() + timedelta(hours=24), limited)
    await store.write(lambda tx: tx.outbox.record("w1", [second], now=clock.now()))
    async with store.read() as tx:
        state = await tx.outbox.state(message_id)
    assert state is not None
    assert state.deferrals == 2


async def test_pricing_is_kept_per_message_and_summed_by_category(
    store: Store, clock: FrozenClock
) -> None:
    await store.write(lambda tx: tx.templates.put(PROMO))
    ann = await contact(store)
    ids = [await queue_promo(store, clock, ann) for _ in range(3)]
    prices = [
        Pricing(True, "PMP", "regular", "utility"),
        Pricing(True, "PMP", "regular", "marketing"),
        Pricing(False, "PMP", "free_customer_service", "service"),
    ]
    for message_id, pricing in zip(ids, prices, strict=True):

        async def keep(tx: Tx, m: str = message_id, p: Pricing = pricing) -> None:
            await tx.messages.set_pricing(m, p)

        await store.write(keep)
    async with store.read() as tx:
        assert await tx.messages.pricing(ids[0]) == prices[0]
        billing = await tx.messages.billing(MessageFilter(channel=Channel.API))
        assert await tx.messages.billing(MessageFilter(channel=Channel.BROADCAST)) == []
    assert billing == [
        BillingLine("marketing", 1, 1),
        BillingLine("service", 1, 0),
        BillingLine("utility", 1, 1),
    ]
