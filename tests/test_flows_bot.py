"""The bot handler against a real SQLite store: conversations across messages and
restarts, consent from the bot, a MARKETING template to an opted-out contact queued,
handoffs, ask timeouts fired from the wakeup table (once, with two workers), and http
steps against a real server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from engine.clock import FrozenClock
from engine.flows.bot import BotHandler
from engine.flows.events import HttpRequested
from engine.flows.integrations import AiohttpCaller, HttpCaller
from engine.flows.library import FlowLibrary
from engine.flows.resumptions import HttpResult
from engine.ids import new_id
from engine.inbound.handoff import Incoming
from engine.models.contact import ConsentSource, Contact
from engine.models.conversation import Owner
from engine.models.customer_input import CustomerInput
from engine.models.message import Channel, Direction, Message, MessageStatus
from engine.store import Store, Tx, open_store
from engine.store.contacts import Consent, NewContact
from engine.store.messages import MessageFilter
from tests.conftest import ROOT
from tests.databases import database_url
from tests.flowkit import CATALOGUE, tap, text, write_flows

Serve = Callable[..., Awaitable[TestServer]]


class Bot:
    """A store and a bot handler on one database, which can be restarted."""

    def __init__(
        self, path: Path, clock: FrozenClock, flows: Path, env: dict[str, str], http: HttpCaller
    ) -> None:
        self.path, self.clock, self.flows, self.env, self.http = path, clock, flows, env, http
        self.store: Store
        self.handler: BotHandler

    async def open(self) -> Bot:
        self.store = await open_store(database_url(self.path), clock=self.clock)

        async def catalogue(tx: Tx) -> None:
            for template in CATALOGUE:
                await tx.templates.put(template)

        await self.store.write(catalogue)
        library = FlowLibrary(self.flows, env=self.env)
        await library.load(self.store)
        self.handler = BotHandler(self.store, library, self.clock, self.http)
        return self

    async def restart(self) -> None:
        await self.store.close()
        await self.open()

    async def say(
        self, given: CustomerInput, wa_id: str = "16505551234", *, opted_in: bool = True
    ) -> Contact:
        async def arrive(tx: Tx) -> Incoming:
            contact, created = await tx.contacts.get_or_create(
                NewContact(marketing_opt_in=opted_in, wa_id=wa_id, name="Ann"),
                Consent(ConsentSource.INBOUND),
            )
            conversation = await tx.conversations.record_inbound(contact.id, self.clock.now())
            message = Message(
                id=new_id(),
                direction=Direction.INBOUND,
                contact_id=contact.id,
                contact=contact.address,
                kind=given.kind.value,
                text=given.text,
                status=MessageStatus.RECEIVED,
                wamid=f"wamid.{new_id()}",
                created_at=self.clock.now(),
                updated_at=self.clock.now(),
            )
            await tx.messages.insert(message)
            return Incoming(message, contact, conversation, given, created)

        incoming = await self.store.write(arrive)
        await self.handler.handle(incoming)
        return incoming.contact

    async def sent(self, contact: Contact) -> list[dict[str, Any]]:
        async with self.store.read() as tx:
            messages = await tx.messages.find(
                MessageFilter(contact_id=contact.id, channel=Channel.BOT)
            )
        return [{**(m.payload or {}), "status": m.status.value} for m in messages]

    async def texts(self, contact: Contact) -> list[str]:
        return [m.get("body") or m["name"] for m in await self.sent(contact)]


class NoNetwork:
    async def __call__(self, request: HttpRequested) -> HttpResult:
        raise AssertionError(f"unexpected http call {request}")


@pytest.fixture
async def bot(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Bot]:
    opened = await Bot(tmp_path / "bot.db", clock, ROOT / "flows", {}, NoNetwork()).open()
    yield opened
    await opened.store.close()


async def test_a_conversation_runs_across_messages_and_restarts(bot: Bot) -> None:
    ann = await bot.say(text("Hi!"), opted_in=False)
    [menu] = await bot.sent(ann)
    assert menu["kind"] == "buttons"
    assert menu["body"] == "Hi Ann! How can we help you today?"

    await bot.restart()  # the server stops and starts mid-flow
    await bot.say(tap("offers", "See offers"))
    _, offer, question = await bot.sent(ann)
    # the bot sends the MARKETING template to the opted-out contact: queued, not blocked
    assert offer["kind"] == "template"
    assert offer["name"] == "new_arrivals"
    assert offer["params"] == ["Ann"]
    assert offer["status"] == "queued"
    assert question["body"] == "Would you like to receive offers and news from us on WhatsApp?"

    await bot.restart()
    await bot.say(tap("yes", "Yes, please"))
    assert (await bot.texts(ann))[-1].startswith("Great, you are subscribed")
    async with bot.store.read() as tx:
        contact = await tx.contacts.get_by_id(ann.id)
        history = await tx.contacts.consent_history(ann.id)
        session = await tx.flow_sessions.get(ann.id)
    assert contact is not None
    assert contact.marketing_opt_in is True
    assert "consent_asked" in contact.tags
    assert [(e.marketing_opt_in, e.source, e.actor) for e in history] == [
        (False, ConsentSource.INBOUND, None),
        (True, ConsentSource.BOT, "consent"),
    ]
    assert session is None  # the flow ended


async def test_no_to_offers_records_an_opt_out_from_the_bot(bot: Bot) -> None:
    ann = await bot.say(text("offers"), opted_in=True)
    await bot.say(tap("no", "No, thanks"))
    async with bot.store.read() as tx:
        history = await tx.contacts.consent_history(ann.id)
    assert (history[-1].marketing_opt_in, history[-1].source, history[-1].actor) == (
        False,
        ConsentSource.BOT,
        "consent",
    )
    assert (await bot.texts(ann))[-1].startswith("No problem, we will not send you offers")


async def test_handoff_gives_the_conversation_to_the_agents_queue(bot: Bot) -> None:
    ann = await bot.say(text("talk to a person"))
    async with bot.store.read() as tx:
        conversation = await tx.conversations.get(ann.id)
        handoff = await tx.flow_sessions.last_handoff(ann.id)
    assert (conversation.owner, conversation.agent) == (Owner.AGENT, None)
    assert handoff is not None
    assert (handoff.flow_id, handoff.queue, handoff.note) == (
        "handoff",
        "support",
        "Ann asked the bot for a person.",
    )
    before = await bot.sent(ann)
    await bot.say(text("hello?"))
    assert await bot.sent(ann) == before  # the bot stays silent


async def test_an_unanswered_ask_times_out_through_the_wakeup_table(
    bot: Bot, clock: FrozenClock
) -> None:
    ann = await bot.say(text("hi"))
    assert await bot.handler.fire_due() == 0
    clock.advance(minutes=59)
    assert await bot.handler.fire_due() == 0
    await bot.restart()  # the wakeup is a row: it survives
    clock.advance(minutes=2)
    assert await bot.handler.fire_due() == 1
    assert (await bot.texts(ann))[-1] == "We are here whenever you need us. Just say hi!"
    assert await bot.handler.fire_due() == 0
    async with bot.store.read() as tx:
        assert await tx.flow_sessions.get(ann.id) is None


async def test_a_flow_woken_after_the_window_closed_queues_no_free_text(
    bot: Bot, clock: FrozenClock
) -> None:
    """A wake-up more than 24 hours after the customer wrote gets the API's treatment:
    the send rules refuse free text Meta would not deliver, nothing is queued, and the
    flow moves on all the same."""
    ann = await bot.say(text("hi"))
    before = await bot.sent(ann)
    clock.advance(hours=24, seconds=1)
    assert await bot.handler.fire_due() == 1
    assert await bot.sent(ann) == before
    async with bot.store.read() as tx:
        assert await tx.flow_sessions.get(ann.id) is None


async def test_an_answer_cancels_the_timeout_and_a_bad_one_gets_the_retry_prompt(
    bot: Bot, clock: FrozenClock
) -> None:
    ann = await bot.say(text("hi"))
    await bot.say(text("pizza"))
    assert (await bot.texts(ann))[-1] == "Please tap one of the buttons, or type its number."
    await bot.say(text("3"))  # the third button, typed
    clock.advance(hours=2)
    assert await bot.handler.fire_due() == 0
    assert (await bot.texts(ann))[-1].startswith("Connecting you with a member of our team")


async def test_two_workers_never_fire_one_wakeup_twice(bot: Bot, clock: FrozenClock) -> None:
    contacts = [await bot.say(text("hi"), wa_id=f"1650555{n:04d}") for n in range(12)]
    other = await Bot(bot.path, clock, bot.flows, {}, NoNetwork()).open()
    try:
        clock.advance(hours=2)
        fired = await asyncio.gather(bot.handler.fire_due(), other.handler.fire_due())
    finally:
        await other.store.close()
    assert sum(fired) == 12
    for contact in contacts:
        assert (await bot.texts(contact)).count(
            "We are here whenever you need us. Just say hi!"
        ) == 1


@pytest.fixture
async def shop(aiohttp_server: Serve) -> TestServer:
    """An order system on loopback: 12345 answers JSON, 666 answers HTML, 999 hangs."""
    hang = asyncio.Event()

    async def order(request: web.Request) -> web.StreamResponse:
        number = request.match_info["number"]
        if number == "666":
            return web.Response(text="<html>oops</html>", content_type="text/html")
        if number == "999":
            await hang.wait()
        if number == "404":
            return web.json_response({"error": "unknown"}, status=404)
        return web.json_response({"number": number, "status": "shipped"})

    app = web.Application()
    app.router.add_get("/orders/{number}", order)
    return await aiohttp_server(app)


@pytest.fixture
async def shop_bot(tmp_path: Path, clock: FrozenClock, shop: TestServer) -> AsyncIterator[Bot]:
    folder = write_flows(tmp_path / "flows")
    for shipped in (ROOT / "flows").iterdir():
        (folder / shipped.name).write_text(shipped.read_text())
    write_flows(
        folder,
        quick="""
        id: quick
        name: Quick lookup
        triggers: {first_word: [quick]}
        steps:
          call:
            kind: http
            url: "{{ env.FLOW_ORDERS_URL }}/999"
            timeout: 300ms
            save_as: order
            on_error: failed
          found: {kind: send, text: found, next: done}
          failed: {kind: send, text: "failed: {{ vars.http_error }}"}
          done: {kind: end}
        """,
    )
    async with aiohttp.ClientSession() as client:
        env = {"FLOW_ORDERS_URL": str(shop.make_url("/orders"))}
        opened = await Bot(tmp_path / "bot.db", clock, folder, env, AiohttpCaller(client)).open()
        yield opened
        await opened.store.close()


async def test_order_status_looks_the_order_up_over_http(shop_bot: Bot) -> None:
    ann = await shop_bot.say(text("Order #12345 please"))
    [status] = await shop_bot.sent(ann)
    assert (status["name"], status["params"]) == ("order_update", ["12345", "shipped"])


async def test_an_answer_that_is_not_json_takes_the_error_branch(shop_bot: Bot) -> None:
    ann = await shop_bot.say(text("order"))
    await shop_bot.say(text("666"))
    texts = await shop_bot.texts(ann)
    assert texts[1:] == [
        "Sorry, I cannot look up order 666 right now.",
        "Connecting you with a member of our team. They will answer here shortly.",
    ]


async def test_an_http_timeout_takes_the_error_branch(shop_bot: Bot) -> None:
    ann = await shop_bot.say(text("quick"))
    assert await shop_bot.texts(ann) == ["failed: no answer within 0.3s"]


async def test_a_restart_during_an_http_call_moves_the_flow_on(
    shop_bot: Bot, clock: FrozenClock
) -> None:
    class Hang:
        async def __call__(self, request: HttpRequested) -> HttpResult:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    shop_bot.handler.http = Hang()
    talking = asyncio.create_task(shop_bot.say(text("order 12345")))
    while True:  # until the session waits for the http answer (bounded by the test timeout)
        async with shop_bot.store.read() as tx:
            stored = await tx.flow_sessions.get(1)
        if stored is not None and stored.waiting_for == "http":
            break
        await asyncio.sleep(0.01)
    talking.cancel()  # the server stops mid-call
    await shop_bot.restart()
    clock.advance(seconds=5 + 31)
    assert await shop_bot.handler.fire_due() == 1
    contact = await shop_bot.store.write(lambda tx: tx.contacts.get_by_id(1))
    assert contact is not None
    assert (await shop_bot.texts(contact))[0] == "Sorry, I cannot look up order 12345 right now."
