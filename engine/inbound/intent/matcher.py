"""The default detector: the phrases of :mod:`.lexicon`, typo-tolerant, with guards.

The text is folded as keywords are (:func:`engine.keywords.normalise`), each word of six
letters or more that the lexicon does not know is replaced by the lexicon word at most
one edit away (two for long words; rapidfuzz's Damerau-Levenshtein, so "promotons" and
"unsubcribe" count), and the words are read left to right taking the longest phrase at each place.

It is an intent when an ``alone`` phrase is found, or a ``stop`` phrase followed by a
``marketing`` word within a few words, unless a guard holds: a ``keep`` phrase or a
negation just before the stop ("don't stop"), a ``retract`` phrase ("no wait"), or a
transactional topic next to a generic word ("stop the messages about my order").

>>> matcher = PhraseMatcher()
>>> [bool(matcher.detect(text)) for text in (
...     "please stop sending me promotions", "no more offers pls",
...     "dejen de mandarme promociones", "arrêtez les pubs", "pls stop the promotons")]
[True, True, True, True, True]
>>> [bool(matcher.detect(text)) for text in (
...     "don't stop the delivery", "STOP this terrible bill, it's wrong",
...     "stop by the store", "can you stop my order", "unsubscribe me from... no wait")]
[False, False, False, False, False]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein

from engine.inbound.intent import Intent
from engine.inbound.intent.lexicon import (
    ALONE,
    GENERIC_MARKETING,
    INSIST,
    KEEP,
    MARKETING,
    OBJECT_FIRST,
    OTHER,
    PHRASES,
    RETRACT,
    SOFT,
    STOP,
)
from engine.keywords import normalise

WINDOW = 6
"""Words at most between a stop phrase and what it stops."""
LONGEST_TEXT = 600
"""Longer messages are letters, not a wish to stop; they are not read."""
NEGATIONS = frozenset({"don t", "dont", "do not", "never", "not", "n", "nao", "non", "nicht"})
"""Words that turn a stop phrase just after them around ("don't stop", "n'arrêtez")."""


@dataclass(frozen=True, slots=True)
class _Found:
    kind: str
    phrase: str
    languages: tuple[str, ...]
    start: int
    end: int


class _Lexicon:
    def __init__(self) -> None:
        self.phrases: dict[tuple[str, ...], dict[str, list[str]]] = {}
        for language, kinds in PHRASES.items():
            for kind, phrases in kinds.items():
                for phrase in phrases:
                    words = tuple(normalise(phrase).split())
                    self.phrases.setdefault(words, {}).setdefault(kind, []).append(language)
        self.longest = max(len(words) for words in self.phrases)
        self.words = frozenset(word for words in self.phrases for word in words)
        self._spellable = sorted(word for word in self.words if len(word) >= 6)

    def correct(self, word: str) -> str:
        if word in self.words or len(word) < 6 or not word.isalpha():
            return word
        return _nearest(word, self)


@lru_cache(maxsize=8192)  # customers misspell the same few words
def _nearest(word: str, lexicon: _Lexicon) -> str:
    allowed = 2 if len(word) >= 9 else 1
    best = process.extractOne(
        word,
        lexicon._spellable,
        scorer=DamerauLevenshtein.distance,
        score_cutoff=allowed,
    )
    return word if best is None else str(best[0])


_LEXICON = _Lexicon()


class PhraseMatcher:
    name = "matcher"
    blocking = False

    def __init__(self) -> None:
        self._lexicon = _LEXICON

    def guarded(self, text: str) -> bool:
        """Whether a guard holds: a ``keep`` or ``retract`` phrase, or a negated stop."""
        words, found = self._read(text)
        return bool({item.kind for item in found} & {KEEP, RETRACT}) or any(
            item.kind in (STOP, ALONE) and _negated(words, item) for item in found
        )

    def _read(self, text: str) -> tuple[list[str], list[_Found]]:
        words = [self._lexicon.correct(word) for word in normalise(text).split()]
        return words, list(self._scan(words))

    def detect(self, text: str) -> Intent | None:
        if not text or len(text) > LONGEST_TEXT:
            return None
        words, found = self._read(text)
        kinds = {item.kind for item in found}
        if kinds & {KEEP, RETRACT}:
            return None
        for item in found:
            if item.kind == ALONE and not _negated(words, item):
                return Intent(item.languages[0], item.phrase)
        for stop in found:
            if stop.kind not in (STOP, SOFT) or _negated(words, stop):
                continue
            target = _target(stop, found)
            if target is None:
                continue
            if stop.kind == SOFT and not _insisted(stop, target, found):
                continue
            if target.phrase in GENERIC_MARKETING and OTHER in kinds:
                continue
            shared = [lang for lang in stop.languages if lang in target.languages]
            language = (shared or list(stop.languages))[0]
            return Intent(language, f"{stop.phrase} … {target.phrase}")
        return None

    def _scan(self, words: list[str]) -> Iterator[_Found]:
        phrases = self._lexicon.phrases
        at = 0
        while at < len(words):
            for size in range(min(self._lexicon.longest, len(words) - at), 0, -1):
                kinds = phrases.get(tuple(words[at : at + size]))
                if kinds:
                    # a phrase of several kinds ("stop" is also a marketing-less stop)
                    # is yielded once for each
                    for kind, languages in kinds.items():
                        yield _Found(
                            kind, " ".join(words[at : at + size]), tuple(languages), at, at + size
                        )
                    at += size
                    break
            else:
                at += 1


def _negated(words: list[str], found: _Found) -> bool:
    before = words[max(0, found.start - 2) : found.start]
    return any(" ".join(before[i:]) in NEGATIONS for i in range(len(before)))


def _insisted(stop: _Found, target: _Found, found: list[_Found]) -> bool:
    """A weak refusal ("no", "keine") counts when the message insists in the same language
    as it and its object ("no promos please", "keine Werbung mehr"), not when words of
    three languages happen to meet ("ya no tienen la oferta")."""
    languages = set(stop.languages) & set(target.languages)
    return any(item.kind == INSIST and languages & set(item.languages) for item in found)


def _target(stop: _Found, found: list[_Found]) -> _Found | None:
    object_first = any(language in OBJECT_FIRST for language in stop.languages)
    for item in found:
        if item.kind != MARKETING:
            continue
        after = 0 <= item.start - stop.end <= WINDOW
        before = object_first and 0 <= stop.start - item.end <= WINDOW
        if after or before:
            return item
    return None
