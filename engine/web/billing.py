"""What Meta priced, as the reports show it."""

from __future__ import annotations

from typing import Any

from engine.store.messages import BillingLine, Pricing


def billing_json(lines: list[BillingLine]) -> dict[str, Any]:
    """Messages Meta priced by pricing category, and how many it said were billable:
    ``{"by_category": {category: {"messages", "billable"}}, "billable": total}``."""
    return {
        "by_category": {
            line.category: {"messages": line.messages, "billable": line.billable} for line in lines
        },
        "billable": sum(line.billable for line in lines),
    }


def pricing_json(pricing: Pricing | None) -> dict[str, Any] | None:
    if pricing is None:
        return None
    return {
        "billable": pricing.billable,
        "pricing_model": pricing.pricing_model,
        "type": pricing.type,
        "category": pricing.category,
    }
