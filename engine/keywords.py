"""Keyword matching, one rule for every part that compares what a customer typed with a
word: consent stop and start words, flow triggers, ask choices, branch conditions.

Case, accents, punctuation, symbols (emoji) and spaces do not count, around the words
and between them: ``opt-out`` is ``opt out``, and ``Hóla,   Señor!`` is ``hola senor``.

>>> normalise("  ¡Désabonner!! ")
'desabonner'
>>> normalise("STOP   promotions.")
'stop promotions'
>>> normalise("  ¡Hóla,   Señor! 👋 ")
'hola senor'
>>> first_word("Order #1234 please")
'order'
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

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
_DROP = {code: None for low, high in _ACCENTS for code in range(low, high + 1)}
_DROP[ord("\u0640")] = None  # Arabic tatweel: elongation, typography only
_ASCII_WORD = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=4096)  # flows fold the same titles and words again and again
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


def first_word(text: str) -> str:
    return normalise(text).split(" ", 1)[0]
