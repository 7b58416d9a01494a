"""A randomized, seeded consent simulation: the proof that the send rules hold on what
reaches the Cloud API.

Contacts in many time zones change their marketing opt-in in every way the product knows
(stop and start words in many languages, quick-reply buttons, Meta's
``user_preferences``, a 131050 failure, the API, an agent, a CSV import), while
broadcasts (toggle on and off), API sends, compose (with and without the agent's
confirmation) and bot messages go out, under marketing quiet hours and a frequency cap,
with the store and the sender closed and opened again now and then. The engine runs for
real: webhooks through :func:`engine.inbound.ingest.ingest`, sends through the use cases
and :mod:`engine.outbound.enqueue`, and a real :class:`~engine.outbound.sender.Sender`
posting over HTTP to a recording Cloud API on loopback.

An *oracle* follows what each event means for the contact's opt-in, independently of the
engine. Each request the Cloud API receives is checked against it at that moment:

- no MARKETING template reaches a contact opted out then, except from a bot, a compose
  message the agent confirmed, or a broadcast whose opt-in toggle is off (the rules say
  those go);
- none from a broadcast or the API arrives inside the contact's quiet hours (their
  local time), nor over the frequency cap (MARKETING templates that reached them in the
  period, on every channel);

and at the end, replaying the ledger gives every contact's current opt-in (the oracle's
and the store's).

Event kinds are rows of :data:`EVENT_KINDS`: a new way of changing consent (for example
an intent confirmation, a reply button with id ``CONSENT_INTENT_STOP``) is one more row,
with the opt-in it leads to.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

from engine.agents.desk import compose_as
from engine.agents.passwords import hash_password
from engine.agents.refusals import ConfirmationRequired
from engine.campaigns.broadcast_control import BroadcastRequest, create_broadcast
from engine.campaigns.refusals import CampaignRefusal
from engine.campaigns.sequence_control import create_sequence, enrol_contact
from engine.campaigns.worker import CampaignConfig, CampaignWorker
from engine.catalogue import load_templates
from engine.clock import FrozenClock
from engine.config.consent_words import DEFAULT_START_WORDS, DEFAULT_STOP_WORDS
from engine.contacts.directory import import_contacts
from engine.contacts.ledger import ledger_entries
from engine.devtools.cluster import free_port
from engine.inbound.consent_rules import ConsentRules
from engine.inbound.ingest import IngestSettings, ingest
from engine.models.agent import AgentRole
from engine.models.campaign import SequenceDefinition, SequenceStep
from engine.models.contact import ConsentSource
from engine.models.content import TemplateContent
from engine.models.marketing_limits import MarketingLimits
from engine.models.message import Channel, MessageStatus, TemplateRef
from engine.outbound.api import ApiMessage, send_api_message
from engine.outbound.enqueue import OutboundRequest, enqueue
from engine.outbound.marketing import publish_limits
from engine.outbound.sender import Sender, SenderConfig
from engine.store import Store, Tx, open_store
from engine.store.agents import NewAgent
from engine.store.contacts import Consent, ImportedContact, NewContact
from engine.store.messages import MessageFilter
from engine.store.outbox import Claimed
from engine.whatsapp.client import CloudApiClient
from engine.whatsapp.webhook import parse_notification

PHONE_NUMBER_ID = "106540352242922"
AGENT = "simulation-agent@example.com"
MARKETING = ("new_arrivals", "en_US", ("friend",))
UTILITY = ("order_update", "en_US", ("A-1", "ready"))
ZONES = ("America/Los_Angeles", "America/New_York", "Europe/London", "Asia/Kolkata", "Asia/Tokyo")
INTENT_STOP = "CONSENT_INTENT_STOP"
PERIOD = timedelta(hours=24)


@dataclass
class Posted:
    """One request the recording Cloud API received, with the oracle's view then."""

    to: str
    message_id: str
    wamid: str
    template: str | None
    at: datetime
    opted_in: bool


@dataclass
class Report:
    events: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    posted: int = 0
    marketing_posted: int = 0
    restarts: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    """What the rules did with the sends: held, capped, refused, withheld at send time."""
    violations: list[str] = field(default_factory=list)

    def count(self, outcome: str, by: int = 1) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + by

    seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class Oracle(dict[str, bool]):
    """Each contact's expected opt-in, with every change numbered, so that a send can be
    judged by the opt-in over the stretch of time its claim ran."""

    def __init__(self) -> None:
        super().__init__()
        self.version = 0
        self._changes: dict[str, list[tuple[int, bool]]] = {}

    def __setitem__(self, wa_id: str, value: bool) -> None:
        self.version += 1
        self._changes.setdefault(wa_id, []).append((self.version, value))
        super().__setitem__(wa_id, value)

    def update(self, values: Any = (), /, **more: bool) -> None:
        for wa_id, value in dict(values, **more).items():
            self[wa_id] = value

    def opted_in_since(self, wa_id: str, version: int) -> bool:
        """Whether ``wa_id`` was opted in at change ``version`` or at any change since."""
        changes = self._changes.get(wa_id, [])
        before = [value for at, value in changes if at <= version]
        return (bool(before) and before[-1]) or any(value for at, value in changes if at > version)


class RecordingCloudApi:
    """Stands where Meta's Cloud API is: records every send and answers like Meta."""

    def __init__(self, clock: FrozenClock, opted_in: Callable[[str], bool]) -> None:
        self.posted: list[Posted] = []
        self._clock = clock
        self._opted_in = opted_in
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{version}/{number}/messages", self._send)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        wamid = f"wamid.sim-{len(self.posted)}"
        template = body.get("template", {}).get("name") if body.get("type") == "template" else None
        self.posted.append(
            Posted(
                to=body["to"],
                message_id=body.get("biz_opaque_callback_data", ""),
                wamid=wamid,
                template=template,
                at=self._clock.now(),
                opted_in=self._opted_in(body["to"]),
            )
        )
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": wamid}],
            }
        )


def _webhook(value: dict[str, Any]) -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
        **value,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def _inbound(wa_id: str, message_id: str, at: datetime, message: dict[str, Any]) -> dict[str, Any]:
    return _webhook(
        {
            "contacts": [{"profile": {"name": "Customer"}, "wa_id": wa_id}],
            "messages": [
                {"from": wa_id, "id": message_id, "timestamp": str(int(at.timestamp())), **message}
            ],
        }
    )


def _random_case(rng: random.Random, word: str) -> str:
    return rng.choice([word, word.lower(), word.title()])


@dataclass
class Simulation:
    """One seeded run (see the module docstring)."""

    database_url: str
    seed: int = 1
    contacts: int = 200
    events: int = 3000
    step: int = 25
    """Events between two drains of the outbox (and moves of the clock)."""
    restart_every: int = 1000
    limits: MarketingLimits = field(
        default_factory=lambda: MarketingLimits.parse("21:00-09:00", "2/24h")
    )
    templates_file: Path = Path("fixtures/templates.yaml")
    intent: bool = True
    """Include intent confirmations (a reply button with id ``CONSENT_INTENT_STOP``)."""
    check_limits: MarketingLimits | None = None
    """The limits the check holds the sends to; None: :attr:`limits`, the engine's."""

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.clock = FrozenClock(datetime(2026, 3, 2, 6, 0, tzinfo=UTC))
        self.oracle = Oracle()
        self.opted_in_at_handover: dict[str, bool] = {}
        """The expected opt-in of each message's contact when the sender claimed it."""
        self.zones: dict[str, ZoneInfo] = {}
        self.channel_of: dict[str, tuple[Channel, bool]] = {}
        """message id → its channel and whether the rules let it go to an opted-out
        contact (a bot, a confirmed compose, a broadcast with the toggle off)."""
        self.failed_wamids: set[str] = set()
        self.sequence_id = ""
        self.broadcasts: dict[str, bool] = {}
        """broadcast id → whether its toggle is off (MARKETING to opted-out contacts goes)."""
        self.report = Report()
        self.api = RecordingCloudApi(self.clock, lambda to: self.oracle[to])
        self._counter = 0
        self._store: Store | None = None
        self._sender: Sender | None = None
        self._campaigns: CampaignWorker | None = None
        self._http: aiohttp.ClientSession | None = None
        rules = ConsentRules.build(
            stop_words=DEFAULT_STOP_WORDS,
            start_words=DEFAULT_START_WORDS,
            stop_payloads=("STOP_PROMOTIONS", "STOP"),
            start_payloads=("RESUME_PROMOTIONS", "START"),
            stop_reply="You will not get promotions any more. Reply START to get them again.",
            start_reply="You will get our promotions again.",
        )
        self.ingest_settings = IngestSettings(rules=rules, default_opt_in=True)

    # -- lifetime -------------------------------------------------------------------

    @property
    def store(self) -> Store:
        assert self._store is not None
        return self._store

    async def _open(self) -> None:
        self._store = await open_store(self.database_url, clock=self.clock)
        assert self._http is not None
        client = CloudApiClient(
            self._http, graph_base=self.api.url, api_version="v21.0", access_token="sim"
        )
        config = SenderConfig(
            default_phone_number_id=PHONE_NUMBER_ID,
            rate_limit=None,
            pair_interval=timedelta(0),
            pair_burst=1_000_000,
            poll_seconds=0.01,
            concurrency=32,
        )
        self._sender = Sender(self.store, client, self.clock, config, on_claim=self._claiming)
        self._sender.start()
        self._campaigns = CampaignWorker(self.store, self.clock, CampaignConfig())

    async def _close(self) -> None:
        if self._sender is not None:
            await self._sender.stop()
            self.report.count("withheld_or_held_at_send_time", self._sender.stats.withheld)
        if self._store is not None:
            await self._store.close()
        self._sender = self._store = None

    async def run(self) -> Report:
        started = time.perf_counter()
        await self.api.start()
        self._http = aiohttp.ClientSession()
        try:
            await self._open()
            await self._setup()
            kinds = [kind for kind in EVENT_KINDS if self.intent or not kind.needs_intent]
            weights = [kind.weight for kind in kinds]
            for done in range(1, self.events + 1):
                kind = self.rng.choices(kinds, weights)[0]
                await kind.apply(self)
                self.report.events += 1
                self.report.kinds[kind.name] = self.report.kinds.get(kind.name, 0) + 1
                if done % self.step == 0:
                    await self._drain()
                    self._advance()
                if done % self.restart_every == 0:
                    await self._close()
                    await self._open()
                    self.report.restarts += 1
            await self._drain()
            await self._check()
        finally:
            await self._close()
            await self._http.close()
            await self.api.close()
        self.report.seconds = time.perf_counter() - started
        return self.report

    async def _setup(self) -> None:
        catalogue = load_templates(self.templates_file)
        limits = self.limits

        async def job(tx: Tx) -> None:
            for template in catalogue:
                await tx.templates.put(template)
            await publish_limits(tx, limits)
            if await tx.agents.get(AGENT) is None:
                await tx.agents.create(
                    NewAgent("Agent", AGENT, AgentRole.AGENT, hash_password("simulation"))
                )
            for index in range(self.contacts):
                wa_id = f"1650555{index:04d}"
                zone = ZONES[index % len(ZONES)]
                self.oracle[wa_id] = True
                self.zones[wa_id] = ZoneInfo(zone)
                await tx.contacts.create(
                    NewContact(True, wa_id=wa_id, attributes={"timezone": zone}, tags=["all"]),
                    Consent(ConsentSource.IMPORT, actor="simulation"),
                )

        await self.store.write(job)
        steps = [(0, MARKETING), (3600, UTILITY), (3 * 3600, MARKETING)]
        sequence = await create_sequence(
            self.store,
            name=f"drip-{self.seed}-{self.clock.now().timestamp()}",
            definition=SequenceDefinition(
                steps=tuple(
                    SequenceStep(
                        delay_seconds=delay,
                        template=TemplateRef(name=name, language=language, params=params),
                    )
                    for delay, (name, language, params) in steps
                )
            ),
            now=self.clock.now(),
        )
        self.sequence_id = sequence.id

    def _advance(self) -> None:
        # Mostly minutes, now and then hours: through quiet hours and cap periods.
        minutes = self.rng.choice([1, 5, 20, 45, 90, 180])
        self.clock.advance(minutes=minutes)
        if self._sender is not None:
            self._sender.wake()

    async def _drain(self) -> None:
        """Plan due broadcasts and send everything that can go now, then stop: nothing is
        being sent and the sender has looked twice without claiming anything (a message
        may wait behind a paused broadcast's, which is not due)."""
        assert self._campaigns is not None
        assert self._sender is not None
        sender = self._sender
        deadline = time.monotonic() + 60
        quiet = 0
        while quiet < 3:
            while await self._campaigns.run_once():
                pass
            claimed, looked = sender.stats.claimed, sender.stats.looked
            sender.wake()
            await asyncio.sleep(0.005)
            async with self.store.read() as tx:
                counts = await tx.outbox.report_counts(MessageFilter(status=MessageStatus.SENDING))
            idle = sender.stats.claimed == claimed and sender.stats.looked > looked
            quiet = quiet + 1 if idle and not counts.get(MessageStatus.SENDING.value) else 0
            if time.monotonic() > deadline:
                raise TimeoutError("the outbox did not drain within a minute")

    # -- helpers for the event kinds ----------------------------------------------------

    def contact(self) -> str:
        return self.rng.choice(list(self.oracle))

    def next_id(self, prefix: str) -> str:
        self._counter += 1
        return f"wamid.{prefix}-{self.seed}-{self._counter}"

    async def webhook(self, data: dict[str, Any]) -> None:
        notification = parse_notification(data)
        settings, now = self.ingest_settings, self.clock.now()
        await self.store.write(lambda tx: ingest(tx, notification, settings=settings, now=now))

    def template(self, marketing: bool) -> TemplateContent:
        name, language, params = MARKETING if marketing else UTILITY
        return TemplateContent(name=name, language=language, params=params)

    def _claiming(self) -> Callable[[list[Claimed]], None]:
        # The invariant is about the moment of handing over (the claim, which asks the
        # rules again), not the moment the request arrives: a change of opt-in committed
        # after the claim is a race no sender can close. The claim reads the opt-in at
        # some moment while it runs (on PostgreSQL, its snapshot), so a send counts as to
        # an opted-in contact when they were opted in at any moment of that stretch.
        start = self.oracle.version

        def handed_over(batch: list[Claimed]) -> None:
            for claimed in batch:
                if claimed.recipient in self.oracle:
                    self.opted_in_at_handover[claimed.message_id] = self.oracle.opted_in_since(
                        claimed.recipient, start
                    )

        return handed_over

    def remember(self, message_id: str | None, channel: Channel, may_go: bool) -> None:
        if message_id is not None:
            self.channel_of[message_id] = (channel, may_go)

    # -- the check ----------------------------------------------------------------------

    async def _check(self) -> None:
        report = self.report
        report.posted = len(self.api.posted)
        async with self.store.read() as tx:
            for broadcast_id, toggle_off in self.broadcasts.items():
                for row in await tx.broadcasts.report(broadcast_id, limit=10_000):
                    self.remember(row.message_id, Channel.BROADCAST, toggle_off)
            for post in self.api.posted:  # sequence steps, planned by the campaign worker
                if post.template == MARKETING[0] and post.message_id not in self.channel_of:
                    message = await tx.messages.get(post.message_id)
                    if message is not None and message.channel is not None:
                        self.remember(message.id, message.channel, False)
        checked = self.check_limits or self.limits
        hours, cap = checked.quiet_hours, checked.frequency_cap
        recent: dict[str, list[datetime]] = {}
        for post in self.api.posted:
            if post.template != MARKETING[0]:
                continue
            report.marketing_posted += 1
            channel, may_go = self.channel_of.get(post.message_id, (None, False))
            where = f"{post.message_id} ({channel}) to {post.to} at {post.at:%Y-%m-%d %H:%M}"
            opted_in = self.opted_in_at_handover.get(post.message_id, post.opted_in)
            if not opted_in and not may_go:
                report.violations.append(f"opted out: {where}")
            limited = channel in (Channel.BROADCAST, Channel.SEQUENCE, Channel.API)
            inside = hours is not None and hours.end_if_inside(post.at, self.zones[post.to])
            if limited and inside:
                report.violations.append(f"quiet hours: {where}")
            earlier = [
                at
                for at in recent.get(post.to, [])
                if cap is not None and at >= post.at - cap.period
            ]
            if limited and cap is not None and len(earlier) >= cap.limit:
                report.violations.append(f"over the cap ({len(earlier)} before): {where}")
            if post.wamid not in self.failed_wamids:
                recent.setdefault(post.to, []).append(post.at)
        # Replaying the ledger gives every contact's opt-in: the store's and the oracle's.
        replayed: dict[str, bool] = {}
        async for entry in ledger_entries(self.store):
            if entry.wa_id is not None:
                replayed[entry.wa_id] = entry.event.marketing_opt_in
        async with self.store.read() as tx:
            for wa_id, expected in self.oracle.items():
                stored = await tx.contacts.get(wa_id)
                actual = None if stored is None else stored.marketing_opt_in
                if not (replayed.get(wa_id) == actual == expected):
                    report.violations.append(
                        f"ledger: {wa_id} replays to {replayed.get(wa_id)}, is {actual}, "
                        f"should be {expected}"
                    )


# -- the event kinds ---------------------------------------------------------------------


async def _word(sim: Simulation, stop: bool) -> None:
    wa_id = sim.contact()
    words = DEFAULT_STOP_WORDS if stop else DEFAULT_START_WORDS
    text = _random_case(sim.rng, sim.rng.choice(words))
    now = sim.clock.now()
    await sim.webhook(
        _inbound(wa_id, sim.next_id("word"), now, {"type": "text", "text": {"body": text}})
    )
    sim.oracle[wa_id] = not stop


async def _button(sim: Simulation, stop: bool) -> None:
    wa_id = sim.contact()
    payload = "STOP_PROMOTIONS" if stop else "RESUME_PROMOTIONS"
    button = {"type": "button", "button": {"payload": payload, "text": payload.title()}}
    await sim.webhook(_inbound(wa_id, sim.next_id("button"), sim.clock.now(), button))
    sim.oracle[wa_id] = not stop


async def _preference(sim: Simulation, stop: bool) -> None:
    wa_id = sim.contact()
    value = "stop" if stop else "resume"
    preference = {
        "wa_id": wa_id,
        "detail": f"User requested to {value} marketing messages",
        "category": "marketing_messages",
        "value": value,
        "timestamp": int(sim.clock.now().timestamp()),
    }
    await sim.webhook(
        _webhook(
            {
                "contacts": [{"profile": {"name": "Customer"}, "wa_id": wa_id}],
                "user_preferences": [preference],
            }
        )
    )
    sim.oracle[wa_id] = not stop


async def _marketing_stopped(sim: Simulation) -> None:
    """A 131050 for a MARKETING template that reached a contact still opted in."""
    candidates = [
        post
        for post in sim.api.posted[-200:]
        if post.template == MARKETING[0] and post.wamid not in sim.failed_wamids
    ]
    if not candidates:
        return
    post = sim.rng.choice(candidates)
    title = (
        "Unable to deliver the message. This recipient has chosen to stop receiving "
        "marketing messages on WhatsApp from your business"
    )
    status = {
        "id": post.wamid,
        "status": "failed",
        "timestamp": str(int(sim.clock.now().timestamp())),
        "recipient_id": post.to,
        "errors": [{"code": 131050, "title": title, "message": title}],
    }
    await sim.webhook(_webhook({"statuses": [status]}))
    sim.failed_wamids.add(post.wamid)
    sim.oracle[post.to] = False


def _set_opt_in(source: ConsentSource) -> Callable[[Simulation], Awaitable[None]]:
    async def apply(sim: Simulation) -> None:
        wa_id, value = sim.contact(), sim.rng.random() < 0.5

        async def job(tx: Tx) -> None:
            contact = await tx.contacts.get(wa_id)
            assert contact is not None
            await tx.contacts.set_opt_in(contact.id, value, Consent(source, actor="simulation"))

        await sim.store.write(job)
        sim.oracle[wa_id] = value

    return apply


async def _csv(sim: Simulation) -> None:
    chosen = sim.rng.sample(list(sim.oracle), k=min(5, len(sim.oracle)))
    values = {wa_id: sim.rng.random() < 0.5 for wa_id in chosen}
    rows = [ImportedContact(wa_id, None, value, ()) for wa_id, value in values.items()]
    await import_contacts(
        sim.store,
        rows,
        default_opt_in=True,
        consent=Consent(ConsentSource.IMPORT, actor="simulation"),
    )
    sim.oracle.update(values)


INTENT_WORDS = (
    "please stop sending me promotions",
    "no more offers pls",
    "dejen de mandarme promociones",
    "arrêtez les pubs",
)


async def _intent_stop(sim: Simulation) -> None:
    """The customer writes words that mean "stop marketing", then taps the question's
    stop button (a contact already opted out is not asked; their tap changes nothing)."""
    wa_id = sim.contact()
    words = {"type": "text", "text": {"body": sim.rng.choice(INTENT_WORDS)}}
    await sim.webhook(_inbound(wa_id, sim.next_id("words"), sim.clock.now(), words))
    reply = {
        "type": "interactive",
        "interactive": {
            "type": "button_reply",
            "button_reply": {"id": INTENT_STOP, "title": "Stop promotions"},
        },
    }
    await sim.webhook(_inbound(wa_id, sim.next_id("intent"), sim.clock.now(), reply))
    sim.oracle[wa_id] = False


async def _broadcast(sim: Simulation) -> None:
    toggle = sim.rng.random() < 0.8
    marketing = sim.rng.random() < 0.8
    audience = sim.rng.sample(list(sim.oracle), k=min(len(sim.oracle), sim.rng.randint(1, 30)))
    broadcast = await create_broadcast(
        sim.store,
        BroadcastRequest(template=sim.template(marketing), contacts=audience, opted_in_only=toggle),
        name=f"b{sim.next_id('b')}",
        send_at=None,
        now=sim.clock.now(),
    )
    # The rows are planned later: remember the broadcast's toggle by its id.
    sim.broadcasts[broadcast.id] = not toggle


async def _enrol(sim: Simulation) -> None:
    """A contact enters the drip sequence (MARKETING, UTILITY an hour later, MARKETING
    three hours after that); one already in it stays where they are."""
    try:
        await enrol_contact(sim.store, sim.sequence_id, sim.contact(), now=sim.clock.now())
    except CampaignRefusal:
        sim.report.count("sequence_already_enrolled")


async def _api_send(sim: Simulation) -> None:
    wa_id, marketing, now = sim.contact(), sim.rng.random() < 0.7, sim.clock.now()
    message = ApiMessage(to=wa_id, content=sim.template(marketing))
    sent = await sim.store.write(
        lambda tx: send_api_message(tx, message, default_opt_in=True, now=now)
    )
    sim.remember(sent.message.id, Channel.API, False)
    if sent.message.held_until is not None:
        sim.report.count("api_held_for_quiet_hours")
    if sent.message.failure is not None:
        sim.report.count(f"api_{sent.message.failure.code}")


async def _compose(sim: Simulation) -> None:
    wa_id, confirm = sim.contact(), sim.rng.random() < 0.5
    try:
        composed = await compose_as(
            sim.store,
            wa_id,
            AGENT,
            sim.template(True),
            confirm_opted_out=confirm,
            now=sim.clock.now(),
        )
    except ConfirmationRequired:
        sim.report.count("compose_needs_confirmation")
        return
    confirmed = composed.record.confirmed_opted_out is not None
    sim.remember(composed.message.id, Channel.COMPOSE, confirmed)


async def _bot_send(sim: Simulation) -> None:
    wa_id, now = sim.contact(), sim.clock.now()
    content = sim.template(True)

    async def job(tx: Tx) -> str | None:
        contact = await tx.contacts.get(wa_id)
        assert contact is not None
        enqueued = await enqueue(tx, OutboundRequest(contact, Channel.BOT, content), now=now)
        return None if enqueued.message is None else enqueued.message.id

    sim.remember(await sim.store.write(job), Channel.BOT, True)


@dataclass(frozen=True, slots=True)
class EventKind:
    name: str
    weight: float
    apply: Callable[[Simulation], Awaitable[None]]
    needs_intent: bool = False


EVENT_KINDS: tuple[EventKind, ...] = (
    EventKind("stop_word", 6, lambda sim: _word(sim, True)),
    EventKind("start_word", 6, lambda sim: _word(sim, False)),
    EventKind("stop_button", 3, lambda sim: _button(sim, True)),
    EventKind("start_button", 3, lambda sim: _button(sim, False)),
    EventKind("preference_stop", 2, lambda sim: _preference(sim, True)),
    EventKind("preference_resume", 2, lambda sim: _preference(sim, False)),
    EventKind("error_131050", 2, _marketing_stopped),
    EventKind("api_change", 3, _set_opt_in(ConsentSource.API)),
    EventKind("agent_change", 3, _set_opt_in(ConsentSource.AGENT)),
    EventKind("csv_change", 1, _csv),
    EventKind("intent_stop", 2, _intent_stop, needs_intent=True),
    EventKind("broadcast", 1, _broadcast),
    EventKind("sequence_enrol", 3, _enrol),
    EventKind("api_send", 25, _api_send),
    EventKind("compose", 8, _compose),
    EventKind("bot_send", 8, _bot_send),
)
"""What can happen, and how often (relative weights)."""


def summary(report: Report) -> str:
    lines = [
        f"events: {report.events} in {report.seconds:.1f} s "
        f"({report.events_per_second:.0f} events/s), restarts: {report.restarts}",
        f"requests to the Cloud API: {report.posted}, MARKETING: {report.marketing_posted}",
        "what the rules did: " + json.dumps(dict(sorted(report.outcomes.items()))),
        "events by kind: " + json.dumps(dict(sorted(report.kinds.items()))),
        f"violations: {len(report.violations)}",
        *(f"  {violation}" for violation in report.violations[:20]),
    ]
    return "\n".join(lines)
