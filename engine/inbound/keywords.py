"""Stop and start words, and the quick-reply payloads that mean the same.

A message is a consent keyword when its *whole* text is one, compared after
:func:`normalise`: case, accents, the punctuation, symbols and whitespace around it,
and runs of them inside it do not matter.

>>> normalise("  ¡Désabonner!! ")
'desabonner'
>>> normalise("STOP   promotions.")
'stop promotions'
>>> rules = ConsentRules.build(stop_words=["STOP", "ARRÊT"], start_words=["START"])
>>> rules.keyword("arret 🛑"), rules.keyword("Start"), rules.keyword("stop sending me that")
(<Signal.STOP: 'stop'>, <Signal.START: 'start'>, None)
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from engine.config.consent_words import (
    DEFAULT_START_PAYLOADS,
    DEFAULT_START_WORDS,
    DEFAULT_STOP_PAYLOADS,
    DEFAULT_STOP_WORDS,
)

# Only marks that are accents: the Latin, Greek and Cyrillic diacritics, and Arabic
# vowel marks. Devanagari vowel signs are letters' parts, not accents, and are kept.
_ACCENTS = (
    (0x0300, 0x036F),
    (0x1AB0, 0x1AFF),
    (0x1DC0, 0x1DFF),
    (0x20D0, 0x20FF),
    (0xFE20, 0xFE2F),
    (0x064B, 0x065F),
    (0x0670, 0x0670),
)
_LONGEST = 64  # no keyword is longer; longer texts are not compared at all


_DROP = {code: None for low, high in _ACCENTS for code in range(low, high + 1)}
_DROP[ord("\u0640")] = None  # Arabic tatweel: elongation, typography only
_ASCII_WORD = re.compile(r"[a-z0-9]+")


def normalise(text: str) -> str:
    """Fold ``text`` for comparison with a keyword."""
    if text.isascii():  # the common case: the same result as _fold, faster
        return " ".join(_ASCII_WORD.findall(text.lower()))
    return _fold(text)


def _fold(text: str) -> str:
    words: list[str] = []
    word: list[str] = []
    for char in unicodedata.normalize("NFKD", text).casefold().translate(_DROP):
        category = unicodedata.category(char)
        if category[0] in "PSZC":  # punctuation, symbols (emoji), spaces, controls
            if word:
                words.append("".join(word))
                word = []
        elif category == "Mn" and not word:
            continue  # a mark with no letter to sit on, e.g. an emoji's variation selector
        else:
            word.append(char)
    if word:
        words.append("".join(word))
    return unicodedata.normalize("NFC", " ".join(words))


class Signal(StrEnum):
    STOP = "stop"
    START = "start"


@dataclass(frozen=True, slots=True)
class ConsentRules:
    """What counts as a consent signal, and what to answer it with."""

    stop_words: frozenset[str]
    start_words: frozenset[str]
    stop_payloads: frozenset[str]
    start_payloads: frozenset[str]
    stop_reply: str = ""
    start_reply: str = ""

    @classmethod
    def build(
        cls,
        *,
        stop_words: Iterable[str] = DEFAULT_STOP_WORDS,
        start_words: Iterable[str] = DEFAULT_START_WORDS,
        stop_payloads: Iterable[str] = DEFAULT_STOP_PAYLOADS,
        start_payloads: Iterable[str] = DEFAULT_START_PAYLOADS,
        stop_reply: str = "",
        start_reply: str = "",
    ) -> ConsentRules:
        def words(items: Iterable[str]) -> frozenset[str]:
            return frozenset(filter(None, (normalise(item) for item in items)))

        def payloads(items: Iterable[str]) -> frozenset[str]:
            return frozenset(filter(None, (item.strip().casefold() for item in items)))

        return cls(
            stop_words=words(stop_words),
            start_words=words(start_words),
            stop_payloads=payloads(stop_payloads),
            start_payloads=payloads(start_payloads),
            stop_reply=stop_reply.strip(),
            start_reply=start_reply.strip(),
        )

    def keyword(self, text: str | None) -> Signal | None:
        """The signal a typed message is, if its whole text is a stop or start word."""
        if not text or len(text) > _LONGEST:
            return None
        folded = normalise(text)
        if folded in self.stop_words:
            return Signal.STOP
        if folded in self.start_words:
            return Signal.START
        return None

    def button(self, payload: str | None) -> Signal | None:
        """The signal a template quick-reply button's payload is, if any."""
        if not payload:
            return None
        folded = payload.strip().casefold()
        if folded in self.stop_payloads:
            return Signal.STOP
        if folded in self.start_payloads:
            return Signal.START
        return None

    def reply(self, signal: Signal) -> str:
        return self.stop_reply if signal is Signal.STOP else self.start_reply
