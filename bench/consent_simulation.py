"""The consent simulation at scale: 100,000 seeded random consent events and sends (stop
and start words in many languages, buttons, Meta's user_preferences, 131050 failures,
API, agent and CSV changes, broadcasts with the toggle on and off, API sends, compose
with and without confirmation, bot sends) under marketing quiet hours and a frequency
cap, with the store and the sender closed and reopened every 10,000 events, against a
recording Cloud API on loopback (engine/devtools/consent_simulation.py).

Prints the violations (MARKETING to a contact opted out at that moment other than by a
bot, a confirmed compose or a broadcast with its toggle off; inside quiet hours or over
the cap from a broadcast or the API; a ledger that does not replay to the contacts'
opt-ins) and the throughput. Exits 1 on any violation.

Run: ``.venv/bin/python -m bench.consent_simulation [--events 100000] [--seed 1]``
(``--database-url postgresql://...`` for PostgreSQL; default a fresh SQLite file).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from engine.devtools.consent_simulation import Simulation, summary

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--step", type=int, default=50, help="events between outbox drains")
    parser.add_argument("--restart-every", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = args.database_url or f"sqlite:///{Path(directory) / 'consent.db'}"
        simulation = Simulation(
            url,
            seed=args.seed,
            contacts=args.contacts,
            events=args.events,
            step=args.step,
            restart_every=args.restart_every,
            templates_file=ROOT / "fixtures" / "templates.yaml",
        )
        report = asyncio.run(simulation.run())
    print(summary(report))
    sys.exit(1 if report.violations else 0)


if __name__ == "__main__":
    main()
