"""Keyword matching: case, accents, spacing and surrounding punctuation do not count.

>>> normalise("  ¡Hóla,   Señor! 👋 ")
'hola, senor'
>>> first_word("Order #1234 please")
'order'
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache


def _is_decoration(char: str) -> bool:
    # Punctuation (P*), symbols such as emoji (S*) and spaces around a keyword.
    return char.isspace() or unicodedata.category(char)[0] in "PS"


def _trim(text: str) -> str:
    start, end = 0, len(text)
    while start < end and _is_decoration(text[start]):
        start += 1
    while end > start and _is_decoration(text[end - 1]):
        end -= 1
    return text[start:end]


@lru_cache(maxsize=4096)
def normalise(text: str) -> str:
    """Lower case, accents removed, runs of spaces as one, no punctuation around."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _trim(" ".join(bare.casefold().split()))


def first_word(text: str) -> str:
    return _trim(normalise(text).split(" ", 1)[0])
