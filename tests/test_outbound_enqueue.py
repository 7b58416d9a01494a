"""enqueue(): the policy's decision becomes a message row (or none) in the caller's transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

import pytest

from engine.clock import FrozenClock
from engine.models import Channel, ConsentSource, Contact, MessageStatus
from engine.models.content import TemplateContent, TextContent
from engine.models.template import Template, TemplateCategory
from engine.outbound.enqueue import (
    BulkRequest,
    Enqueued,
    OutboundRequest,
    TemplateProblem,
    enqueue,
    enqueue_many,
)
from engine.send_rules import Options, Verdict
from engine.store import Store, Tx
from engine.store.contacts import Consent, NewContact

SALE = Template(
    name="sale", language="en_US", category=TemplateCategory.MARKETING, body="Hi {{1}}, {{2}} off"
)
RECEIPT = Template(
    name="receipt", language="en_US", category=TemplateCategory.UTILITY, body="Order {{1}} paid"
)


@dataclass(frozen=True)
class Recipient:
    contact_id: int
    address: str
    opted_in: bool


@pytest.fixture
async def opted_out(store: Store, clock: FrozenClock) -> Contact:
    async def setup(tx: Tx) -> Contact:
        await tx.templates.put(SALE)
        await tx.templates.put(RECEIPT)
        contact = await tx.contacts.create(
            NewContact(wa_id="16505551234", marketing_opt_in=False), Consent(ConsentSource.API)
        )
        # They wrote just now: the 24-hour window is open for free text.
        await tx.conversations.record_inbound(contact.id, clock.now())
        return contact

    return await store.write(setup)


async def send(store: Store, clock: FrozenClock, request: OutboundRequest) -> Enqueued:
    return await store.write(lambda tx: enqueue(tx, request, now=clock.now()))


async def test_api_marketing_to_an_opted_out_contact_is_a_failed_row(
    store: Store, clock: FrozenClock, opted_out: Contact
) -> None:
    content = TemplateContent(name="sale", language="en_US", params=("Ann", "20%"))
    result = await send(store, clock, OutboundRequest(opted_out, Channel.API, content))
    assert result.message is not None
    async with store.read() as tx:
        stored = await tx.messages.get(result.message.id)
    assert stored is not None
    assert stored.status is MessageStatus.FAILED
    assert stored.failure is not None
    assert stored.failure.code == "marketing_opt_out"
    assert stored.text == "Hi Ann, 20% off"
    assert stored.template is not None
    assert stored.template.params == ("Ann", "20%")


async def test_broadcast_exclusion_is_a_skipped_row_and_bot_sends(
    store: Store, clock: FrozenClock, opted_out: Contact
) -> None:
    content = TemplateContent(name="sale", language="en_US", params=("Ann", "20%"))
    skipped = await send(store, clock, OutboundRequest(opted_out, Channel.BROADCAST, content))
    bot = await send(store, clock, OutboundRequest(opted_out, Channel.BOT, content))
    assert skipped.message is not None
    assert bot.message is not None
    assert skipped.message.status is MessageStatus.SKIPPED
    assert bot.message.status is MessageStatus.QUEUED


async def test_compose_without_confirmation_records_nothing(
    store: Store, clock: FrozenClock, opted_out: Contact
) -> None:
    content = TemplateContent(name="sale", language="en_US", params=("Ann", "20%"))
    asked = await send(store, clock, OutboundRequest(opted_out, Channel.COMPOSE, content))
    confirmed = await send(
        store,
        clock,
        OutboundRequest(opted_out, Channel.COMPOSE, content, Options(confirmed_opted_out=True)),
    )
    assert asked.decision.verdict is Verdict.NEEDS_CONFIRMATION
    assert asked.message is None
    assert confirmed.message is not None
    assert confirmed.message.status is MessageStatus.QUEUED
    async with store.read() as tx:
        from engine.store.messages import MessageFilter

        rows = await tx.messages.find(MessageFilter(contact_id=opted_out.id))
    assert [m.id for m in rows] == [confirmed.message.id]


async def test_utility_and_text_are_not_blocked(
    store: Store, clock: FrozenClock, opted_out: Contact
) -> None:
    receipt = TemplateContent(name="receipt", language="en_US", params=("A-17",))
    for channel in Channel:
        for content in (receipt, TextContent(body="hello")):
            result = await send(store, clock, OutboundRequest(opted_out, channel, content))
            assert result.message is not None
            assert result.message.status is MessageStatus.QUEUED, (channel, content.kind)


async def test_unknown_templates_and_wrong_params_are_refused_before_any_row(
    store: Store, clock: FrozenClock, opted_out: Contact
) -> None:
    with pytest.raises(TemplateProblem, match="not in the catalogue") as unknown:
        await send(
            store,
            clock,
            OutboundRequest(opted_out, Channel.API, TemplateContent(name="nope", language="en_US")),
        )
    with pytest.raises(TemplateProblem, match="takes 2 parameter") as params:
        await send(
            store,
            clock,
            OutboundRequest(
                opted_out,
                Channel.API,
                TemplateContent(name="sale", language="en_US", params=("x",)),
            ),
        )
    assert (unknown.value.field, params.value.field) == ("template", "template.params")
    async with store.read() as tx:
        from engine.store.messages import MessageFilter

        assert await tx.messages.find(MessageFilter()) == []


@pytest.mark.parametrize("opted_in_only", [True, False])
@pytest.mark.parametrize("template", [SALE, RECEIPT])
async def test_enqueue_many_records_what_enqueue_records_for_each_recipient(
    store: Store, clock: FrozenClock, opted_out: Contact, template: Template, opted_in_only: bool
) -> None:
    """One batch, then the same recipients one at a time: the same rows, the same bodies."""
    opted_in = await store.write(
        lambda tx: tx.contacts.create(
            NewContact(wa_id="16505550000", marketing_opt_in=True), Consent(ConsentSource.API)
        )
    )
    content = TemplateContent(
        name=template.name, language="en_US", params=("A",) * (template.param_count)
    )
    options = Options(opted_in_only=opted_in_only)
    recipients = [
        Recipient(contact.id, contact.address, contact.marketing_opt_in)
        for contact in (opted_in, opted_out)
    ]
    bulk = await store.write(
        lambda tx: enqueue_many(
            tx, BulkRequest(Channel.BROADCAST, content, recipients, options), now=clock.now()
        )
    )
    singles = [
        await send(store, clock, OutboundRequest(contact, Channel.BROADCAST, content, options))
        for contact in (opted_in, opted_out)
    ]
    async with store.read() as tx:
        for message_id, single in zip(bulk.message_ids, singles, strict=True):
            assert single.message is not None
            many, one = await tx.messages.get(message_id), await tx.messages.get(single.message.id)
            assert many is not None
            assert one is not None
            fields = ("channel", "contact", "kind", "text", "template", "payload", "status")
            assert [getattr(many, f) for f in fields] == [getattr(one, f) for f in fields]
            assert many.failure == one.failure
            assert [h.status for h in many.history] == [h.status for h in one.history]
            assert await tx.outbox.state(message_id) == await tx.outbox.state(one.id)
    excluded = template is SALE and opted_in_only
    assert bulk.verdicts[Verdict.EXCLUDE] == int(excluded)
    assert bulk.queued == 2 - int(excluded)
    assert bulk.notices["quality_rating_risk"] == int(template is SALE and not opted_in_only)


async def test_enqueue_many_posts_the_body_enqueue_would_post(
    store: Store, clock: FrozenClock, opted_out: Contact
) -> None:
    other = await store.write(
        lambda tx: tx.contacts.create(
            NewContact(wa_id="16505550000", marketing_opt_in=True), Consent(ConsentSource.API)
        )
    )
    content = TemplateContent(name="receipt", language="en_US", params=("A-1",))
    recipient = Recipient(opted_out.id, opted_out.address, opted_out.marketing_opt_in)
    bulk = await store.write(
        lambda tx: enqueue_many(
            tx, BulkRequest(Channel.BROADCAST, content, [recipient]), now=clock.now()
        )
    )
    single = await send(store, clock, OutboundRequest(other, Channel.BROADCAST, content))
    assert single.message is not None
    now = clock.now()
    claimed = await store.write(
        lambda tx: tx.outbox.claim("w", now=now, lease_until=now + timedelta(minutes=1), limit=9)
    )
    bodies = {c.message_id: json.loads(c.request_body or b"{}") for c in claimed}
    [ours] = bulk.message_ids
    expected = bodies[single.message.id]
    expected.update(to=opted_out.address, biz_opaque_callback_data=ours)
    assert bodies[ours] == expected
