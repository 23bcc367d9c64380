"""Likelihood to respond to the next campaign, as plain numbers evaluated with numpy (no scikit-learn).

Two calibrated models are trained (:mod:`assistant.model.response_training`) on the raw file's
``Response`` column: ``seven_fields`` (the chat's seven fields; used by the chat, the form, the API and
any seven-field file) and ``full_record`` (the seven fields plus earlier campaigns, children, catalogue
and deal purchases, tenure, marital status and education; used for raw-format files that carry those
columns). Each is a logistic regression over a few named terms of its inputs (a value, its log, or a
hinge ``max(0, x - knot)``), standardised, then an isotonic calibration map from the linear score to a
probability (``np.interp`` over its thresholds). Everything is stored in the scoring JSON
(:class:`assistant.model.params.ScoringParams`), checksummed with it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, model_validator

from assistant.core.fields import FIELD_NAMES

_TABLE_MIN_ROWS = 1_024   # a splined input is read from its table for blocks at least this long
_TABLE_MAX = 1 << 21      # at most this many whole numbers (16 MB) in one input's table
_BLOCK = 8_192   # rows per pass in ResponseModel.score: a handful of 64 KB arrays stay in the CPU cache
ResponseModelName = Literal["seven_fields", "full_record"]
Transform = Literal["linear", "log1p", "hinge", "bspline"]

# raw columns the full-record model reads besides the seven fields' sources
FULL_RECORD_NUMERIC = ("AcceptedCmp1", "AcceptedCmp2", "AcceptedCmp3", "AcceptedCmp4", "AcceptedCmp5",
                       "Kidhome", "Teenhome", "NumCatalogPurchases", "NumDealsPurchases")
FULL_RECORD_TEXT = ("Marital_Status", "Education")
FULL_RECORD_COLUMNS = (*FULL_RECORD_NUMERIC, *FULL_RECORD_TEXT, "Dt_Customer")
COUPLE = ("married", "together")
EDUCATION_LEVELS = ("Basic", "Master", "PhD")
# the inputs derived from the raw record (names a term can read)
FULL_RECORD_INPUTS = (*FIELD_NAMES, *FULL_RECORD_NUMERIC, "tenure_days", "no_partner",
                      *(f"education_{e.lower()}" for e in EDUCATION_LEVELS))


class Term(BaseModel):
    """One input of the linear score: ``input`` as is, ``log1p(max(input, 0))``, ``max(0, input - knot)``, or
    the ``basis``-th cubic B-spline over the knot vector ``knots`` (scikit-learn's ``SplineTransformer`` with
    constant extrapolation: the input is clamped to the base interval ``knots[degree]..knots[-degree - 1]``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: str
    transform: Transform = "linear"
    knot: float | None = None
    knots: list[float] | None = None      # bspline: the full knot vector, non-decreasing
    basis: int | None = None              # bspline: which of the len(knots) - degree - 1 basis functions
    degree: int = 3

    @model_validator(mode="after")
    def _spline_is_complete(self) -> Term:
        if self.transform != "bspline":
            return self
        t = self.knots or []
        if len(t) < 2 * self.degree + 2 or any(b < a for a, b in zip(t, t[1:], strict=False)):
            raise ValueError(f"a bspline term needs at least {2 * self.degree + 2} non-decreasing knots")
        if t[self.degree] >= t[len(t) - self.degree - 1]:
            raise ValueError("a bspline term's base interval is empty")
        if self.basis is None or not 0 <= self.basis < len(t) - self.degree - 1:
            raise ValueError(f"basis must be between 0 and {len(t) - self.degree - 2}")
        return self

    def values(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.transform == "log1p":
            out: NDArray[np.float64] = np.log1p(np.maximum(x, 0.0))
            return out
        if self.transform == "hinge":
            hinge: NDArray[np.float64] = np.maximum(x - float(self.knot or 0.0), 0.0)
            return hinge
        if self.transform == "bspline":
            assert self.knots is not None and self.basis is not None
            column: NDArray[np.float64] = bspline_basis(x, self.knots, self.degree)[:, self.basis]
            return column
        return x

    @property
    def label(self) -> str:
        if self.transform == "hinge":
            return f"max(0, {self.input} - {self.knot:g})"
        if self.transform == "bspline":
            return f"spline{self.basis}({self.input})"
        return self.input if self.transform == "linear" else f"{self.transform}({self.input})"


def bspline_basis(x: NDArray[np.float64], knots: Sequence[float] | NDArray[np.float64], degree: int
                  ) -> NDArray[np.float64]:
    """Every B-spline basis function of ``degree`` over ``knots`` at ``x``, (n, len(knots) - degree - 1),
    with ``x`` clamped to the base interval (scikit-learn's ``SplineTransformer(extrapolation="constant")``).
    Cox-de Boor in the stable form of Piegl & Tiller (The NURBS Book, A2.2), vectorised over rows: each
    row has degree + 1 non-zero functions, those of the knot interval it falls in."""
    t = np.asarray(knots, dtype=np.float64)
    p = degree
    n_basis = len(t) - p - 1
    last = max(i for i in range(p, n_basis) if t[i] < t[i + 1])     # last non-empty base interval
    xc = np.clip(np.asarray(x, dtype=np.float64).ravel(), t[p], t[n_basis])
    span = np.clip(np.searchsorted(t, xc, side="right") - 1, p, last)
    left = np.empty((p + 1, len(xc)))
    right = np.empty((p + 1, len(xc)))
    N = np.zeros((p + 1, len(xc)))
    N[0] = 1.0
    for j in range(1, p + 1):
        left[j] = xc - t[span + 1 - j]
        right[j] = t[span + j] - xc
        saved = np.zeros(len(xc))
        for r in range(j):
            temp = N[r] / (right[r + 1] + left[j - r])
            N[r] = saved + right[r + 1] * temp
            saved = left[j - r] * temp
        N[j] = saved
    out = np.zeros((len(xc), n_basis))
    rows = np.arange(len(xc))
    for r in range(p + 1):
        out[rows, span - p + r] = N[r]
    return out


class _Piecewise:
    """The B-spline terms of one input folded into one piecewise cubic (weights summed per basis function),
    so scoring costs a clamp, an interval lookup and a cubic per row instead of degree + 1 basis recursions.
    Each piece is a cubic in ``u = (x - start) / width`` in [0, 1], fitted exactly through 4 points."""

    def __init__(self, knots: Sequence[float], degree: int, weights: NDArray[np.float64]) -> None:
        t = np.asarray(knots, dtype=np.float64)
        n_basis = len(t) - degree - 1
        self.low, self.high = float(t[degree]), float(t[n_basis])
        pieces = [(float(t[i]), float(t[i + 1])) for i in range(degree, n_basis) if t[i] < t[i + 1]]
        self.starts = np.array([a for a, _ in pieces])
        self.inverse_widths = np.array([1.0 / (b - a) for a, b in pieces])
        u = np.array([0.0, 1 / 3, 2 / 3, 1.0])
        vandermonde = np.vander(u, 4)                      # columns u^3, u^2, u, 1
        coefficients = []
        for a, b in pieces:
            xs = a + u * (b - a)
            xs[-1] = np.nextafter(b, a)                    # inside [a, b): the same piece's polynomial
            values = bspline_basis(xs, t, degree) @ weights
            coefficients.append(np.linalg.solve(vandermonde, values))
        self.coefficients = np.array(coefficients)         # (pieces, 4), highest power first
        self.inner = self.starts[1:]
        self._inner_list = [float(v) for v in self.inner]  # the same numbers as Python floats, for at()
        self._starts_list = [float(v) for v in self.starts]
        self._inverse_widths_list = [float(v) for v in self.inverse_widths]
        self._coefficients_list = [tuple(float(v) for v in row) for row in self.coefficients]

    def add_whole(self, x: NDArray[np.float64], out: NDArray[np.float64]) -> bool:
        """``out += f(x)`` from a table of f over the whole numbers of the base interval (built on first use
        from the cubics themselves, so the numbers are the same, and about 6x faster) when ``x`` holds only
        whole numbers (every field of a customer file, in practice) and is long enough to pay for the table;
        False, leaving ``out`` alone, otherwise."""
        table = self.table if len(x) >= _TABLE_MIN_ROWS else None
        if table is None:
            return False
        first, values = table
        whole = x.astype(np.intp)
        if not np.array_equal(whole, x):
            return False
        whole -= first
        np.minimum(whole, len(values) - 1, out=whole)
        np.maximum(whole, 0, out=whole)
        out += values.take(whole)
        return True

    @cached_property
    def table(self) -> tuple[int, NDArray[np.float64]] | None:
        """(first whole number, f at every whole number of the base interval), when its ends are whole and
        it holds at most _TABLE_MAX numbers (clamping then gives f at the ends, as for any value outside)."""
        if not (self.low.is_integer() and self.high.is_integer()) or self.high - self.low >= _TABLE_MAX:
            return None
        values = np.zeros(int(self.high - self.low) + 1)
        self.add_cubic(np.arange(self.low, self.high + 1.0), values)
        return int(self.low), values

    def at(self, x: float) -> float:
        """f(x) for one number, in plain Python (the same cubic as ``add_cubic``)."""
        xc = min(max(x, self.low), self.high)
        k = bisect.bisect_right(self._inner_list, xc)
        u = (xc - self._starts_list[k]) * self._inverse_widths_list[k]
        c3, c2, c1, c0 = self._coefficients_list[k]
        return ((c3 * u + c2) * u + c1) * u + c0

    def add_cubic(self, x: NDArray[np.float64], out: NDArray[np.float64]) -> None:
        """``out += f(x)`` from the cubics (any numbers)."""
        xc = np.clip(x, self.low, self.high)
        k = np.searchsorted(self.inner, xc, side="right")
        u = (xc - self.starts[k]) * self.inverse_widths[k]
        c = self.coefficients[k]
        out += ((c[:, 0] * u + c[:, 1]) * u + c[:, 2]) * u + c[:, 3]


class ResponseModel(BaseModel):
    """A calibrated logistic regression over transformed inputs (values, logs, hinges, cubic B-splines), in plain
    numbers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ResponseModelName
    variant: str                          # the candidate chosen by cross-validation ("hinge", "spline C=0.1"...)
    terms: list[Term]
    mean: list[float]                     # per term, for standardising
    scale: list[float]
    coef: list[float]                     # per standardised term
    intercept: float
    calibration_x: list[float]            # isotonic thresholds over the linear score, increasing
    calibration_y: list[float]            # the probability at each threshold, non-decreasing
    holdout_auc: float                    # ROC AUC on the held-out customers (see the model card)

    @model_validator(mode="after")
    def _shapes_agree(self) -> ResponseModel:
        n = len(self.terms)
        if not (len(self.mean) == len(self.scale) == len(self.coef) == n):
            raise ValueError(f"mean, scale and coef need {n} values, one per term")
        if any(s <= 0 for s in self.scale):
            raise ValueError("every scale must be above 0")
        if len(self.calibration_x) != len(self.calibration_y) or not self.calibration_x:
            raise ValueError("calibration_x and calibration_y need the same, non-zero, number of values")
        if any(b < a for a, b in zip(self.calibration_x, self.calibration_x[1:], strict=False)):
            raise ValueError("calibration_x must be increasing")
        if any(not 0.0 <= p <= 1.0 for p in self.calibration_y):
            raise ValueError("calibration_y must be probabilities")
        return self

    @property
    def inputs(self) -> list[str]:
        return list(dict.fromkeys(t.input for t in self.terms))

    def design(self, inputs: Mapping[str, NDArray[np.float64]]) -> NDArray[np.float64]:
        """The (n, terms) matrix of raw term values."""
        cols = [t.values(np.asarray(inputs[t.input], dtype=np.float64)) for t in self.terms]
        return np.column_stack(cols) if cols else np.zeros((0, 0))

    def contributions(self, inputs: Mapping[str, NDArray[np.float64]]) -> NDArray[np.float64]:
        """Each term's part of the linear score, (n, terms): coef * standardised value."""
        z = (self.design(inputs) - np.asarray(self.mean)) / np.asarray(self.scale)
        out: NDArray[np.float64] = z * np.asarray(self.coef)
        return out

    def score(self, inputs: Mapping[str, NDArray[np.float64]]) -> NDArray[np.float64]:
        """The linear score (log-odds before calibration): the same sum as ``contributions`` with the
        standardisation folded into one weight per term and one constant, and each input's spline terms
        folded into one piecewise cubic; accumulated in place over cache-sized blocks of rows, so no
        (n, terms) matrix is built and every pass stays in the CPU cache (batch scoring calls this on
        200,000-row chunks)."""
        constant, simple, splines = self._compiled
        columns = {name: np.asarray(inputs[name], dtype=np.float64) for name in self.inputs}
        n = len(next(iter(columns.values()))) if columns else 0
        out: NDArray[np.float64] = np.full(n, constant)
        # splined inputs holding only whole numbers: one table lookup over the whole column
        splines = [(name, piecewise) for name, piecewise in splines if not piecewise.add_whole(columns[name], out)]
        work = np.empty(min(n, _BLOCK))
        for start in range(0, n, _BLOCK):
            acc = out[start:start + _BLOCK]
            tmp = work[:len(acc)]
            block = {name: np.ascontiguousarray(x[start:start + _BLOCK]) for name, x in columns.items()}
            for term, w in simple:
                x = block[term.input]
                if term.transform == "linear":
                    np.multiply(x, w, out=tmp)
                elif term.transform == "log1p":
                    np.maximum(x, 0.0, out=tmp)
                    np.log1p(tmp, out=tmp)
                    tmp *= w
                else:
                    np.subtract(x, float(term.knot or 0.0), out=tmp)
                    np.maximum(tmp, 0.0, out=tmp)
                    tmp *= w
                acc += tmp
            for name, piecewise in splines:
                piecewise.add_cubic(block[name], acc)      # (the whole-number table was tried above)
        return out

    @cached_property
    def _compiled(self) -> tuple[float, list[tuple[Term, float]], list[tuple[str, _Piecewise]]]:
        """score = constant + sum(w * value) over the simple terms + one piecewise cubic per splined input,
        with w = coef / scale and constant = intercept - sum(coef * mean / scale)."""
        weights = [c / s for c, s in zip(self.coef, self.scale, strict=True)]
        constant = self.intercept - sum(w * m for w, m in zip(weights, self.mean, strict=True))
        simple = [(t, w) for t, w in zip(self.terms, weights, strict=True) if t.transform != "bspline"]
        grouped: dict[tuple[str, tuple[float, ...], int], dict[int, float]] = {}
        for t, w in zip(self.terms, weights, strict=True):
            if t.transform == "bspline" and t.knots is not None and t.basis is not None:
                per_basis = grouped.setdefault((t.input, tuple(t.knots), t.degree), {})
                per_basis[t.basis] = per_basis.get(t.basis, 0.0) + w
        splines = []
        for (name, knots, degree), per_basis in grouped.items():
            vector = np.zeros(len(knots) - degree - 1)
            for b, w in per_basis.items():
                vector[b] = w
            splines.append((name, _Piecewise(knots, degree, vector)))
        return constant, simple, splines

    def input_effects(self, values: Mapping[str, float]) -> dict[str, float]:
        """One customer: each input's part of the linear score against the average training customer (the
        sum of its terms' ``contributions``), in plain Python floats: the single-customer path (chat, form,
        API) costs microseconds, not a numpy call per term. ``intercept + sum(effects)`` is the score."""
        effects: dict[str, float] = {}
        for name, offset, simple, piecewise in self._scalar:
            x = float(values[name])
            total = -offset
            for transform, knot, w in simple:
                if transform == "linear":
                    total += w * x
                elif transform == "log1p":
                    total += w * math.log1p(max(x, 0.0))
                else:
                    total += w * max(x - knot, 0.0)
            if piecewise is not None:
                total += piecewise.at(x)
            effects[name] = total
        return effects

    def predict_one(self, values: Mapping[str, float]) -> tuple[float, dict[str, float]]:
        """(calibrated probability, input effects) for one customer, without numpy arrays."""
        effects = self.input_effects(values)
        score = self.intercept + sum(effects.values())
        xs, ys = self.calibration_x, self.calibration_y
        if score <= xs[0]:
            return ys[0], effects
        if score >= xs[-1]:
            return ys[-1], effects
        i = bisect.bisect_right(xs, score) - 1
        x0, x1 = xs[i], xs[i + 1]
        share = (score - x0) / (x1 - x0) if x1 > x0 else 0.0
        return ys[i] + (ys[i + 1] - ys[i]) * share, effects

    @cached_property
    def _scalar(self) -> list[tuple[str, float, list[tuple[str, float, float]], _Piecewise | None]]:
        """Per input: (name, sum of w * mean over its terms, its simple terms as (transform, knot, w), its
        piecewise cubic or None), with w = coef / scale."""
        _, _, splines = self._compiled
        pieces = dict(splines)
        out: list[tuple[str, float, list[tuple[str, float, float]], _Piecewise | None]] = []
        for name in self.inputs:
            offset = 0.0
            simple: list[tuple[str, float, float]] = []
            for t, c, sc, m in zip(self.terms, self.coef, self.scale, self.mean, strict=True):
                if t.input != name:
                    continue
                w = c / sc
                offset += w * m
                if t.transform != "bspline":
                    simple.append((t.transform, float(t.knot or 0.0), w))
            out.append((name, offset, simple, pieces.get(name)))
        return out

    def calibrate(self, score: NDArray[np.float64]) -> NDArray[np.float64]:
        """The calibration map, linear between its points (``np.interp``; a sigmoid's evenly spaced grid is
        looked up by arithmetic instead of a binary search, about 4x faster on big blocks)."""
        grid = self._even_grid
        score = np.asarray(score, dtype=np.float64)
        if grid is None or len(score) < _TABLE_MIN_ROWS or not np.isfinite(score).all():
            out: NDArray[np.float64] = np.interp(score, self.calibration_x, self.calibration_y)
            return out
        x0, step, ys = grid
        position = np.clip((score - x0) / step, 0.0, len(ys) - 1.0)
        index = np.minimum(position.astype(np.intp), len(ys) - 2)
        position -= index
        low = ys.take(index)
        return low + (ys.take(index + 1) - low) * position

    @cached_property
    def _even_grid(self) -> tuple[float, float, NDArray[np.float64]] | None:
        xs = np.asarray(self.calibration_x)
        if len(xs) < 3:
            return None
        steps = np.diff(xs)
        if not np.allclose(steps, steps[0], rtol=1e-9, atol=0.0):
            return None
        return float(xs[0]), float(steps[0]), np.asarray(self.calibration_y, dtype=np.float64)

    def predict(self, inputs: Mapping[str, NDArray[np.float64]]) -> NDArray[np.float64]:
        """Calibrated probability per row."""
        return self.calibrate(self.score(inputs))


class ResponseParams(BaseModel):
    """Both response models and what the answers quote beside a probability."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seven_fields: ResponseModel
    full_record: ResponseModel | None = None
    reference_date: str                   # ISO date tenure is counted to (the training file's latest Dt_Customer)
    overall_rate: float                   # share of training customers who answered the last campaign
    segment_rates: dict[str, float]       # segment key -> that share within the segment


# ---------------------------------------------------------------------------- inputs


def seven_field_inputs(X: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
    """The inputs of the seven-field model from an (n, 7) array in field order."""
    X = np.asarray(X, dtype=np.float64).reshape(-1, len(FIELD_NAMES))
    return {name: X[:, j] for j, name in enumerate(FIELD_NAMES)}


def tenure_days(dates: Sequence[str] | NDArray[np.object_] | pd.Series, reference_date: str,
                date_format: str | None = None) -> NDArray[np.float64]:
    """Days from each Dt_Customer to ``reference_date`` (NaN where a date does not parse)."""
    text = pd.Series(np.asarray(dates, dtype=object)).astype(str).str.strip()
    parsed = pd.to_datetime(text, format=date_format, errors="coerce") if date_format else \
        pd.to_datetime(text, errors="coerce", dayfirst=True, format="mixed")
    days = (pd.Timestamp(reference_date) - parsed).dt.days
    out: NDArray[np.float64] = np.asarray(days.astype("float64"), dtype=np.float64)
    return out


def full_record_inputs(fields: NDArray[np.float64], number: Callable[[str], NDArray[np.float64]],
                       text: Callable[[str], NDArray[np.object_]], tenure: NDArray[np.float64]
                       ) -> dict[str, NDArray[np.float64]]:
    """The inputs of the full-record model: the seven fields (an (n, 7) array), the raw numeric columns
    (``number(column)``), marital status and education (``text(column)``) and the tenure in days."""
    out = seven_field_inputs(fields)
    for column in FULL_RECORD_NUMERIC:
        out[column] = np.asarray(number(column), dtype=np.float64)
    marital = pd.Series(text("Marital_Status"), dtype=object).astype(str).str.strip().str.lower()
    out["no_partner"] = np.asarray(~marital.isin(COUPLE), dtype=np.float64)
    education = pd.Series(text("Education"), dtype=object).astype(str).str.strip()
    for level in EDUCATION_LEVELS:
        out[f"education_{level.lower()}"] = np.asarray(education == level, dtype=np.float64)
    out["tenure_days"] = np.asarray(tenure, dtype=np.float64)
    return out


def usable_rows(inputs: Mapping[str, NDArray[np.float64]], model: ResponseModel) -> NDArray[np.bool_]:
    """Rows where every input the model reads is a finite number."""
    ok = np.ones(len(next(iter(inputs.values()))), dtype=bool)
    for name in model.inputs:
        ok &= np.isfinite(np.asarray(inputs[name], dtype=np.float64))
    return ok


def one_in(probability: float) -> int:
    """``p`` as "about 1 in N" (N = round(1 / p), at least 1)."""
    return max(1, round(1.0 / probability)) if probability > 0 else 0
