"""``http``: call an integration and keep its JSON answer in a variable.

.. code-block:: yaml

    lookup:
      kind: http
      method: POST                     # default: POST with a body, else GET
      url: "{{ env.FLOW_ORDERS_URL }}/lookup"
      headers: {Authorization: "Bearer {{ env.FLOW_ORDERS_TOKEN }}"}
      body: {order: "{{ vars.order_number }}"}
      timeout: 5s
      save_as: order
      next: show_status
      on_error: lookup_failed

The answer must be JSON with a 2xx status; a timeout, a connection failure, an
error status or an answer that is not JSON goes to ``on_error`` with the reason in
``vars.http_error``. The call happens outside the runtime: the flow waits for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from engine.flows.events import FlowError, HttpRequested
from engine.flows.model import Duration, Exit, Source, Step, StepName, VariableName, step_kind
from engine.flows.outcomes import Go, Outcome, Wait, WaitKind
from engine.flows.render import RenderError
from engine.flows.resumptions import FlowInput, HttpResult
from engine.flows.run import Run
from engine.flows.steps.set import _sources

HTTP_ERROR_VARIABLE = "http_error"
MAX_TIMEOUT_SECONDS = 60.0


@step_kind
class HttpStep(Step):
    """Call a URL with an optional JSON body; the JSON answer goes to ``save_as``."""

    kind: Literal["http"] = "http"
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] | None = None
    url: str = Field(description="http or https URL (jinja2)")
    headers: dict[str, str] = Field(default_factory=dict, description="values are jinja2")
    body: Any = Field(default=None, description="sent as JSON; texts inside are jinja2")
    timeout: Duration = Field(default=10.0, le=MAX_TIMEOUT_SECONDS)
    save_as: VariableName = Field(description="the variable that gets the JSON answer")
    next: StepName | None = None
    on_error: StepName = Field(description="where the flow goes when the call fails")

    def exits(self) -> list[Exit]:
        return [Exit("ok", self.next, ("next",)), Exit("error", self.on_error, ("on_error",))]

    def sources(self) -> Iterator[Source]:
        yield Source(("url",), self.url)
        yield from _sources(("headers",), dict(self.headers))
        yield from _sources(("body",), self.body)

    @property
    def verb(self) -> str:
        return self.method or ("GET" if self.body is None else "POST")

    def run(self, run: Run) -> Outcome:
        try:
            url = run.render(self.url).strip()
            headers = {key: run.render(value) for key, value in self.headers.items()}
            body = None if self.body is None else run.value(self.body)
        except RenderError as error:
            return self._failed(run, f"the request could not be written: {error}", author=True)
        if not url.startswith(("http://", "https://")):
            return self._failed(run, f"{url!r} is not an http(s) URL", author=True)
        run.http_calls += 1
        run.emit(HttpRequested(self.verb, url, headers, body, self.timeout))
        return Wait(WaitKind.HTTP, self.timeout)

    def resume(self, run: Run, given: FlowInput) -> Outcome:
        if not isinstance(given, HttpResult):
            raise ValueError("an http step waits for its answer, not for the customer")
        if not given.ok:
            return self._failed(run, given.error or "the call failed")
        run.vars.pop(HTTP_ERROR_VARIABLE, None)
        run.vars[self.save_as] = given.body
        return Go(self.next)

    def _failed(self, run: Run, reason: str, *, author: bool = False) -> Outcome:
        if author:
            run.emit(FlowError(run.flow.id, run.step, reason))
        run.vars[HTTP_ERROR_VARIABLE] = reason
        return Go(self.on_error)
