"""The pure runtime: each step kind, waits, retries, timeouts, http answers, the step cap,
and the sandbox. No store, no network: inputs in, (session, events) out."""

from __future__ import annotations

import textwrap

from engine.flows.events import (
    ContactAttributesChanged,
    ContactNameChanged,
    ContactTagsChanged,
    Event,
    FlowEnded,
    FlowError,
    FlowStarted,
    HandedOff,
    HttpRequested,
    InputIgnored,
    MarketingOptInChanged,
    MessageSent,
    Waiting,
)
from engine.flows.flowset import FlowSet
from engine.flows.loader import parse_flow
from engine.flows.outcomes import EndStatus, WaitKind
from engine.flows.resumptions import HttpResult, Timeout
from engine.flows.runtime import Runtime, Trigger
from engine.flows.session import Session, SessionStatus
from engine.models.content import (
    ButtonsContent,
    ListContent,
    MediaContent,
    MediaType,
    TemplateContent,
    TextContent,
)
from tests.flowkit import contact, flow_set, tap, text


def sent(events: list[Event]) -> list[object]:
    return [event.content for event in events if isinstance(event, MessageSent)]


def bodies(events: list[Event]) -> list[str]:
    return [getattr(content, "body", "") for content in sent(events)]


def start(flows: FlowSet, flow_id: str, **who: object) -> tuple[Session, list[Event]]:
    return Runtime(flows).start(flow_id, contact(**who), Trigger.manual(text("hi")))


def test_send_builds_every_kind_of_content_with_jinja() -> None:
    flows = flow_set(
        """
        id: showcase
        name: Showcase
        steps:
          hello: {kind: send, text: "Hi {{ contact.name }}, you said {{ reply.text }}"}
          buttons:
            kind: send
            text: Choose
            header: "For {{ contact.name }}"
            buttons: [{id: a, title: A}, {id: b, title: B}]
          menu:
            kind: send
            text: Our menu
            list:
              button: See it
              sections: [{title: Drinks, rows: [{id: tea, title: Tea, description: Hot}]}]
          photo:
            kind: send
            media: {type: image, url: "https://cdn.example/{{ contact.wa_id }}.jpg", caption: Yours}
          promo:
            kind: send
            template: {name: spring_sale, params: ["contact.name", "'20%'"]}
        """
    )
    session, events = start(flows, "showcase")
    assert session.status is SessionStatus.COMPLETED
    assert sent(events) == [
        TextContent(body="Hi Ann, you said hi"),
        ButtonsContent(
            body="Choose",
            header="For Ann",
            buttons=(
                {"id": "a", "title": "A"},
                {"id": "b", "title": "B"},
            ),
        ),
        ListContent.model_validate(
            {
                "body": "Our menu",
                "button": "See it",
                "sections": [
                    {
                        "title": "Drinks",
                        "rows": [{"id": "tea", "title": "Tea", "description": "Hot"}],
                    }
                ],
            }
        ),
        MediaContent(
            media_type=MediaType.IMAGE,
            link="https://cdn.example/16505551234.jpg",
            caption="Yours",
        ),
        TemplateContent(name="spring_sale", language="en_US", params=("Ann", "20%")),
    ]
    assert isinstance(events[0], FlowStarted)
    assert events[-1] == FlowEnded("showcase", EndStatus.COMPLETED)


ASK = """
id: survey
name: Survey
steps:
  age:
    kind: ask
    text: How old are you?
    validate: number
    retry_prompt: "A number please, {{ contact.name }}."
    max_retries: 1
    on_failure: gave_up
    timeout: {after: 2h, next: late}
    save_as: age
  thanks: {kind: send, text: "Noted: {{ vars.age + 1 }} next year.", next: done}
  gave_up: {kind: send, text: Never mind., next: done}
  late: {kind: send, text: Too late., next: done}
  done: {kind: end}
"""


def test_ask_waits_checks_retries_and_keeps_the_answer() -> None:
    runtime = Runtime(flow_set(ASK))
    session, events = runtime.start("survey", contact(), Trigger.manual())
    assert session.status is SessionStatus.WAITING
    assert session.wait is WaitKind.REPLY
    assert session.timeout_seconds == 7200
    assert events[-1] == Waiting(WaitKind.REPLY, 7200)
    assert bodies(events) == ["How old are you?"]

    session, events = runtime.resume(session, text("old enough"))
    assert bodies(events) == ["A number please, Ann."]
    assert session.attempts == 1
    session, events = runtime.resume(session, text(" 41 "))
    assert session.status is SessionStatus.COMPLETED
    assert session.vars == {"age": 41}
    assert bodies(events) == ["Noted: 42 next year."]


def test_ask_goes_to_its_failure_step_after_the_retries() -> None:
    runtime = Runtime(flow_set(ASK))
    session, _ = runtime.start("survey", contact(), Trigger.manual())
    session, _ = runtime.resume(session, text("no"))
    session, events = runtime.resume(session, text("still no"))
    assert bodies(events) == ["Never mind."]
    assert session.status is SessionStatus.COMPLETED


def test_ask_timeout_takes_its_own_step_and_stale_inputs_are_ignored() -> None:
    runtime = Runtime(flow_set(ASK))
    session, _ = runtime.start("survey", contact(), Trigger.manual())
    after, events = runtime.resume(session, Timeout())
    assert bodies(events) == ["Too late."]
    again, events = runtime.resume(after, text("42"))
    assert again is after
    assert events == [InputIgnored("the flow has ended (completed)")]
    _, events = runtime.resume(session, HttpResult(status=200, body={}))
    assert events == [InputIgnored("the flow is not waiting for an http answer")]


def test_ask_validations() -> None:
    flows = flow_set(
        """
        id: checks
        name: Checks
        steps:
          email: {kind: ask, text: "Email?", validate: email, save_as: email, max_retries: 0}
          code:
            {kind: ask, text: "Code?", validate: regex, pattern: "[A-Z]{3}-\\\\d+", save_as: code}
          pick:
            kind: ask
            text: "Size?"
            list:
              button: Sizes
              sections: [{rows: [{id: s, title: Small}, {id: l, title: Large}]}]
            validate: choice
            save_as: size
          free: {kind: ask, text: "Anything?", save_as: free}
        """
    )
    runtime = Runtime(flows)
    session, _ = runtime.start("checks", contact(), Trigger.manual())
    session, _ = runtime.resume(session, text("ann@shop.example"))
    session, events = runtime.resume(session, text("abc-12"))
    assert bodies(events) == ["Code?"]  # the prompt again: there is no retry_prompt
    session, _ = runtime.resume(session, text("ABC-12"))
    session, events = runtime.resume(session, text("medium"))
    assert bodies(events) == ["Size?"]
    session, _ = runtime.resume(session, text("2"))  # typed the row's number
    session, _ = runtime.resume(session, tap("thumbs", "👍"))
    assert session.vars == {
        "email": "ann@shop.example",
        "code": "ABC-12",
        "size": "l",
        "free": "thumbs",
    }


def test_an_invalid_answer_without_a_failure_step_ends_the_flow() -> None:
    flows = flow_set(
        """
        id: strict
        name: Strict
        steps:
          email: {kind: ask, text: "Email?", validate: email, save_as: email, max_retries: 0}
        """
    )
    runtime = Runtime(flows)
    session, _ = runtime.start("strict", contact(), Trigger.manual())
    session, events = runtime.resume(session, text("nope"))
    assert session.status is SessionStatus.FAILED
    assert events == [FlowEnded("strict", EndStatus.FAILED)]


BRANCH = """
id: router
name: Router
steps:
  route:
    kind: branch
    cases:
      - {choice: vip_button, next: by_choice}
      - {equals: "Crème Brûlée", next: by_equals}
      - {contains: price, next: by_contains}
      - {matches: "^\\\\d{4}$", next: by_regex}
      - {subject: contact.attributes.tier, equals: gold, next: by_attribute}
      - {subject: contact.marketing_opt_in, equals: false, next: by_field}
      - {has_tag: wholesale, next: by_tag}
      - {expression: "reply.text | length > 20", next: by_expression}
    else: by_else
  by_choice: {kind: send, text: choice, next: done}
  by_equals: {kind: send, text: equals, next: done}
  by_contains: {kind: send, text: contains, next: done}
  by_regex: {kind: send, text: regex, next: done}
  by_attribute: {kind: send, text: attribute, next: done}
  by_field: {kind: send, text: field, next: done}
  by_tag: {kind: send, text: tag, next: done}
  by_expression: {kind: send, text: expression, next: done}
  by_else: {kind: send, text: else, next: done}
  done: {kind: end}
"""


def test_branch_takes_the_first_case_that_holds() -> None:
    runtime = Runtime(flow_set(BRANCH))

    def route(given: object, **who: object) -> list[str]:
        _, events = runtime.start("router", contact(**who), Trigger.manual(given))  # type: ignore[arg-type]
        return bodies(events)

    assert route(tap("vip_button", "Crème brûlée")) == ["choice"]
    assert route(text("  creme BRULEE! ")) == ["equals"]
    assert route(text("What's the PRICE?")) == ["contains"]
    assert route(text("1234")) == ["regex"]
    assert route(text("hello"), attributes={"tier": "Gold"}) == ["attribute"]
    assert route(text("hello"), marketing_opt_in=False) == ["field"]
    assert route(text("hello"), tags=("wholesale",)) == ["tag"]
    assert route(text("a long message, longer than twenty")) == ["expression"]
    assert route(text("hello")) == ["else"]


def test_set_changes_the_contact_and_variables() -> None:
    flows = flow_set(
        """
        id: setter
        name: Setter
        steps:
          change:
            kind: set
            name: "{{ reply.text | title }}"
            attributes: {city: Paris, visits: "{{ 2 + 1 }}", old: null}
            add_tags: [lead, lead, known]
            remove_tags: [cold, absent]
            vars: {total: "{{ 40 + 2 }}", label: "n={{ 1 }}"}
            marketing_opt_in: "{{ 'no' }}"
          show:
            kind: send
            text: >-
              {{ contact.name }} {{ contact.attributes.visits }} {{ vars.total }}
              {{ vars.label }} {{ contact.tags | join(',') }}
        """
    )
    session, events = Runtime(flows).start(
        "setter",
        contact(tags=("cold", "known"), attributes={"old": 1}),
        Trigger.manual(text("bob smith")),
    )
    assert events[1:5] == [
        ContactNameChanged("Bob Smith"),
        ContactAttributesChanged({"city": "Paris", "visits": 3, "old": None}),
        ContactTagsChanged(added=("lead",), removed=("cold",)),
        MarketingOptInChanged(False, "setter"),
    ]
    assert bodies(events) == ["Bob Smith 3 42 n=1 known,lead"]
    assert session.contact.attributes == {"city": "Paris", "visits": 3}
    assert session.contact.marketing_opt_in is False


def test_set_refuses_an_opt_in_that_is_not_yes_or_no() -> None:
    flows = flow_set(
        """
        id: consent
        name: Consent
        steps:
          record: {kind: set, marketing_opt_in: "{{ reply.text }}"}
        """
    )
    session, events = start(flows, "consent")
    assert events[1] == FlowError(
        "consent", "record", "marketing_opt_in must be yes or no, not 'hi'"
    )
    assert session.status is SessionStatus.FAILED


def test_handoff_start_and_end() -> None:
    flows = flow_set(
        """
        id: first
        name: First
        steps:
          keep: {kind: set, vars: {x: 1}}
          go: {kind: start, flow: second}
        """,
        """
        id: second
        name: Second
        steps:
          check: {kind: send, text: "{{ vars.x is defined }}"}
          agents: {kind: handoff, queue: billing, note: "For {{ contact.name }}"}
        """,
    )
    session, events = start(flows, "first")
    assert [e.describe() for e in events if not isinstance(e, MessageSent)] == [
        "flow first started",
        "flow first ended (completed)",
        "flow second started",
        "handed off to the agents (queue billing); the bot stays silent. Note: For Ann",
        "flow second ended (handed_off)",
    ]
    assert bodies(events) == ["False"]  # the started flow has its own variables
    assert HandedOff("second", "billing", "For Ann") in events
    assert session.status is SessionStatus.HANDED_OFF


HTTP = """
id: lookup
name: Lookup
steps:
  call:
    kind: http
    url: "{{ env.FLOW_SHOP }}/orders/{{ reply.text }}"
    headers: {X-Shop: "{{ contact.wa_id }}"}
    body: {who: "{{ contact.name }}", n: "{{ 1 + 1 }}"}
    timeout: 3s
    save_as: order
    on_error: failed
  found: {kind: send, text: "Order is {{ vars.order.status }}", next: done}
  failed: {kind: send, text: "Failed: {{ vars.http_error }}", next: done}
  done: {kind: end}
"""


def test_http_asks_for_a_call_and_takes_the_answer_or_the_error_branch() -> None:
    runtime = Runtime(flow_set(HTTP, env={"FLOW_SHOP": "http://127.0.0.1:9"}))
    session, events = runtime.start("lookup", contact(), Trigger.manual(text("77")))
    assert events[1] == HttpRequested(
        "POST",
        "http://127.0.0.1:9/orders/77",
        {"X-Shop": "16505551234"},
        {"who": "Ann", "n": 2},
        3.0,
    )
    assert session.wait is WaitKind.HTTP
    assert runtime.resume(session, text("hello?"))[1] == [
        InputIgnored("the flow is waiting for an http answer")
    ]
    _, events = runtime.resume(session, HttpResult(status=200, body={"status": "shipped"}))
    assert bodies(events) == ["Order is shipped"]
    _, events = runtime.resume(session, HttpResult(status=200, error="the answer is not JSON"))
    assert bodies(events) == ["Failed: the answer is not JSON"]


def test_http_with_an_unwritable_url_takes_the_error_branch_and_says_why() -> None:
    runtime = Runtime(flow_set(HTTP, env={}))
    _, events = runtime.start("lookup", contact(), Trigger.manual(text("77")))
    assert isinstance(events[1], FlowError)
    assert "FLOW_SHOP" in events[1].message
    assert bodies(events)[0].startswith("Failed: the request could not be written")


def test_a_runaway_loop_is_stopped_with_an_error() -> None:
    # The validator rejects this flow; the runtime still protects itself.
    flow, problems = parse_flow(
        textwrap.dedent(
            """
            id: spin
            name: Spin
            steps:
              a: {kind: set, vars: {n: 1}}
              b: {kind: goto, to: a}
            """
        ),
        "spin.yaml",
    )
    assert flow is not None
    assert not problems
    session, events = Runtime(FlowSet.of([flow]), max_steps=50).start(
        flow, contact(), Trigger.manual()
    )
    assert events[-2] == FlowError(
        "spin", "b", "stopped after 50 steps without waiting for the customer; the flow loops"
    )
    assert session.status is SessionStatus.FAILED


def test_templates_are_strict_and_sandboxed() -> None:
    flows = flow_set(
        """
        id: strict
        name: Strict
        steps:
          missing: {kind: send, text: "Hi {{ vars.nickname }}"}
        """,
        """
        id: escape
        name: Escape
        steps:
          poke: {kind: send, text: "{{ reply.text.__class__.__mro__ }}"}
        """,
    )
    session, events = start(flows, "strict")
    assert events[1] == FlowError("strict", "missing", "'dict object' has no attribute 'nickname'")
    assert not sent(events)
    assert session.status is SessionStatus.FAILED
    _, events = start(flows, "escape")
    assert isinstance(events[1], FlowError)
    assert "unsafe" in events[1].message
    assert not sent(events)


def test_sessions_survive_json_and_the_runtime_is_pure() -> None:
    runtime = Runtime(flow_set(ASK))
    session, _ = runtime.start("survey", contact(), Trigger.manual())
    stored = Session.model_validate_json(session.model_dump_json())
    assert stored == session
    first = runtime.resume(stored, text("30"))
    second = runtime.resume(stored, text("30"))
    assert first == second
    assert stored.status is SessionStatus.WAITING  # the input did not change the old session
