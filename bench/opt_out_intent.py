"""Opt-out intent detectors over the labelled messages of ``fixtures/opt_out_intent.yaml``:
precision, recall, F1 and recall per language, on the half the phrases and examples were
written from (train), on the held-out half (test), on the messages written after the phrase
lists were frozen (fresh), and on all, with the time per message.

The phrase matcher always; with the ``intent-model`` extra installed, the embedding model
as the ``model`` detector runs it (phrases first, then the embedding) and the embedding
alone (without the phrases or their guards; on the train half each message is its own
example, so only the held-out figures say anything of it).
Run: ``.venv/bin/python -m bench.opt_out_intent [--show-errors]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from engine.inbound.intent import Intent
from engine.inbound.intent.evaluation import Labelled, load_labelled, score
from engine.inbound.intent.matcher import PhraseMatcher
from engine.inbound.intent.model import available

Detect = Callable[[str], Intent | None]


def detectors() -> list[tuple[str, Detect]]:
    found: list[tuple[str, Detect]] = [("matcher", PhraseMatcher().detect)]
    if available():
        from engine.inbound.intent.model import EmbeddingDetector

        started = time.perf_counter()
        model = EmbeddingDetector()
        print(f"(the model loaded in {time.perf_counter() - started:.1f} s)")
        found += [("model", model.detect), ("embedding alone", model.embedding_alone)]
    else:
        print("(the intent-model extra is not installed: the matcher only)")
    return found


def report(name: str, detect: Detect, messages: list[Labelled], show_errors: bool) -> None:
    timings: list[float] = []

    def timed(text: str) -> bool:
        started = time.perf_counter()
        found = detect(text) is not None
        timings.append(time.perf_counter() - started)
        return found

    for split in ("train", "test", "fresh", "all"):
        chosen = [m for m in messages if split in ("all", m.split)]
        result = score(chosen, timed)
        languages = " ".join(f"{k}={v:.2f}" for k, v in result.recall_by_language.items())
        print(
            f"{name:16} {split:5} n={result.messages:3}  precision={result.precision:.3f}"
            f"  recall={result.recall:.3f}  f1={result.f1:.3f}  recall by language: {languages}"
        )
        if show_errors and split in ("test", "fresh"):
            for text in result.missed:
                print(f"    missed: {text}")
            for text in result.wrong:
                print(f"    wrong:  {text}")
    ordered = sorted(timings)
    print(
        f"{name:16} time per message: mean {statistics.fmean(timings) * 1000:.3f} ms,"
        f" p95 {ordered[int(len(ordered) * 0.95)] * 1000:.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--show-errors", action="store_true", help="list held-out and fresh mistakes"
    )
    args = parser.parse_args()
    messages = load_labelled()
    print(f"{len(messages)} labelled messages, {sum(m.opt_out for m in messages)} opt-out wishes")
    for name, detect in detectors():
        report(name, detect, messages, args.show_errors)


if __name__ == "__main__":
    main()
