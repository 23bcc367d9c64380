import math

import pytest

from assistant.core.errors import InvalidProfileError, InvalidValueError
from assistant.core.fields import FIELD_NAMES, FIELDS, FIELDS_BY_NAME, format_duration
from assistant.core.schemas import CustomerProfile, ProfileDraft, parse_profile

GOOD = {"age": 38, "income": 71000, "total_spending": 1200, "web_purchases": 5, "store_purchases": 7,
            "web_visits_per_month": 6, "recency_days": 14}


def test_field_table_drives_the_schema():
    schema = CustomerProfile.model_json_schema()
    assert list(schema["properties"]) == list(FIELD_NAMES)
    assert set(schema["required"]) == set(FIELD_NAMES)
    for f in FIELDS:
        prop = schema["properties"][f.name]
        assert prop["minimum"] == f.minimum and prop["maximum"] == f.maximum
        assert prop["type"] == ("integer" if f.integer else "number")
        assert prop["title"] == f.label
    assert "required" not in ProfileDraft.model_json_schema()


def test_valid_profile_types():
    p = parse_profile(GOOD)
    assert isinstance(p.age, int) and isinstance(p.income, float)
    assert p.as_dict() == {k: float(v) if not FIELDS_BY_NAME[k].integer else v for k, v in GOOD.items()}


@pytest.mark.parametrize("field,value,message", [
    ("age", 250, "age=250 is above the maximum of 110"),
    ("age", 5, "age=5 is below the minimum of 18"),
    ("web_purchases", -1, "web_purchases=-1 is below the minimum of 0"),
    ("web_purchases", 2.5, "web_purchases=2.5 must be a whole number"),
    ("income", "lots", "income='lots' is not a number"),
    ("income", float("nan"), "income=nan is not a finite number"),
    ("recency_days", 99999, "recency_days=99999 is above the maximum of 3,650"),
])
def test_messages_name_value_and_rule(field, value, message):
    with pytest.raises(InvalidProfileError) as info:
        parse_profile({**GOOD, field: value})
    assert info.value.problems == [message]


def test_every_problem_is_reported_at_once():
    bad = {**GOOD, "age": 250, "income": -3}
    del bad["recency_days"]
    with pytest.raises(InvalidProfileError) as info:
        parse_profile({**bad, "colour": "red"})
    problems = info.value.problems
    assert "age=250 is above the maximum of 110" in problems
    assert "income=-3 is below the minimum of 0" in problems
    assert "recency_days is required" in problems
    assert any(p.startswith("colour is not a customer field") for p in problems)


def test_numbers_as_text_are_accepted_at_the_edge():
    p = parse_profile({**GOOD, "income": "71,000", "age": " 38 "})
    assert p.income == 71000.0 and p.age == 38


def test_booleans_are_not_numbers():
    with pytest.raises(InvalidProfileError):
        parse_profile({**GOOD, "age": True})


def test_draft_is_all_optional_and_completes():
    d = ProfileDraft()
    assert d.missing() == list(FIELD_NAMES)
    d = d.merged({"age": 30})
    assert d.filled() == {"age": 30}
    with pytest.raises(InvalidProfileError, match="income is required"):
        d.to_profile()
    full = ProfileDraft(**GOOD).to_profile()
    assert isinstance(full, CustomerProfile) and full.age == 38


def test_field_check_and_format():
    age = FIELDS_BY_NAME["age"]
    assert age.check("40") == 40
    with pytest.raises(InvalidValueError, match="age=inf is not a finite number"):
        age.check(math.inf)
    assert FIELDS_BY_NAME["income"].format(71000) == "$71,000"
    assert FIELDS_BY_NAME["web_purchases"].format(7.52) == "7.5 purchases"
    assert FIELDS_BY_NAME["recency_days"].format(14) == "14 days"


@pytest.mark.parametrize("name, one, two", [
    ("age", "1 year", "2 years"),
    ("web_purchases", "1 purchase", "2 purchases"),
    ("store_purchases", "1 purchase", "2 purchases"),
    ("web_visits_per_month", "1 visit/month", "2 visits/month"),
    ("recency_days", "1 day", "2 days"),
    ("income", "$1", "$2"),
])
def test_one_is_singular(name, one, two):
    f = FIELDS_BY_NAME[name]
    assert f.format(1) == one and f.format(1.0) == one and f.format(2) == two
    assert f.format(0) == ("$0" if f.money else f"0 {f.unit}")   # zero is plural


def test_every_field_declares_its_display():
    for f in FIELDS:
        assert f.short and f.short[0].isupper() and f.short_lower[0].islower()
        if not f.money:
            assert f.unit_one and f.unit_one != f.unit                     # a singular for "1 day"
        for value in (0, 1, 2, 45.25, f.maximum):
            said = f.say(value)
            assert said and "{" not in said
            assert f.money or f.unit not in said or f.name == "recency_days"   # the short name names the unit


def test_numbers_read_like_an_analyst_wrote_them():
    recency, income, visits = (FIELDS_BY_NAME[n] for n in ("recency_days", "income", "web_visits_per_month"))
    assert recency.number(49.019) == "49" and recency.number(45.24) == "45.2" and recency.number(3650) == "3,650"
    assert income.number(52247.25) == "$52,247" and income.number(None) == "-"
    assert recency.say(14) == "14 days ago" and recency.say(1) == "1 day ago" and recency.say(0) == "today"
    assert visits.say(6) == "6 a month" and FIELDS_BY_NAME["web_purchases"].say(5) == "5"
    assert income.say(71000) == "$71,000" and FIELDS_BY_NAME["age"].say(38) == "38"


@pytest.mark.parametrize("seconds, text", [
    (0, "1 ms"), (0.0004, "1 ms"), (0.0123, "12 ms"), (0.0499, "50 ms"), (0.9994, "999 ms"), (0.9996, "1.0 s"),
    (1.44, "1.4 s"), (9.96, "10 s"), (42.4, "42 s"), (59.6, "1 min 00 s"), (125.2, "2 min 05 s"),
])
def test_durations_read_well(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("model, optional", [(CustomerProfile, False), (ProfileDraft, True)])
def test_the_spelled_out_classes_match_the_field_table(model, optional):
    """CustomerProfile and ProfileDraft name the seven fields so type checkers see them; this keeps them
    equal to FIELDS: names and order, types, bounds, title, description, example, required or not."""
    from annotated_types import Ge, Le
    from pydantic import BeforeValidator, ValidationError

    assert list(model.model_fields) == list(FIELD_NAMES)
    for f in FIELDS:
        info = model.model_fields[f.name]
        assert info.annotation == (f.python_type | None if optional else f.python_type), f.name
        assert info.is_required() is not optional, f.name
        if optional:
            assert info.default is None, f.name
        assert info.title == f.label
        assert info.description == f"{f.description} Unit: {f.unit}. Allowed: {f.minimum:g} to {f.maximum:g}."
        assert info.examples == [int(f.example) if f.integer else f.example]
        bounds = [m for m in info.metadata if isinstance(m, (Ge, Le))]
        assert bounds == [Ge(ge=f.minimum), Le(le=f.maximum)], f.name
        assert sum(isinstance(m, BeforeValidator) for m in info.metadata) == 1, f.name   # FieldSpec.check
    # the validator is the field's own check: its rule and message, word for word
    for f in FIELDS:
        value = f.maximum * 2 + 1
        with pytest.raises(InvalidValueError) as expected:
            f.check(value)
        with pytest.raises(ValidationError) as got:
            model.model_validate({**({} if optional else GOOD), f.name: value})
        assert [e["msg"] for e in got.value.errors()] == [str(expected.value)]
