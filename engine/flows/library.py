"""The flows a server runs: loaded from ``FLOWS_DIR`` at start, replaced on reload.

A reload that does not validate raises :class:`FlowsInvalid` and keeps the flows
that were running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path

from engine.flows.flowset import FlowSet, FlowsInvalid, flow_env, load_flow_set
from engine.flows.loader import Problem
from engine.flows.runtime import Runtime
from engine.store import Store

log = logging.getLogger(__name__)


class FlowLibrary:
    def __init__(self, directory: Path, *, env: Mapping[str, str] | None = None) -> None:
        self.directory = directory
        self._env = flow_env() if env is None else dict(env)
        self._runtime = Runtime(FlowSet.of([]))
        self._lock = asyncio.Lock()

    @property
    def runtime(self) -> Runtime:
        return self._runtime

    @property
    def flows(self) -> FlowSet:
        return self._runtime.flows

    async def load(self, store: Store) -> FlowSet:
        """Read and validate every flow against the store's template catalogue; on
        success they replace the running ones, else :class:`FlowsInvalid`."""
        async with self._lock:
            async with store.read() as tx:
                catalogue = await tx.templates.list()
            if not self.directory.is_dir():
                raise FlowsInvalid(
                    [Problem(str(self.directory), 0, "the flows folder (FLOWS_DIR) does not exist")]
                )
            flows = await asyncio.to_thread(
                load_flow_set,
                [self.directory],
                catalogue,
                env=self._env,
                relative_to=self.directory,
            )
            self._runtime = Runtime(flows)
            log.info("loaded %d flows from %s", len(flows.flows), self.directory)
            return flows
