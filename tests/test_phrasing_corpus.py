"""The labelled phrasing corpus (tests/data/phrasings.yaml): no value filled that the text does not mean,
and at least 95 % of the phrasings exactly right. The figures per field: tests/benchmarks/bench_parsing.py."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "benchmarks"))

from bench_parsing import load_corpus, score  # noqa: E402

CASES = load_corpus()
FAILURE_KINDS = ("tables", "times", "visits_rate", "misspelt", "dataset_columns", "notes", "never_online")


def test_the_corpus_is_large_and_varied():
    assert len(CASES) >= 400
    assert len({(text, pending) for _, text, _, pending in CASES}) == len(CASES)   # no duplicates
    kinds = [kind for kind, *_ in CASES]
    for kind in FAILURE_KINDS:
        assert kinds.count(kind) >= 25, kind
    assert kinds.count("traps") >= 60


def test_no_value_is_filled_that_the_text_does_not_mean():
    result = score(CASES)
    assert result["wrong"] == []


def test_at_least_95_percent_are_exact():
    result = score(CASES)
    assert result["exact"] / result["n"] >= 0.95, result["failures"]


@pytest.mark.parametrize("kind", FAILURE_KINDS)
def test_each_failure_kind_is_read(kind):
    cases = [c for c in CASES if c[0] == kind]
    result = score(cases)
    assert result["exact"] / result["n"] >= 0.95, result["failures"]


def test_expected_values_are_valid_field_values():
    from assistant.core.fields import FIELDS_BY_NAME
    for _, text, expected, pending in CASES:
        assert pending is None or pending in FIELDS_BY_NAME, text
        for name, value in expected.items():
            assert math.isclose(FIELDS_BY_NAME[name].check(value), value), text
