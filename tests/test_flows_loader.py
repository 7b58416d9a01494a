"""Reading flow files: lines of every value, YAML 1.2 booleans, every problem at once."""

from __future__ import annotations

import textwrap

from engine.flows.loader import parse_flow
from engine.flows.steps.ask import AskStep
from engine.flows.steps.branch import BranchStep


def parse(text: str) -> tuple[object, list[str]]:
    flow, problems = parse_flow(textwrap.dedent(text).lstrip(), "f.yaml")
    return flow, [str(p) for p in problems]


def test_every_key_and_item_has_its_line() -> None:
    flow, problems = parse(
        """
        id: lines
        name: Lines
        steps:
          ask_it:
            kind: ask
            text: Pick
            buttons:
              - {id: a, title: A}
              - {id: b, title: B}
            validate: choice
            save_as: picked
        """
    )
    assert problems == []
    assert flow is not None
    assert flow.line(("steps", "ask_it")) == 4  # type: ignore[attr-defined]
    assert flow.line(("steps", "ask_it", "buttons", 1)) == 9  # type: ignore[attr-defined]
    # a path that is not written falls back to its nearest written parent
    assert flow.line(("steps", "ask_it", "next")) == 4  # type: ignore[attr-defined]


def test_yes_and_no_stay_text_and_durations_read_as_seconds() -> None:
    flow, problems = parse(
        """
        id: words
        name: Words
        steps:
          question:
            kind: ask
            text: Offers?
            buttons: [{id: yes, title: yes}, {id: no, title: no}]
            validate: choice
            timeout: {after: 1h30m, next: route}
            save_as: answer
          route:
            kind: branch
            cases: [{equals: yes, next: question}]
            else: question
        """
    )
    assert problems == [
        "f.yaml:9: ask step 'question', `timeout.after`: "
        "'1h30m' is not a duration: write e.g. 30s, 5m, 2h or 1d"
    ]
    flow, problems = parse(
        """
        id: words
        name: Words
        steps:
          question:
            kind: ask
            text: Offers?
            buttons: [{id: yes, title: yes}, {id: no, title: no}]
            validate: choice
            timeout: {after: 90m, next: route}
            save_as: answer
          route:
            kind: branch
            cases: [{equals: yes, next: question}]
            else: question
        """
    )
    assert problems == []
    question = flow.steps["question"]  # type: ignore[attr-defined]
    assert isinstance(question, AskStep)
    assert [c[0] for c in question.choices()] == ["yes", "no"]
    assert question.timeout is not None
    assert question.timeout.after == 5400
    route = flow.steps["route"]  # type: ignore[attr-defined]
    assert isinstance(route, BranchStep)
    assert route.cases[0].equals == "yes"


def test_a_key_written_twice_is_a_problem() -> None:
    _, problems = parse(
        """
        id: twice
        name: Twice
        steps:
          greet: {kind: send, text: Hi}
          greet: {kind: send, text: Hello}
        """
    )
    assert problems == ["f.yaml:5: `greet` is written twice (first on line 4)"]


def test_header_problems_name_the_field_and_line() -> None:
    _, problems = parse(
        """
        id: Bad Id
        name: Header
        triggers: {keyword: [hi]}
        steps: {}
        """
    )
    assert problems == [
        "f.yaml:1: the flow, `id`: String should match pattern '^[a-z0-9][a-z0-9_\\-]{0,63}$'",
        "f.yaml:3: the flow has an unknown field `triggers.keyword`",
        "f.yaml:4: the flow, `steps`: Dictionary should have at least 1 item after "
        "validation, not 0",
    ]


def test_empty_and_non_mapping_files() -> None:
    assert parse("")[1] == ["f.yaml:1: the file is empty: a flow needs id, name, steps"]
    assert parse("- a\n- b\n")[1] == ["f.yaml:1: a flow file is a mapping with id, name and steps"]


def test_every_broken_step_is_reported_and_the_rest_still_load() -> None:
    flow, problems = parse(
        """
        id: broken
        name: Broken
        steps:
          one: {kind: send}
          two: {kind: wait, text: Hi}
          three: {text: Hi}
          four: {kind: send, text: fine}
        """
    )
    assert problems == [
        "f.yaml:4: send step 'one': a message needs exactly one of text, media or template",
        "f.yaml:5: step 'two' has an unknown kind `wait`; the kinds are ask, branch, end, goto, "
        "handoff, http, send, sequence, set, start",
        "f.yaml:6: step 'three' has no `kind`: one of ask, branch, end, goto, handoff, http, "
        "send, sequence, set, start",
    ]
    assert flow is not None
    assert list(flow.steps) == ["four"]  # type: ignore[attr-defined]
    assert flow.broken == {"one", "two", "three"}  # type: ignore[attr-defined]
