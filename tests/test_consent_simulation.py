"""The consent simulation (engine/devtools/consent_simulation.py): a few thousand seeded,
random consent events and sends against a real database, a real sender and a recording
Cloud API, with restarts in between; nothing that reached the Cloud API breaks the send
rules, and the ledger replays to every contact's opt-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.devtools.consent_simulation import Simulation, summary
from engine.models.marketing_limits import MarketingLimits
from tests.conftest import FIXTURES
from tests.databases import database_url


# A few thousand events take about 20 s on SQLite and 2-3 minutes on PostgreSQL here.
@pytest.mark.timeout(600)
@pytest.mark.parametrize("seed", [7, 2026])
async def test_no_marketing_breaks_the_rules_in_a_seeded_run(tmp_path: Path, seed: int) -> None:
    simulation = Simulation(
        database_url(tmp_path / "simulation.db"),
        seed=seed,
        contacts=60,
        events=2500,
        step=20,
        restart_every=800,
        templates_file=FIXTURES / "templates.yaml",
    )
    report = await simulation.run()
    print(summary(report))
    assert report.violations == []
    assert report.restarts == 3
    # The run exercised what it claims to: every kind of event, and the limits bit.
    assert len(report.kinds) >= 14
    assert "intent_stop" in report.kinds, "an opt-out intent confirmed with its button"
    assert report.marketing_posted > 200
    outcomes = report.outcomes
    for outcome in (
        "api_held_for_quiet_hours",
        "api_frequency_cap",
        "api_marketing_opt_out",
        "compose_needs_confirmation",
        "withheld_or_held_at_send_time",
    ):
        assert outcomes.get(outcome, 0) > 0, outcome


async def test_the_check_finds_a_violation_when_the_limits_are_not_applied(
    tmp_path: Path,
) -> None:
    """The checker is not blind: the engine is told of no limits while the check keeps
    them, and what then reaches the Cloud API breaks them."""
    simulation = Simulation(
        database_url(tmp_path / "simulation.db"),
        seed=3,
        contacts=20,
        events=600,
        step=20,
        restart_every=10_000,
        templates_file=FIXTURES / "templates.yaml",
        limits=MarketingLimits(),
    )
    checked = MarketingLimits.parse("21:00-09:00", "1/24h")
    simulation.check_limits = checked
    report = await simulation.run()
    assert any(v.startswith("quiet hours") for v in report.violations)
    assert any(v.startswith("over the cap") for v in report.violations)
