"""Broadcast planning: 100,000 contacts (1% opted out) planned into the outbox.

Each measurement runs in a process of its own, on its own copy of the same database
(SQLite file, the store's settings), so their peak memory is theirs alone:

- *bare*: one ``INSERT ... SELECT`` of the same message rows (and their first status
  rows) from the contacts table, in one transaction: the floor for writing the rows,
  with no audience pages, no policy, no request bodies, no batches;
- *ours*: a broadcast to a tag is created (its audience counted, as the API does), then
  the campaign worker plans it as in the server: audience pages by contact id, the
  policy asked for every recipient, one store job per batch (webhooks interleave), the
  request bodies built, the recipients tied to the broadcast.

The two alternate for a few rounds and the medians are reported. Targets: planned in
at most 2 s, at most 150 MB.

Run: ``.venv/bin/python -m bench.broadcast [--contacts 100000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from engine.campaigns import broadcasts
from engine.campaigns.broadcasts import BroadcastSettings
from engine.campaigns.worker import CampaignConfig, CampaignWorker
from engine.catalogue import load_templates
from engine.clock import SystemClock
from engine.models.campaign import AudienceSpec, BroadcastState
from engine.models.contact import ConsentSource
from engine.models.content import TemplateContent
from engine.store import Tx, open_store
from engine.store.contacts import Consent, ImportedContact

ROOT = Path(__file__).resolve().parent.parent
TAG = "bench"
CONTENT = TemplateContent(name="new_arrivals", language="en_US", params=("friend",))
TARGET_SECONDS = 2.0
TARGET_MB = 150


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def prepare(path: Path, count: int) -> None:
    store = await open_store(f"sqlite:///{path}")

    async def load(tx: Tx) -> None:
        for template in load_templates(ROOT / "fixtures" / "templates.yaml"):
            await tx.templates.put(template)

    await store.write(load)
    consent = Consent(ConsentSource.IMPORT)
    for start in range(0, count, 1000):
        rows = [
            ImportedContact(
                wa_id=f"1650{n // 10000 + 200:03d}{n % 10000:04d}",
                name=None,
                marketing_opt_in=n % 100 != 0,  # 1% opted out
                tags=(TAG,),
            )
            for n in range(start, min(count, start + 1000))
        ]
        await store.write(
            lambda tx, rows=rows: tx.contacts.import_batch(  # type: ignore[misc]
                rows, default_opt_in=True, consent=consent
            )
        )
    await store.close()


def bare(path: Path) -> dict[str, float]:
    """The same rows in one INSERT ... SELECT."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = FULL")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT INTO messages (id, direction, channel, contact_id, kind, text, template,"
        " payload, status, created_at, updated_at, priority, recipient, next_attempt_at,"
        " request_body)"
        " SELECT printf('%036d', c.id), 'outbound', 'broadcast', c.id, 'template', ?, ?, ?,"
        " CASE WHEN c.marketing_opt_in THEN 'queued' ELSE 'skipped' END, ?, ?, 2, c.wa_id, ?,"
        " CASE WHEN c.marketing_opt_in THEN json_object('messaging_product', 'whatsapp',"
        " 'recipient_type', 'individual', 'to', c.wa_id, 'type', 'template', 'template',"
        " json(?), 'biz_opaque_callback_data', printf('%036d', c.id)) END"
        " FROM contacts c JOIN contact_tags t ON t.contact_id = c.id AND t.tag = ?",
        (
            "New arrivals are in, friend!",
            json.dumps({"name": CONTENT.name, "language": CONTENT.language}),
            CONTENT.model_dump_json(),
            now,
            now,
            now,
            json.dumps(
                {
                    "name": CONTENT.name,
                    "language": {"code": CONTENT.language},
                    "components": [
                        {"type": "body", "parameters": [{"type": "text", "text": "friend"}]}
                    ],
                }
            ),
            TAG,
        ),
    )
    conn.execute(
        "INSERT INTO message_statuses (message_id, status, at) SELECT id, status, created_at"
        " FROM messages"
    )
    conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    rows = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    conn.close()
    return {"seconds": seconds, "rows": rows, "peak_mb": peak_mb()}


async def ours(path: Path, batch_size: int) -> dict[str, float]:
    clock = SystemClock()
    store = await open_store(f"sqlite:///{path}", clock=clock)
    audience = AudienceSpec(tags=(TAG,))
    started = time.perf_counter()
    now = clock.now()
    broadcast, _ = await broadcasts.count_and_create(
        store,
        name="bench",
        content=CONTENT,
        audience=audience,
        opted_in_only=True,
        send_at=now,
        now=now,
    )
    counted_seconds = time.perf_counter() - started
    worker = CampaignWorker(
        store, clock, CampaignConfig(broadcasts=BroadcastSettings(batch_size=batch_size))
    )
    started = time.perf_counter()
    while True:
        await worker.run_once()
        async with store.read() as tx:
            found = await tx.broadcasts.get(broadcast.id)
        assert found is not None
        if found.planning_done or found.state is not BroadcastState.SENDING:
            break
    seconds = time.perf_counter() - started
    async with store.read() as tx:
        counts = await tx.broadcasts.counts(broadcast.id)
    await store.close()
    return {
        "seconds": seconds,
        "counted_seconds": counted_seconds,
        "rows": found.planned,
        "queued": counts.get("queued", 0),
        "skipped": counts.get("skipped", 0),
        "peak_mb": peak_mb(),
    }


def child(args: argparse.Namespace) -> None:
    path = Path(args.database)
    result = bare(path) if args.child == "bare" else asyncio.run(ours(path, args.batch))
    print(json.dumps(result))


def run_child(kind: str, template: Path, folder: Path, batch: int) -> dict[str, float]:
    copy = folder / f"{kind}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(copy) + suffix).unlink(missing_ok=True)
    shutil.copy(template, copy)
    output = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.broadcast",
            "--child",
            kind,
            "--database",
            str(copy),
            "--batch",
            str(batch),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1000, help="recipients per store job")
    parser.add_argument("--child", choices=["bare", "ours"])
    parser.add_argument("--database")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        template = folder / "prepared.db"
        started = time.perf_counter()
        asyncio.run(prepare(template, args.contacts))
        prepared = time.perf_counter() - started
        print(f"contacts {args.contacts} (1% opted out), prepared in {prepared:.1f} s")
        print(f"batch size {args.batch}; rounds (bare then ours, alternating): {args.rounds}")
        runs: dict[str, list[dict[str, float]]] = {"bare": [], "ours": []}
        for _ in range(args.rounds):
            for kind in ("bare", "ours"):
                runs[kind].append(run_child(kind, template, folder, args.batch))

    def median(kind: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[kind])

    def each(kind: str, key: str) -> str:
        return ", ".join(f"{run[key]:.2f}" for run in runs[kind])

    bare_s, ours_s = median("bare", "seconds"), median("ours", "seconds")
    last = runs["ours"][-1]
    lines = [
        (
            "rows planned (ours)",
            f"{last['rows']:.0f} ({last['queued']:.0f} queued, {last['skipped']:.0f} skipped)",
        ),
        ("bare INSERT ... SELECT, median", f"{bare_s:.2f} s  ({each('bare', 'seconds')})"),
        (
            "ours, planning, median",
            f"{ours_s:.2f} s  ({each('ours', 'seconds')})  target <= {TARGET_SECONDS:.0f} s",
        ),
        (
            "ours, creating (audience counted)",
            f"{median('ours', 'counted_seconds'):.2f} s  (once, before planning)",
        ),
        ("ratio ours / bare (medians)", f"{ours_s / bare_s:.1f}x"),
        ("peak memory, bare process", f"{median('bare', 'peak_mb'):.0f} MB"),
        (
            "peak memory, ours process",
            f"{median('ours', 'peak_mb'):.0f} MB  target <= {TARGET_MB} MB",
        ),
    ]
    for label, figure in lines:
        print(f"{label:<36}{figure}")


if __name__ == "__main__":
    main()
