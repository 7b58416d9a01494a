"""Outbound sending: queue N template messages and send them to the Cloud API simulator.

The simulator runs in its own process on loopback (like Meta, it is someone else's
server). In the same run, and against the same simulator:

- *bare*: a plain aiohttp client posting the same send bodies as fast as it can, with
  the same number of connections: the floor any sender pays for HTTP;
- *ours, unthrottled*: the real pipeline (outbox claims with leases, body building,
  the client, outcomes recorded in the store) with no rate limit; the ratio ours/bare
  is the target (>= 0.8);
- *ours at 80 and 1,000 messages per second*: the achieved rate, as the simulator saw
  the requests arrive, against the configured limit (within 2%).

Bare and ours alternate, round after round, and the medians are compared, because on a
small machine other load comes and goes between runs and the rates swing with it.

The rate ratio is the headline; beside it the bench prints the CPU seconds this process
spends per 1,000 messages in each round (``time.process_time``, all its threads: the
sender, its SQLite writes and commits, the HTTP client), bare and ours, and their
ratio. The sending process is what limits the rate (its event loop is busy the whole
run), so the CPU ratio is what the rate ratio tends to once the machine is quiet. It
swings less than the rates do, because time spent waiting for a core taken by something
else is not counted in it, but it is not immune: with other load the CPU per message of
both rises (shared caches, more wake-ups of the simulator), so compare bare and ours of
the same run, never figures of two runs. A change that lowers our CPU per message moves
the rate ratio by the same factor while the sender, not the simulator, is the bottleneck.

Where ours spends its ~140 us per message against bare's ~80 us (py-spy; cProfile
inflates the many small functions): the HTTP request, answer and event loop cost what
they cost bare; the store ~27 us at 256 messages per batch (the claim's UPDATE ...
RETURNING 6.5, recording ``sent`` 5.6, the status-history row 2.3, COMMIT 6.8 with a
random page of the unique wamid index dirtied per message, Python around them 2.8); the
sender's own Python 8-10 us spread thin. A ratio of 0.8 would leave ~20 us for all of
it, so it is out of reach while each send has a durable row before and after it.

Run: ``.venv/bin/python -m bench.outbound [--messages 5000] [--rounds 5]
[--profile FILE]`` (``--profile`` writes a cProfile of the unthrottled rounds of ours).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from engine.catalogue import load_templates
from engine.clock import SystemClock
from engine.devtools.cluster import free_port
from engine.devtools.simulator import SIMULATOR_TOKEN
from engine.models.contact import ConsentSource, Contact
from engine.models.content import TemplateContent
from engine.models.message import Channel
from engine.outbound.enqueue import OutboundRequest, enqueue
from engine.outbound.sender import Sender, SenderConfig
from engine.store import Store, Tx, open_store
from engine.store.contacts import Consent, ImportedContact
from engine.whatsapp.client import CloudApiClient
from engine.whatsapp.send import build_send_body, wire_json

ROOT = Path(__file__).resolve().parent.parent
PHONE_NUMBER_ID = "100000000000001"
API_VERSION = "v21.0"
CONCURRENCY = 64
TEMPLATE = "order_update"
INSPECT_TOKEN = "bench-simulator-token"
"""What the simulator's inspection routes need (its --api-token)."""
INSPECT = {"Authorization": f"Bearer {INSPECT_TOKEN}"}


@dataclass
class Simulator:
    process: subprocess.Popen[bytes]
    base: str

    async def reset(self, session: aiohttp.ClientSession) -> None:
        async with session.delete(f"{self.base}/messages", headers=INSPECT) as response:
            assert response.status == 204

    async def stats(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        async with session.get(f"{self.base}/stats", headers=INSPECT) as response:
            return await response.json()  # type: ignore[no-any-return]


def start_simulator(database: Path) -> Simulator:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.devtools.simulator",
            "--port",
            str(port),
            "--database-url",
            f"sqlite:///{database}",
            "--phone-number-id",
            PHONE_NUMBER_ID,
            "--api-token",
            INSPECT_TOKEN,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/simulator"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return Simulator(process, base)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the simulator did not start")


async def prepare(store: Store, count: int) -> list[Contact]:
    async def load(tx: Tx) -> None:
        for template in load_templates(ROOT / "fixtures" / "templates.yaml"):
            await tx.templates.put(template)

    await store.write(load)
    rows = [
        ImportedContact(
            wa_id=f"1650{n // 10000 + 200:03d}{n % 10000:04d}",
            name=None,
            marketing_opt_in=True,
            tags=(),
        )
        for n in range(count)
    ]
    for start in range(0, len(rows), 1000):
        chunk = rows[start : start + 1000]
        await store.write(
            lambda tx, chunk=chunk: tx.contacts.import_batch(  # type: ignore[misc]
                chunk, default_opt_in=True, consent=Consent(ConsentSource.IMPORT)
            )
        )
    contacts: list[Contact] = []
    async with store.read() as tx:
        after = None
        while True:
            page = await tx.contacts.list(after_id=after, limit=1000)
            contacts += page
            if len(page) < 1000:
                break
            after = page[-1].id
    return contacts


async def queue(store: Store, contacts: list[Contact], label: str) -> float:
    """Enqueue one template message per contact; the time it took."""
    clock = SystemClock()
    started = time.perf_counter()
    for start in range(0, len(contacts), 500):
        chunk = contacts[start : start + 500]

        async def job(tx: Tx, chunk: list[Contact] = chunk) -> None:
            for contact in chunk:
                content = TemplateContent(
                    name=TEMPLATE, language="en_US", params=(label, "on its way")
                )
                await enqueue(
                    tx, OutboundRequest(contact, Channel.BROADCAST, content), now=clock.now()
                )

        await store.write(job)
    return time.perf_counter() - started


@dataclass(frozen=True)
class Round:
    rate: float
    """Messages per second."""
    cpu_per_1000: float
    """CPU seconds of this process per 1,000 messages."""


def _round(count: int, wall: float, cpu: float) -> Round:
    return Round(count / wall, cpu / count * 1000)


async def bare(session: aiohttp.ClientSession, base: str, contacts: list[Contact]) -> Round:
    """A plain client posting the same bodies, CONCURRENCY at a time."""
    bodies = [
        wire_json(
            build_send_body(
                c.address,
                TemplateContent(name=TEMPLATE, language="en_US", params=("bare", "on its way")),
                reference=f"bare-{c.id}",
            )
        )
        for c in contacts
    ]
    url = f"{base}/{API_VERSION}/{PHONE_NUMBER_ID}/messages"
    headers = {"Authorization": f"Bearer {SIMULATOR_TOKEN}", "Content-Type": "application/json"}
    pending = iter(bodies)

    async def worker() -> None:
        for body in pending:
            async with session.post(url, data=body, headers=headers) as response:
                answer = await response.read()
                assert response.status == 200, answer
                json.loads(answer)["messages"][0]["id"]

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return _round(len(bodies), time.perf_counter() - started, time.process_time() - cpu)


async def ours(
    store: Store,
    session: aiohttp.ClientSession,
    base: str,
    count: int,
    rate: int | None,
    profile: cProfile.Profile | None = None,
) -> Round:
    """Run the sender until ``count`` queued messages are sent."""
    client = CloudApiClient(
        session, graph_base=base, api_version=API_VERSION, access_token=SIMULATOR_TOKEN
    )
    config = SenderConfig(
        default_phone_number_id=PHONE_NUMBER_ID,
        rate_limit=rate,
        concurrency=CONCURRENCY,
        poll_seconds=0.01,
    )
    done = asyncio.Event()
    recorded = 0

    def count_outcomes(outcomes: list[Any]) -> None:
        nonlocal recorded
        recorded += len(outcomes)
        if recorded >= count:
            done.set()

    sender = Sender(store, client, SystemClock(), config, on_outcomes=count_outcomes)
    if profile is not None:
        profile.enable()
    started, cpu = time.perf_counter(), time.process_time()
    sender.start()
    await done.wait()
    result = _round(count, time.perf_counter() - started, time.process_time() - cpu)
    if profile is not None:
        profile.disable()
    await sender.stop()
    assert sender.stats.failed == 0, sender.stats
    return result


async def run(messages: int, at_80: int, at_1000: int, rounds: int, profile_to: str | None) -> None:
    profile = cProfile.Profile() if profile_to else None
    with tempfile.TemporaryDirectory() as workdir:
        database = Path(workdir) / "bench.db"
        store = await open_store(f"sqlite:///{database}")
        simulator = start_simulator(database)
        try:
            contacts = await prepare(store, max(messages, at_80, at_1000))
            connector = aiohttp.TCPConnector(limit=CONCURRENCY)
            async with aiohttp.ClientSession(connector=connector) as session:
                await bare(session, simulator.base, contacts[:500])  # warm both processes
                await simulator.reset(session)

                # Alternate the two, so both see the same machine (other load comes and goes).
                bare_rounds: list[Round] = []
                ours_rounds: list[Round] = []
                enqueue_rates: list[float] = []
                for _ in range(rounds):
                    bare_rounds.append(await bare(session, simulator.base, contacts[:messages]))
                    await simulator.reset(session)
                    seconds = await queue(store, contacts[:messages], "unthrottled")
                    enqueue_rates.append(messages / seconds)
                    ours_rounds.append(
                        await ours(store, session, simulator.base, messages, None, profile)
                    )
                    seen = await simulator.stats(session)
                    assert seen["accepted"] == messages, seen
                    await simulator.reset(session)

                limited: list[tuple[int, int, float, float]] = []
                for limit, count in ((80, at_80), (1000, at_1000)):
                    await queue(store, contacts[:count], f"at {limit}")
                    wall = (await ours(store, session, simulator.base, count, limit)).rate
                    seen = await simulator.stats(session)
                    assert seen["accepted"] == count, seen
                    limited.append((limit, count, float(seen["rate"]), wall))
                    await simulator.reset(session)
        finally:
            simulator.process.terminate()
            simulator.process.wait(timeout=10)
            await store.close()

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if profile is not None and profile_to:
        profile.dump_stats(profile_to)
    bare_rates = [r.rate for r in bare_rounds]
    ours_rates = [r.rate for r in ours_rounds]
    bare_cpu = [r.cpu_per_1000 for r in bare_rounds]
    ours_cpu = [r.cpu_per_1000 for r in ours_rounds]
    bare_rate, ours_rate = statistics.median(bare_rates), statistics.median(ours_rates)
    bare_ms, ours_ms = statistics.median(bare_cpu) * 1000, statistics.median(ours_cpu) * 1000
    print(f"messages per run (template {TEMPLATE}, one per recipient): {messages}")
    print(f"connections: {CONCURRENCY}; rounds (bare then ours, alternating): {rounds}")
    print(f"enqueue (policy + outbox row), median   {statistics.median(enqueue_rates):8.0f} msg/s")
    print(f"bare aiohttp client, median             {bare_rate:8.0f} msg/s  {_each(bare_rates)}")
    print(f"ours, unthrottled, median               {ours_rate:8.0f} msg/s  {_each(ours_rates)}")
    print(f"ratio ours / bare (medians)             {ours_rate / bare_rate:8.2f}   (target >= 0.8)")
    print(f"CPU per 1,000 messages, bare, median    {bare_ms:8.0f} ms     {_each_ms(bare_cpu)}")
    print(f"CPU per 1,000 messages, ours, median    {ours_ms:8.0f} ms     {_each_ms(ours_cpu)}")
    print(f"CPU ratio bare / ours (medians)         {bare_ms / ours_ms:8.2f}   (as the rate ratio)")
    for limit, count, arrival, wall in limited:
        deviation = (arrival - limit) / limit * 100
        print(
            f"ours, limit {limit:>4}/s, {count:>5} messages   {arrival:8.1f} msg/s as received "
            f"({deviation:+.2f}%; target within 2%); {wall:.1f} msg/s end to end"
        )
    print(f"peak memory (this process)              {peak_mb:8.0f} MB")


def _each(rates: list[float]) -> str:
    return "(" + ", ".join(f"{rate:.0f}" for rate in rates) + ")"


def _each_ms(seconds: list[float]) -> str:
    return "(" + ", ".join(f"{value * 1000:.0f}" for value in seconds) + ")"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5000, help="for the unthrottled runs")
    parser.add_argument("--at-80", type=int, default=800, help="messages at 80 per second")
    parser.add_argument("--at-1000", type=int, default=5000, help="messages at 1,000 per second")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", help="write a cProfile of ours, unthrottled, here")
    args = parser.parse_args()
    asyncio.run(run(args.messages, args.at_80, args.at_1000, args.rounds, args.profile))


if __name__ == "__main__":
    main()
