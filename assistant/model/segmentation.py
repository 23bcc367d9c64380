"""The segmentation service: one object per process, loaded once, safe to share between threads.

``SegmentationService.load`` reads the model card, verifies the bundle's sha256 against it and
only then unpickles the bundle (joblib is pickle: an unverified file is never loaded).

Single customers take a fast path that does not pay scikit-learn's per-call validation: the
fitted scaler is folded into the centroids, so the squared distance in standardised space is
``sum_j (x_j - m_kj)**2 * w_j`` with ``m_k = mean + scale * centroid_k`` and ``w = 1/scale**2``,
a few dozen float operations in plain Python. Batches use the same parameters with one matrix
product: ``argmin_k (-2 x.(w*m_k) + |m_k|_w**2)``. Both give scikit-learn's label (tested on
every training row and on random rows). The service holds no mutable state after loading.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from pydantic import ValidationError

from assistant.core.errors import InvalidProfileError, ModelError
from assistant.core.fields import FIELD_NAMES, FIELDS
from assistant.core.knowledge import KnowledgeBase, load_knowledge
from assistant.core.paths import default_model_dir
from assistant.core.readable import MISSING, file_problem
from assistant.core.schemas import (
    Confidence,
    CustomerProfile,
    ResponseDriver,
    ResponseLikelihood,
    SegmentInfo,
    SegmentResult,
    parse_profile,
)
from assistant.model.card import ModelCard, validation_summary
from assistant.model.params import ScoringParams, load_verified_params
from assistant.model.response import ResponseParams, seven_field_inputs

if TYPE_CHECKING:  # pragma: no cover
    from assistant.model.bundle import ModelBundle

BORDERLINE_MARGIN = 0.1   # relative margin (d2 - d1) / (d2 + d1) below which a result is borderline
N_REASONS = 3
N_DRIVERS = 3
CARD_NAME = "model_card.json"
_BATCH_CHUNK = 16_384      # rows per block: the (k, block) score matrix stays in the CPU cache
_PARALLEL_MIN_ROWS = 131_072
_FIELD_LABELS = {f.name: f.label for f in FIELDS}
_CONFIDENCE_LEVELS = pd.Index(["borderline", "clear"])   # codes: 0 below BORDERLINE_MARGIN, 1 at or above


def load_card(model_dir: Path) -> ModelCard:
    """The model card of ``model_dir``, validated; ModelError naming the file and what is wrong."""
    path = model_dir / CARD_NAME
    problem = file_problem(path)
    if problem == MISSING:
        raise ModelError(f"no model in {model_dir}: {CARD_NAME} is missing. Train one with "
                         f"`segment-assistant train --data marketing_campaign.csv --out {model_dir}`")
    retrain = f"retrain with `segment-assistant train --data marketing_campaign.csv --out {model_dir}`"
    if problem is not None:
        raise ModelError(f"{path} {problem}; fix it or {retrain}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"{path} cannot be read ({exc.strerror}); fix it or {retrain}") from None
    except ValueError as exc:
        raise ModelError(f"{path} is not a valid model card ({exc.__class__.__name__}); {retrain}") from None
    try:
        card = ModelCard.model_validate(raw)
    except ValidationError as exc:
        raise ModelError(f"{path} is not a valid model card ({validation_summary(exc)}); {retrain}") from None
    if card.bundle_file is None or card.bundle_sha256 is None:
        raise ModelError(f"{path} is not a valid model card (it names no bundle_file and bundle_sha256); {retrain}")
    return card


def read_card(model_dir: Path) -> dict[str, Any]:
    """The model card as its JSON object, validated (what ``segment-assistant model-card`` prints).
    Any: a JSON object; typed code uses :func:`load_card`."""
    return load_card(model_dir).to_json()


def load_verified_bundle(model_dir: Path, card: ModelCard) -> ModelBundle:
    """Check the bundle's sha256 against the card, then unpickle it (imports scikit-learn)."""
    import joblib

    from assistant.model.bundle import ModelBundle

    name, expected = card.bundle_file, card.bundle_sha256
    if name is None or expected is None:
        raise ModelError(f"{model_dir / CARD_NAME} names no bundle_file and bundle_sha256; retrain with "
                         f"`segment-assistant train --data marketing_campaign.csv --out {model_dir}`")
    if Path(name).name != name:
        raise ModelError(f"{model_dir / CARD_NAME}: bundle_file {name!r} must be a plain file name")
    path = model_dir / name
    problem = file_problem(path)
    if problem is not None:
        raise ModelError(f"{path} {problem} (named by {CARD_NAME}); retrain with "
                         f"`segment-assistant train --data marketing_campaign.csv --out {model_dir}`")
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ModelError(f"{path} cannot be read ({exc.strerror}); retrain with "
                         f"`segment-assistant train --data marketing_campaign.csv --out {model_dir}`") from None
    if digest != expected:
        raise ModelError(f"{path} does not match its model card (sha256 {digest[:12]}... expected "
                         f"{expected[:12]}...): refusing to unpickle it. Restore the file "
                         f"or retrain with `segment-assistant train --data marketing_campaign.csv --out {model_dir}`")
    try:
        loaded = joblib.load(path)
    except Exception as exc:  # a verified file that still fails to load: say which and why
        raise ModelError(f"{path} cannot be loaded ({exc.__class__.__name__}: {exc})") from None
    bundle = ModelBundle.from_pickle(loaded, source=str(path))
    if bundle.feature_names != list(FIELD_NAMES):
        raise ModelError(f"{path} was trained on features {bundle.feature_names}, expected {list(FIELD_NAMES)}")
    return bundle


_Entrant = tuple[NDArray[np.float64], int | NDArray[np.integer[Any]]]   # (scores, cluster index per row or one)


def _tournament_argmin(scores: NDArray[np.float64], out: NDArray[np.intp]) -> None:
    """``out[:] = scores.argmin(axis=0)`` for a (k, rows) matrix; overwrites ``scores``.

    Neighbours meet in rounds (0 v 1, 2 v 3, ..., then the winners): each meeting is one comparison,
    one minimum and one select over the rows, with the lower index kept on ties."""
    entrants: list[_Entrant] = [(scores[k], k) for k in range(scores.shape[0])]
    while len(entrants) > 1:
        final = len(entrants) == 2
        winners: list[_Entrant] = []
        for i in range(0, len(entrants) - 1, 2):
            (low, low_index), (high, high_index) = entrants[i], entrants[i + 1]
            take = high < low
            if not final:
                np.minimum(low, high, out=low)
            if isinstance(low_index, int) and isinstance(high_index, int) and high_index == low_index + 1:
                index = take.view(np.int8) + np.int8(low_index) if low_index else take.view(np.int8)
            else:
                index = np.where(take, high_index, low_index)
            winners.append((low, index))
        if len(entrants) % 2:
            winners.append(entrants[-1])
        entrants = winners
    out[:] = entrants[0][1]


class SegmentationService:
    """Assign customers to segments. Build it with :meth:`load`."""

    def __init__(self, *, card: ModelCard, knowledge: KnowledgeBase, params: ScoringParams | None = None,
                 bundle: ModelBundle | None = None, model_dir: Path | None = None) -> None:
        """From the plain scoring parameters (what :meth:`load` reads), or from a fitted bundle (training)."""
        if params is None:
            if bundle is None:
                raise ModelError("a SegmentationService needs scoring parameters or a model bundle")
            params = ScoringParams.from_bundle(bundle)
        self._bundle = bundle
        self.params = params
        self.card_model = card
        # the card as its JSON object, for callers that read it as a dict (typed code uses card_model)
        self.card: dict[str, Any] = card.to_json()
        self.knowledge = knowledge
        self.model_dir = model_dir
        if params.feature_names != list(FIELD_NAMES):
            raise ModelError(f"the model was trained on features {params.feature_names}, expected {list(FIELD_NAMES)}")
        self.cluster_keys: tuple[str, ...] = tuple(params.segment_keys)
        unknown = [k for k in self.cluster_keys if k not in knowledge.segments]
        if unknown:
            raise ModelError(f"the model names segment(s) {', '.join(unknown)} that knowledge/segments.yaml lacks")
        mean: NDArray[np.float64] = np.asarray(params.mean, dtype=np.float64)
        scale: NDArray[np.float64] = np.asarray(params.scale, dtype=np.float64)
        centroids: NDArray[np.float64] = np.asarray(params.centroids, dtype=np.float64)
        centres = mean + scale * centroids  # centroids in original units
        weights = 1.0 / scale**2
        self.mean_, self.scale_, self.centres_, self.weights_ = mean, scale, centres, weights
        # batch form: argmin_k (x @ B)_k + b_k
        self._B = (-2.0 * centres * weights).T.copy()
        self._b = (centres**2 * weights).sum(axis=1)
        self._BT = np.ascontiguousarray(self._B.T)       # (k, 7): scores come out as (k, rows)
        from threadpoolctl import ThreadpoolController

        self._threadpools = ThreadpoolController()  # scanned once (a few ms), then limits are cheap
        self._b_col = self._b[:, None].copy()
        self._keys_array = np.array(self.cluster_keys, dtype=object)
        self._key_categories = pd.Index(self.cluster_keys)
        self._name_categories = pd.Index([knowledge.segment(k).name for k in self.cluster_keys])
        # single-customer form, plain Python floats
        self._centres_py = [tuple(map(float, c)) for c in centres]
        self._weights_py = tuple(map(float, weights))
        self._mean_py = tuple(map(float, mean))
        self._scale_py = tuple(map(float, scale))
        self.response_params: ResponseParams | None = params.response
        self._build_texts()

    # ------------------------------------------------------------------ construction

    @property
    def bundle(self) -> ModelBundle:
        """The joblib bundle (the training artifact), verified and unpickled on first use: scoring never
        needs it, so scikit-learn is imported only by code that asks for the pipeline itself."""
        if self._bundle is None:
            if self.model_dir is None:
                raise ModelError("this service was built without a model folder: no bundle to load")
            self._bundle = load_verified_bundle(self.model_dir, self.card_model)
        return self._bundle

    @property
    def pipeline(self) -> Any:
        """The fitted scikit-learn pipeline (scaler + K-Means) of :attr:`bundle`."""
        return self.bundle.pipeline

    def __getstate__(self) -> dict[str, object]:
        """Picklable (dask ships the service to its workers): the thread-pool controller holds
        native library handles, so it is rebuilt on the other side."""
        state = dict(self.__dict__)
        state.pop("_threadpools", None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        from threadpoolctl import ThreadpoolController

        self.__dict__.update(state)
        self._threadpools = ThreadpoolController()

    @classmethod
    def load(cls, model_dir: str | Path | None = None, *,
             knowledge_dir: str | Path | None = None) -> SegmentationService:
        """Load the committed model (or the one in ``model_dir``), verified, with its knowledge base."""
        model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        card = load_card(model_dir)
        knowledge = load_knowledge(knowledge_dir)
        if card.scoring_file is not None:
            return cls(params=load_verified_params(model_dir, card), card=card, knowledge=knowledge,
                       model_dir=model_dir)
        # a model folder written before the plain parameters existed: the verified bundle gives them
        bundle = load_verified_bundle(model_dir, card)
        return cls(bundle=bundle, card=card, knowledge=knowledge, model_dir=model_dir)

    def _build_texts(self) -> None:
        card, kb = self.card_model, self.knowledge
        self._overall_mean = card.overall.mean
        self._overall_std = card.overall.std
        self._min = card.overall.min
        self._max = card.overall.max
        self._averages = {key: dict(card.segments[key].averages) for key in self.cluster_keys}
        self._strategies = {key: kb.segment(key).strategy_model() for key in self.cluster_keys}
        self._names = {key: kb.segment(key).name for key in self.cluster_keys}
        ex = kb.explanations
        self._levels = (ex.levels.very_low, ex.levels.low, ex.levels.typical, ex.levels.high, ex.levels.very_high)
        self._level_caps = tuple(level[:1].upper() + level[1:] for level in self._levels)
        self._headlines = [ex.headlines[f.name].bands() for f in FIELDS]
        # constant parts of the reasons, formatted once: each segment's average (the model card's segment
        # mean, the same "segment average" as the result's table; not the centroid) per field, overall means
        self._centre_text = [[f.number(self._averages[key][f.name]) for f in FIELDS] for key in self.cluster_keys]
        self._averages_py = [tuple(float(self._averages[key][n]) for n in FIELD_NAMES) for key in self.cluster_keys]
        self._overall_text = [f.number(self._overall_mean[f.name]) for f in FIELDS]
        # reasons split around the customer's value, per (field, band, cluster, runner-up); filled on first use
        # (at most 7 x 5 x k x (k - 1) entries; a race between threads writes the same value twice)
        self._reason_parts: dict[tuple[int, int, int, int], list[str]] = {}

    # ------------------------------------------------------------------ single customer

    def _distances(self, x: tuple[float, ...]) -> list[float]:
        w = self._weights_py
        return [sum([(xi - ci) * (xi - ci) * wi for xi, ci, wi in zip(x, c, w, strict=True)]) for c in self._centres_py]

    def label(self, profile: CustomerProfile) -> str:
        """The segment key only (the fastest path)."""
        x = tuple(float(getattr(profile, n)) for n in FIELD_NAMES)
        d = self._distances(x)
        return self.cluster_keys[d.index(min(d))]

    def assign(self, profile: CustomerProfile | Mapping[str, object]) -> SegmentResult:
        """Assign one customer. A dict is validated first (InvalidProfileError on bad input)."""
        if not isinstance(profile, CustomerProfile):
            profile = parse_profile(profile)
        x = tuple(float(getattr(profile, n)) for n in FIELD_NAMES)
        return self._result(x)

    def _result(self, x: tuple[float, ...]) -> SegmentResult:
        d2 = self._distances(x)
        order = sorted(range(len(d2)), key=d2.__getitem__)
        best, runner = order[0], order[1]
        key, runner_key = self.cluster_keys[best], self.cluster_keys[runner]
        dist = [math.sqrt(v) for v in d2]
        margin = (dist[runner] - dist[best]) / (dist[runner] + dist[best]) if dist[runner] + dist[best] > 0 else 0.0
        name, runner_name = self._names[key], self._names[runner_key]
        spec = self.knowledge.segment(key)
        averages = self._averages[key]
        level: Literal["clear", "borderline"] = "clear" if margin >= BORDERLINE_MARGIN else "borderline"
        conf_text = getattr(self.knowledge.explanations.confidence, level).format(
            segment_name=name, runner_up_name=runner_name)
        return SegmentResult.model_construct(
            segment_key=key, segment_name=name, summary=spec.summary, description=spec.description,
            strategy=self._strategies[key], customer=dict(zip(FIELD_NAMES, x, strict=True)),
            segment_averages=dict(averages),
            overall_averages=dict(self._overall_mean),
            distances={self.cluster_keys[i]: dist[i] for i in range(len(dist))},
            confidence=Confidence.model_construct(level=level, margin=margin, runner_up_key=runner_key,
                                                  runner_up_name=runner_name, text=conf_text),
            reasons=self._reasons(x, best, runner, name, runner_name),
            warnings=self._warnings(x),
            response=self._response(x, key),
        )

    # ------------------------------------------------------------------ campaign response

    def _response(self, x: tuple[float, ...], key: str) -> ResponseLikelihood | None:
        """The seven-field model's calibrated chance for one customer, with the values that move it most."""
        rp = self.response_params
        if rp is None:
            return None
        model = rp.seven_fields
        probability, effects = model.predict_one(dict(zip(FIELD_NAMES, x, strict=True)))
        return ResponseLikelihood.model_construct(
            probability=probability, segment_rate=rp.segment_rates.get(key, rp.overall_rate),
            overall_rate=rp.overall_rate, model=model.name, holdout_auc=model.holdout_auc,
            drivers=self.response_drivers(effects))

    @staticmethod
    def response_drivers(by_input: Mapping[str, float], limit: int = N_DRIVERS) -> list[ResponseDriver]:
        """The inputs whose terms move one customer's score most against the average training customer
        (log-odds; all terms of one input summed: ``ResponseModel.input_effects``), largest first."""
        top = sorted(by_input.items(), key=lambda kv: -abs(kv[1]))[:limit]
        return [ResponseDriver.model_construct(field=name, label=_FIELD_LABELS.get(name, name), effect=effect)
                for name, effect in top if abs(effect) > 0.05]

    def response_probability(self, X: ArrayLike) -> NDArray[np.float64] | None:
        """The seven-field model's probability per row of an (n, 7) array in field order; None without a model."""
        if self.response_params is None:
            return None
        return self.response_params.seven_fields.predict(seven_field_inputs(np.asarray(X, dtype=np.float64)))

    def _reasons(self, x: tuple[float, ...], best: int, runner: int, name: str, runner_name: str) -> list[str]:
        """Which of the customer's values pull them towards this segment rather than the runner-up."""
        # the segment averages the reason quotes (a reason is never "closer to 25.3 than to 25.2" the other way)
        cb, cr, w = self._averages_py[best], self._averages_py[runner], self._weights_py
        pull = [((xi - r) ** 2 - (xi - b) ** 2) * wi for xi, b, r, wi in zip(x, cb, cr, w, strict=True)]
        top = sorted((j for j in range(len(x)) if pull[j] > 0), key=lambda j: -pull[j])[:N_REASONS]
        out = []
        for j in top:
            z = (x[j] - self._mean_py[j]) / self._scale_py[j]
            band = 0 if z < -1 else 1 if z < -0.4 else 2 if z <= 0.4 else 3 if z <= 1 else 4
            parts = self._reason_parts.get((j, band, best, runner))
            if parts is None:
                parts = self._reason_parts[(j, band, best, runner)] = self._reason_template(j, band, best, runner)
            out.append(FIELDS[j].say(x[j]).join(parts))
        return out

    def _reason_template(self, j: int, band: int, best: int, runner: int) -> list[str]:
        """The reason for field ``j`` in ``band`` between two clusters, split where the customer's
        value goes: everything else in it is fixed, so it is formatted once and kept."""
        f = FIELDS[j]
        name, runner_name = self._names[self.cluster_keys[best]], self._names[self.cluster_keys[runner]]
        marker = "\x00"
        return self.knowledge.explanations.reason.format(
            headline=self._headlines[j][band], Level=self._level_caps[band], level=self._levels[band],
            label=f.label, label_lower=f.label.lower(), short=f.short, short_lower=f.short_lower,
            customer=marker, overall=self._overall_text[j], segment=self._centre_text[best][j],
            segment_name=name, runner_up=self._centre_text[runner][j], runner_up_name=runner_name).split(marker)

    def _warnings(self, x: tuple[float, ...]) -> list[str]:
        out = []
        for f, xi in zip(FIELDS, x, strict=True):
            low, high = self._min[f.name], self._max[f.name]
            if xi < low or xi > high:
                out.append(self.knowledge.explanations.warning.format(
                    label=f.label, value=f.number(xi), low=f.number(low), high=f.number(high)))
        return out

    def range_warnings(self, X: NDArray[np.float64]) -> tuple[NDArray[np.int32], list[str]]:
        """The out-of-training-range warnings the chat gives, for each row of ``X`` (columns in field
        order): ``(codes, texts)``, where ``codes[i]`` indexes ``texts`` (the row's warnings joined by a
        space) or is -1 when every value lies in the training range. Vectorised: one comparison per
        field, and only rows with a warning pay for text (each distinct text once)."""
        low = np.array([self._min[f.name] for f in FIELDS])
        high = np.array([self._max[f.name] for f in FIELDS])
        codes = np.full(len(X), -1, dtype=np.int32)
        flagged = np.zeros(len(X), dtype=bool)
        for j in range(X.shape[1]):
            column = X[:, j]
            flagged |= (column < low[j]) | (column > high[j])
        texts: dict[str, int] = {}
        for i in np.flatnonzero(flagged):
            text = " ".join(self._warnings(tuple(float(v) for v in X[i])))
            codes[i] = texts.setdefault(text, len(texts))
        return codes, list(texts)

    # ------------------------------------------------------------------ batches

    def _block_indices(self, block: NDArray[np.float64], out: NDArray[np.intp]) -> None:
        """Labels of one block: scores as a (k, rows) matrix, then a knock-out tournament between
        neighbouring centroids (``argmin`` over a short axis is slow in numpy; this is about twice as
        fast). The strict ``<`` keeps the lower index on ties, exactly like ``argmin``."""
        scores = self._BT @ block.T
        scores += self._b_col
        _tournament_argmin(scores, out)

    def _block_scores(self, block: NDArray[np.float64], out: NDArray[np.intp], margin: NDArray[np.float64]) -> None:
        """Labels and relative margins of one block: the two smallest scores per row (a running minimum and
        runner-up over the k score rows), plus the row's own weighted square, give the two nearest distances."""
        scores = self._BT @ block.T
        scores += self._b_col
        first = scores[0].copy()
        second = np.full_like(first, np.inf) if len(scores) > 1 else first.copy()
        larger = np.empty_like(first)
        for row in scores[1:]:
            np.maximum(first, row, out=larger)
            np.minimum(second, larger, out=second)
            np.minimum(first, row, out=first)
        own = (block * block) @ self.weights_
        d1 = first
        d1 += own
        np.maximum(d1, 0.0, out=d1)
        np.sqrt(d1, out=d1)
        d2 = second
        d2 += own
        np.maximum(d2, 0.0, out=d2)
        np.sqrt(d2, out=d2)
        total = d1 + d2
        np.subtract(d2, d1, out=d2)
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(d2, total, out=margin, where=total > 0)
        margin[total <= 0] = 0.0
        _tournament_argmin(scores, out)

    def _blocked(self, X: NDArray[np.float64], work: Any, *outs: NDArray[Any]) -> None:
        """``work(block, *out_blocks)`` over blocks of _BATCH_CHUNK rows; large inputs are split between
        two threads (numpy releases the GIL), each with single-threaded BLAS so they do not oversubscribe
        the cores."""
        starts = range(0, len(X), _BATCH_CHUNK)

        def run(share: range) -> None:
            for start in share:
                end = start + _BATCH_CHUNK
                work(X[start:end], *(o[start:end] for o in outs))

        if len(X) < _PARALLEL_MIN_ROWS:
            run(starts)
            return
        import threading

        failures: list[BaseException] = []

        def guarded(share: range) -> None:      # one contiguous half per thread: two tasks, not one per block
            try:
                run(share)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread below
                failures.append(exc)

        middle = len(starts) // 2
        with self._threadpools.limit(limits=1, user_api="blas"):
            helper = threading.Thread(target=guarded, args=(starts[middle:],), daemon=True)
            helper.start()
            guarded(starts[:middle])
            helper.join()
        if failures:
            raise failures[0]

    def predict_indices(self, X: ArrayLike) -> NDArray[np.intp]:
        """Cluster index per row of an (n, 7) float array in field order (trusted input)."""
        X = np.asarray(X, dtype=np.float64)   # either memory order: blocks are transposed anyway
        out = np.empty(len(X), dtype=np.intp)
        self._blocked(X, self._block_indices, out)
        return out

    def distances_many(self, X: ArrayLike) -> NDArray[np.float64]:
        """Euclidean distance in standardised space from each row to each centroid, (n, k)."""
        X = np.asarray(X, dtype=np.float64)
        sq: NDArray[np.float64] = (X**2 * self.weights_).sum(axis=1, keepdims=True) + X @ self._B + self._b
        distances: NDArray[np.float64] = np.sqrt(np.maximum(sq, 0.0))
        return distances

    def assign_many(self, frame: pd.DataFrame) -> pd.Series:
        """Segment keys for a frame with the seven field columns, in row order (index kept).

        Rows must already be valid (see :mod:`assistant.batch` for files with bad rows);
        a missing column or a non-numeric or missing value raises InvalidProfileError.
        """
        missing = [n for n in FIELD_NAMES if n not in frame.columns]
        if missing:
            raise InvalidProfileError([f"column {n} is missing" for n in missing])
        try:
            X = frame[list(FIELD_NAMES)].to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidProfileError([f"the field columns must be numeric ({exc})"]) from None
        if not np.isfinite(X).all():
            bad = int((~np.isfinite(X).all(axis=1)).sum())
            raise InvalidProfileError([f"{bad} row(s) have a missing or non-finite value"])
        keys = self._keys_array[self.predict_indices(X)]
        return pd.Series(keys, index=frame.index, name="segment_key")

    def score_array(self, X: ArrayLike) -> dict[str, Any]:
        """Labels, keys, names, confidence level and margin for trusted rows (batch scoring, the REST batch).

        ``index`` (intp) and ``margin`` (float64) are arrays; ``segment_key``, ``segment_name`` and
        ``confidence`` are pandas Categoricals over those codes (no Python object per row). One pass in
        cache-sized blocks, on two threads for large inputs (see :meth:`_blocked`)."""
        X = np.asarray(X, dtype=np.float64)
        idx = np.empty(len(X), dtype=np.intp)
        margin = np.empty(len(X), dtype=np.float64)
        self._blocked(X, self._block_scores, idx, margin)
        clear = (margin >= BORDERLINE_MARGIN).view(np.int8)
        return {
            "index": idx,
            "segment_key": pd.Categorical.from_codes(idx, categories=self._key_categories, validate=False),
            "segment_name": pd.Categorical.from_codes(idx, categories=self._name_categories, validate=False),
            "confidence": pd.Categorical.from_codes(clear, categories=_CONFIDENCE_LEVELS, validate=False),
            "margin": margin,
        }

    # ------------------------------------------------------------------ knowledge

    def segments(self) -> list[SegmentInfo]:
        out = []
        for key in self.knowledge.segments:
            spec, seg = self.knowledge.segment(key), self.card_model.segments[key]
            out.append(SegmentInfo(key=key, name=spec.name, summary=spec.summary, description=spec.description,
                                   characteristics=list(spec.characteristics), strategy=spec.strategy_model(),
                                   size=seg.size, share=seg.share, averages=dict(seg.averages)))
        return out

    def segment_name(self, key: str) -> str:
        return self.knowledge.segment(key).name

    def project(self, profile: CustomerProfile) -> tuple[float, float]:
        """The customer's position on the training PCA plane (for plots)."""
        pca = self.card_model.pca
        z = (np.array([float(getattr(profile, n)) for n in FIELD_NAMES]) - self.mean_) / self.scale_
        xy = (z - np.asarray(pca.mean)) @ np.asarray(pca.components).T
        return float(xy[0]), float(xy[1])

    def model_info(self) -> dict[str, str | int | None]:
        card = self.card_model
        return {"model_version": card.model_version, "trained_at": card.trained_at, "k": card.k,
                "data_sha256": card.data.sha256, "bundle_sha256": card.bundle_sha256,
                "rows_kept": card.data.rows_kept}
