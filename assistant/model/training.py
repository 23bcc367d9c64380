"""Training: StandardScaler + K-Means, a model-selection table, cluster naming, and the bundle.

Stages (one function each): ``selection_table`` (k = 2..10 with inertia, silhouette,
Calinski-Harabasz, Davies-Bouldin and bootstrap stability), ``find_elbow`` / ``choose_k``,
``fit_pipeline``, ``name_clusters`` (attach knowledge-base names by profile) and
``write_model`` (atomic: the model card is the commit point).

The elbow method: the k whose point on the inertia curve is farthest from the straight line
joining the curve's first and last points, both axes scaled to [0, 1] (the "kneedle" rule).
``--k auto``: the elbow k, unless its bootstrap stability is below 0.75, in which case the most
stable k among elbow-1 .. elbow+1.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
import platform
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from assistant.core.errors import TrainingError
from assistant.core.fields import FIELD_NAMES
from assistant.core.files import atomic_write_bytes
from assistant.core.knowledge import KnowledgeBase
from assistant.model.bundle import BUNDLE_FORMAT, ModelBundle
from assistant.model.card import (
    CARD_VERSION,
    DataSummary,
    Elbow,
    ModelCard,
    Naming,
    OverallStats,
    Pca,
    PcaSample,
    SegmentSummary,
    SelectionRow,
)
from assistant.model.data import CustomerData
from assistant.model.params import ScoringParams, scoring_file_name
from assistant.model.profiling import compute_profiles
from assistant.model.response_training import train_response

Progress = Callable[[int, int, str], None]
CARD_NAME = "model_card.json"
DEFAULT_K = 4
K_RANGE = range(2, 11)
N_BOOTSTRAP = 20
MIN_AUTO_STABILITY = 0.75
PCA_SAMPLE = 800


def _quiet(step: int, total: int, message: str) -> None:
    return None


@dataclass(frozen=True)
class NamingResult:
    keys: list[str]               # segment key for each cluster index
    distances: list[float]        # RMS z-distance of each cluster's centroid to its signature
    best_cost: float
    second_cost: float

    @property
    def margin_ratio(self) -> float:
        return self.second_cost / self.best_cost if self.best_cost > 0 else float("inf")


def _kmeans(k: int, seed: int, n_init: int = 10) -> KMeans:
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed)


def bootstrap_stability(X: NDArray[np.float64], k: int, reference: NDArray[np.int32], *, seed: int,
                        n_boot: int = N_BOOTSTRAP) -> float:
    """Mean adjusted Rand index between the reference labels and refits on bootstrap samples
    (each refit labels the full data)."""
    rng = np.random.default_rng(seed)
    scores = []
    for b in range(n_boot):
        idx = rng.integers(0, len(X), size=len(X))
        model = _kmeans(k, seed + 1 + b).fit(X[idx])
        scores.append(adjusted_rand_score(reference, model.predict(X)))
    return float(np.mean(scores))


def selection_table(X: NDArray[np.float64], *, seed: int, ks: Iterable[int] = K_RANGE, n_boot: int = N_BOOTSTRAP,
                    progress: Progress = _quiet) -> list[SelectionRow]:
    """One row per k: inertia, silhouette, Calinski-Harabasz, Davies-Bouldin, stability."""
    rows = []
    k_list = list(ks)
    for i, k in enumerate(k_list):
        progress(i, len(k_list), f"k={k}: fitting and {n_boot} bootstrap refits")
        model = _kmeans(k, seed).fit(X)
        labels = model.labels_
        rows.append(SelectionRow(
            k=k,
            inertia=float(model.inertia_),
            silhouette=float(silhouette_score(X, labels)),
            calinski_harabasz=float(calinski_harabasz_score(X, labels)),
            davies_bouldin=float(davies_bouldin_score(X, labels)),
            stability=bootstrap_stability(X, k, labels, seed=seed, n_boot=n_boot),
        ))
    progress(len(k_list), len(k_list), "selection table done")
    return rows


def find_elbow(ks: list[int], inertias: list[float]) -> int:
    """The kneedle elbow: the point farthest below the chord from the first to the last point."""
    x = np.asarray(ks, dtype=float)
    y = np.asarray(inertias, dtype=float)
    if len(x) < 3:
        return int(x[0])
    xn = (x - x[0]) / (x[-1] - x[0])
    yn = (y - y.min()) / (y.max() - y.min()) if y.max() > y.min() else np.zeros_like(y)
    chord = yn[0] + (yn[-1] - yn[0]) * xn
    return int(x[int(np.argmax(chord - yn))])


def choose_k(table: Sequence[SelectionRow]) -> tuple[int, str]:
    """The ``--k auto`` rule (see the module docstring); returns (k, reason)."""
    ks = [r.k for r in table]
    elbow = find_elbow(ks, [r.inertia for r in table])
    by_k = {r.k: r for r in table}
    if by_k[elbow].stability >= MIN_AUTO_STABILITY:
        return elbow, f"elbow at k={elbow} with bootstrap stability {by_k[elbow].stability:.2f}"
    around = [k for k in (elbow - 1, elbow, elbow + 1) if k in by_k]
    best = max(around, key=lambda k: by_k[k].stability)
    return best, f"elbow at k={elbow} is unstable ({by_k[elbow].stability:.2f}); k={best} is the most stable nearby"


def fit_pipeline(features: pd.DataFrame, *, k: int, seed: int) -> Pipeline:
    pipeline = Pipeline([("scaler", StandardScaler()), ("kmeans", _kmeans(k, seed))])
    pipeline.fit(features[list(FIELD_NAMES)].astype("float64"))  # keeps feature_names_in_ for checks
    return pipeline


def name_clusters(centroids_z: NDArray[np.float64], kb: KnowledgeBase) -> NamingResult:
    """Attach a knowledge-base segment to each cluster by profile: the one-to-one assignment that
    minimises the total RMS distance between standardised centroids and segment signatures.
    Refuses (TrainingError) when a match is too far or a different assignment is nearly as good."""
    specs = list(kb.segments.values())
    k = len(centroids_z)
    if k != len(specs):
        raise TrainingError(
            f"k={k} but the knowledge base describes {len(specs)} segments; names can only be attached "
            f"one-to-one (use --k {len(specs)} or add segments to knowledge/segments.yaml)")
    signatures = np.array([s.signature_vector() for s in specs])
    cost = np.sqrt(((centroids_z[:, None, :] - signatures[None, :, :]) ** 2).mean(axis=2))
    rows, cols = linear_sum_assignment(cost)
    best = float(cost[rows, cols].sum())
    if k <= 8:
        totals = sorted(sum(cost[i, p[i]] for i in range(k)) for p in itertools.permutations(range(k)))
        second = float(totals[1])
    else:  # pragma: no cover - knowledge bases here have 4 segments
        second = float("inf")
    keys = [specs[c].key for c in cols]
    result = NamingResult(keys=keys, distances=[float(cost[r, c]) for r, c in zip(rows, cols, strict=True)],
                          best_cost=best, second_cost=second)
    too_far = [(keys[i], d) for i, d in enumerate(result.distances) if d > kb.matching.max_distance]
    if too_far:
        detail = ", ".join(f"{key} (distance {d:.2f})" for key, d in too_far)
        raise TrainingError(
            f"cannot name the clusters with confidence: {detail} is farther than the allowed "
            f"{kb.matching.max_distance} from its signature in knowledge/segments.yaml")
    if result.margin_ratio < kb.matching.min_margin_ratio:
        raise TrainingError(
            f"cannot name the clusters with confidence: the best naming (cost {best:.2f}) is barely better "
            f"than the next ({second:.2f}); ratio {result.margin_ratio:.2f} is below the required "
            f"{kb.matching.min_margin_ratio}")
    return result


def _versions() -> dict[str, str]:
    import scipy
    import sklearn

    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__, "numpy": np.__version__,
            "pandas": pd.__version__, "joblib": joblib.__version__, "scipy": scipy.__version__}


def segment_summary(features: pd.DataFrame, keys: NDArray[np.str_], kb: KnowledgeBase) -> dict[str, SegmentSummary]:
    out = {}
    for key, spec in kb.segments.items():
        rows = features[keys == key]
        out[key] = SegmentSummary(
            name=spec.name,
            size=int(len(rows)),
            share=float(len(rows) / len(features)),
            averages={name: float(rows[name].mean()) for name in FIELD_NAMES},
        )
    return out


def train(data: CustomerData, kb: KnowledgeBase, *, k: int | str = DEFAULT_K, seed: int = 42,
          n_boot: int = N_BOOTSTRAP, ks: Iterable[int] = K_RANGE,
          progress: Progress = _quiet, response_repeats: int = 0) -> tuple[ModelBundle, ModelCard]:
    """Train on cleaned data; return (bundle, card). Nothing is written here. ``response_repeats``: other
    splits the response models' procedure is repeated on, for the card's spread of holdout figures."""
    features = data.features[list(FIELD_NAMES)]
    X_raw = features.to_numpy(dtype=float)
    X = StandardScaler().fit_transform(X_raw)
    table = selection_table(X, seed=seed, ks=ks, n_boot=n_boot, progress=progress)
    elbow = find_elbow([r.k for r in table], [r.inertia for r in table])
    if k == "auto":
        k_final, k_reason = choose_k(table)
    else:
        k_final, k_reason = int(k), "fixed by --k" if int(k) != DEFAULT_K else "default K=4 of the original analysis"
    pipeline = fit_pipeline(features, k=k_final, seed=seed)
    scaler, kmeans = pipeline.named_steps["scaler"], pipeline.named_steps["kmeans"]
    naming = name_clusters(kmeans.cluster_centers_, kb)
    labels = kmeans.labels_
    keys = np.array(naming.keys)[labels]

    Xs = scaler.transform(features.astype("float64"))
    pca = PCA(n_components=2, random_state=seed).fit(Xs)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(Xs), size=min(PCA_SAMPLE, len(Xs)), replace=False))
    projected = pca.transform(Xs[sample])

    progress(0, 1, "campaign-response models: cross-validation, calibration, holdout evaluation")
    response = train_response(data, keys, seed=seed, repeats=response_repeats)

    trained_at = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    bundle = ModelBundle(
        format=BUNDLE_FORMAT,
        pipeline=pipeline,
        feature_names=list(FIELD_NAMES),
        segment_keys=list(naming.keys),
        k=k_final,
        seed=seed,
        versions=_versions(),
        trained_at=trained_at,
        response=response[0].model_dump() if response is not None else None,
    )
    collection_year = data.report.collection_year
    card = ModelCard(
        card_version=CARD_VERSION,
        trained_at=trained_at,
        model_version=f"{trained_at[:10]}-k{k_final}-s{seed}-{data.sha256[:8]}",
        data=DataSummary(sha256=data.sha256, **data.report.as_dict(),
                         age_note=_age_note(data, collection_year)),
        feature_names=list(FIELD_NAMES),
        k=k_final,
        k_reason=k_reason,
        seed=seed,
        elbow=Elbow(k=elbow, method="kneedle: farthest point below the chord of the normalised inertia curve"),
        selection=table,
        bootstrap_refits=n_boot,
        versions=bundle.versions,
        naming=Naming(cluster_keys=naming.keys, signature_distances=naming.distances,
                      best_cost=naming.best_cost, second_cost=naming.second_cost,
                      margin_ratio=naming.margin_ratio),
        segments=segment_summary(features, keys, kb),
        profiles=compute_profiles(data, keys, kb),
        overall=OverallStats(
            mean={n: float(features[n].mean()) for n in FIELD_NAMES},
            std={n: float(features[n].std(ddof=0)) for n in FIELD_NAMES},
            min={n: float(features[n].min()) for n in FIELD_NAMES},
            max={n: float(features[n].max()) for n in FIELD_NAMES},
        ),
        pca=Pca(
            components=pca.components_.tolist(),
            mean=pca.mean_.tolist(),
            explained_variance_ratio=pca.explained_variance_ratio_.tolist(),
            sample=PcaSample(x=projected[:, 0].round(4).tolist(), y=projected[:, 1].round(4).tolist(),
                             segment_key=keys[sample].tolist()),
        ),
        response=response[1] if response is not None else None,
    )
    progress(1, 1, f"trained k={k_final}: " + ", ".join(f"{s.name} {s.size}" for s in card.segments.values()))
    return bundle, card


# ----------------------------------------------------------------------------- writing


def _age_note(data: CustomerData, collection_year: int) -> str:
    note = f"age is computed relative to {collection_year}, the year of the latest Dt_Customer"
    if data.report.date_order_ambiguous:
        note += ("; no Dt_Customer decides the day/month order (no part above 12), so dates were read day "
                 "first: the year, which is all the age needs, is exact, the day and month may be swapped")
    return note


def write_model(bundle: ModelBundle, card: ModelCard, out_dir: str | Path, *, plots: bool = True) -> Path:
    """Write the bundle, plots and model card to ``out_dir`` atomically.

    The bundle goes to a content-addressed file ``model-<sha>.joblib`` and the plain scoring
    parameters to ``scoring-<sha>.json``; the model card, which names both files and their sha256,
    is replaced last with an atomic rename: it is the commit point. An interrupted run leaves the
    previous card, and so the previous model, in force.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".bundle.", suffix=".tmp")
    os.close(fd)
    try:
        joblib.dump(bundle.to_pickle(), tmp, compress=3)
        payload = Path(tmp).read_bytes()
    finally:
        Path(tmp).unlink(missing_ok=True)
    digest = hashlib.sha256(payload).hexdigest()
    bundle_name = f"model-{digest[:12]}.joblib"
    atomic_write_bytes(out / bundle_name, payload)
    if plots:
        from assistant.model.plots import write_training_plots

        card = card.model_copy(update={"plots": write_training_plots(card, out)})
    params = ScoringParams.from_bundle(bundle).to_bytes()
    params_name, params_digest = scoring_file_name(params)
    atomic_write_bytes(out / params_name, params)
    card = card.model_copy(update={"bundle_file": bundle_name, "bundle_sha256": digest,
                                   "scoring_file": params_name, "scoring_sha256": params_digest})
    previous = _previous_files(out)
    atomic_write_bytes(out / CARD_NAME, (json.dumps(card.to_json(), indent=1) + "\n").encode())
    for name in previous - {bundle_name, params_name}:
        (out / name).unlink(missing_ok=True)
    return out / CARD_NAME


def _previous_files(out: Path) -> set[str]:
    """The bundle and scoring files the card in force names (removed once a new card replaces it)."""
    try:
        card = json.loads((out / CARD_NAME).read_text())
    except (OSError, ValueError):
        return set()
    if not isinstance(card, dict):
        return set()
    names = (card.get("bundle_file"), card.get("scoring_file"))
    return {n for n in names if isinstance(n, str) and Path(n).name == n}
