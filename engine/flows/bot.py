"""The bot's :class:`~engine.inbound.handoff.ConversationHandler`: runs flows against the store.

For each input the handler, inside one store transaction, loads the contact's
session, runs the pure runtime, and applies its events: messages are queued through
:func:`engine.outbound.enqueue.enqueue` on the ``bot`` channel (the send rules let the
bot send any template whatever the opt-in, and refuse free form outside the 24-hour
window as for the API: nothing is recorded and the refusal is logged), contact
changes and consent go through ``tx.contacts``, a handoff gives the conversation to
the agents' queue, and the session and its timeout are saved.

An ``http`` step ends the transaction with the session waiting for the answer
(store jobs do no network I/O); the call is made outside the store, and its result
resumes the flow in a new transaction. A wakeup row is scheduled at the call's
deadline so a server that stops mid-call still moves the flow on (error branch).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from engine.background import Heartbeat, keep_running
from engine.campaigns import sequences
from engine.clock import Clock
from engine.flows.events import (
    ContactAttributesChanged,
    ContactNameChanged,
    ContactTagsChanged,
    Event,
    FlowError,
    HandedOff,
    HttpRequested,
    MarketingOptInChanged,
    MessageSent,
    SequenceRequested,
)
from engine.flows.integrations import HttpCaller, call_with_deadline
from engine.flows.library import FlowLibrary
from engine.flows.outcomes import WaitKind
from engine.flows.resumptions import FlowInput, HttpResult, Timeout
from engine.flows.routing import converse
from engine.flows.runtime import Trigger
from engine.flows.session import Session
from engine.inbound.handoff import Incoming
from engine.models.contact import ConsentSource, Contact
from engine.models.conversation import Owner
from engine.models.message import Channel
from engine.outbound.enqueue import OutboundRequest, Refused, TemplateProblem, enqueue
from engine.store import Store, StoreBusy, StoreUnavailable, Tx
from engine.store.announcements import Topic
from engine.store.contacts import Consent
from engine.store.flow_sessions import StoredSession, Wakeup, WakeupKind

log = logging.getLogger(__name__)

HTTP_GRACE = timedelta(seconds=30)
"""After an http call's timeout, how long before its wakeup gives the flow an error."""

SERVER_STOPPED = "no answer came: the server stopped while waiting for it"


@dataclass(frozen=True, slots=True)
class PendingCall:
    """An http call to make once the transaction that asked for it is committed."""

    contact_id: int
    wait_seq: int
    request: HttpRequested


class BotHandler:
    """Answers customers with the flows of ``library``.

    ``handle`` is the :class:`~engine.inbound.handoff.ConversationHandler` entry point;
    ``fire_due`` applies due wakeups and ``run_wakeups`` does so forever.
    """

    def __init__(self, store: Store, library: FlowLibrary, clock: Clock, http: HttpCaller) -> None:
        self.store = store
        self.library = library
        self.clock = clock
        self.http = http

    async def handle(self, incoming: Incoming) -> None:
        pending = await self.store.write(lambda tx: self._on_message(tx, incoming))
        await self._make_calls(pending)

    def has_flow(self, name: str) -> bool:
        """Whether a flow with this id is loaded (a release may ask to restart it)."""
        return self.library.flows.get(name) is not None

    async def restart(self, contact: Contact, flow: str) -> None:
        """Start ``flow`` for ``contact``: an agent released the conversation asking for it.
        Whatever session the contact had is replaced."""
        pending = await self.store.write(
            partial(self._on_restart, contact_id=contact.id, flow_id=flow)
        )
        await self._make_calls(pending)

    async def fire_due(self, limit: int = 1000) -> int:
        """Apply the wakeups due now, one transaction each; how many were applied."""
        fired = 0
        while fired < limit:
            claimed: list[Wakeup] = []
            try:
                pending = await self.store.write(partial(self._on_wakeup, claimed=claimed))
            except (StoreBusy, StoreUnavailable):
                raise  # the database, not the flow: the wakeup waits for it
            except Exception:
                if not claimed:
                    raise  # no wakeup was taken: nothing of a flow failed
                log.exception("a flow wakeup failed: %s", claimed)
                if claimed:
                    # The failed job rolled back and left the wakeup due: end the session
                    # (and its wakeups) so it cannot fail forever.
                    contact_id = claimed[0].contact_id
                    await self.store.write(partial(_forget, contact_id=contact_id))
                fired += 1
                continue
            if not claimed:
                return fired
            fired += 1
            await self._make_calls(pending)
        return fired

    async def run_wakeups(self, heartbeat: Heartbeat, poll_seconds: float = 1.0) -> None:
        """Fire due wakeups at their time until ``heartbeat.stop()``: sleep until the next
        one is due (at most ``poll_seconds``) and look again when one is announced. Firing
        a wakeup deletes it in the transaction that applies it, so two workers never fire
        the same one. Each wait is a round of :func:`engine.background.keep_running`: a
        failed one (the database locked or away) is logged and tried again."""
        announced = self.store.subscribe(Topic.WAKEUPS)
        fire = True
        due: datetime | None = None

        async def next_due() -> datetime | None:
            async with self.store.read() as tx:
                return await tx.flow_sessions.next_due()

        async def one_round() -> None:
            nonlocal fire, due
            if fire:
                announced.clear()
                await self.fire_due()
                due = await next_due()
                fire = False
            wait = poll_seconds
            if due is not None:
                wait = min(wait, max(0.0, (due - self.clock.now()).total_seconds()))
            if not await heartbeat.wait(announced, wait):
                fire = True  # one may be due
                return
            announced.clear()
            due = await next_due()  # a new one: when is the next due?

        await keep_running(heartbeat, one_round)

    async def _on_message(self, tx: Tx, incoming: Incoming) -> PendingCall | None:
        contact = await tx.contacts.get_by_id(incoming.contact.id) or incoming.contact
        stored = await tx.flow_sessions.get(contact.id)
        if (await tx.conversations.get(contact.id)).owner is Owner.AGENT:
            if stored is not None:
                await tx.flow_sessions.delete(contact.id)  # agents answer now
            return None
        session = _session(stored)
        new, events = converse(
            self.library.runtime,
            session,
            contact,
            incoming.input,
            new_contact=incoming.new_contact,
        )
        return await self._apply(tx, contact, session, new, events)

    async def _on_restart(self, tx: Tx, *, contact_id: int, flow_id: str) -> PendingCall | None:
        contact = await tx.contacts.get_by_id(contact_id)
        if contact is None or (await tx.conversations.get(contact_id)).owner is Owner.AGENT:
            return None  # taken over again before the restart ran
        before = _session(await tx.flow_sessions.get(contact_id))
        new, events = self.library.runtime.start(flow_id, contact, Trigger.manual())
        return await self._apply(tx, contact, before, new, events)

    async def _on_wakeup(self, tx: Tx, *, claimed: list[Wakeup]) -> PendingCall | None:
        claimed.clear()  # the store may run a job again (a serialization retry)
        wakeups = await tx.flow_sessions.claim_due(self.clock.now(), 1)
        if not wakeups:
            return None
        wakeup = wakeups[0]
        claimed.append(wakeup)
        given: FlowInput = (
            Timeout() if wakeup.kind is WakeupKind.TIMEOUT else HttpResult(error=SERVER_STOPPED)
        )
        return await self._resume(tx, wakeup.contact_id, wakeup.wait_seq, given)

    async def _on_http(self, tx: Tx, call: PendingCall, result: HttpResult) -> PendingCall | None:
        return await self._resume(tx, call.contact_id, call.wait_seq, result)

    async def _resume(
        self, tx: Tx, contact_id: int, wait_seq: int, given: FlowInput
    ) -> PendingCall | None:
        stored = await tx.flow_sessions.get(contact_id)
        if stored is None or stored.wait_seq != wait_seq:
            return None  # the flow moved on since: this input is stale
        contact = await tx.contacts.get_by_id(contact_id)
        if contact is None:
            return None
        if (await tx.conversations.get(contact_id)).owner is Owner.AGENT:
            await tx.flow_sessions.delete(contact_id)
            return None
        session = _session(stored)
        assert session is not None
        new, events = self.library.runtime.resume(session.with_contact(contact), given)
        return await self._apply(tx, contact, session, new, events)

    async def _apply(
        self,
        tx: Tx,
        contact: Contact,
        before: Session | None,
        after: Session | None,
        events: list[Event],
    ) -> PendingCall | None:
        now = self.clock.now()
        flow_id = after.flow_id if after is not None else None
        for event in events:
            await self._apply_event(tx, contact, event)
        if after is before:
            return None  # nothing moved (e.g. a message while an http call is out)
        if after is None or after.status.ended:
            if before is not None:
                await tx.flow_sessions.delete(contact.id)
            return None
        assert flow_id is not None
        assert after.wait is not None
        await tx.flow_sessions.cancel_wakeups(contact.id)
        await tx.flow_sessions.put(
            contact.id,
            flow_id=flow_id,
            waiting_for=after.wait.value,
            wait_seq=after.wait_seq,
            state=after.model_dump_json(),
            at=now,
        )
        if after.wait is WaitKind.REPLY and after.timeout_seconds is not None:
            due = now + timedelta(seconds=after.timeout_seconds)
            await tx.flow_sessions.schedule(contact.id, WakeupKind.TIMEOUT, after.wait_seq, due)
        if after.wait is WaitKind.HTTP:
            request = next(e for e in reversed(events) if isinstance(e, HttpRequested))
            due = now + timedelta(seconds=request.timeout_seconds) + HTTP_GRACE
            await tx.flow_sessions.schedule(contact.id, WakeupKind.HTTP, after.wait_seq, due)
            return PendingCall(contact.id, after.wait_seq, request)
        return None

    async def _apply_event(self, tx: Tx, contact: Contact, event: Event) -> None:
        match event:
            case MessageSent(content=content):
                try:
                    await enqueue(
                        tx, OutboundRequest(contact, Channel.BOT, content), now=self.clock.now()
                    )
                except TemplateProblem as problem:
                    log.error("flow message to contact %s not sent: %s", contact.id, problem)
                except Refused as refused:
                    log.warning(
                        "flow message to contact %s not sent (%s): %s",
                        contact.id,
                        refused.code,
                        refused.reason,
                    )
            case ContactNameChanged(name=name):
                await tx.contacts.update(contact.id, name=name)
            case ContactAttributesChanged(attributes=attributes):
                await tx.contacts.update(contact.id, attributes=attributes)
            case ContactTagsChanged(added=added, removed=removed):
                if added:
                    await tx.contacts.add_tags(contact.id, added)
                if removed:
                    current = await tx.contacts.get_by_id(contact.id)
                    tags = [] if current is None else [t for t in current.tags if t not in removed]
                    await tx.contacts.update(contact.id, tags=tags)
            case MarketingOptInChanged(value=value, flow_id=flow_id):
                consent = Consent(ConsentSource.BOT, actor=flow_id)
                await tx.contacts.set_opt_in(contact.id, value, consent)
            case HandedOff(flow_id=flow_id, queue=queue, note=note):
                await tx.conversations.set_owner(contact.id, Owner.AGENT, None)
                await tx.flow_sessions.record_handoff(
                    contact.id, flow_id, queue, note, self.clock.now()
                )
            case SequenceRequested(action=action, sequence=name, flow_id=flow_id):
                try:
                    await sequences.from_flow(
                        tx,
                        contact,
                        action=action,
                        sequence_name=name,
                        flow_id=flow_id,
                        now=self.clock.now(),
                    )
                except sequences.UnknownSequence as problem:
                    log.error("flow %s, contact %s: %s", flow_id, contact.id, problem)
            case FlowError():
                log.warning("contact %s: %s", contact.id, event.describe())
            case _:
                pass

    async def _make_calls(self, pending: PendingCall | None) -> None:
        while pending is not None:
            result = await call_with_deadline(self.http, pending.request)
            pending = await self.store.write(partial(self._on_http, call=pending, result=result))


async def _forget(tx: Tx, *, contact_id: int) -> None:
    await tx.flow_sessions.delete(contact_id)


def _session(stored: StoredSession | None) -> Session | None:
    return None if stored is None else Session.model_validate_json(stored.state)
