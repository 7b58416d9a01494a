"""Test harness for campaigns: the real server with its built-in simulator (statuses come
back through the real, signed ``POST /webhook``), contacts loaded through the CSV import,
and time driven by the test's FrozenClock."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from engine.clock import FrozenClock
from engine.web.keys import CALLBACKS, CAMPAIGNS, SENDER
from tests.outbound_support import Outbound, eventually, start_outbound

SPRING_SALE = {"name": "spring_sale", "language": "en_US", "params": ["friend", "20%"]}
NEW_ARRIVALS = {"name": "new_arrivals", "language": "en_US", "params": ["friend"]}
ORDER_UPDATE = {"name": "order_update", "language": "en_US", "params": ["A-1", "ready"]}


def number(index: int) -> str:
    """The wa_id of test contact ``index`` (valid US numbers)."""
    return f"1650555{index:04d}"


@dataclass
class Campaigns:
    outbound: Outbound

    @property
    def client(self) -> Any:
        return self.outbound.client

    @property
    def clock(self) -> FrozenClock:
        return self.outbound.clock

    def advance(self, **delta: float) -> None:
        """Move time on and tell every worker (they would notice at their next poll)."""
        app = self.outbound.app
        self.clock.advance(**delta)
        app[SENDER].wake()
        app[CALLBACKS].wake()
        app[CAMPAIGNS].wake()

    async def import_contacts(
        self,
        count: int,
        *,
        opted_out: AbstractSet[int] = frozenset(),
        tags: str = "",
        start: int = 0,
    ) -> list[str]:
        """Contacts ``start``..``start + count - 1``; those in ``opted_out`` say NO."""
        lines = ["wa_id,marketing_opt_in,tags"]
        numbers = []
        for index in range(start, start + count):
            numbers.append(number(index))
            lines.append(f"{number(index)},{'no' if index in opted_out else 'yes'},{tags}")
        response = await self.client.post(
            "/api/v1/contacts/import",
            data="\n".join(lines).encode(),
            headers={"Content-Type": "text/csv"},
        )
        assert response.status == 200, await response.text()
        answer = await response.json()
        assert answer["errors"] == [], answer
        return numbers

    async def post(self, path: str, body: Any, status: int) -> dict[str, Any]:
        response = await self.client.post(path, json=body)
        assert response.status == status, await response.text()
        return await response.json()  # type: ignore[no-any-return]

    async def get(self, path: str, status: int = 200, **params: Any) -> dict[str, Any]:
        response = await self.client.get(path, params=params)
        assert response.status == status, await response.text()
        return await response.json()  # type: ignore[no-any-return]

    async def broadcast(self, broadcast_id: str) -> dict[str, Any]:
        return await self.get(f"/api/v1/broadcasts/{broadcast_id}")

    async def wait_for_broadcast(self, broadcast_id: str, *states: str) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            found = await self.broadcast(broadcast_id)
            return found if found["state"] in states else None

        return await eventually(reached, what=f"broadcast {broadcast_id} to be {states}")  # type: ignore[no-any-return]

    async def received(self, to: str | None = None) -> list[dict[str, Any]]:
        return await self.outbound.received(to)

    async def enrolment(self, sequence_id: str, wa_id: str) -> dict[str, Any]:
        return await self.get(f"/api/v1/sequences/{sequence_id}/enrollments/{wa_id}")


async def start_campaigns(
    aiohttp_client: Any, tmp_path: Any, clock: FrozenClock, **overrides: Any
) -> Campaigns:
    values: dict[str, Any] = {"CAMPAIGN_POLL_SECONDS": 0.02, "OUTBOUND_RATE_LIMIT": 1000}
    values.update(overrides)
    return Campaigns(await start_outbound(aiohttp_client, tmp_path, clock, **values))
