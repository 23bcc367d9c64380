"""Transcript tests of the dialogue engine, with the committed model and the real parser."""

from __future__ import annotations

import json
import re
import shutil
import threading
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.conversation.dialogue import Dialogue
from assistant.conversation.render import render_result, user_text
from assistant.conversation.state import DialogueState, Turn
from assistant.conversation.texts import DialogueTexts, load_dialogue_texts
from assistant.core.errors import KnowledgeBaseError
from assistant.core.fields import FIELD_NAMES, FIELDS, FIELDS_BY_NAME
from assistant.core.knowledge import default_knowledge_dir
from assistant.core.schemas import CustomerProfile, ProfileDraft
from assistant.model.segmentation import SegmentationService

SEGMENT_KEYS = ("casual_shoppers", "vip_customers", "browsers_without_conversion", "digital_enthusiasts")
ALL_IN_ONE = "38, makes $71k, spent 1.2k, buys online 5x, in store 7x, visits 6x a month, last bought 2 weeks ago"
ALL_IN_ONE_VALUES = {"age": 38, "income": 71000, "total_spending": 1200, "web_purchases": 5, "store_purchases": 7,
                     "web_visits_per_month": 6, "recency_days": 14}


# ---------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def service():
    return SegmentationService.load()


@pytest.fixture(scope="module")
def texts() -> DialogueTexts:
    return load_dialogue_texts()


@pytest.fixture(scope="module")
def dialogue(service, texts) -> Dialogue:
    return Dialogue(service, texts, safety_net=False)  # a bug must fail the test, not be apologised for


def question(texts: DialogueTexts, name: str) -> str:
    f = FIELDS_BY_NAME[name]
    return texts.questions[name].format(label=f.label, unit=f.unit, example=f.format(f.example),
                                        example_raw=str(int(f.example)) if float(f.example).is_integer() else str(f.example),
                                        minimum=f.number(f.minimum), maximum=f.format(f.maximum))


def talk(dialogue: Dialogue, *messages: str, state: DialogueState | None = None) -> list[Turn]:
    state = dialogue.greet(state or DialogueState()).state
    turns = []
    for message in messages:
        turn = dialogue.respond(state, message)
        check_consistent(dialogue, turn)
        turns.append(turn)
        state = turn.state
    return turns


def check_consistent(dialogue: Dialogue, turn: Turn) -> None:
    """The invariants every turn keeps, whatever was said."""
    state = turn.state
    assert isinstance(turn.reply, str) and turn.reply.strip()
    assert isinstance(state, DialogueState)
    profile = state.profile.as_dict()
    assert turn.profile == profile and list(profile) == list(FIELD_NAMES)
    for name, value in profile.items():
        if value is not None:
            assert FIELDS_BY_NAME[name].check(value) == value
    complete = all(v is not None for v in profile.values())
    assert turn.complete is complete
    if complete:
        assert state.pending is None
        assert turn.result is not None
        assert turn.result.segment_key == dialogue.service.label(state.profile.to_profile())
        assert state.segment_key == turn.result.segment_key
    else:
        assert turn.result is None and state.segment_key is None
        assert state.pending in state.profile.missing()
    # the state survives JSON (the REST API and gr.State keep it)
    assert DialogueState.model_validate(json.loads(json.dumps(state.model_dump()))) == state
    payload = json.loads(json.dumps(turn.as_json()))
    assert set(payload) == {"reply", "profile", "complete", "result"}
    if complete:
        assert payload["result"]["segment_key"] == turn.result.segment_key
        assert payload["result"]["segment_name"] == turn.result.segment_name
    else:
        assert payload["result"] is None
    # our texts never contain "<" (any "<" is the user's, marked so that a Markdown view escapes it)
    assert "<" not in turn.render(lambda user: "")
    assert "\ue000" not in turn.reply and "\ue001" not in turn.reply


def centre_profile(service, key: str) -> dict[str, float]:
    """A clear member of a segment: the segment averages from the model card, rounded."""
    averages = service.card["segments"][key]["averages"]
    return {f.name: round(averages[f.name], -2 if f.name == "income" else 0) for f in FIELDS}


def describe(profile: dict[str, float]) -> str:
    p = {k: int(v) for k, v in profile.items()}
    return (f"{p['age']} years old, income ${p['income']}, spent ${p['total_spending']}, "
            f"{p['web_purchases']} web purchases, {p['store_purchases']} store purchases, "
            f"{p['web_visits_per_month']} web visits per month, last purchase {p['recency_days']} days ago")


def completed(dialogue: Dialogue, profile: dict[str, float]) -> Turn:
    turn = talk(dialogue, describe(profile))[-1]
    assert turn.complete, turn.reply
    return turn


# ---------------------------------------------------------------------------- the texts


def test_texts_cover_every_field_and_are_templates(texts):
    assert list(texts.questions) == list(FIELD_NAMES)
    for name in FIELD_NAMES:
        q = question(texts, name)
        assert "{" not in q and "?" in q


def _broken_copy(tmp_path: Path, edit) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(default_knowledge_dir(), target)
    data = yaml.safe_load((target / "dialogue.yaml").read_text(encoding="utf-8"))
    edit(data)
    (target / "dialogue.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return target


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["questions"].pop("recency_days"), "no question for field(s) recency_days"),
    (lambda d: d["replies"].__setitem__("noted", "Got {valeus}"), "noted uses unknown placeholder {valeus}"),
    (lambda d: d["replies"].__setitem__("why", "Why {segment_name"), "why is not a valid template"),
    (lambda d: d["questions"].__setitem__("age", "Age? {example:>5}"), "must not have a format spec"),
    (lambda d: d["segment_aliases"].__setitem__("whales", ["big fish"]), "unknown segment(s) whales"),
    (lambda d: d["triggers"].pop("help"), "triggers.help"),
    (lambda d: d["replies"].pop("too_long"), "replies.too_long"),
])
def test_broken_texts_are_refused_with_file_and_field(tmp_path, edit, message):
    directory = _broken_copy(tmp_path, edit)
    with pytest.raises(KnowledgeBaseError) as info:
        load_dialogue_texts(directory)
    assert "dialogue.yaml" in str(info.value) and message in str(info.value)


def test_missing_texts_file_is_a_clear_error(tmp_path):
    with pytest.raises(KnowledgeBaseError, match="dialogue.yaml is missing"):
        load_dialogue_texts(tmp_path)


# ---------------------------------------------------------------------------- collecting


def test_greeting_asks_the_first_field(dialogue, texts):
    turn = dialogue.greet(DialogueState())
    assert question(texts, "age") in turn.reply
    assert turn.state.pending == "age" and not turn.complete and turn.result is None


def test_happy_path_one_field_at_a_time(dialogue, texts, service):
    profile = centre_profile(service, "vip_customers")
    state = dialogue.greet(DialogueState()).state
    for i, name in enumerate(FIELD_NAMES):
        assert state.pending == name
        turn = dialogue.respond(state, str(int(profile[name])))
        check_consistent(dialogue, turn)
        f = FIELDS_BY_NAME[name]
        assert f"{f.short_lower}: {f.say(profile[name])}" in turn.reply  # acknowledged, the unit said once
        assert getattr(turn.state.profile, name) == profile[name]
        if i + 1 < len(FIELD_NAMES):
            assert question(texts, FIELD_NAMES[i + 1]) in turn.reply
            assert not turn.complete
        state = turn.state
    assert turn.complete and turn.result.segment_key == "vip_customers"
    assert texts.replies.complete in turn.reply and render_result(turn.result, texts) in turn.reply


def test_questions_give_unit_and_example(dialogue):
    state = DialogueState(profile=ProfileDraft(age=40, income=50000, total_spending=300))
    reply = dialogue.greet(state).reply
    assert "purchases did they make on the website in the last 2 years" in reply
    assert "For example 4" in reply


def test_everything_in_one_message(dialogue):
    turn = talk(dialogue, ALL_IN_ONE)[-1]
    assert turn.complete
    assert turn.profile == ALL_IN_ONE_VALUES
    assert turn.result.segment_name in turn.reply


def test_several_fields_at_once_then_the_first_missing_is_asked(dialogue, texts):
    turn = talk(dialogue, "she is 52 and spent $800, visits 3 times a month")[-1]
    assert turn.profile["age"] == 52 and turn.profile["total_spending"] == 800 and turn.profile["web_visits_per_month"] == 3
    assert turn.state.pending == "income" and question(texts, "income") in turn.reply


@pytest.mark.parametrize("message, field, value", [
    ("actually the income is 60k", "income", 60000),
    ("no, age 33", "age", 33),
    ("change spending to 500", "total_spending", 500),
])
def test_corrections_while_collecting(dialogue, message, field, value):
    start = DialogueState(profile=ProfileDraft(age=38, income=71000, total_spending=1200))
    turn = dialogue.respond(start, message)
    check_consistent(dialogue, turn)
    assert turn.profile[field] == value
    f = FIELDS_BY_NAME[field]
    assert f"Changed {f.short_lower} from {f.say(getattr(start.profile, field))} to {f.say(value)}." in turn.reply
    assert turn.state.pending == "web_purchases"  # still asking the next missing field
    assert start.profile.as_dict()[field] != value  # the old state is untouched


def test_correction_after_the_result_reassigns(dialogue, service, texts):
    vip = centre_profile(service, "vip_customers")
    done = completed(dialogue, vip)
    assert done.result.segment_key == "vip_customers"
    same = dialogue.respond(done.state, "actually age 50")
    check_consistent(dialogue, same)
    assert same.profile["age"] == 50 and same.result.segment_key == "vip_customers"
    assert texts.replies.segment_same.format(segment_name="VIP Customers") in same.reply
    moved = dialogue.respond(done.state, "change web purchases to 12")
    check_consistent(dialogue, moved)
    assert moved.result.segment_key != "vip_customers"
    assert texts.replies.segment_changed.format(old_segment="VIP Customers",
                                                new_segment=moved.result.segment_name) in moved.reply


@pytest.mark.parametrize("first, correction, field, value", [
    ("38", "make that 42", "age", 42),                    # pending is income now: 42 is not an income
    ("age 38", "oops, I meant 40", "age", 40),
    ("she's 38 and earns 71k", "sorry, 45", None, None),  # two values given: no referent, 45 answers the question
    ("71k income", "no wait, 72k", "income", 72000),
    ("spent 1200", "make it 1500", "total_spending", 1500),
    ("age 250", "sorry, 25", "age", 25),                  # a refused value is corrected too
])
def test_a_bare_correction_changes_the_value_just_given(dialogue, first, correction, field, value):
    before, after = talk(dialogue, first, correction)
    if field is None:
        assert before.state.last_field is None
        assert after.profile["total_spending"] == 45    # the pending question's answer
        return
    assert before.state.last_field == field
    assert after.profile[field] == value
    assert sum(v is not None for v in after.profile.values()) == sum(v is not None for v in before.profile.values()) + (
        before.profile[field] is None)
    assert after.state.pending == after.state.profile.missing()[0]


def test_a_bare_correction_after_the_result_and_after_a_what_if(dialogue, service, texts):
    done = completed(dialogue, centre_profile(service, "vip_customers"))
    assert done.state.last_field is None                  # seven values at once: nothing to "make that ..."
    unclear = dialogue.respond(done.state, "make that 60k")
    check_consistent(dialogue, unclear)
    assert unclear.profile == done.profile and texts.replies.fallback_complete in unclear.reply
    income = dialogue.respond(done.state, "actually the income is 60k")
    again = dialogue.respond(income.state, "make it 65k")
    check_consistent(dialogue, again)
    assert again.profile["income"] == 65000 and again.profile["age"] == done.profile["age"]
    what_if = dialogue.respond(again.state, "what if she spent 2000?")
    check_consistent(dialogue, what_if)
    after = dialogue.respond(what_if.state, "make that 3000")
    check_consistent(dialogue, after)
    assert after.profile == again.profile                 # a what-if is no stored value to correct


def test_a_birth_year_asks_for_the_age(dialogue, texts):
    turn = talk(dialogue, "born 1986")[-1]
    assert turn.profile["age"] is None and turn.state.pending == "age"
    assert texts.replies.birth_year.format(question=question(texts, "age")) in turn.reply


def test_a_field_name_with_a_question_mark_is_explained(dialogue):
    turn = talk(dialogue, "age 38", "income?")[-1]
    assert FIELDS_BY_NAME["income"].description in turn.reply and turn.state.pending == "income"


@pytest.mark.parametrize("message", ["how confident are you?", "is she borderline?", "what would change her segment?"])
def test_confidence_questions_are_answered_with_the_reasons(dialogue, service, message):
    done = completed(dialogue, centre_profile(service, "digital_enthusiasts"))
    turn = dialogue.respond(done.state, message)
    check_consistent(dialogue, turn)
    assert done.result.confidence.text in turn.reply and done.result.reasons[0] in turn.reply


def test_a_frequency_word_answers_the_visits_question(dialogue):
    state = DialogueState(profile=ProfileDraft(age=38, income=71000, total_spending=1200, web_purchases=5,
                                               store_purchases=7))
    turn = dialogue.respond(state, "weekly")
    check_consistent(dialogue, turn)
    assert turn.profile["web_visits_per_month"] == 4


def test_invalid_value_refused_then_explained_then_fixed(dialogue, texts):
    age = FIELDS_BY_NAME["age"]
    first = dialogue.respond(DialogueState(), "250")
    check_consistent(dialogue, first)
    assert "I can't use that value for age: 250 is above the maximum of 110." in first.reply
    assert "Age must be between 18 and 110 years." in first.reply  # the allowed range
    assert age.description not in first.reply
    assert first.profile["age"] is None and first.state.pending == "age"
    assert question(texts, "age") in first.reply
    second = dialogue.respond(first.state, "5")
    check_consistent(dialogue, second)
    assert "age: 5 is below the minimum of 18" in second.reply
    assert age.description in second.reply  # explained after two failures
    fixed = dialogue.respond(second.state, "38")
    check_consistent(dialogue, fixed)
    assert fixed.profile["age"] == 38 and fixed.state.pending == "income"
    assert fixed.state.failures == {}


def test_refused_value_clears_the_slot_and_is_asked_again(dialogue, texts):
    start = DialogueState(profile=ProfileDraft(age=38), pending="income")
    turn = dialogue.respond(start, "income 50k, web purchases 2.5")
    check_consistent(dialogue, turn)
    assert turn.profile["income"] == 50000 and turn.profile["web_purchases"] is None
    assert "web purchases: 2.5 must be a whole number" in turn.reply
    assert turn.state.pending == "web_purchases" and question(texts, "web_purchases") in turn.reply
    # the bare number now answers the re-asked field, not the first missing one
    nxt = dialogue.respond(turn.state, "3")
    assert nxt.profile["web_purchases"] == 3 and nxt.profile["total_spending"] is None


def test_invalid_correction_after_result_keeps_the_old_value(dialogue, service):
    done = completed(dialogue, centre_profile(service, "digital_enthusiasts"))
    turn = dialogue.respond(done.state, "age 300")
    check_consistent(dialogue, turn)
    assert "age: 300 is above the maximum of 110" in turn.reply
    assert "I kept the current value (age: " in turn.reply
    assert turn.profile == done.profile and turn.complete


# ---------------------------------------------------------------------------- commands


@pytest.mark.parametrize("command", ["start over", "Reset", "restart", "Let's start over please", "RESTART!"])
def test_start_over(dialogue, texts, command):
    turn = talk(dialogue, "age 40, income 50k", command)[-1]
    assert turn.profile == dict.fromkeys(FIELD_NAMES)
    assert texts.replies.reset in turn.reply and question(texts, "age") in turn.reply


def test_reset_with_a_value_is_a_correction_not_a_reset(dialogue):
    turn = talk(dialogue, "age 40, income 50k", "reset the age to 45")[-1]
    assert turn.profile["age"] == 45 and turn.profile["income"] == 50000


@pytest.mark.parametrize("command", ["cancel", "Cancel this customer", "never mind"])
def test_cancel_drops_the_customer_and_says_so(dialogue, texts, command):
    turn = talk(dialogue, "age 40, income 50k", command)[-1]
    assert turn.profile == dict.fromkeys(FIELD_NAMES)
    assert "$50,000" in turn.reply and texts.replies.cancel.split("(")[0] in turn.reply
    nothing = talk(dialogue, command)[-1]
    assert texts.replies.cancel_nothing in nothing.reply


def test_new_customer_after_a_result_and_with_values(dialogue, service, texts):
    done = completed(dialogue, centre_profile(service, "casual_shoppers"))
    fresh = dialogue.respond(done.state, "new customer")
    check_consistent(dialogue, fresh)
    assert fresh.profile == dict.fromkeys(FIELD_NAMES) and question(texts, "age") in fresh.reply
    with_values = dialogue.respond(done.state, "Next customer: 29 years old, income 40k")
    check_consistent(dialogue, with_values)
    assert with_values.profile["age"] == 29 and with_values.profile["income"] == 40000
    assert with_values.profile["total_spending"] is None


@pytest.mark.parametrize("phrase", ["help", "HELP!", "what can you do?", "how does this work"])
def test_help_keeps_the_profile_and_repeats_the_question(dialogue, texts, phrase):
    turn = talk(dialogue, "age 40", phrase)[-1]
    assert "What I can do" in turn.reply and turn.profile["age"] == 40
    assert question(texts, "income") in turn.reply


def test_summary_of_what_is_known(dialogue):
    turn = talk(dialogue, "age 40, income 50k", "what do you have so far?")[-1]
    assert "- Age: 40\n- Income: $50,000" in turn.reply and "total spending" in turn.reply.lower()
    assert turn.profile["age"] == 40 and turn.state.pending == "total_spending"
    empty = talk(dialogue, "What have you got")[-1]
    assert "don't have any values" in empty.reply


def test_field_explanation(dialogue):
    turn = talk(dialogue, "age 40", "what is recency?")[-1]
    assert FIELDS_BY_NAME["recency_days"].description in turn.reply and turn.profile["age"] == 40


def test_unknown_input_gets_a_short_helpful_reply(dialogue, texts):
    turn = talk(dialogue, "age 40", "the weather is lovely")[-1]
    assert "lovely" in turn.reply and "help" in turn.reply.lower()
    assert question(texts, "income") in turn.reply and turn.profile["age"] == 40


# ---------------------------------------------------------------------------- after the result


def test_why_before_and_after_the_result(dialogue, service, texts):
    before = talk(dialogue, "age 40", "why?")[-1]
    assert texts.replies.why_incomplete in before.reply and question(texts, "income") in before.reply
    done = completed(dialogue, centre_profile(service, "browsers_without_conversion"))
    why = dialogue.respond(done.state, "why?")
    check_consistent(dialogue, why)
    assert done.result.reasons and all(r in why.reply for r in done.result.reasons)
    assert done.result.confidence.text in why.reply
    assert why.state == done.state


def test_which_segment_before_and_after_the_result(dialogue, service, texts):
    early = talk(dialogue, "age 40", "which segment is she in?")[-1]
    assert texts.replies.result_incomplete in early.reply and early.profile["age"] == 40
    done = completed(dialogue, centre_profile(service, "digital_enthusiasts"))
    again = dialogue.respond(done.state, "Which segment is she in?")
    check_consistent(dialogue, again)
    assert render_result(done.result, texts) in again.reply and again.state == done.state


def test_what_if_that_changes_the_segment(dialogue, service):
    vip = centre_profile(service, "vip_customers")
    done = completed(dialogue, vip)
    turn = dialogue.respond(done.state, "what if income was 30k and she spent 100")
    check_consistent(dialogue, turn)
    expected = service.assign({**vip, "income": 30000, "total_spending": 100})
    assert expected.segment_key != "vip_customers"
    assert expected.segment_name in turn.reply and "VIP Customers" in turn.reply
    assert turn.state == done.state and turn.profile == done.profile  # the stored customer is unchanged
    assert turn.result.segment_key == "vip_customers"


def test_what_if_without_change(dialogue, service, texts):
    vip = centre_profile(service, "vip_customers")
    done = completed(dialogue, vip)
    turn = dialogue.respond(done.state, "What if she spent 2000?")
    check_consistent(dialogue, turn)
    assert service.assign({**vip, "total_spending": 2000}).segment_key == "vip_customers"
    assert "$2,000" in turn.reply and "still" in turn.reply and "VIP Customers" in turn.reply
    assert turn.state == done.state


def test_what_if_needs_values_and_a_complete_customer(dialogue, service, texts):
    early = talk(dialogue, "age 40", "what if she spent 2000?")[-1]
    assert texts.replies.what_if_incomplete in early.reply and early.profile["total_spending"] is None
    done = completed(dialogue, centre_profile(service, "vip_customers"))
    vague = dialogue.respond(done.state, "what if things were different")
    assert "Which values should I change" in vague.reply and vague.state == done.state
    bad = dialogue.respond(done.state, "what if age was 500")
    assert "I can't try that value for age: 500 is above the maximum of 110." in bad.reply and bad.state == done.state


@pytest.mark.parametrize("key", SEGMENT_KEYS)
def test_every_segment_is_reachable_by_chat(dialogue, service, key):
    turn = completed(dialogue, centre_profile(service, key))
    assert turn.result.segment_key == key
    assert turn.result.confidence.level == "clear"
    assert service.knowledge.segment(key).name in turn.reply


# ---------------------------------------------------------------------------- questions about segments


@pytest.fixture(scope="module", params=["collecting", "complete"])
def some_state(request, dialogue, service):
    if request.param == "collecting":
        return dialogue.respond(DialogueState(), "age 40, income 50k").state
    return completed(dialogue, centre_profile(service, "casual_shoppers")).state


def _ask(dialogue, state, message) -> Turn:
    turn = dialogue.respond(state, message)
    check_consistent(dialogue, turn)
    assert turn.profile == state.profile.as_dict()  # segment questions never lose the profile
    if not state.complete:
        assert "Back to the customer" in turn.reply
    return turn


@pytest.mark.parametrize("message, key", [
    ("tell me about VIP customers", "vip_customers"),
    ("Tell me about the VIPs", "vip_customers"),
    ("what are browsers?", "browsers_without_conversion"),
    ("describe digital", "digital_enthusiasts"),
    ("casual?", "casual_shoppers"),
    ("tell me more about vip_customers", "vip_customers"),
])
def test_tell_me_about_a_segment(dialogue, service, some_state, message, key):
    turn = _ask(dialogue, some_state, message)
    spec = service.knowledge.segment(key)
    assert spec.name in turn.reply and spec.description in turn.reply
    others = [service.knowledge.segment(k).description for k in SEGMENT_KEYS if k != key]
    assert not any(d in turn.reply for d in others)


def test_compare_two_segments(dialogue, service, some_state):
    turn = _ask(dialogue, some_state, "compare VIP and Digital Enthusiasts")
    vip, digital = service.card["segments"]["vip_customers"], service.card["segments"]["digital_enthusiasts"]
    assert "**VIP Customers vs Digital Enthusiasts** (segment averages)" in turn.reply
    assert "side by side" not in turn.reply and "\u00b7" not in turn.reply
    assert "| Field | VIP Customers | Digital Enthusiasts" in turn.reply
    income = FIELDS_BY_NAME["income"]
    assert income.format(vip["averages"]["income"]) in turn.reply
    assert income.format(digital["averages"]["income"]) in turn.reply
    assert service.knowledge.segment("vip_customers").summary in turn.reply
    assert service.knowledge.segment("digital_enthusiasts").summary in turn.reply
    assert ("This customer" in turn.reply) == some_state.complete


def test_compare_with_the_current_segment(dialogue, service):
    done = completed(dialogue, centre_profile(service, "casual_shoppers"))
    turn = _ask(dialogue, done.state, "how do they compare with browsers")
    assert "| Field | Casual Shoppers | Browsers Without Conversion" in turn.reply


def test_list_the_segments(dialogue, service, some_state):
    turn = _ask(dialogue, some_state, "list the segments")
    for key in SEGMENT_KEYS:
        spec = service.knowledge.segment(key)
        assert spec.name in turn.reply and spec.summary in turn.reply


def test_segment_sizes(dialogue, service, some_state):
    turn = _ask(dialogue, some_state, "How big is each segment?")
    for info in service.segments():
        assert f"| {info.name} | {info.size:,} | {info.share:.0%} |" in turn.reply
    assert f"{sum(s.size for s in service.segments()):,}" in turn.reply


def test_strategy_for_a_segment(dialogue, service, some_state):
    turn = _ask(dialogue, some_state, "what strategy for browsers?")
    strategy = service.knowledge.segment("browsers_without_conversion").strategy
    assert strategy.headline in turn.reply and strategy.kpi in turn.reply
    assert all(t in turn.reply for t in strategy.tactics)


def test_strategy_without_a_segment(dialogue, service, texts):
    done = completed(dialogue, centre_profile(service, "digital_enthusiasts"))
    turn = _ask(dialogue, done.state, "what strategy should I use?")
    assert service.knowledge.segment("digital_enthusiasts").strategy.headline in turn.reply
    early = _ask(dialogue, DialogueState(), "what strategy should I use?")
    assert "Which segment?" in early.reply


def test_a_number_inside_a_question_is_not_an_answer(dialogue):
    turn = _ask(dialogue, dialogue.greet(DialogueState()).state, "what are the 4 segments?")
    assert "Casual Shoppers" in turn.reply and "age=4" not in turn.reply


# ---------------------------------------------------------------------------- robustness


MARKUP = "**bold** <b>hi</b> [link](javascript:x) `code` it's & \"quoted\""


def test_user_words_are_plain_in_the_reply_and_marked_for_markdown_views(dialogue, service):
    """The reply (terminal, JSON, REST) quotes the user as typed, never HTML-escaped; the span is
    marked so that the Gradio adapter escapes exactly it (tests/test_app.py)."""
    for state in (DialogueState(), completed(dialogue, centre_profile(service, "vip_customers")).state):
        turn = dialogue.respond(state, MARKUP)
        check_consistent(dialogue, turn)
        assert MARKUP in turn.reply
        assert "&#x27;" not in turn.reply and "&lt;" not in turn.reply and "&amp;" not in turn.reply
        assert "\\*" not in turn.reply
        assert turn.render(lambda user: f"[[{user}]]").count(f"[[{MARKUP}]]") == 1
        script = dialogue.respond(state, "<script>alert('x')</script>")
        assert "<script>" in script.reply and "<script>" not in script.render(lambda user: "")


def test_refused_values_are_plain_text(dialogue):
    turn = dialogue.respond(DialogueState(), "she's 250")
    assert "I can't use that value for age: 250 is above the maximum of 110." in turn.reply
    assert "&#x27;" not in turn.reply and "\\" not in turn.reply
    assert turn.render(lambda user: "<" + user + ">").count("<250 is above the maximum of 110>") == 1


def test_marks_typed_by_the_user_are_dropped(dialogue):
    turn = dialogue.respond(DialogueState(), "\ue000hello <b>\ue001 there")
    assert "\ue000" not in turn.reply and "\ue001" not in turn.reply
    assert turn.render(lambda user: "<" + user.replace("<", "&lt;") + ">").count("<") == 1
    assert user_text("a\ue001b") == "\ue000ab\ue001"


@pytest.mark.parametrize("size", [10_001, 1_000_000])
def test_long_messages_are_refused_without_losing_anything(dialogue, texts, size):
    state = dialogue.respond(DialogueState(), "age 40, income 50k").state
    turn = dialogue.respond(state, "age 41 " + "x" * size)
    check_consistent(dialogue, turn)
    assert "10,000" in turn.reply and turn.profile == state.profile.as_dict()
    assert question(texts, "total_spending") in turn.reply


def test_message_limit_is_configurable(service, texts):
    small = Dialogue(service, texts, max_message_chars=20, safety_net=False)
    assert small.respond(DialogueState(), "age 40").profile["age"] == 40
    turn = small.respond(DialogueState(), "age 40 and income 50,000 dollars")
    assert "20" in turn.reply and turn.profile["age"] is None
    assert Dialogue(service, texts).respond(DialogueState(), "x" * 10_000).reply  # exactly the limit is fine


@pytest.mark.parametrize("message", ["", "   ", "\n\t", "\x00\x01\x1b[31m", "\ud800", "🙂🎉", "ʕ•ᴥ•ʔ", "٣٨",
                                     "{question}", "{0}", "%s", "None", "\u202eevil", "　"])
def test_odd_messages_never_raise(dialogue, service, message):
    for state in (DialogueState(), completed(dialogue, centre_profile(service, "casual_shoppers")).state):
        turn = dialogue.respond(state, message)
        check_consistent(dialogue, turn)
        assert turn.profile == state.profile.as_dict()


def test_non_text_messages_never_raise(dialogue):
    for message in (None, b"age 40", 40, ["age", 40]):
        turn = dialogue.respond(DialogueState(), message)  # type: ignore[arg-type]
        check_consistent(dialogue, turn)
    assert dialogue.respond(DialogueState(), b"age 40").profile["age"] == 40


def test_safety_net_answers_instead_of_raising(service, texts, monkeypatch):
    dialogue = Dialogue(service, texts)  # the default: safety net on
    monkeypatch.setattr(Dialogue, "_values", lambda *a, **k: 1 / 0)
    state = dialogue.respond(DialogueState(), "help").state
    turn = dialogue.respond(state, "age 40")
    assert turn.state == state and texts.replies.fallback_collecting in turn.reply


def test_state_round_trips_and_is_never_mutated(dialogue):
    state = dialogue.respond(DialogueState(), "age 40, income 50k").state
    before = state.model_dump()
    restored = DialogueState.model_validate(json.loads(json.dumps(before)))
    a = dialogue.respond(state, "spent 300")
    b = dialogue.respond(restored, "spent 300")
    assert a.reply == b.reply and a.state == b.state
    assert state.model_dump() == before
    assert dialogue.respond(before, "spent 300").state == a.state  # a plain dict is accepted too


def test_as_json_contract(dialogue):
    collecting = dialogue.respond(DialogueState(), "age 40").as_json()
    assert collecting["complete"] is False and collecting["result"] is None
    assert collecting["profile"] == {**dict.fromkeys(FIELD_NAMES), "age": 40}
    done = talk(dialogue, ALL_IN_ONE)[-1].as_json()
    assert done["complete"] is True
    assert {"segment_key", "segment_name", "strategy", "confidence", "reasons"} <= set(done["result"])
    json.dumps(done)


def test_render_result(service, texts):
    result = service.assign(ALL_IN_ONE_VALUES)
    text = render_result(result, texts)
    assert text.startswith(f"### {result.segment_name}")
    for f in FIELDS:
        assert f"| {f.label} | {f.number(result.customer[f.name])} | {f.number(result.segment_averages[f.name])} |" in text
    for part in (result.summary, result.confidence.text, result.strategy.headline, result.strategy.kpi,
                 *result.reasons, *result.strategy.tactics, *result.strategy.channels):
        assert part in text
    odd = service.assign({**ALL_IN_ONE_VALUES, "store_purchases": 900})
    assert odd.warnings and all(w in render_result(odd, texts) for w in odd.warnings)


def test_one_dialogue_serves_many_threads(dialogue, service):
    keys = list(SEGMENT_KEYS) * 8
    results: dict[int, str] = {}

    def chat(i: int, key: str) -> None:
        profile = centre_profile(service, key)
        state = DialogueState()
        for name in FIELD_NAMES:
            state = dialogue.respond(state, str(int(profile[name]))).state
        results[i] = state.segment_key

    threads = [threading.Thread(target=chat, args=(i, k)) for i, k in enumerate(keys)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(len(keys))] == keys


# ---------------------------------------------------------------------------- property test

_PHRASES = ["help", "start over", "cancel", "new customer", "why?", "what do you have so far", "list the segments",
            "how big is each segment", "compare vip and browsers", "what strategy for casual?", "tell me about digital",
            "what if she spent 2000?", "what if income was 30k and visits 10", "what about age 70", "no", "yes",
            "what is recency", "thanks", "quit", ALL_IN_ONE]
_FIELD_WORDS = [w for f in FIELDS for w in (f.name, *f.synonyms[:3])]
_numbers = st.one_of(st.integers(-10**6, 10**7).map(str), st.floats(allow_nan=True, allow_infinity=True).map(str),
                     st.sampled_from(["1.2k", "$71,000", "twice", "3 weeks ago", "thirty-five", "1e400"]))
_messages = st.one_of(
    st.text(max_size=120),
    st.text(min_size=200, max_size=3000),
    st.sampled_from(_PHRASES),
    st.tuples(st.sampled_from(_FIELD_WORDS), _numbers).map(" ".join),
    st.lists(st.tuples(st.sampled_from(_FIELD_WORDS), _numbers).map(" ".join), max_size=4).map(", ".join),
    _numbers,
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40).map(lambda s: f"<b>{s}</b> **{s}**"),
)
_drafts = st.fixed_dictionaries({}, optional={
    f.name: (st.integers(int(f.minimum), min(int(f.maximum), 200)) if f.integer
             else st.floats(f.minimum, min(f.maximum, 200_000), allow_nan=False)) for f in FIELDS})


@pytest.mark.slow
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(draft=_drafts, pending=st.sampled_from([None, *FIELD_NAMES]), messages=st.lists(_messages, min_size=1, max_size=5))
def test_respond_never_raises_and_state_stays_consistent(dialogue, draft, pending, messages):
    state = DialogueState(profile=ProfileDraft(**draft), pending=pending)
    for message in messages:
        before = state.model_dump()
        turn = dialogue.respond(state, message)
        check_consistent(dialogue, turn)
        assert state.model_dump() == before
        state = turn.state


# ---------------------------------------------------------------------------- wording


def _explanations(service):
    return service.knowledge.explanations


@pytest.mark.parametrize("values", [ALL_IN_ONE_VALUES, *({"key": k} for k in SEGMENT_KEYS),
                                    {**ALL_IN_ONE_VALUES, "recency_days": 1, "web_purchases": 1}])
def test_reasons_are_short_and_plain(service, values):
    if "key" in values:
        values = centre_profile(service, values["key"])
    result = service.assign(values)
    headlines = {h for levels in _explanations(service).headlines.values() for h in levels.bands()}
    assert result.reasons
    for reason in result.reasons:
        headline = reason.split(":")[0]
        assert headline in headlines, reason
        assert "for the average customer" in reason and result.segment_name in reason
        assert not re.search(r"\d\.0\b", reason), reason              # 49, not 49.0
        assert not re.search(r"\b1 (days|purchases|visits|years)\b", reason), reason
        assert "; the average customer has" not in reason and "days since last purchase" not in reason.lower()
        assert len(reason) < 170, reason


def test_a_recent_buyer_reads_bought_recently(service):
    result = service.assign(ALL_IN_ONE_VALUES)
    recency = next(r for r in result.reasons if "days ago" in r)
    assert recency.startswith("Bought very recently: 14 days ago, against 49 for the average customer \u2014 closer to ")


def test_money_in_reasons_has_dollars_and_separators(service):
    result = service.assign({**ALL_IN_ONE_VALUES, "income": 160000, "total_spending": 2400})
    money = [r for r in result.reasons if "income" in r.lower() or "spend" in r.lower()]
    assert money and all(re.search(r"\$\d{1,3}(,\d{3})+", r) for r in money)


def test_confidence_line_reads_well_when_clear_and_when_borderline(service, texts):
    borderline = service.assign(ALL_IN_ONE_VALUES)
    clear = service.assign(centre_profile(service, "vip_customers"))
    assert borderline.confidence.level == "borderline" and clear.confidence.level == "clear"
    for result in (borderline, clear):
        line = next(x for x in render_result(result, texts).split("\n\n") if x.startswith("**Confidence:**"))
        assert line.count(":") == 1, line                            # no "Confidence: Borderline: ..."
        assert result.confidence.runner_up_name in line
    assert "Borderline \u2014 the customer sits between Digital Enthusiasts and VIP Customers" in borderline.confidence.text
    assert clear.confidence.text.startswith("Clear fit \u2014 the customer is much closer to VIP Customers")


def test_every_echo_says_the_unit_once(dialogue):
    turns = talk(dialogue, ALL_IN_ONE.replace("2 weeks ago", "1 day ago").replace("online 5x", "online once"),
                 "what do you have so far", "what if she bought online 3 times", "cancel")
    noted, summary, what_if, cancel = (t.reply for t in turns)
    assert noted.startswith("Got it \u2014 age: 38, income: $71,000, total spending: $1,200, web purchases: 1, "
                            "store purchases: 7, site visits: 6 a month, last purchase: 1 day ago.")
    assert "- Last purchase: 1 day ago" in summary and "- Site visits: 6 a month" in summary
    assert what_if.startswith("Changing web purchases from 1 to 3 would ")
    assert "last purchase: 1 day ago" in cancel
    for reply in (noted, summary, what_if, cancel):
        assert not re.search(r"purchases \d+ purchase|visits per month \d+ visits|\b1 days\b|\d\.0\b", reply), reply


# ---------------------------------------------------------------------------- saying back what was read (issue 11)


def test_a_misspelt_cue_is_said_back_and_no_drops_it(dialogue):
    read, no = talk(dialogue, "imcome 69k, age 40", "no")
    assert "income: $69,000 (please check)" in read.reply
    assert "I read \u201cimcome\u201d as income: $69,000 \u2014 say **no** to change it." in read.reply
    assert read.state.unsure == ("income",) and read.state.last_read == ("age", "income")
    assert no.state.profile.income is None and no.state.profile.age == 40
    assert no.reply.startswith("OK, I've dropped income: $69,000.")
    assert no.state.asking == "income"


def test_yes_keeps_the_values_read_back(dialogue):
    read, yes = talk(dialogue, "buys online 2x a month", "yes")
    assert "I counted \u201c2x a month\u201d as web purchases: 48 over the last 2 years" in read.reply
    assert yes.state.profile.web_purchases == 48 and yes.state.unsure == ()
    assert yes.reply.startswith("Thanks, I'll keep that.")


def test_thats_wrong_drops_the_last_messages_values(dialogue):
    read, wrong = talk(dialogue, "age 40, income 50k", "that's wrong")
    assert "age: 40, income: $50,000" in read.reply and "(please check)" not in read.reply
    assert wrong.state.profile.age is None and wrong.state.profile.income is None
    assert wrong.state.asking == "age"


def test_a_correction_never_fills_the_pending_question(dialogue):
    first, correction = talk(dialogue, "age 25", "sorry, she's 52 not 25")
    assert first.state.asking == "income"
    assert correction.state.profile.age == 52 and correction.state.profile.income is None


def test_a_table_in_the_chat(dialogue):
    (one,) = talk(dialogue, "Age\tIncome\tRecency (days)\n38\t71000\t14")
    assert (one.state.profile.age, one.state.profile.income, one.state.profile.recency_days) == (38, 71000, 14)
    (several,) = talk(dialogue, "| age | income |\n|---|---|\n| 38 | 71000 |\n| 40 | 50000 |")
    assert "That table has 2 customers" in several.reply and "**Batch** tab" in several.reply
    assert several.state.profile.filled() == {}


# ---------------------------------------------------------------------------- the chance to respond

FULL = "age 38, income 71k, spent 1200, 5 web purchases, 7 store purchases, 6 web visits a month, last purchase 14 days ago"


def test_who_to_target_ranks_the_segments_by_their_response_rate(dialogue, service):
    reply = talk(dialogue, "who should I target?")[-1].reply
    rates = service.card["response"]["segment_rates"]
    order = [service.segment_name(k) for k, _ in sorted(rates.items(), key=lambda kv: -kv[1])]
    positions = [reply.index(f"**{name}**") for name in order]
    assert positions == sorted(positions), reply
    assert "--top" in reply


def test_why_is_her_chance_high_names_the_values_that_drive_it(dialogue):
    turns = talk(dialogue, FULL, "why is her chance so high?")
    result = turns[0].result
    assert result is not None and result.response is not None
    reply = turns[-1].reply
    assert f"{result.response.probability:.0%}" in reply
    labels = [d.field for d in result.response.drivers]
    assert labels and any(f.short_lower in reply for f in FIELDS if f.name in labels)


def test_why_chance_before_the_customer_is_complete_asks_for_the_values(dialogue, texts):
    assert texts.replies.why_chance_incomplete in talk(dialogue, "why is her chance so high?")[-1].reply


def test_a_what_if_shows_how_the_chance_moves(dialogue, service):
    turns = talk(dialogue, FULL, "what if she spent 2000?")
    result = turns[0].result
    before = result.response.probability
    after = service.assign(CustomerProfile(**{**result.customer, "total_spending": 2000})).response.probability
    assert f"from {before:.0%} to {after:.0%}" in turns[-1].reply
