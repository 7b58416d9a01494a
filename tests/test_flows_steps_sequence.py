"""The ``sequence`` flow step: a customer's message runs a flow that enrols them in a
sequence (or takes them out), through the real webhook, dispatcher and bot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.clock import FrozenClock
from engine.flows.events import SequenceRequested
from engine.flows.runtime import Runtime, Trigger
from engine.whatsapp.signature import HEADER, sign
from tests.campaign_support import ORDER_UPDATE, Campaigns, number, start_campaigns
from tests.flowkit import contact, flow_set, write_flows
from tests.inbound_support import text_notification
from tests.outbound_support import APP_SECRET, eventually

JOIN = """
    id: join
    name: Join the drip
    triggers: {keywords: [join]}
    steps:
      enrol:
        kind: sequence
        sequence: Welcome drip
        next: thanks
      thanks:
        kind: send
        text: You are in.
"""
LEAVE = """
    id: leave
    name: Leave the drip
    triggers: {keywords: [leave]}
    steps:
      unenrol:
        kind: sequence
        action: unenrol
        sequence: Welcome drip
      bye:
        kind: send
        text: You are out.
"""
BROKEN = """
    id: broken
    name: A sequence that does not exist
    triggers: {keywords: [broken]}
    steps:
      enrol:
        kind: sequence
        sequence: No such drip
      after:
        kind: send
        text: Still here.
"""


def test_the_step_asks_for_the_enrolment_and_goes_on() -> None:
    flows = flow_set(JOIN)
    session, events = Runtime(flows).start("join", contact(), Trigger.manual())
    requested = [event for event in events if isinstance(event, SequenceRequested)]
    assert requested == [SequenceRequested("enrol", "Welcome drip", "join")]
    assert requested[0].describe() == "contact enrolled in sequence Welcome drip"
    assert session is not None
    assert session.status.value == "completed"


async def say(campaigns: Campaigns, body: str, wamid: str, sender: str) -> None:
    raw = json.dumps(text_notification(body, wamid=wamid, sender=sender)).encode()
    response = await campaigns.client.post(
        "/webhook",
        data=raw,
        headers={HEADER: sign(raw, APP_SECRET), "Content-Type": "application/json"},
    )
    assert response.status == 200, await response.text()


async def test_a_flow_enrols_and_unenrols_the_customer_who_writes(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    flows = write_flows(tmp_path / "flows", join=JOIN, leave=LEAVE, broken=BROKEN)
    campaigns = await start_campaigns(aiohttp_client, tmp_path, clock, FLOWS_DIR=flows)
    sequence = await campaigns.post(
        "/api/v1/sequences",
        {"name": "Welcome drip", "steps": [{"delay": "1d", "template": ORDER_UPDATE}]},
        201,
    )
    ann = number(0)

    await say(campaigns, "join", "wamid.join-1", ann)

    async def enrolled() -> dict[str, Any] | None:
        response = await campaigns.client.get(
            f"/api/v1/sequences/{sequence['id']}/enrollments/{ann}"
        )
        return await response.json() if response.status == 200 else None

    record = await eventually(enrolled, what="the flow to enrol the customer")
    assert (record["state"], record["source"]) == ("active", "flow:join")

    await say(campaigns, "join", "wamid.join-2", ann)  # already in: nothing changes

    async def thanked_twice() -> bool:
        texts = [r["body"].get("text", {}).get("body") for r in await campaigns.received(ann)]
        return texts.count("You are in.") == 2

    await eventually(thanked_twice, what="the flow to go on both times")
    assert (await campaigns.enrolment(sequence["id"], ann))["id"] == record["id"]

    await say(campaigns, "leave", "wamid.leave-1", ann)

    async def left() -> bool:
        state: str = (await campaigns.enrolment(sequence["id"], ann))["state"]
        return state == "unenrolled"

    await eventually(left, what="the flow to unenrol the customer")

    await say(campaigns, "broken", "wamid.broken-1", ann)

    async def went_on() -> bool:
        texts = [r["body"].get("text", {}).get("body") for r in await campaigns.received(ann)]
        return "Still here." in texts

    await eventually(went_on, what="the flow to go on past an unknown sequence")
