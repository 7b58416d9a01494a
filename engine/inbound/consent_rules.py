"""Stop and start words, and the quick-reply payloads that mean the same.

A message is a consent keyword when its *whole* text is one, compared as
:func:`engine.keywords.normalise` folds them.

>>> rules = ConsentRules.build(stop_words=["STOP", "ARRÊT"], start_words=["START"])
>>> rules.keyword("arret 🛑"), rules.keyword("Start"), rules.keyword("stop sending me that")
(<Signal.STOP: 'stop'>, <Signal.START: 'start'>, None)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from engine.config.consent_words import (
    DEFAULT_START_PAYLOADS,
    DEFAULT_START_WORDS,
    DEFAULT_STOP_PAYLOADS,
    DEFAULT_STOP_WORDS,
)
from engine.keywords import normalise

_LONGEST = 64  # no keyword is longer; longer texts are not compared at all


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
