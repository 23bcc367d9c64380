"""The free-text parser: phrasings, rejected values, no guessing, pending answers, robustness."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.conversation.parsing import MAX_CHARS, ParseResult, parse_message, parse_number
from assistant.core.errors import InvalidValueError
from assistant.core.fields import FIELD_NAMES, FIELDS, FIELDS_BY_NAME
from assistant.core.schemas import ProfileDraft

CANONICAL = "38, makes $71k, spent 1.2k, buys online 5x, in store 7x, visits 6x a month, last bought 2 weeks ago"
ALL_SEVEN = {
    "age": 38, "income": 71000, "total_spending": 1200, "web_purchases": 5,
    "store_purchases": 7, "web_visits_per_month": 6, "recency_days": 14,
}

# (text, pending, exactly the values expected)
PHRASINGS: list[tuple[str, str | None, dict]] = [
    # --- the canonical message and other full descriptions
    (CANONICAL, None, ALL_SEVEN),
    ("38, makes $71k, spent 1.2k, buys online 5x, in store 7x, visits 6x a month, last bought 2 weeks ago.", None, ALL_SEVEN),
    ("age: 38\nincome: 71,000\ntotal_spending: 1200\nweb_purchases: 5\nstore_purchases: 7\nweb_visits_per_month: 6\nrecency_days: 14",
     None, ALL_SEVEN),
    ("age=38 income=71000 total_spending=1200 web_purchases=5 store_purchases=7 web_visits_per_month=6 recency_days=14",
     None, ALL_SEVEN),
    ("age=38, income=71,000, total-spending=1,200, web-purchases=5, store-purchases=7, web-visits-per-month=6, recency=14",
     None, ALL_SEVEN),
    ("A 38-year-old earning $71,000 a year; she spent $1,200, made 5 online purchases and 7 in-store purchases, "
     "visits the website 6 times per month and last bought 14 days ago", None, ALL_SEVEN),
    ("She is 38 and makes 71k. Spends 1200 total. 5 web orders, 7 times in store, 6 visits a month, last purchase 2 weeks ago.",
     None, ALL_SEVEN),
    ("customer aged 52 with income of 80000", None, {"age": 52, "income": 80000}),
    ("Age 45, income 60k, spent 300", None, {"age": 45, "income": 60000, "total_spending": 300}),
    ("45, income 60k", None, {"age": 45, "income": 60000}),
    ("buys online 5x in store 7x", None, {"web_purchases": 5, "store_purchases": 7}),
    ("5x online 7x in store", None, {"web_purchases": 5, "store_purchases": 7}),
    ("5 online purchases and 7 store purchases", None, {"web_purchases": 5, "store_purchases": 7}),
    # --- age
    ("she is 45", None, {"age": 45}),
    ("he's 61", None, {"age": 61}),
    ("45 year old woman", None, {"age": 45}),
    ("a 38-year-old", None, {"age": 38}),
    ("38yo", None, {"age": 38}),
    ("38 y/o", None, {"age": 38}),
    ("38 y.o.", None, {"age": 38}),
    ("38 years old", None, {"age": 38}),
    ("38 yrs old", None, {"age": 38}),
    ("aged 38", None, {"age": 38}),
    ("age 38", None, {"age": 38}),
    ("Age: 38", None, {"age": 38}),
    ("age is thirty-five", None, {"age": 35}),
    ("she is twenty one", None, {"age": 21}),
    ("aged 38 years", None, {"age": 38}),
    ("no, age 33", None, {"age": 33}),
    # --- income
    ("makes $71k", None, {"income": 71000}),
    ("earns 71000 a year", None, {"income": 71000}),
    ("income 71k", None, {"income": 71000}),
    ("income 71K", None, {"income": 71000}),
    ("salary: 65,000", None, {"income": 65000}),
    ("makes $5k a month", None, {"income": 60000}),
    ("income $5k per month", None, {"income": 60000}),
    ("earns 5000 monthly", None, {"income": 60000}),
    ("I think about 60k income", None, {"income": 60000}),
    ("actually the income is 60k", None, {"income": 60000}),
    ("income: 1.2 million", None, {"income": 1200000}),
    ("income: 1,2 million", None, {"income": 1200000}),        # a decimal comma before a multiplier
    ("spent 1,5k, online 5", None, {"total_spending": 1500, "web_purchases": 5}),
    ("online 5,7 in store", None, {"web_purchases": 5, "store_purchases": 7}),
    ("makes 2m a year", None, {"income": 2000000}),
    ("income €3.5k a month", None, {"income": 42000}),
    ("annual income of USD 52,000", None, {"income": 52000}),
    ("household income 52000 dollars", None, {"income": 52000}),
    ("earns fifty thousand", None, {"income": 50000}),
    ("makes 50 grand a year", None, {"income": 50000}),
    ("income: £45,500.50", None, {"income": 45500.5}),
    ("71k income", None, {"income": 71000}),
    ("earning about 1,000 a week", None, {"income": 52000}),
    ("income=0", None, {"income": 0}),
    ("income 71k/yr", None, {"income": 71000}),
    ("monthly income 5k", None, {"income": 60000}),
    ("monthly salary: $4,000", None, {"income": 48000}),
    # --- total spending
    ("spent 1.2k", None, {"total_spending": 1200}),
    ("spends $1,200", None, {"total_spending": 1200}),
    ("total spend of 1200", None, {"total_spending": 1200}),
    ("total spending: 1,200.50", None, {"total_spending": 1200.5}),
    ("amount spent 640", None, {"total_spending": 640}),
    ("has spent 300 bucks", None, {"total_spending": 300}),
    ("spent a hundred dollars", None, {"total_spending": 100}),
    ("spending 2,500", None, {"total_spending": 2500}),
    ("spent 500 online", None, {"total_spending": 500}),
    ("spends $50 a month", None, {"total_spending": 1200}),
    ("$900 total spend", None, {"total_spending": 900}),
    # --- web purchases
    ("buys online 5x", None, {"web_purchases": 5}),
    ("5 online purchases", None, {"web_purchases": 5}),
    ("bought 5 times online", None, {"web_purchases": 5}),
    ("5 web orders", None, {"web_purchases": 5}),
    ("web purchases: 4", None, {"web_purchases": 4}),
    ("never buys online", None, {"web_purchases": 0}),
    ("no online purchases", None, {"web_purchases": 0}),
    ("one online purchase", None, {"web_purchases": 1}),
    ("a dozen online purchases", None, {"web_purchases": 12}),
    ("shops online twice", None, {"web_purchases": 2}),
    ("website purchases = 9", None, {"web_purchases": 9}),
    ("orders online 3 times", None, {"web_purchases": 3}),
    ("web purchases zero", None, {"web_purchases": 0}),
    ("buys online 2x a month", None, {"web_purchases": 48}),  # scaled to the two-year window
    ("web purchases 5 store purchases 7", None, {"web_purchases": 5, "store_purchases": 7}),
    # --- store purchases
    ("in store 7x", None, {"store_purchases": 7}),
    ("7 times in store", None, {"store_purchases": 7}),
    ("shops in store 7 times", None, {"store_purchases": 7}),
    ("no store purchases", None, {"store_purchases": 0}),
    ("store purchases: 10", None, {"store_purchases": 10}),
    ("7 in-store purchases", None, {"store_purchases": 7}),
    ("shops in the store about 7 times", None, {"store_purchases": 7}),
    ("buys in person 3 times", None, {"store_purchases": 3}),
    ("twelve store purchases", None, {"store_purchases": 12}),
    # --- web visits per month
    ("visits 6x a month", None, {"web_visits_per_month": 6}),
    ("6 visits a month", None, {"web_visits_per_month": 6}),
    ("visits the website 6 times per month", None, {"web_visits_per_month": 6}),
    ("visits per month: 3", None, {"web_visits_per_month": 3}),
    ("doesn't visit the site", None, {"web_visits_per_month": 0}),
    ("web visits: 8", None, {"web_visits_per_month": 8}),
    ("visits our site twice a week", None, {"web_visits_per_month": 8}),
    ("site visits 5", None, {"web_visits_per_month": 5}),
    ("visited the website 4 times last month", None, {"web_visits_per_month": 4}),
    ("web_visits_per_month=7", None, {"web_visits_per_month": 7}),
    ("weekly visits 2", None, {"web_visits_per_month": 8}),
    ("Visits: 7/month", None, {"web_visits_per_month": 7}),
    # --- recency
    ("last bought 2 weeks ago", None, {"recency_days": 14}),
    ("last purchase 10 days ago", None, {"recency_days": 10}),
    ("recency 30", None, {"recency_days": 30}),
    ("hasn't bought for 3 months", None, {"recency_days": 90}),
    ("last bought a month ago", None, {"recency_days": 30}),
    ("last purchase yesterday", None, {"recency_days": 1}),
    ("last purchase today", None, {"recency_days": 0}),
    ("last bought last week", None, {"recency_days": 7}),
    ("last order a year ago", None, {"recency_days": 365}),
    ("10 days ago", None, {"recency_days": 10}),
    ("days since last purchase: 20", None, {"recency_days": 20}),
    ("last purchase was three weeks ago", None, {"recency_days": 21}),
    ("recency: 45 days", None, {"recency_days": 45}),
    ("20 days since last purchase", None, {"recency_days": 20}),
    ("hasn't bought online for 3 months", None, {"recency_days": 90}),
    ("last shopped 2w ago", None, {"recency_days": 14}),
    # --- corrections, filler, noise around values
    ("Oh and by the way her income is roughly 45k", None, {"income": 45000}),
    ("customer #4521, age 38", None, {"age": 38}),
    ("has 2 kids, income 50k", None, {"income": 50000}),
    ("last purchase on 2014-03-05, age 40", None, {"age": 40}),
    ("<b>income</b>: 50k", None, {"income": 50000}),
    ("age: 38 (born in 1976)", None, {"age": 38}),
    ("spent 300 in 2013", None, {"total_spending": 300}),
    ("income 50k; actually income 60k", None, {"income": 60000}),
    ("She\u2019s 45 \u2014 makes 80k", None, {"age": 45, "income": 80000}),
    ("INCOME 71K, AGE 38", None, {"age": 38, "income": 71000}),
    # --- pending answers
    ("45", "age", {"age": 45}),
    ("45k", "income", {"income": 45000}),
    ("$1,200", "total_spending", {"total_spending": 1200}),
    ("none", "web_purchases", {"web_purchases": 0}),
    ("never", "store_purchases", {"store_purchases": 0}),
    ("fifty", "age", {"age": 50}),
    ("2 weeks ago", "recency_days", {"recency_days": 14}),
    ("3 months", "recency_days", {"recency_days": 90}),
    ("yesterday", "recency_days", {"recency_days": 1}),
    ("about 6 I think", "web_visits_per_month", {"web_visits_per_month": 6}),
    ("maybe 5x", "store_purchases", {"store_purchases": 5}),
    ("$5k a month", "income", {"income": 60000}),
    ("45, and she earns 50k", "age", {"age": 45, "income": 50000}),
    ("income 50k", "age", {"income": 50000}),
    ("thirty-five", "age", {"age": 35}),
    ("1.2k", "total_spending", {"total_spending": 1200}),
    # the pending question takes the one stray number, never a guess between several or a count of something else
    ("12 or so", "web_purchases", {"web_purchases": 12}),
    ("5 orders", "web_purchases", {"web_purchases": 5}),
    ("38 I guess", "age", {"age": 38}),
    ("he has 2 kids", "web_purchases", {}),
    ("3 dogs", "store_purchases", {}),
    ("hmm, not sure, maybe between 3 and 4?", "total_spending", {}),
    ("5, maybe 6", "web_purchases", {}),
    ("she is 45 <script>alert(1)</script>", "income", {"age": 45}),
    ("<style>p{width:300px}</style>5", "web_purchases", {"web_purchases": 5}),
    # --- outside-tester round: synonyms and paraphrases
    ("38-yr-old", None, {"age": 38}),
    ("a 38 yr old man", None, {"age": 38}),
    ("38 y.o. male", None, {"age": 38}),                        # the period of an abbreviation ends no clause
    ("age approx. 40", None, {"age": 40}),
    ("the customer is 38 years of age", None, {"age": 38}),
    ("client is 52, earns 40k", None, {"age": 52, "income": 40000}),
    ("what if she was 25", None, {"age": 25}),
    ("she brings in 71k", None, {"income": 71000}),
    ("spending over 2 years: 1200", None, {"total_spending": 1200}),   # a cue passes over a duration that does not fit
    ("spending in the last 2 years: 1200, 5 online", None, {"total_spending": 1200, "web_purchases": 5}),
    ("store purchases over the past two years: 7", None, {"store_purchases": 7}),
    ("monetary 1200", None, {"total_spending": 1200}),
    ("purchases totaling $1,200", None, {"total_spending": 1200}),
    ("5 e-commerce orders", None, {"web_purchases": 5}),
    ("5 ecommerce purchases", None, {"web_purchases": 5}),
    ("7 offline purchases", None, {"store_purchases": 7}),
    ("7 retail purchases", None, {"store_purchases": 7}),
    ("never visits the store", None, {"store_purchases": 0}),          # a store visit is no website visit
    ("browses the site 6 times a month", None, {"web_visits_per_month": 6}),
    ("goes on the website 6 times a month", None, {"web_visits_per_month": 6}),  # not 144 web purchases
    ("logs in 6 times a month", None, {"web_visits_per_month": 6}),
    ("6 sessions a month", None, {"web_visits_per_month": 6}),
    ("last transaction 14 days ago", None, {"recency_days": 14}),
    # --- a frequency with no number is once per period, only when the clause has no other number
    ("comes to the website weekly", None, {"web_visits_per_month": 4}),
    ("visits the site daily", None, {"web_visits_per_month": 30}),
    ("visits the site every week", None, {"web_visits_per_month": 4}),
    ("6 web visits monthly", None, {"web_visits_per_month": 6}),
    ("visits monthly: 6", None, {"web_visits_per_month": 6}),
    ("weekly", "web_visits_per_month", {"web_visits_per_month": 4}),
    # --- a point in time with a purchase word and no other number is the last purchase
    ("bought yesterday", None, {"recency_days": 1}),
    ("bought something last week", None, {"recency_days": 7}),
    ("placed an order today", None, {"recency_days": 0}),
    ("visits 6 times a month, bought yesterday", None, {"web_visits_per_month": 6, "recency_days": 1}),
    # --- thousands grouped by spaces; a yearly amount of money with no cue is the income
    ("income 71 000", None, {"income": 71000}),
    ("income 71 000 €, age 38", None, {"age": 38, "income": 71000}),
    ("income 1 200 000", None, {"income": 1200000}),
    ("income 71 000.50", None, {"income": 71000.5}),
    ("web purchases 5 100 days ago", None, {"web_purchases": 5, "recency_days": 100}),
    ("age 38 100k income", None, {"age": 38, "income": 100000}),
    ("$71k/yr", None, {"income": 71000}),
    ("Customer: 29 y/o, 28k/yr, spend $90, 1 web order, 2 store purchases, 9 visits per month, 45 days since last purchase",
     None, {"age": 29, "income": 28000, "total_spending": 90, "web_purchases": 1, "store_purchases": 2,
            "web_visits_per_month": 9, "recency_days": 45}),
    # --- a pasted header line and one row of values
    ("age,income,total_spending,web_purchases,store_purchases,web_visits_per_month,recency_days\n38,71000,1200,5,7,6,14",
     None, ALL_SEVEN),
    ("age;income;spent\n38;71k;1.2k", None, {"age": 38, "income": 71000, "total_spending": 1200}),
    ("Age\tIncome\n38\t71000", None, {"age": 38, "income": 71000}),
    ("age,38\nincome,71000\nweb purchases;5\nrecency\t14", None,
     {"age": 38, "income": 71000, "web_purchases": 5, "recency_days": 14}),   # two-column lines
    ("income,71000", None, {"income": 71000}),
    ("the customer is a VIP with 5 store purchases", None, {"store_purchases": 5}),
    ("ordered twice online, last order yesterday", None, {"web_purchases": 2, "recency_days": 1}),
    ("total spending 1,200 dollars over 2 yrs", None, {"total_spending": 1200}),
    ("web purchases in 2 years: 5", None, {"web_purchases": 5}),
    ("38yo, income 71k, spend 1.2k, 5 online / 7 in-store purchases, 6 visits/mo, recency 14", None, ALL_SEVEN),
    ("age: 38 | income: 71000 | spending: 1200 | web: 5 | store: 7 | visits: 6 | recency: 14", None, ALL_SEVEN),
    ("A 38-year-old with a household income of $71k who spent $1.2k, made 5 online and 7 in-store purchases, "
     "visits the site 6 times a month and last purchased two weeks ago", None, ALL_SEVEN),
]


def _close(expected: dict, got: dict) -> bool:
    return expected.keys() == got.keys() and all(math.isclose(expected[k], got[k]) for k in expected)


def test_there_are_at_least_100_distinct_phrasings():
    assert len({(text, pending) for text, pending, _ in PHRASINGS}) >= 100
    assert len(PHRASINGS) == len({(text, pending) for text, pending, _ in PHRASINGS})


@pytest.mark.parametrize(("text", "pending", "expected"), PHRASINGS, ids=[p[0][:50] for p in PHRASINGS])
def test_phrasing(text, pending, expected):
    result = parse_message(text, pending=pending)
    assert result.values == expected
    assert _close(expected, result.values)
    assert result.rejected == []


def test_phrasings_pass_rate():
    passed = sum(parse_message(t, pending=p).values == e for t, p, e in PHRASINGS)
    assert passed / len(PHRASINGS) >= 0.95


def test_values_are_typed_and_in_field_order():
    result = parse_message("last bought 2 weeks ago, age 38, income 71000")
    assert list(result.values) == ["age", "income", "recency_days"]
    assert type(result.values["age"]) is int
    assert type(result.values["recency_days"]) is int
    assert type(result.values["income"]) is float


def test_draft_and_empty():
    result = parse_message(CANONICAL)
    assert isinstance(result, ParseResult)
    draft = result.draft
    assert isinstance(draft, ProfileDraft)
    assert draft.missing() == []
    assert draft.as_dict() == ALL_SEVEN
    assert not result.empty
    assert parse_message("hello there").empty
    assert parse_message("hello there").draft.missing() == list(FIELD_NAMES)
    assert not parse_message("age 250").empty


# ------------------------------------------------------------------------------------ rejected


def test_age_out_of_range_is_rejected():
    result = parse_message("age 250")
    assert result.values == {}
    assert [str(e) for e in result.rejected] == ["age=250 is above the maximum of 110"]
    assert isinstance(result.rejected[0], InvalidValueError)
    assert result.rejected[0].field == "age"


@pytest.mark.parametrize(("text", "field"), [
    ("-5 web purchases", "web_purchases"),
    ("web_purchases=-5", "web_purchases"),
    ("store purchases: -3", "store_purchases"),
    ("income -5k", "income"),
])
def test_negative_values_are_rejected_not_flipped(text, field):
    result = parse_message(text)
    assert field not in result.values
    assert [e.field for e in result.rejected] == [field]
    assert "below the minimum of 0" in str(result.rejected[0])


@pytest.mark.parametrize(("text", "message"), [
    ("age 12", "age=12 is below the minimum of 18"),
    ("visits 500 a month", "web_visits_per_month=500 is above the maximum of 300"),
    ("2.5 web purchases", "web_purchases=2.5 must be a whole number"),
    ("age 1e400", "age=inf is not a finite number"),
    ("income 99999999999999999999", "income=1e+20 is above the maximum of 10,000,000"),
    ("makes 2 billion", "income=2000000000 is above the maximum of 10,000,000"),
    ("-5", "age=-5 is below the minimum of 18"),
])
def test_rejections_name_value_and_rule(text, message):
    result = parse_message(text, pending="age" if text == "-5" else None)
    assert [str(e) for e in result.rejected] == [message]
    assert result.values == {}


@pytest.mark.parametrize(("text", "field", "raw"), [
    ("income 71.000 \u20ac", "income", "71.000"),
    ("spent 1.200", "total_spending", "1.200"),
    ("71.000", "income", "71.000"),
    ("age,income\n38,71.000", "income", "71.000"),
])
def test_a_point_before_three_digits_is_ambiguous_and_refused(text, field, raw):
    result = parse_message(text, pending="income" if text == "71.000" else None)
    assert field not in result.values
    assert [(e.field, e.value) for e in result.rejected] == [(field, raw)]
    assert "ambiguous" in str(result.rejected[0])
    assert parse_message("income 71.5k").values == {"income": 71500}   # before a multiplier it is a decimal point
    assert parse_message("income 71.50").values == {"income": 71.5}
    assert parse_message("age 38.000").rejected == []            # 38,000 is no age: the dot is a decimal point
    assert parse_message("age 38.000").values == {"age": 38}


def test_rejected_and_valid_values_together():
    result = parse_message("age 250, income 50k")
    assert result.values == {"income": 50000}
    assert [e.field for e in result.rejected] == ["age"]


def test_later_mention_wins():
    assert parse_message("age 250, no, age 33").values == {"age": 33}
    assert parse_message("age 250, no, age 33").rejected == []


# ------------------------------------------------------------------------------------ no guessing


@pytest.mark.parametrize("text", [
    "45", "45k", "$1,200", "fifty", "2 kids", "customer #4521", "none", "never", "yesterday",
    "3 months", "2014-03-05", "20%", "at 10:30", "on March 3", "the 3rd visit", "she has 2 dogs and 3 cats",
    "45 and 50", "I am not sure", "order #12345 from 2013", "between 30-40", "zip 90210",
    "customer 4521", "call me at 555 1234", "38 50k 1200",
    "in her late thirties", "in his 40s", "born 1986", "born in 1976", "bought 6 a year", "earns weekly",
    "visited the site yesterday", "she turned down 3 offers", "income,71000,age,38", "earns roughly 70-75k", "low income",
    "age,income\n38,71000\n40,50000",                     # several rows are a file, not one customer
    "38, 71000, 1200, 5, 7, 6, 14",
])
def test_a_number_with_no_cue_is_not_guessed(text):
    assert parse_message(text).values == {}


def test_leading_bare_number_is_age_only_with_other_cues():
    assert parse_message("38, makes $71k").values == {"age": 38, "income": 71000}
    assert parse_message("38,").values == {}
    assert parse_message("38, 71k").values == {}
    assert parse_message("4521, makes $71k").values == {"income": 71000}  # not a plausible age
    assert parse_message("38 makes $71k").values == {"income": 71000}     # no comma after it
    assert parse_message("38.5, makes $71k").values == {"income": 71000}


def test_no_is_only_zero_right_before_a_count_cue():
    assert parse_message("no idea about web visits").values == {}
    assert parse_message("no").values == {}
    assert parse_message("no", pending="web_purchases").values == {}
    assert parse_message("no income data").values == {}


# ------------------------------------------------------------------------------------ pending


@pytest.mark.parametrize(("text", "pending", "expected"), [
    ("45", "age", {"age": 45}),
    ("45", "income", {"income": 45}),
    ("45", "recency_days", {"recency_days": 45}),
    ("2 weeks", "age", {}),                 # a duration in weeks is no age
    ("$500", "age", {}),                    # money is no age
    ("5x", "income", {}),                   # a count is no income
    ("45", "not_a_field", {}),
    ("hello", "age", {}),
])
def test_pending_answers_only_fitting_numbers(text, pending, expected):
    assert parse_message(text, pending=pending).values == expected


def test_pending_does_not_override_an_explicit_value():
    assert parse_message("age 40", pending="age").values == {"age": 40}
    assert parse_message("50k income, 40", pending="age").values == {"age": 40, "income": 50000}


def test_pending_out_of_range_is_rejected():
    result = parse_message("250", pending="age")
    assert result.values == {}
    assert [str(e) for e in result.rejected] == ["age=250 is above the maximum of 110"]


# ------------------------------------------------------------------------------------ parse_number


@pytest.mark.parametrize(("text", "value"), [
    ("1.2k", 1200), ("$71,000", 71000), ("fifty", 50), ("thirty-five", 35), ("1.2 million", 1_200_000),
    ("\u20ac3.5k", 3500), ("USD 500", 500), ("2,500.50", 2500.5), ("45K", 45000), ("twenty one", 21),
    ("a hundred", 100), ("one hundred and twenty", 120), ("a dozen", 12), ("\u00a3 12", 12), ("500 dollars", 500),
    ("300 bucks", 300), ("-5", -5), ("0", 0), ("none", 0), ("  42  ", 42), ("1,234,567", 1234567),
    ("50 grand", 50000), ("2m", 2_000_000), ("twice", 2),
])
def test_parse_number(text, value):
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "abc", "nan", "inf", "-inf", "5 apples", "1,2,3", "$", "k", "12:30", None, 5])
def test_parse_number_rejects_non_numbers(text):
    assert parse_number(text) is None


def test_parse_number_huge_is_infinite_not_an_error():
    assert parse_number("1e400") == math.inf
    assert parse_number("99999999999999999999") == 1e20


# ------------------------------------------------------------------------------------ robustness


def test_only_the_first_max_chars_are_read():
    text = "x" * (MAX_CHARS - 3) + " age 38, income 50k"  # cut inside "age"
    assert parse_message(text).values == {}
    assert parse_message("age 38 " + "x" * (MAX_CHARS * 3)).values == {"age": 38}


# The parser's speed is measured by tests/benchmarks/bench_parsing.py (timing is never asserted in a test).


@pytest.mark.parametrize("text", [
    "", " ", "\x00\x01\x02", "<script>alert('age 38')</script>", "1e400", "99999999999999999999",
    "nan", "inf", "-5", "\ud800", "\u202e income 50k", "\U0001F600" * 100, "age " * 3000, "1" * 20000,
    "hundred " * 2000, "$" * 20000, "-" * 20000, ",1" * 10000, "one hundred " * 1000 + "visits",
])
def test_never_raises_on_odd_input(text):
    result = parse_message(text)
    for name, value in result.values.items():
        assert FIELDS_BY_NAME[name].check(value) == value


def _assert_sound(result: ParseResult) -> None:
    assert isinstance(result, ParseResult)
    assert set(result.values) <= set(FIELD_NAMES)
    for name, value in result.values.items():
        assert FIELDS_BY_NAME[name].check(value) == value
        assert type(value) is FIELDS_BY_NAME[name].python_type
    for err in result.rejected:
        assert isinstance(err, InvalidValueError)
        assert err.field not in result.values


_SYNONYMS = sorted({s for f in FIELDS for s in f.synonyms} | {f.name for f in FIELDS})
_PIECES = st.one_of(
    st.sampled_from(_SYNONYMS),
    st.sampled_from(["k", "K", "x", "times", "a month", "per week", "ago", "days", "weeks ago", "years old",
                     "$", "€", "£", "USD", "dollars", "million", "never", "no", "none", "and", ",", ";", ".", "\n",
                     ":", "=", "-", "<script>", "</b>", "#", "%", "nan", "inf", "1e400", "fifty", "thirty-five",
                     "a hundred", "twenty one", "yesterday", "last week"]),
    st.integers(min_value=-10**25, max_value=10**25).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(min_value=0, max_value=10**9).map(lambda n: f"{n:,}"),
    st.text(max_size=5),
)


@pytest.mark.slow
@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.characters(codec=None), max_size=300), st.sampled_from([None, *FIELD_NAMES]))
def test_arbitrary_text_never_raises(text, pending):
    _assert_sound(parse_message(text, pending=pending))
    parse_number(text)


@settings(max_examples=2000, deadline=None)
@pytest.mark.slow
@given(st.lists(_PIECES, max_size=25), st.sampled_from([" ", "", "  ", "_"]),
       st.sampled_from([None, *FIELD_NAMES]))
def test_synonym_number_markup_soup_never_raises(pieces, joiner, pending):
    text = joiner.join(pieces)
    _assert_sound(parse_message(text, pending=pending))
    value = parse_number(text)
    assert value is None or isinstance(value, float)


@pytest.mark.parametrize("text,pending,expected", [
    ("<img src=x onerror=alert(1)>", "age", {}),
    ("<b>38</b>", "age", {"age": 38}),
    ("age 38 <script>alert(5)</script> income 40k", None, {"age": 38, "income": 40000.0}),
])
def test_markup_tags_carry_no_values(text, pending, expected):
    assert parse_message(text, pending=pending).values == expected


# ------------------------------------------------------------------------------------ precision first (issue 11)


@pytest.mark.parametrize(("text", "pending", "expected"), [
    ("sorry, she's 52 not 25", "income", {"age": 52}),          # the rejected number answers nothing
    ("not 25", "age", {}),
    ("vists 6", "age", {"web_visits_per_month": 6}),            # a misspelt cue keeps its number
    ("blorp 44", "age", {}),                                    # an unknown word before it: no answer
    ("3 complaints", "web_purchases", {}),
    ("2012", "age", {}),                                        # a year is no age
    ("30-day return window, spent 400", None, {"total_spending": 400}),
    ("4 stars online", None, {}),
    ("rated the shop 5 stars", None, {}),
    ("zip 90210", "income", {}),
    ("on the website 6 times a month", None, {"web_visits_per_month": 6}),   # visits, not 144 purchases
    ("never bought anything online", None, {"web_purchases": 0}),
    ("Maria, 44, income ~$67k", None, {"age": 44, "income": 67000}),
    ("Mid-50s? no - 54 actually", None, {"age": 54}),
    ("income,71000,age,38", None, {}),
])
def test_a_number_fills_a_field_only_when_bound_to_it(text, pending, expected):
    assert parse_message(text, pending=pending).values == expected


def test_misspelt_cues_and_converted_rates_are_marked_unsure():
    result = parse_message("imcome 69k, age 40, buys online 2x a month")
    assert result.values == {"age": 40, "income": 69000, "web_purchases": 48}
    assert result.fuzzy == {"income": "imcome"}
    assert result.scaled == {"web_purchases": "2x a month"}
    assert result.unsure == ["income", "web_purchases"]
    assert parse_message("income 69k").unsure == []


@pytest.mark.parametrize("text", [
    "age\tincome\n38\t71000", "age | income\n38 | 71000", "| age | income |\n|---|---|\n| 38 | 71000 |",
    "age  income\n38   71000", "age;income\n38;71000", "age,income\n38,71000", "Name;Age;Income\nAnna;38;71000",
    "NumWebVisitsMonth\tAge\tIncome ($)\n6\t38\t71000",
])
def test_a_pasted_table_is_read_through_the_batch_header_matcher(text):
    values = parse_message(text).values
    assert values["age"] == 38 and values["income"] == 71000


def test_several_table_rows_are_counted_not_read():
    result = parse_message("age\tincome\n38\t71000\n40\t50000\n29\t30000")
    assert result.values == {} and result.table_rows == 3
    assert parse_message("age\tincome\n38\t71000").table_rows == 0


def test_chat_and_files_share_one_header_matcher():
    from assistant.batch import inspect
    from assistant.core import headers
    assert inspect._header_field is headers.header_field
    assert headers.header_field("Recency (days)")[0] == "recency_days"
    assert headers.header_field("NumWebPurchases")[0] == "web_purchases"


@pytest.mark.parametrize(("text", "days"), [
    ("last bought 3 mths ago", 90), ("last order 2 wks ago", 14), ("last purchase the day before yesterday", 2),
    ("bought a fortnight ago", 14), ("last purchase 2 months back", 60), ("last bought a week back", 7),
])
def test_abbreviated_and_worded_times(text, days):
    assert parse_message(text).values == {"recency_days": days}


def test_number_words_in_running_text():
    assert parse_message("she is thirty-five and earns seventy one thousand").values == {"age": 35, "income": 71000}
    assert parse_message("income: 1.2 million").values == {"income": 1_200_000}   # a scale after digits is ours
