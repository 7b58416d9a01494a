"""A conversation with a flow in the terminal: no server, no network, no store.

Bot messages are printed, buttons and list rows as numbered choices (type the
number or the title), and every event (contact changes, handoff, waits) is shown.
``/timeout`` fires the timeout of the ask that waits; an ``http`` step asks you to
type its JSON answer (an empty line is a failed call); ``/quit`` leaves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from engine.flows.events import Event, HandedOff, MessageSent, Waiting
from engine.flows.flowset import FlowSet
from engine.flows.resumptions import HttpResult, Timeout
from engine.flows.routing import converse
from engine.flows.runtime import Runtime, Trigger
from engine.flows.session import Session
from engine.models.contact import Contact
from engine.models.content import (
    ButtonsContent,
    ListContent,
    MediaContent,
    OutboundContent,
    TemplateContent,
    TextContent,
)
from engine.models.customer_input import CustomerInput, InputKind

Read = Callable[[str], str]
Write = Callable[[str], None]

HELP = (
    "Type a reply; a number picks a button or list row. "
    "/timeout fires the ask's timeout, /release ends a handoff, /quit leaves."
)


def chat_contact(name: str | None = None, *, opted_in: bool = True) -> Contact:
    now = datetime.now(UTC)
    return Contact(
        id=1,
        wa_id="15550100001",
        name=name,
        marketing_opt_in=opted_in,
        created_at=now,
        updated_at=now,
    )


class Chat:
    def __init__(
        self, flows: FlowSet, contact: Contact, *, read: Read = input, write: Write = print
    ) -> None:
        self.runtime = Runtime(flows)
        self.flows = flows
        self.contact = contact
        self.read = read
        self.write = write
        self.session: Session | None = None
        self.choices: list[tuple[str, str, InputKind]] = []
        self.with_agents = False

    def run(self, flow_id: str) -> int:
        flow = self.flows.get(flow_id)
        if flow is None:
            self.write(f"no flow {flow_id!r}; the flows are {', '.join(sorted(self.flows.flows))}")
            return 1
        self.write(f"Chatting with flow {flow.id} ({flow.name}). {HELP}")
        self._turn(*self.runtime.start(flow, self.contact, Trigger.manual()))
        while True:
            try:
                if self.session is not None and self.session.waiting_for_http:
                    line = self.read("http answer as JSON (empty line: the call fails)> ")
                    self._turn(*self.runtime.resume(self.session, _http_result(line)))
                    continue
                line = self.read("you> ")
            except EOFError:
                self.write("")
                return 0
            command = line.strip()
            if command == "/quit":
                return 0
            if command == "/timeout":
                if (
                    self.session is None
                    or not self.session.waiting_for_reply
                    or (self.session.timeout_seconds is None)
                ):
                    self.write("  · no timeout is armed")
                else:
                    self._turn(*self.runtime.resume(self.session, Timeout()))
                continue
            if command in ("/help", "?"):
                self.write(HELP)
                continue
            if command == "/release":
                self.with_agents = False
                self.write("  · the agent released the conversation: the bot answers again")
                continue
            if self.with_agents:
                self.write("  · an agent owns the conversation: the bot stays silent (/release)")
                continue
            given = self._input(line)
            session, events = converse(self.runtime, self.session, self.contact, given)
            if session is None and not events:
                self.write("  · no flow takes this message (no keyword, no default flow)")
            self._turn(session, events)

    def _turn(self, session: Session | None, events: list[Event]) -> None:
        self.session = session
        if session is not None:
            self.contact = session.contact
        for event in events:
            if isinstance(event, MessageSent):
                self._show(event.content)
            elif isinstance(event, Waiting) and event.timeout_seconds is None:
                continue
            else:
                self.with_agents = self.with_agents or isinstance(event, HandedOff)
                self.write(f"  · {event.describe()}")
        if session is not None and session.status.ended and not self.with_agents:
            self.write("  · (the next message goes to the triggers: keywords, default flow)")

    def _show(self, content: OutboundContent) -> None:
        self.choices = []
        match content:
            case TextContent(body=body):
                self.write(f"bot> {body}")
            case ButtonsContent(body=body, buttons=buttons, header=header, footer=footer):
                self._framed(header, body, footer)
                for button in buttons:
                    self._choice(button.id, button.title, InputKind.BUTTON)
            case ListContent(body=body, button=button, sections=sections):
                self._framed(content.header, body, content.footer)
                self.write(f"     [{button}]")
                for section in sections:
                    if section.title:
                        self.write(f"     {section.title}")
                    for row in section.rows:
                        described = f" ({row.description})" if row.description else ""
                        self._choice(row.id, row.title + described, InputKind.LIST)
            case TemplateContent(name=name, language=language, params=params):
                template = self.flows.catalogue.get((name, language))
                if template is None:
                    self.write(f"bot> [template {name} ({language})] {list(params)}")
                else:
                    label = f"[template {name}, {template.category.value}]"
                    self.write(f"bot> {label} {template.render(params)}")
                    for quick_reply in template.buttons:
                        if quick_reply.payload:
                            self._choice(quick_reply.payload, quick_reply.text, InputKind.BUTTON)
            case MediaContent(media_type=media_type, link=link, media_id=media_id):
                caption = f" {content.caption}" if content.caption else ""
                self.write(f"bot> [{media_type.value} {link or media_id}]{caption}")

    def _framed(self, header: str | None, body: str, footer: str | None) -> None:
        if header:
            self.write(f"bot> *{header}*")
        self.write(f"bot> {body}")
        if footer:
            self.write(f"     _{footer}_")

    def _choice(self, choice_id: str, title: str, kind: InputKind) -> None:
        self.choices.append((choice_id, title, kind))
        self.write(f"  {len(self.choices)}. {title}")

    def _input(self, line: str) -> CustomerInput:
        text = line.strip()
        if text.isdigit() and 1 <= int(text) <= len(self.choices):
            choice_id, title, kind = self.choices[int(text) - 1]
            return CustomerInput(kind=kind, text=title, choice_id=choice_id)
        for choice_id, title, kind in self.choices:
            if text.casefold() == title.casefold():
                return CustomerInput(kind=kind, text=title, choice_id=choice_id)
        return CustomerInput(kind=InputKind.TEXT, text=line)


def _http_result(line: str) -> HttpResult:
    if not line.strip():
        return HttpResult(error="the call failed (typed in the chat)")
    try:
        return HttpResult(status=200, body=json.loads(line))
    except json.JSONDecodeError:
        return HttpResult(status=200, error="the answer is not JSON")
