"""Which flow takes a message: the waiting flow, keywords (whole message or first word,
case and accents ignored), new contacts, the default flow; and interrupts."""

from __future__ import annotations

from collections.abc import Sequence

from engine.flows.events import FlowEnded, InputIgnored, MessageSent
from engine.flows.outcomes import EndStatus
from engine.flows.routing import converse
from engine.flows.runtime import Runtime, Trigger
from engine.flows.session import Session
from tests.flowkit import contact, flow_set, tap, text

FLOWS = (
    """
    id: menu
    name: Menu
    triggers: {keywords: [menu, "Buenos días"], default: true}
    steps:
      pick: {kind: ask, text: Pick, buttons: [{id: x, title: Orders}], save_as: picked}
      said: {kind: send, text: "menu got {{ vars.picked }}"}
    """,
    """
    id: orders
    name: Orders
    triggers: {keywords: [orders], first_word: [order, track]}
    interruptible: true
    steps:
      number: {kind: ask, text: Number, save_as: number}
      locked: {kind: ask, text: Sure, save_as: sure, interruptible: false}
      said: {kind: send, text: "orders got {{ vars.number }}"}
    """,
    """
    id: hello
    name: Hello
    triggers: {new_contact: true}
    steps:
      hello: {kind: send, text: Welcome aboard}
    """,
    """
    id: remote
    name: Remote
    triggers: {keywords: [remote]}
    steps:
      call: {kind: http, url: "https://x.example", save_as: r, on_error: done}
      done: {kind: end}
    """,
)


def said(session_events: tuple[Session | None, Sequence[object]]) -> list[str]:
    return [getattr(e.content, "body", "") for e in session_events[1] if isinstance(e, MessageSent)]


def test_keywords_ignore_case_accents_and_punctuation() -> None:
    runtime = Runtime(flow_set(*FLOWS))
    # Punctuation inside counts as a space, as it does for consent words.
    for message in ("MENU", "  menu! ", "buenos DIAS", "Buenos días 👋", "Buenos, días!"):
        session, _ = converse(runtime, None, contact(), text(message))
        assert session is not None
        assert session.flow_id == "menu", message
    for message in ("Order 12345", "TRACK my parcel", "orders", "order#12345", "track-it"):
        session, _ = converse(runtime, None, contact(), text(message))
        assert session is not None
        assert session.flow_id == "orders", message


def test_new_contacts_then_the_default_flow() -> None:
    runtime = Runtime(flow_set(*FLOWS))
    assert said(converse(runtime, None, contact(), text("what?"), new_contact=True)) == [
        "Welcome aboard"
    ]
    # a keyword wins over the new-contact flow
    session, _ = converse(runtime, None, contact(), text("order 7"), new_contact=True)
    assert session is not None
    assert session.flow_id == "orders"
    session, _ = converse(runtime, None, contact(), text("what?"))
    assert session is not None
    assert session.flow_id == "menu"


def test_without_a_default_flow_nothing_answers() -> None:
    runtime = Runtime(flow_set(FLOWS[1]))
    assert converse(runtime, None, contact(), text("what?")) == (None, [])


def test_the_waiting_flow_takes_the_reply_even_if_it_is_a_keyword() -> None:
    runtime = Runtime(flow_set(*FLOWS))
    session, _ = runtime.start("menu", contact(), Trigger.manual())
    after = converse(runtime, session, contact(), text("orders"))
    assert said(after) == ["menu got orders"]  # menu is not interruptible


def test_a_keyword_interrupts_only_where_the_flow_allows_it() -> None:
    runtime = Runtime(flow_set(*FLOWS))
    session, _ = runtime.start("orders", contact(), Trigger.manual())
    interrupted, events = converse(runtime, session, contact(), text("Menu"))
    assert events[0] == FlowEnded("orders", EndStatus.INTERRUPTED)
    assert interrupted is not None
    assert interrupted.flow_id == "menu"

    session, _ = runtime.resume(session, text("123"))  # now at the step that says no
    assert session.step == "locked"
    after = converse(runtime, session, contact(), text("menu"))
    assert said(after) == ["orders got 123"]


def test_a_tapped_button_is_an_answer_not_a_keyword() -> None:
    runtime = Runtime(flow_set(*FLOWS))
    session, _ = runtime.start("orders", contact(), Trigger.manual())
    after = converse(runtime, session, contact(), tap("menu", "Menu"))
    assert after[0] is not None
    assert after[0].flow_id == "orders"


def test_a_message_while_an_http_call_is_out_is_ignored() -> None:
    runtime = Runtime(flow_set(*FLOWS))
    session, _ = converse(runtime, None, contact(), text("remote"))
    assert session is not None
    assert session.waiting_for_http
    again, events = converse(runtime, session, contact(), text("hello?"))
    assert again is session
    assert events == [InputIgnored("the flow is waiting for an http answer")]
