"""Training the campaign-response models (scikit-learn; imported by training only).

For each model (``seven_fields``, ``full_record``; see :mod:`assistant.model.response`):

1. A stratified holdout (``HOLDOUT_SHARE`` of the kept customers, ``random_state=seed``) is set aside
   first; nothing below sees it until the final evaluation.
2. Candidates (``plain``: each input as is; ``log``: plus log income and log spending; ``hinge``: plus
   hinges at the training quartiles of the seven fields; ``spline``: each of the seven fields as cubic
   B-splines with knots at its training quantiles, scikit-learn's ``SplineTransformer``, at three L2
   strengths), each a standardised L2 logistic regression, are compared by 5-fold cross-validated ROC
   AUC on the training part; the best is kept.
3. Calibration on held-out folds: the chosen candidate's out-of-fold scores on the training part map
   to probabilities by isotonic regression or a sigmoid (Platt), whichever has the lower Brier score
   in a second 5-fold split of those scores; the shipped map is fitted on all out-of-fold scores and
   applied to the model refitted on the whole training part (``CalibratedClassifierCV(ensemble=False)``).
4. The shipped model (trained on the training part only) is evaluated once on the holdout: ROC AUC,
   PR AUC, Brier score against the base rate's, a 10-bin calibration table and its ECE, lift and
   capture at the top 10 % and 20 %, and a cumulative-gains curve.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import SplineTransformer, StandardScaler

from assistant.core.errors import TrainingError
from assistant.core.fields import FIELD_NAMES
from assistant.model.card import CalibrationBin, RepeatedHoldout, ResponseEvaluation, ResponseSummary
from assistant.model.data import CustomerData, numeric_raw
from assistant.model.response import (
    FULL_RECORD_COLUMNS,
    FULL_RECORD_INPUTS,
    ResponseModel,
    ResponseModelName,
    ResponseParams,
    Term,
    full_record_inputs,
    seven_field_inputs,
    tenure_days,
)

RESPONSE_COLUMN = "Response"
HOLDOUT_SHARE = 0.2
N_FOLDS = 5
N_BINS = 10
C = 1.0
SPLINE_KNOTS, SPLINE_DEGREE = 4, 3
SPLINE_C = (0.01, 0.1, 1.0)      # the spline candidates' L2 strengths (each is a candidate of its own)
CANDIDATES = (("plain", C), ("log", C), ("hinge", C), *(("spline", c) for c in SPLINE_C))
TARGETS = {"seven_fields": 0.80, "full_record": 0.87}
TARGET_ECE = 0.03
_GAINS_POINTS = 20
_SIGMOID_GRID = 101
_NOISE_DRAWS = 2_000
REPEATS = 20      # `segment-assistant train`'s default number of repeated splits (see repeated_holdout)
Inputs = Mapping[str, NDArray[np.float64]]


def _terms(variant: str, inputs: list[str], train: Inputs) -> list[Term]:
    if variant == "spline":                # cubic B-splines of each of the seven fields, the rest as is
        terms = [Term(input=name) for name in inputs if name not in FIELD_NAMES]
        for name in FIELD_NAMES:
            column = np.asarray(train[name], dtype=np.float64).reshape(-1, 1)
            spline = SplineTransformer(n_knots=SPLINE_KNOTS, degree=SPLINE_DEGREE, knots="quantile").fit(column)
            knots = [float(v) for v in spline.bsplines_[0].t]
            terms += [Term(input=name, transform="bspline", knots=knots, basis=b, degree=SPLINE_DEGREE)
                      for b in range(spline.n_features_out_)]
        return terms
    terms = [Term(input=name) for name in inputs]
    if variant in ("log", "hinge"):
        terms += [Term(input="income", transform="log1p"), Term(input="total_spending", transform="log1p")]
    if variant == "hinge":
        for name in FIELD_NAMES:
            quartiles = np.unique(np.quantile(np.asarray(train[name], dtype=np.float64), [0.25, 0.5, 0.75]))
            terms += [Term(input=name, transform="hinge", knot=float(k)) for k in quartiles]
    return terms


def _design(terms: list[Term], inputs: Inputs, rows: NDArray[np.intp]) -> NDArray[np.float64]:
    return np.column_stack([t.values(np.asarray(inputs[t.input], dtype=np.float64)[rows]) for t in terms])


def _fit(X: NDArray[np.float64], y: NDArray[np.int64], seed: int, c: float = C
         ) -> tuple[StandardScaler, LogisticRegression]:
    scaler = StandardScaler().fit(X)
    model = LogisticRegression(C=c, solver="newton-cholesky", max_iter=500, random_state=seed)
    model.fit(scaler.transform(X), y)
    return scaler, model


def _decision(fitted: tuple[StandardScaler, LogisticRegression], X: NDArray[np.float64]) -> NDArray[np.float64]:
    scaler, model = fitted
    out: NDArray[np.float64] = model.decision_function(scaler.transform(X))
    return out


def _oof_scores(X: NDArray[np.float64], y: NDArray[np.int64], seed: int, c: float = C) -> NDArray[np.float64]:
    out = np.empty(len(y))
    for fit_rows, test_rows in StratifiedKFold(N_FOLDS, shuffle=True, random_state=seed).split(X, y):
        out[test_rows] = _decision(_fit(X[fit_rows], y[fit_rows], seed, c), X[test_rows])
    return out


def _calibrator(method: str, s: NDArray[np.float64], y: NDArray[np.int64]) -> tuple[list[float], list[float]]:
    """(thresholds, probabilities) of a calibration map fitted on scores ``s``, for ``np.interp``."""
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
        return [float(v) for v in iso.X_thresholds_], [float(v) for v in iso.y_thresholds_]
    platt = LogisticRegression(C=1e6, solver="newton-cholesky", max_iter=200).fit(s.reshape(-1, 1), y)
    grid = np.linspace(float(s.min()) - 1.0, float(s.max()) + 1.0, _SIGMOID_GRID)
    return [float(v) for v in grid], [float(v) for v in platt.predict_proba(grid.reshape(-1, 1))[:, 1]]


def _choose_calibration(s: NDArray[np.float64], y: NDArray[np.int64], seed: int) -> tuple[str, dict[str, float]]:
    briers: dict[str, float] = {}
    for method in ("isotonic", "sigmoid"):
        errors = []
        for fit_rows, test_rows in StratifiedKFold(N_FOLDS, shuffle=True, random_state=seed + 1).split(s, y):
            xs, ys = _calibrator(method, s[fit_rows], y[fit_rows])
            p = np.interp(s[test_rows], xs, ys)
            errors.append(float(np.mean((p - y[test_rows]) ** 2)))
        briers[method] = float(np.mean(errors))
    return min(briers, key=lambda m: briers[m]), briers


def calibration_table(p: NDArray[np.float64], y: NDArray[np.int64], bins: int = N_BINS) -> tuple[list[CalibrationBin],
                                                                                                 float]:
    """Equal-width probability bins: customers, mean predicted, observed rate; and the ECE."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=False), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        rows = which == b
        n = int(rows.sum())
        predicted = float(p[rows].mean()) if n else None
        observed = float(y[rows].mean()) if n else None
        if n and predicted is not None and observed is not None:
            ece += n / len(p) * abs(predicted - observed)
        table.append(CalibrationBin(low=float(edges[b]), high=float(edges[b + 1]), customers=n,
                                    mean_predicted=predicted, observed_rate=observed))
    return table, float(ece)


def _top(p: NDArray[np.float64], y: NDArray[np.int64], share: float) -> tuple[float, float]:
    """(lift, capture) of the top ``share`` of customers ranked by ``p``."""
    n = max(1, int(round(share * len(p))))
    top = np.argsort(-p, kind="stable")[:n]
    rate = float(y[top].mean())
    return rate / float(y.mean()), float(y[top].sum() / y.sum())


def ece_if_calibrated(p: NDArray[np.float64], seed: int, draws: int = _NOISE_DRAWS) -> tuple[float, float]:
    """(median, 95th percentile) of the ECE that a perfectly calibrated model with these probabilities
    would show on this many customers: outcomes drawn as Bernoulli(p), ``draws`` times. An ECE inside this
    range is sampling noise of the holdout's size, not miscalibration."""
    rng = np.random.default_rng(seed)
    edges = np.linspace(0.0, 1.0, N_BINS + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=False), 0, N_BINS - 1)
    predicted = np.bincount(which, weights=p, minlength=N_BINS)
    drawn = (rng.random((draws, len(p))) < p).astype(np.float64)
    observed = np.stack([np.bincount(which, weights=row, minlength=N_BINS) for row in drawn])
    eces = np.abs(observed - predicted).sum(axis=1) / len(p)   # sum_b n_b/n * |mean_obs - mean_pred|
    return float(np.median(eces)), float(np.quantile(eces, 0.95))


def evaluate(p: NDArray[np.float64], y: NDArray[np.int64], seed: int = 0) -> dict[str, object]:
    """The holdout measurements of probabilities ``p`` against outcomes ``y``."""
    base = float(y.mean())
    table, ece = calibration_table(p, y)
    noise_median, noise_p95 = ece_if_calibrated(p, seed)
    lift10, capture10 = _top(p, y, 0.1)
    lift20, capture20 = _top(p, y, 0.2)
    order = np.argsort(-p, kind="stable")
    cum = np.cumsum(y[order]) / y.sum()
    at = np.linspace(0, 1, _GAINS_POINTS + 1)
    gains = [0.0] + [float(cum[max(0, int(round(a * len(p))) - 1)]) for a in at[1:]]
    return {"customers": int(len(y)), "responders": int(y.sum()), "base_rate": base,
            "roc_auc": float(roc_auc_score(y, p)), "pr_auc": float(average_precision_score(y, p)),
            "brier": float(np.mean((p - y) ** 2)), "brier_base_rate": float(np.mean((base - y) ** 2)),
            "ece": ece, "calibration": table, "lift_top10": lift10, "lift_top20": lift20,
            "capture_top10": capture10, "capture_top20": capture20,
            "gains": {"share": [float(a) for a in at], "captured": gains},
            "ece_if_calibrated_median": noise_median, "ece_if_calibrated_p95": noise_p95}


def _train_one(name: ResponseModelName, inputs: Inputs, names: list[str], y: NDArray[np.int64],
               train_rows: NDArray[np.intp], test_rows: NDArray[np.intp], seed: int
               ) -> tuple[ResponseModel, ResponseEvaluation]:
    y_train, y_test = y[train_rows], y[test_rows]
    train_view = {k: np.asarray(v, dtype=np.float64)[train_rows] for k, v in inputs.items()}
    cv_auc: dict[str, float] = {}
    designs: dict[str, tuple[list[Term], NDArray[np.float64], NDArray[np.float64], float]] = {}
    for variant, c in CANDIDATES:
        terms = _terms(variant, names, train_view)
        X = _design(terms, inputs, train_rows)
        scores = _oof_scores(X, y_train, seed, c)
        label = variant if c == C else f"{variant} C={c:g}"
        designs[label] = (terms, X, scores, c)
        cv_auc[label] = float(roc_auc_score(y_train, scores))
    variant = max(cv_auc, key=lambda v: cv_auc[v])
    terms, X_train, oof, chosen_c = designs[variant]
    method, briers = _choose_calibration(oof, y_train, seed)
    cal_x, cal_y = _calibrator(method, oof, y_train)
    scaler, lr = _fit(X_train, y_train, seed, chosen_c)
    draft = ResponseModel(name=name, variant=variant, terms=terms, mean=[float(v) for v in scaler.mean_],
                          scale=[float(v) if v > 0 else 1.0 for v in scaler.scale_],
                          coef=[float(v) for v in lr.coef_[0]], intercept=float(lr.intercept_[0]),
                          calibration_x=cal_x, calibration_y=cal_y, holdout_auc=0.0)
    test_view = {k: np.asarray(v, dtype=np.float64)[test_rows] for k, v in inputs.items()}
    p = draft.predict(test_view)
    measured = evaluate(p, y_test, seed)
    evaluation = ResponseEvaluation.model_validate({
        "model": name, "variant": variant, "inputs": names, "terms": [t.label for t in terms],
        "cv_roc_auc": cv_auc, "calibration_method": method, "calibration_cv_brier": briers,
        "target_roc_auc": TARGETS[name], "target_ece": TARGET_ECE, "meets_targets": False, **measured})
    evaluation = evaluation.model_copy(update={"meets_targets": evaluation.roc_auc >= TARGETS[name]
                                               and evaluation.ece <= TARGET_ECE})
    return draft.model_copy(update={"holdout_auc": evaluation.roc_auc}), evaluation


def train_response(data: CustomerData, segment_keys: NDArray[np.str_], *, seed: int, repeats: int = 0
                   ) -> tuple[ResponseParams, ResponseSummary] | None:
    """Both response models and their holdout evaluation; None when the file has no usable Response.
    ``repeats``: also run the whole procedure on that many other splits (see :func:`_repeated`)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):   # small matrices: BLAS threads only spin
        return _train_response(data, segment_keys, seed=seed, repeats=repeats)


def _repeated(name: ResponseModelName, inputs: Inputs, names: list[str], y: NDArray[np.int64], seed: int,
              repeats: int) -> RepeatedHoldout:
    """The whole procedure of :func:`_train_one` on ``repeats`` other stratified splits (seeds seed + 1 ...),
    each evaluated on its own holdout. One holdout of a few hundred customers is a noisy measurement (its
    AUC varies by about +-0.025 between splits); this says how noisy, and where the shipped split lies."""
    aucs, eces, seeds = [], [], []
    rows = np.arange(len(y))
    for r in range(1, repeats + 1):
        split_seed = seed + r
        train_rows, test_rows = train_test_split(rows, test_size=HOLDOUT_SHARE, stratify=y, random_state=split_seed)
        _, evaluation = _train_one(name, inputs, names, y, np.sort(train_rows), np.sort(test_rows), split_seed)
        aucs.append(evaluation.roc_auc)
        eces.append(evaluation.ece)
        seeds.append(split_seed)
    a, e = np.array(aucs), np.array(eces)
    return RepeatedHoldout(splits=repeats, seeds=seeds, roc_auc_mean=float(a.mean()), roc_auc_sd=float(a.std(ddof=1)),
                           roc_auc_min=float(a.min()), roc_auc_max=float(a.max()),
                           share_at_target_auc=float((a >= TARGETS[name]).mean()), ece_mean=float(e.mean()),
                           ece_sd=float(e.std(ddof=1)), share_at_target_ece=float((e <= TARGET_ECE).mean()))


def _train_response(data: CustomerData, segment_keys: NDArray[np.str_], *, seed: int, repeats: int = 0
                    ) -> tuple[ResponseParams, ResponseSummary] | None:
    if RESPONSE_COLUMN not in data.raw.columns:
        return None
    raw = numeric_raw(data.raw)
    y_all = pd.to_numeric(raw[RESPONSE_COLUMN], errors="coerce")
    if y_all.isna().any() or not y_all.isin([0, 1]).all():
        return None
    y = y_all.to_numpy(dtype=np.int64)
    if y.sum() < 2 * N_FOLDS or (len(y) - y.sum()) < 2 * N_FOLDS:
        return None
    fields = data.features[list(FIELD_NAMES)].to_numpy(dtype=np.float64)
    dates = pd.to_datetime(data.raw["Dt_Customer"].astype(str).str.strip(), format=data.report.date_format,
                           errors="coerce")
    reference = dates.max().date().isoformat()
    rows = np.arange(len(y))
    train_rows, test_rows = train_test_split(rows, test_size=HOLDOUT_SHARE, stratify=y, random_state=seed)
    train_rows, test_rows = np.sort(train_rows), np.sort(test_rows)

    seven = seven_field_inputs(fields)
    seven_model, seven_eval = _train_one("seven_fields", seven, list(FIELD_NAMES), y, train_rows, test_rows, seed)
    if repeats > 1:
        seven_eval = seven_eval.model_copy(update={
            "repeated": _repeated("seven_fields", seven, list(FIELD_NAMES), y, seed, repeats)})
    full_model, full_eval = None, None
    if all(c in data.raw.columns for c in FULL_RECORD_COLUMNS):
        full = full_record_inputs(fields, lambda c: raw[c].to_numpy(dtype=np.float64),
                                  lambda c: data.raw[c].to_numpy(dtype=object),
                                  tenure_days(data.raw["Dt_Customer"], reference, data.report.date_format))
        if all(np.isfinite(full[name]).all() for name in FULL_RECORD_INPUTS):
            full_model, full_eval = _train_one("full_record", full, list(FULL_RECORD_INPUTS), y, train_rows,
                                               test_rows, seed)
            if repeats > 1:
                full_eval = full_eval.model_copy(update={
                    "repeated": _repeated("full_record", full, list(FULL_RECORD_INPUTS), y, seed, repeats)})
    if seven_model is None:  # pragma: no cover - always trained above
        raise TrainingError("no response model")
    keys = np.asarray(segment_keys)
    rates = {str(k): float(y[keys == k].mean()) for k in dict.fromkeys(keys.tolist())}
    params = ResponseParams(seven_fields=seven_model, full_record=full_model, reference_date=reference,
                            overall_rate=float(y.mean()), segment_rates=rates)
    summary = ResponseSummary(
        target="Response (accepted the last campaign)", holdout_share=HOLDOUT_SHARE, holdout_seed=seed,
        training_customers=int(len(train_rows)), holdout_customers=int(len(test_rows)),
        overall_rate=params.overall_rate, segment_rates=rates, reference_date=reference,
        models=[e for e in (seven_eval, full_eval) if e is not None])
    return params, summary
