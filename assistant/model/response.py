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

from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, model_validator

from assistant.core.fields import FIELD_NAMES

_BLOCK = 8_192   # rows per pass in ResponseModel.score: a handful of 64 KB arrays stay in the CPU cache
ResponseModelName = Literal["seven_fields", "full_record"]
Transform = Literal["linear", "log1p", "hinge"]

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
    """One input of the linear score: ``input`` as is, ``log1p(max(input, 0))``, or ``max(0, input - knot)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: str
    transform: Transform = "linear"
    knot: float | None = None

    def values(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.transform == "log1p":
            out: NDArray[np.float64] = np.log1p(np.maximum(x, 0.0))
            return out
        if self.transform == "hinge":
            hinge: NDArray[np.float64] = np.maximum(x - float(self.knot or 0.0), 0.0)
            return hinge
        return x

    @property
    def label(self) -> str:
        if self.transform == "hinge":
            return f"max(0, {self.input} - {self.knot:g})"
        return self.input if self.transform == "linear" else f"{self.transform}({self.input})"


class ResponseModel(BaseModel):
    """A calibrated logistic regression in plain numbers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ResponseModelName
    variant: str                          # the candidate chosen by cross-validation ("plain", "log", "hinge")
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
        standardisation folded into one weight per term and one constant, accumulated term by term in
        place over cache-sized blocks of rows, so no (n, terms) matrix is built and every pass stays in
        the CPU cache (batch scoring calls this on 200,000-row chunks)."""
        weights, constant = self._folded
        columns = {name: np.asarray(inputs[name], dtype=np.float64) for name in self.inputs}
        n = len(next(iter(columns.values()))) if columns else 0
        out: NDArray[np.float64] = np.full(n, constant)
        work = np.empty(min(n, _BLOCK))
        for start in range(0, n, _BLOCK):
            acc = out[start:start + _BLOCK]
            tmp = work[:len(acc)]
            block = {name: np.ascontiguousarray(x[start:start + _BLOCK]) for name, x in columns.items()}
            for term, w in zip(self.terms, weights, strict=True):
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
        return out

    @cached_property
    def _folded(self) -> tuple[list[float], float]:
        """coef / scale per term and intercept - sum(coef * mean / scale): score = constant + sum(w * value)."""
        weights = [c / s for c, s in zip(self.coef, self.scale, strict=True)]
        return weights, self.intercept - sum(w * m for w, m in zip(weights, self.mean, strict=True))

    def calibrate(self, score: NDArray[np.float64]) -> NDArray[np.float64]:
        out: NDArray[np.float64] = np.interp(score, self.calibration_x, self.calibration_y)
        return out

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
