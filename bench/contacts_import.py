"""Contacts CSV import: time to import N rows through the real server, against a baseline.

The baseline, run in the same process tree, is the floor any import pays: reading the
CSV with the standard library and normalising every number with ``phonenumbers``.
Run: ``.venv/bin/python -m bench.contacts_import [--rows 50000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import tempfile
import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from engine.config import Settings
from engine.phone import to_wa_id
from engine.web.app import create_app

TOKEN = "bench-token"


def make_csv(rows: int) -> bytes:
    out = io.StringIO()
    out.write("phone,name,marketing_opt_in,tags\n")
    for n in range(rows):
        opt_in = "no" if n % 100 == 0 else "yes"
        number = f"+1 650 {200 + n // 10000:03d} {n % 10000:04d}"
        out.write(f"{number},Contact {n},{opt_in},bench;wave1\n")
    return out.getvalue().encode()


def baseline(data: bytes) -> float:
    started = time.perf_counter()
    reader = csv.reader(io.StringIO(data.decode()))
    next(reader)
    for row in reader:
        to_wa_id(row[0], "US")
    return time.perf_counter() - started


def _no_flows(workdir: Path) -> Path:
    folder = workdir / "flows"
    folder.mkdir(exist_ok=True)
    return folder


async def through_server(data: bytes, workdir: Path) -> tuple[float, dict[str, object]]:
    settings = Settings(
        _env_file=None,
        DATABASE_URL=f"sqlite:///{workdir / 'bench.db'}",
        API_TOKEN=TOKEN,
        TEMPLATES_FILE=None,
        FLOWS_DIR=_no_flows(workdir),  # bot flows need a catalogue; this bench has none
    )
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    try:
        started = time.perf_counter()
        response = await client.post(
            "/api/v1/contacts/import",
            data=data,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/csv"},
        )
        result = await response.json()
        elapsed = time.perf_counter() - started
        assert response.status == 200, result
        return elapsed, result
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    data = make_csv(args.rows)
    floor = baseline(data)
    with tempfile.TemporaryDirectory() as workdir:
        first, result = asyncio.run(through_server(data, Path(workdir)))
    print(f"rows                      {args.rows}")
    print(f"baseline (csv + phones)   {floor:6.2f} s  {args.rows / floor:9.0f} rows/s")
    print(f"import through the server {first:6.2f} s  {args.rows / first:9.0f} rows/s")
    print(f"created / errors          {result['created']} / {len(result['errors'])}")  # type: ignore[arg-type]
    print(f"ratio server / baseline   {first / floor:6.2f}x the time")


if __name__ == "__main__":
    main()
