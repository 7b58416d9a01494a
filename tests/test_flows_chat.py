"""``flows chat``: the welcome flow end to end in a terminal, with no server and no network."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import FIXTURES, ROOT


def chat(flow: str, typed: str, *args: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "engine", "flows", "chat", flow, *args],
        cwd=ROOT,
        input=typed,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "TEMPLATES_FILE": str(FIXTURES / "templates.yaml"), **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_welcome_flow_end_to_end() -> None:
    out = chat("welcome", "pizza\n2\n1\n", "--name", "Ann", "--opted-out")
    assert "bot> Hi Ann! How can we help you today?\n  1. Order status\n  2. See offers\n" in out
    assert "bot> Please tap one of the buttons, or type its number." in out
    assert (
        "bot> [template new_arrivals, MARKETING] New arrivals are in, Ann! "
        "Take a look before they are gone." in out
    )
    assert "  · flow consent started" in out
    assert "  · contact tags +consent_asked" in out
    assert "  · marketing opt-in set to YES (consent source bot, actor consent)" in out
    assert "bot> Great, you are subscribed." in out


def test_http_answers_are_typed_and_handoffs_silence_the_bot() -> None:
    out = chat(
        "order_status",
        '12345\n{"status": "on its way"}\nhuman\nhello?\n/release\n/timeout\n/quit\n',
        FLOW_ORDERS_URL="https://shop.example/orders",
    )
    assert "  · http GET https://shop.example/orders/12345" in out
    assert "bot> [template order_update, UTILITY] Your order 12345 is on its way." in out
    assert "  · handed off to the agents (queue support); the bot stays silent." in out
    assert "  · an agent owns the conversation: the bot stays silent (/release)" in out
    assert "  · no timeout is armed" in out
