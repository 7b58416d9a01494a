"""``CONSENT_INTENT_DETECTOR``: which detector reads customers' texts."""

from __future__ import annotations

from typing import Literal

from engine.inbound.intent import Detector
from engine.inbound.intent.matcher import PhraseMatcher

DetectorChoice = Literal["matcher", "model", "off"]


def build_detector(choice: DetectorChoice) -> Detector | None:
    if choice == "off":
        return None
    if choice == "model":
        # Imported here: without the extra, the model's module is never loaded.
        from engine.inbound.intent.model import EmbeddingDetector

        return EmbeddingDetector()
    return PhraseMatcher()
