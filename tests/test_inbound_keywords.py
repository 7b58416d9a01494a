"""Stop and start words: matching as customers type them, in the languages we ship."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.config.consent_words import DEFAULT_START_WORDS, DEFAULT_STOP_WORDS
from engine.inbound.consent_rules import ConsentRules, Signal
from engine.keywords import _fold, first_word, normalise
from tests.conftest import make_settings

RULES = ConsentRules.build()


@pytest.mark.parametrize(
    "typed",
    [
        "STOP",
        "stop",
        "  Stop!! ",
        "¡STOP!",
        "stop 🛑",
        "Stop promotions.",
        "STOP   PROMOTIONS",
        "ＳＴＯＰ",  # full-width, as some keyboards send it
        "Unsubscribe",
        "opt-out",
        "baja",  # Spanish
        "No más",
        "no mas",
        "Cancelar suscripción",
        "PARE",  # Portuguese
        "cancelar inscricao",
        "Arrêt",  # French
        "ARRET",
        "désabonner",
        "STOPP",  # German
        "abmelden",
        "बंद करो",  # Hindi
        "बंद",
        "berhenti",  # Indonesian
        "توقف",  # Arabic
        "إلغاء الاشتراك",
        "الغاء الاشتراك",  # written without the hamza
        "تـوقـف",  # with elongation
    ],
)
def test_stop_words_match_whatever_the_case_accents_and_punctuation(typed: str) -> None:
    assert RULES.keyword(typed) is Signal.STOP


@pytest.mark.parametrize(
    "typed",
    [
        "START",
        "start.",
        "Subscribe",
        "unstop",
        "alta",
        "Inscrever",
        "m’abonner",
        "ANMELDEN",
        "शुरू",
        "mulai",
        "ابدأ",
    ],
)
def test_start_words_match(typed: str) -> None:
    assert RULES.keyword(typed) is Signal.START


@pytest.mark.parametrize(
    "typed",
    [
        "stop sending me promotions please",  # not the whole message
        "please stop",
        "bus stop",
        "stopped",
        "STOP" * 20,
        "",
        "🛑",
        "cancel",  # a flow command, not a consent word
        "बद",  # a Devanagari vowel sign is part of the word, not an accent
        None,
    ],
)
def test_other_messages_are_not_keywords(typed: str | None) -> None:
    assert RULES.keyword(typed) is None


def test_no_default_word_is_both_a_stop_and_a_start_word() -> None:
    stops = {normalise(word) for word in DEFAULT_STOP_WORDS}
    starts = {normalise(word) for word in DEFAULT_START_WORDS}
    assert not stops & starts


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_the_ascii_shortcut_folds_like_the_general_rule(text: str) -> None:
    assert normalise(text) == _fold(text)


def test_button_payloads_match_exactly_ignoring_case_and_spaces() -> None:
    assert RULES.button("STOP_PROMOTIONS") is Signal.STOP
    assert RULES.button(" stop_promotions ") is Signal.STOP
    assert RULES.button("RESUME_PROMOTIONS") is Signal.START
    assert RULES.button("SHOP_NOW") is None
    assert RULES.button(None) is None


def test_words_payloads_and_replies_come_from_the_settings(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        CONSENT_STOP_KEYWORDS="HALT, Basta ya",
        CONSENT_START_KEYWORDS="GO",
        CONSENT_STOP_PAYLOADS="NO_MORE",
        CONSENT_STOP_REPLY="  Bye.  ",
        CONSENT_START_REPLY="",
    )
    rules = ConsentRules.build(
        stop_words=settings.consent_stop_keywords,
        start_words=settings.consent_start_keywords,
        stop_payloads=settings.consent_stop_payloads,
        start_payloads=settings.consent_start_payloads,
        stop_reply=settings.consent_stop_reply,
        start_reply=settings.consent_start_reply,
    )
    assert rules.keyword("basta YA!") is Signal.STOP
    assert rules.keyword("stop") is None, "the configured list replaces the defaults"
    assert rules.keyword("go") is Signal.START
    assert rules.button("no_more") is Signal.STOP
    assert rules.reply(Signal.STOP) == "Bye."
    assert rules.reply(Signal.START) == "", "an empty reply is not sent"


@pytest.mark.parametrize(
    ("typed", "folded"),
    [
        ("Order-status", "order status"),  # inner punctuation separates words
        ("  ¡Hóla,   Señor! 👋 ", "hola senor"),
        ("m’abonner", "m abonner"),
        ("बंद करो", "बंद करो"),  # Devanagari vowel signs are kept
    ],
)
def test_one_matcher_folds_inner_punctuation_like_spaces(typed: str, folded: str) -> None:
    assert normalise(typed) == folded


def test_the_first_word_stops_at_punctuation() -> None:
    assert first_word("Order #1234 please") == "order"
    assert first_word("order:track") == "order"
