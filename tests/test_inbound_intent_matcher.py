"""The phrase matcher over the labelled messages of ``fixtures/opt_out_intent.yaml``: the
floors it was measured at (a regression guard; the figures are in the README), on the
half its phrases were written from and on the held-out half."""

from __future__ import annotations

from collections import Counter

import pytest

from engine.inbound.intent.evaluation import Labelled, load_labelled, score
from engine.inbound.intent.matcher import PhraseMatcher

LABELLED = load_labelled()
MATCHER = PhraseMatcher()


def says_opt_out(text: str) -> bool:
    return MATCHER.detect(text) is not None


def test_the_labelled_set_is_large_varied_and_split() -> None:
    assert len(LABELLED) >= 400
    assert len({m.text for m in LABELLED}) == len(LABELLED), "no message twice"
    positives = Counter(m.language for m in LABELLED if m.opt_out)
    assert {"en", "es", "fr", "pt", "de", "it"} <= set(positives)
    assert all(count >= 10 for count in positives.values())
    kinds = Counter(m.kind for m in LABELLED)
    assert kinds["hard_negative"] >= 80
    assert kinds["everyday"] >= 80
    assert all(m.opt_out == (m.kind == "positive") for m in LABELLED)
    splits = Counter(m.split for m in LABELLED)
    assert set(splits) == {"train", "test", "fresh"}
    assert splits["train"] >= 180
    assert splits["test"] >= 180


@pytest.mark.parametrize("split", ["train", "test"])
def test_precision_and_recall_stay_at_their_measured_floors(split: str) -> None:
    result = score([m for m in LABELLED if m.split == split], says_opt_out)
    assert result.precision >= 0.98, result.wrong
    assert result.recall >= 0.97, result.missed
    for language, recall in result.recall_by_language.items():
        assert recall >= 0.9, (language, result.missed)


def test_messages_written_after_the_phrases_were_frozen_stay_at_their_floor() -> None:
    result = score([m for m in LABELLED if m.split == "fresh"], says_opt_out)
    assert result.messages >= 40
    assert result.precision >= 0.97, result.wrong
    assert result.recall >= 0.8, result.missed


@pytest.mark.parametrize(
    "text",
    [
        "don't stop the delivery",
        "STOP this terrible bill, it's wrong",
        "stop by the store",
        "can you stop my order",
        "unsubscribe me from... no wait",
        "please don't stop sending me offers",
        "why did you stop sending me promotions?",
        "¿hasta cuándo dura la promoción?",
        "stop sending the invoice to my old email",
        "stop sending me messages about my order",
    ],
)
def test_hard_negatives_are_not_read_as_intent(text: str) -> None:
    assert MATCHER.detect(text) is None


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("please stop sending me promotions", "en"),
        ("pls stop the promotons", "en"),
        ("unsubcribe me pls", "en"),
        ("dejen de mandarme promociones", "es"),
        ("no me manden mas promosiones", "es"),
        ("arrêtez les pubs", "fr"),
        ("parem de me mandar promoções", "pt"),
        ("bitte keine Werbung mehr", "de"),
        ("Werbung abbestellen bitte", "de"),
        ("non voglio più ricevere offerte", "it"),
        ("jangan kirim promo lagi", "id"),
        ("promotions mat bhejo", "hi"),
    ],
)
def test_wishes_in_many_languages_and_with_typos_are_read_with_their_language(
    text: str, language: str
) -> None:
    intent = MATCHER.detect(text)
    assert intent is not None
    assert intent.language == language


def test_a_letter_is_not_read() -> None:
    assert MATCHER.detect("please stop sending me promotions. " * 30) is None


def test_the_score_counts_what_it_is_given() -> None:
    messages = [
        Labelled("a", "en", True, "positive", "test"),
        Labelled("b", "en", True, "positive", "test"),
        Labelled("c", "en", False, "everyday", "test"),
    ]
    result = score(messages, lambda text: text in ("a", "c"))
    assert (result.precision, result.recall, result.f1) == (0.5, 0.5, 0.5)
    assert result.missed == ("b",)
    assert result.wrong == ("c",)
