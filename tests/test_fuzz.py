"""Hostile input, fuzzed: at least 10,000 generated cases per run (6,000 parser + 6,000 dialogue).

Arbitrary unicode, huge numbers, NaN/inf strings, markup and script tags, numbers next to field
words; plus 1 MB messages, which the dialogue refuses with a message without processing them.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.adapters.app import escape_user_text
from assistant.conversation.dialogue import Dialogue
from assistant.conversation.parsing import parse_message
from assistant.conversation.state import DialogueState
from assistant.core.fields import FIELDS, FIELDS_BY_NAME

pytestmark = pytest.mark.slow

WORDS = [s for f in FIELDS for s in f.synonyms[:4]] + [
    "what if", "why", "help", "start over", "cancel", "new customer", "compare", "VIP", "browsers", "strategy",
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "**bold**", "[link](javascript:alert(1))",
    "`code`", "| a | b |", "NaN", "nan", "inf", "-inf", "Infinity", "1e400", "-1e308", "99999999999999999999999",
    "0x1F", "١٢٣", "½", "∞", "－５", "\u202e", "\x00", "\r\n", "k", "$", "€", "£", "million", "ago", "%", "#",
]
TOKENS = st.one_of(
    st.sampled_from(WORDS),
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)
MESSAGES = st.one_of(st.text(max_size=300), st.lists(TOKENS, max_size=25).map(" ".join))
PENDING = st.one_of(st.none(), st.sampled_from([f.name for f in FIELDS]))


@settings(max_examples=6000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=MESSAGES, pending=PENDING)
def test_parser_never_raises_and_never_lets_a_bad_value_through(text, pending):
    result = parse_message(text, pending=pending)
    for name, value in result.values.items():
        assert FIELDS_BY_NAME[name].check(value) == value


@pytest.fixture(scope="module")
def dialogue(service):
    return Dialogue.create(service, safety_net=False)  # a crash fails the test instead of being apologised for


@settings(max_examples=6000, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(messages=st.lists(MESSAGES, min_size=1, max_size=3))
def test_dialogue_never_raises_and_shows_markup_as_text(dialogue, messages):
    state = DialogueState()
    for message in messages:
        turn = dialogue.respond(state, message)
        assert isinstance(turn.reply, str) and turn.reply
        # the reply quotes the user as typed; the Gradio adapter escapes the quoted spans
        shown = turn.render(escape_user_text)
        assert "<script" not in shown and "<img" not in shown
        assert "<script" not in turn.render(lambda user: "") and "<img" not in turn.render(lambda user: "")
        for name, value in turn.profile.items():
            assert value is None or FIELDS_BY_NAME[name].check(value) == value
        state = turn.state


def test_a_one_megabyte_message_is_refused_and_nothing_is_lost(dialogue):
    turn = dialogue.respond(DialogueState(), "age 38, income 71k")
    before = turn.profile
    big = ("spent 1200 " * 100_000)[:1_000_000]
    refused = dialogue.respond(turn.state, big)
    assert "10,000" in refused.reply
    assert refused.profile == before
    assert refused.state == turn.state
