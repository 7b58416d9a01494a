"""``python -m engine worker``: the background parts of optinflow, without the web.

A worker runs the sender, integration callbacks, the campaign worker, the inbound
hand-off to the bot and flow wake-ups (see :mod:`engine.composition`). Run any number
of them beside web processes started with ``OUTBOUND_WORKER=false``, on one database;
the store's leases keep them from doing the same work twice. SIGINT or SIGTERM stops a
worker cleanly: what it claimed but did not start is put back.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from engine.composition import Background, assemble
from engine.config import load_settings
from engine.flows.flowset import FlowsInvalid
from engine.store import StoreUnavailable


async def run_worker() -> None:
    settings = load_settings()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with assemble(settings, background=Background(sending=True, answering=True)):
        print("optinflow worker is running", flush=True)
        await stop.wait()
    print("optinflow worker stopped", flush=True)


def _worker(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(run_worker())
    except (FlowsInvalid, StoreUnavailable) as cannot:
        print(f"optinflow worker did not start: {cannot}", file=sys.stderr, flush=True)
        return 1
    return 0


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = commands.add_parser(
        "worker", help="run the background parts (sender, campaigns, bot hand-off, callbacks)"
    )
    worker.set_defaults(run=_worker)
