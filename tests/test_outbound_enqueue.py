"""enqueue(): the policy's decision becomes a message row (or none) in the caller's transaction."""

from __future__ import annotations

import pytest

from engine.clock import FrozenClock
from engine.models import Channel, ConsentSource, Contact, MessageStatus
from engine.models.content import TemplateContent, TextContent
from engine.models.template import Template, TemplateCategory
from engine.outbound.enqueue import Enqueued, OutboundRequest, TemplateProblem, enqueue
from engine.policy import Options, Verdict
from engine.store import Store, Tx
from engine.store.contacts import Consent, NewContact

SALE = Template(
    name="sale", language="en_US", category=TemplateCategory.MARKETING, body="Hi {{1}}, {{2}} off"
)
RECEIPT = Template(
    name="receipt", language="en_US", category=TemplateCategory.UTILITY, body="Order {{1}} paid"
)


@pytest.fixture
async def opted_out(store: Store) -> Contact:
    async def setup(tx: Tx) -> Contact:
        await tx.templates.put(SALE)
        await tx.templates.put(RECEIPT)
        return await tx.contacts.create(
            NewContact(wa_id="16505551234", marketing_opt_in=False), Consent(ConsentSource.API)
        )

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
