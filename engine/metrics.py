"""Prometheus instruments, one registry per application (tests run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "optinflow_http_requests",
            "HTTP requests answered, by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "optinflow_http_request_seconds",
            "Time to answer an HTTP request, by route.",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        # Inbound webhook.
        self.webhook_notifications = Counter(
            "optinflow_webhook_notifications",
            "Webhook notifications by outcome (received, ignored, bad_signature, "
            "malformed_json, invalid_notification, too_large).",
            ["outcome"],
            registry=self.registry,
        )
        self.webhook_items_skipped = Counter(
            "optinflow_webhook_items_skipped",
            "Items of accepted webhook notifications left out because they do not "
            "validate, by reason (invalid_message, invalid_status, invalid_contact, "
            "invalid_error, invalid_user_preference, invalid_value).",
            ["reason"],
            registry=self.registry,
        )
        self.inbound_messages = Counter(
            "optinflow_inbound_messages",
            "Inbound messages: stored, or a duplicate of one already stored; unknown_number: "
            "written to a business number not registered here (stored, never answered).",
            ["result"],
            registry=self.registry,
        )
        self.status_updates = Counter(
            "optinflow_status_updates",
            "Delivery statuses: applied, unmatched (kept for later), ignored (a status "
            "value we do not track), not_outbound (its id names a customer's message).",
            ["result"],
            registry=self.registry,
        )
        self.whatsapp_errors = Counter(
            "optinflow_whatsapp_errors",
            "Errors Meta reported in webhook notifications, by code.",
            ["code"],
            registry=self.registry,
        )
        # Background parts (engine/background.py).
        self.background_last_success = Gauge(
            "optinflow_background_last_success_timestamp_seconds",
            "When each background part last finished a round without an error (Unix time).",
            ["part"],
            registry=self.registry,
        )
        self.background_failures = Counter(
            "optinflow_background_failures",
            "Rounds of each background part that failed (they are retried).",
            ["part"],
            registry=self.registry,
        )
