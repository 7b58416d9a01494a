"""Opt-out intent in free text: does a customer's message mean "stop sending me marketing"?

A stop *keyword* (the whole message is STOP, BAJA, ...) is a decision and is applied at
once (:mod:`engine.inbound.consent`); a sentence such as "please stop sending me
promotions" is a wish read by a detector, so it is only ever *asked about*
(:mod:`engine.inbound.consent_intent`). Each detector is one module behind
:class:`Detector`:

- :mod:`.matcher` (default): multilingual phrases with typo tolerance and guards;
- :mod:`.model` (the ``intent-model`` extra): a small local sentence-embedding model.

``CONSENT_INTENT_DETECTOR=matcher|model|off`` chooses one (:func:`.choose.build_detector`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Intent:
    """A message read as a wish to stop marketing."""

    language: str
    """The language of the words that gave it away, for the question's wording."""
    evidence: str
    """What gave it away (the phrases matched, or the nearest example and its score)."""


class Detector(Protocol):
    name: str

    @property
    def blocking(self) -> bool:
        """True when :meth:`detect` is slow enough to run off the event loop."""

    def detect(self, text: str) -> Intent | None: ...
