"""Validate a chunk of a customer file, vectorised: numbers written as text, ranges, whole numbers,
the raw format's derived fields; each failing row gets every problem in words."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assistant.core.errors import InvalidValueError
from assistant.core.fields import (
    AMBIGUOUS_DOT,
    AMBIGUOUS_DOT_RULE,
    COMMA_NUMBER,
    DOT_GROUPS,
    FIELD_NAMES,
    FIELDS,
    FIELDS_BY_NAME,
    GROUP_MARKS,
    GROUPED_OTHER,
    GROUPED_THOUSANDS,
    MISPLACED_COMMA_RULE,
    MONEY_LEAD,
    MONEY_TRAIL,
    OTHER_CURRENCY,
    PERCENT,
    FieldSpec,
)
from assistant.model.data import (
    FIELD_SOURCES,
    derive_fields,
)

if TYPE_CHECKING:  # pragma: no cover
    pass
from assistant.batch.inspect import FilePlan

# parse status of a cell
_OK, _MISSING, _NOT_NUMBER, _NOT_FINITE, _BAD_COMMA, _AMBIGUOUS, _CURRENCY, _PERCENT = 0, 1, 2, 3, 4, 5, 6, 7


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or (
        hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t))


def _float_or_nan(text: str | None) -> float:
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


@dataclass(frozen=True)
class _TextRule:
    """How text in one column is read as numbers (see FieldSpec.number_from_text, which this mirrors)."""

    money: bool            # a $ sign is allowed
    low: float             # ``a.bcd`` is ambiguous when its thousands reading (a,bcd) lies in [low, high]
    high: float
    unit: str

    @classmethod
    def of(cls, spec: FieldSpec) -> _TextRule:
        return cls(spec.money, spec.minimum, spec.maximum, spec.unit)


_YEAR_RULE = _TextRule(False, 1000, 9999, "years")


def _raw_rule(column: str) -> _TextRule:
    """The rule for a raw marketing column: that of the field it feeds (Year_Birth: a year)."""
    if column == "Year_Birth":
        return _YEAR_RULE
    field = next(name for name, sources in FIELD_SOURCES.items() if column in sources)
    return _TextRule.of(FIELDS_BY_NAME[field])


def _matches(arr: pa.Array, pattern: re.Pattern[str]) -> np.ndarray:
    flags = "(?i)" if pattern.flags & re.IGNORECASE else ""
    found: np.ndarray = pc.fill_null(pc.match_substring_regex(arr, flags + pattern.pattern), False).to_numpy(
        zero_copy_only=False)
    return found


def _ambiguous_dots(arr: pa.Array, values: np.ndarray, rule: _TextRule) -> np.ndarray | None:
    """Positions of cells written ``a.bcd`` (``71.000``) whose thousands reading is in range, or None.
    Vectorised prefilter first (value between 1 and high/1000, text exactly as long as ``a.bcd``) so
    the common column costs a few numpy comparisons and no regex."""
    if rule.high < 1000:
        return None
    with np.errstate(invalid="ignore"):
        near = np.flatnonzero((values >= max(1.0, rule.low / 1000)) & (values <= rule.high / 1000))
    if near.size == 0:
        return None
    lengths = pc.binary_length(arr).to_numpy(zero_copy_only=False)
    v = values[near]
    digits = 1 + (v >= 10) + (v >= 100)
    near = near[(lengths[near] == digits + 4) | (lengths[near] == digits + 5)]    # "71.000" or "+71.000"
    if near.size == 0:
        return None
    hit = _matches(arr.take(pa.array(near)), AMBIGUOUS_DOT)
    return near[hit] if hit.any() else None


def _whole_numbers(arr: pa.Array) -> np.ndarray | None:
    """A text column read as whole numbers (float64, NaN where empty) when every cell is one, else None.
    Parsing integers is about a third cheaper than parsing floats, and such a column has no ``71.000``."""
    try:
        ints = pc.cast(arr, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if ints.null_count:
        values: np.ndarray = ints.to_numpy(zero_copy_only=False).astype(np.float64)
    else:
        values = np.asarray(ints.to_numpy(zero_copy_only=False), dtype=np.float64)
    return values


def _parse_numbers(arr: pa.Array, rule: _TextRule) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """(values, status, clean): float64 values (NaN when not usable), a status per cell (None when
    every cell is a finite number: the common case costs one cast), and whether every non-missing
    cell is a plain number (then no cell of the column needs neutralising)."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    n = len(arr)
    t = arr.type
    numeric = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
    if not numeric and not _is_text(t):
        arr = pc.cast(arr, pa.string())
    clean = True
    try:
        whole = None if numeric else _whole_numbers(arr)
        if whole is not None:             # whole numbers written plainly (most files): no dot to misread
            values, ambiguous = whole, None
        else:
            values = pc.cast(arr, pa.float64(), safe=not numeric).to_numpy(zero_copy_only=False)
            ambiguous = None if numeric else _ambiguous_dots(arr, values, rule)
        if not arr.null_count and ambiguous is None and np.isfinite(values).all():
            return values, None, True
        missing = arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count else None
        status = np.zeros(n, dtype=np.int8)
        if ambiguous is not None:
            status[ambiguous] = _AMBIGUOUS
            values = values.copy()             # (a zero-copy view of the arrow buffer is read-only)
            values[ambiguous] = np.nan
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        clean = False
        text = pc.utf8_trim_whitespace(arr)
        if rule.money:
            text = pc.replace_substring_regex(text, "(?i)" + MONEY_LEAD.pattern, r"\1\2", max_replacements=1)
            text = pc.replace_substring_regex(text, "(?i)" + MONEY_TRAIL.pattern, r"\1", max_replacements=1)
        status = np.zeros(n, dtype=np.int8)
        status[_matches(text, OTHER_CURRENCY)] = _CURRENCY
        status[(status == _OK) & _matches(text, PERCENT)] = _PERCENT
        grouped = _matches(text, GROUPED_OTHER)
        if grouped.any():
            text = pc.if_else(pa.array(grouped), pc.replace_substring_regex(text, GROUP_MARKS.pattern, ""), text)
        dotted = _matches(text, DOT_GROUPS)
        if dotted.any():
            text = pc.if_else(pa.array(dotted), pc.replace_substring(text, ".", ""), text)
        misplaced = _matches(text, COMMA_NUMBER) & ~_matches(text, GROUPED_THOUSANDS)
        status[(status == _OK) & misplaced] = _BAD_COMMA
        text = pc.replace_substring(text, ",", "")
        empty = pc.fill_null(pc.equal(text, ""), True).to_numpy(zero_copy_only=False)
        text = pc.if_else(pa.array(empty | (status != _OK)), pa.scalar(None, pa.string()), text)
        missing = empty
        try:
            values = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values = np.fromiter((_float_or_nan(v) for v in text.to_pylist()), dtype=np.float64, count=n)
            unparsed = np.isnan(values) & ~missing
            if unparsed.any():
                lowered = pc.utf8_lower(text).to_numpy(zero_copy_only=False)
                literal_nan = np.isin(lowered, ["nan", "+nan", "-nan"])
                status[unparsed & ~literal_nan & (status == _OK)] = _NOT_NUMBER
        ambiguous = _ambiguous_dots(text, values, rule)
        if ambiguous is not None:
            status[ambiguous] = _AMBIGUOUS
            values = values.copy()
            values[ambiguous] = np.nan
    if missing is not None:
        status[missing & (status == _OK)] = _MISSING
    status[(status == _OK) & ~np.isfinite(values)] = _NOT_FINITE
    return values, status, clean


def _usable(status: np.ndarray | None) -> np.ndarray | None:
    return None if status is None else status == _OK


@dataclass
class _Problem:
    mask: np.ndarray                       # rows (of the chunk) with this problem
    message: Callable[[int], str]          # row position -> message


def _source_problems(label: str, arr: pa.Array, values: np.ndarray, status: np.ndarray | None,
                     rule: _TextRule) -> list[_Problem]:
    out: list[_Problem] = []
    if status is None:
        return out
    for code, text in ((_AMBIGUOUS, AMBIGUOUS_DOT_RULE),
                       (_CURRENCY, f"is in another currency ({label} is in $)" if rule.money else "is not a number"),
                       (_PERCENT, f"is a percentage ({label} is in {rule.unit})")):
        if (status == code).any():
            out.append(_Problem(status == code, functools.partial(_cell_message, label, arr, text)))
    if (status == _MISSING).any():
        out.append(_Problem(status == _MISSING, lambda i: f"{label} is missing"))
    if (status == _NOT_NUMBER).any():
        out.append(_Problem(status == _NOT_NUMBER,
                            lambda i: str(InvalidValueError(label, arr[i].as_py(), "is not a number"))))
    if (status == _BAD_COMMA).any():
        out.append(_Problem(status == _BAD_COMMA,
                            lambda i: str(InvalidValueError(label, arr[i].as_py(), MISPLACED_COMMA_RULE))))
    if (status == _NOT_FINITE).any():
        out.append(_Problem(status == _NOT_FINITE,
                            lambda i: str(InvalidValueError(label, float(values[i]), "is not a finite number"))))
    return out


def _cell_message(label: str, arr: pa.Array, rule: str, i: int) -> str:
    return str(InvalidValueError(label, arr[i].as_py(), rule))


def _range_problem(spec: FieldSpec, values: np.ndarray, usable: np.ndarray | None) -> _Problem | None:
    """Values that FieldSpec.check refuses (below/above the range, fraction in a whole-number field).
    ``usable``: rows whose value parsed (None: all of them)."""
    with np.errstate(invalid="ignore"):
        bad = (values < spec.minimum) | (values > spec.maximum)
        if spec.integer:
            bad |= values != np.floor(values)
    if usable is not None:
        bad &= usable
    if not bad.any():
        return None

    def message(i: int) -> str:
        try:
            spec.check(float(values[i]))
        except InvalidValueError as exc:
            return str(exc)
        return f"{spec.name}={values[i]!r} is invalid"  # pragma: no cover - the mask mirrors check()

    return _Problem(bad, message)


def _age_message(message: Callable[[int], str], year: int, births: np.ndarray, i: int) -> str:
    return f"{message(i)} (age = {year} - Year_Birth={_num_text(births[i])})"


def _num_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _negative_part(column: str, values: np.ndarray, i: int) -> str:
    return str(InvalidValueError(column, float(values[i]), "is below the minimum of 0"))


@dataclass
class _Validated:
    X: np.ndarray          # (n, 7) field values in FIELD_NAMES order
    good: np.ndarray       # rows that can be scored
    messages: dict[int, str]   # row position -> "problem; problem"
    clean_columns: set[int]    # batch columns whose every cell is a plain number
    numbers: dict[int, np.ndarray]   # batch column -> its cells read as numbers (the columns the fields come from)


def number_types(plan: FilePlan) -> dict[int, pa.DataType]:
    """The type each source column's numbers are written with when a text file becomes Parquet: whole
    numbers (a whole-number field, a birth year) as int64, the rest as float64."""
    types: dict[int, pa.DataType] = {}
    for name, index in plan.sources.items():
        if name == "Dt_Customer":
            continue
        if plan.layout == "fields":
            whole = FIELDS_BY_NAME[name].integer
        else:
            whole = name == "Year_Birth" or FIELDS_BY_NAME[
                next(f for f, sources in FIELD_SOURCES.items() if name in sources)].integer
        types[index] = pa.int64() if whole else pa.float64()
    return types


def _validate(plan: FilePlan, batch: pa.RecordBatch, collection_year: int | None) -> _Validated:
    n = batch.num_rows
    problems: list[_Problem] = []
    clean_columns: set[int] = set()
    numbers: dict[int, np.ndarray] = {}
    X = np.empty((n, len(FIELD_NAMES)), dtype=np.float64, order="F")   # columns contiguous: passes read by field
    if plan.layout == "fields":
        for j, spec in enumerate(FIELDS):
            index = plan.sources[spec.name]
            arr = batch.column(index)
            values, status, clean = _parse_numbers(arr, _TextRule.of(spec))
            if clean:
                clean_columns.add(index)
            numbers[index] = values
            problems += _source_problems(spec.name, arr, values, status, _TextRule.of(spec))
            X[:, j] = values
            problem = _range_problem(spec, values, _usable(status))
            if problem:
                problems.append(problem)
    else:
        parsed: dict[str, np.ndarray] = {}
        usable_source: dict[str, np.ndarray] = {}
        source_problems: dict[str, list[_Problem]] = {}
        for column, index in plan.sources.items():
            if column == "Dt_Customer":
                continue
            arr = batch.column(index)
            values, status, clean = _parse_numbers(arr, _raw_rule(column))
            if clean:
                clean_columns.add(index)
            numbers[index] = values
            parsed[column] = values
            usable_source[column] = np.ones(len(values), dtype=bool) if status is None else status == _OK
            source_problems[column] = _source_problems(column, arr, values, status, _raw_rule(column))
        derived = derive_fields(parsed.__getitem__, int(collection_year or 0))
        for j, spec in enumerate(FIELDS):
            sources = FIELD_SOURCES[spec.name]
            usable = np.logical_and.reduce([usable_source[c] for c in sources])
            for column in sources:
                problems += source_problems[column]
                if len(sources) > 1:      # parts of a sum (spending): none may be negative
                    negative = usable_source[column] & (parsed[column] < 0)
                    if negative.any():
                        problems.append(_Problem(negative, functools.partial(_negative_part, column, parsed[column])))
                    usable &= ~negative
            values = np.asarray(derived[spec.name], dtype=np.float64)
            X[:, j] = values
            problem = _range_problem(spec, values, usable)
            if problem and spec.name == "age":     # name the value in the file, not only the age
                problem = _Problem(problem.mask, functools.partial(
                    _age_message, problem.message, int(collection_year or 0), parsed["Year_Birth"]))
            if problem:
                problems.append(problem)
    good = np.ones(n, dtype=bool)
    for problem in problems:
        good &= ~problem.mask
    good &= np.isfinite(X).all(axis=1)    # guards scoring; every non-finite value has a problem above
    messages: dict[int, list[str]] = {}
    if not good.all():
        for problem in problems:           # problems are in field order, so messages are too
            for i in np.flatnonzero(problem.mask):
                messages.setdefault(int(i), []).append(problem.message(int(i)))
        for i in np.flatnonzero(~good):    # never drop a row without saying why
            messages.setdefault(int(i), ["a value is not a finite number"])
    return _Validated(X=X, good=good, messages={i: "; ".join(m) for i, m in messages.items()},
                      clean_columns=clean_columns, numbers=numbers)
