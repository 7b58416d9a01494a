"""Prometheus instruments of the outbound pipeline (on the application's registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class OutboundMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry or CollectorRegistry()
        self.sent = Counter(
            "optinflow_outbound_sent",
            "Messages Meta accepted (we hold the wamid).",
            registry=registry,
        )
        self.failed = Counter(
            "optinflow_outbound_failed",
            "Messages that failed at send time, by code.",
            ["code"],
            registry=registry,
        )
        self.withheld = Counter(
            "optinflow_outbound_withheld",
            "Queued messages not sent because the marketing opt-in rule, asked again just "
            "before sending, no longer allowed them (the contact opted out), by code.",
            ["code"],
            registry=registry,
        )
        self.retries = Counter(
            "optinflow_outbound_retries",
            "Send attempts that will be tried again, by code.",
            ["code"],
            registry=registry,
        )
        self.ambiguous = Counter(
            "optinflow_outbound_ambiguous_attempts",
            "Attempts with an unknown outcome that are tried again (reclaimed leases, "
            "timeouts after the request was written).",
            registry=registry,
        )
        self.send_seconds = Histogram(
            "optinflow_outbound_send_seconds",
            "Time of one Cloud API send call.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.callbacks = Counter(
            "optinflow_callback_deliveries",
            "Integration callback deliveries, by outcome.",
            ["outcome"],
            registry=registry,
        )
