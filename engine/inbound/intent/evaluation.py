"""Measuring a detector against the labelled messages of ``fixtures/opt_out_intent.yaml``.

>>> result = score([Labelled("stop ads", "en", True, "positive", "test")], lambda text: True)
>>> result.precision, result.recall, result.recall_by_language
(1.0, 1.0, {'en': 1.0})
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

LABELLED = Path(__file__).resolve().parents[3] / "fixtures" / "opt_out_intent.yaml"
OPT_OUT = "opt_out"


@dataclass(frozen=True, slots=True)
class Labelled:
    text: str
    language: str
    opt_out: bool
    kind: str
    split: str


@dataclass(frozen=True, slots=True)
class Score:
    messages: int
    true_positives: int
    false_positives: int
    false_negatives: int
    recall_by_language: dict[str, float]
    missed: tuple[str, ...]
    wrong: tuple[str, ...]

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_positives + self.false_negatives
        return self.true_positives / wanted if wanted else 1.0

    @property
    def f1(self) -> float:
        both = self.precision + self.recall
        return 2 * self.precision * self.recall / both if both else 0.0


def load_labelled(path: Path = LABELLED) -> list[Labelled]:
    rows = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        Labelled(
            text=str(row["text"]),
            language=str(row["language"]),
            opt_out=row["label"] == OPT_OUT,
            kind=str(row["kind"]),
            split=str(row["split"]),
        )
        for row in rows
    ]


def score(messages: Iterable[Labelled], says_opt_out: Callable[[str], bool]) -> Score:
    tp = fp = fn = 0
    wanted: dict[str, int] = {}
    found: dict[str, int] = {}
    missed: list[str] = []
    wrong: list[str] = []
    count = 0
    for message in messages:
        count += 1
        said = says_opt_out(message.text)
        if message.opt_out:
            wanted[message.language] = wanted.get(message.language, 0) + 1
            if said:
                tp += 1
                found[message.language] = found.get(message.language, 0) + 1
            else:
                fn += 1
                missed.append(message.text)
        elif said:
            fp += 1
            wrong.append(message.text)
    return Score(
        messages=count,
        true_positives=tp,
        false_positives=fp,
        false_negatives=fn,
        recall_by_language={
            language: found.get(language, 0) / total for language, total in sorted(wanted.items())
        },
        missed=tuple(missed),
        wrong=tuple(wrong),
    )
