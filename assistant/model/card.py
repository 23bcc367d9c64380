"""The model card (``model_card.json``) as typed objects.

``ModelCard`` is the structure of ``model_card.json``: the training data, the model-selection table,
the naming of the clusters, per-segment summaries and profiles, overall statistics and the PCA plane,
then the plots, the bundle's and the scoring parameters' file names and sha256 that ``write_model``
adds (the card is the commit point of a model folder). :meth:`ModelCard.to_json` gives the JSON
object, key for key as written.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

CARD_VERSION = 1


def validation_summary(exc: ValidationError, *, limit: int = 3) -> str:
    """The first problems of a ValidationError on one line: ``bundle_file: Field required; ...``."""
    problems = [f"{'.'.join(map(str, e['loc'])) or 'the file'}: {e['msg']}" for e in exc.errors()]
    more = len(problems) - limit
    return "; ".join(problems[:limit]) + (f"; and {more} more" if more > 0 else "")


class CardPart(BaseModel):
    """A part of the model card. ``part["name"]`` reads a field as the JSON dict did, for callers written
    against the dict (prefer the attribute: it is typed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __getitem__(self, name: str) -> Any:   # Any: what a dict read of the JSON gave
        if name not in type(self).model_fields:
            raise KeyError(name)
        return getattr(self, name)


class DataSummary(CardPart):
    """The training file and how it was cleaned (see :class:`assistant.model.data.CleaningReport`)."""

    sha256: str
    rows_in: int
    rows_kept: int
    rows_dropped: int
    dropped: dict[str, int]             # rows dropped per cleaning rule
    collection_year: int
    delimiter: str                       # "tab", "semicolon" or "comma"
    date_format: str
    age_note: str


class Elbow(CardPart):
    k: int
    method: str


class SelectionRow(CardPart):
    """One k of the model-selection table."""

    k: int
    inertia: float
    silhouette: float
    calinski_harabasz: float
    davies_bouldin: float
    stability: float                     # mean adjusted Rand index over bootstrap refits


class Naming(CardPart):
    """How the clusters got their knowledge-base names (see ``training.name_clusters``)."""

    cluster_keys: list[str]
    signature_distances: list[float]
    best_cost: float
    second_cost: float
    margin_ratio: float


class SegmentSummary(CardPart):
    name: str
    size: int
    share: float
    averages: dict[str, float]           # field name -> mean over the segment's customers


class OverallStats(CardPart):
    """Field name -> statistic over all training customers."""

    mean: dict[str, float]
    std: dict[str, float]
    min: dict[str, float]
    max: dict[str, float]


class PcaSample(CardPart):
    """A sample of training customers on the PCA plane (for plots)."""

    x: list[float]
    y: list[float]
    segment_key: list[str]


class Pca(CardPart):
    """The first two principal components of the standardised fields."""

    components: list[list[float]]
    mean: list[float]
    explained_variance_ratio: list[float]
    sample: PcaSample


class CalibrationBin(CardPart):
    """One equal-width probability bin of the holdout calibration table."""

    low: float
    high: float
    customers: int
    mean_predicted: float | None         # None for an empty bin
    observed_rate: float | None


class Gains(CardPart):
    """Cumulative gains on the holdout: the share of responders found in the top ``share`` of customers."""

    share: list[float]
    captured: list[float]


class RepeatedHoldout(CardPart):
    """The whole training procedure (candidates, cross-validation, calibration) repeated on other stratified
    splits of the same file, each evaluated on its own holdout: how much one holdout's figures vary."""

    splits: int
    seeds: list[int]                     # the split seeds (the shipped model's seed is not among them)
    roc_auc_mean: float
    roc_auc_sd: float
    roc_auc_min: float
    roc_auc_max: float
    share_at_target_auc: float           # share of splits whose holdout AUC reaches the target
    ece_mean: float
    ece_sd: float
    share_at_target_ece: float


class ResponseEvaluation(CardPart):
    """One campaign-response model (assistant.model.response) and how it did on the holdout."""

    model: str                           # "seven_fields" or "full_record"
    variant: str                         # the candidate chosen by cross-validation
    inputs: list[str]
    terms: list[str]
    cv_roc_auc: dict[str, float]         # candidate -> 5-fold ROC AUC on the training part
    calibration_method: str              # "isotonic" or "sigmoid"
    calibration_cv_brier: dict[str, float]
    customers: int                       # holdout customers
    responders: int
    base_rate: float
    roc_auc: float
    pr_auc: float
    brier: float
    brier_base_rate: float               # Brier score of predicting the base rate for everyone
    ece: float                           # expected calibration error, 10 equal-width bins
    calibration: list[CalibrationBin]
    lift_top10: float                    # response rate in the top 10 % / base rate
    lift_top20: float
    capture_top10: float                 # share of all responders found in the top 10 %
    capture_top20: float
    gains: Gains
    target_roc_auc: float
    target_ece: float
    meets_targets: bool
    # the ECE a perfectly calibrated model would show on a holdout this size (outcomes drawn from the
    # model's own holdout probabilities, 2,000 draws): median and 95th percentile
    ece_if_calibrated_median: float | None = None
    ece_if_calibrated_p95: float | None = None
    repeated: RepeatedHoldout | None = None


class ResponseSummary(CardPart):
    """The likelihood to respond to the next campaign: the holdout and each model's evaluation."""

    target: str
    holdout_share: float
    holdout_seed: int
    training_customers: int
    holdout_customers: int
    overall_rate: float
    segment_rates: dict[str, float]
    reference_date: str
    models: list[ResponseEvaluation]

    def model(self, name: str) -> ResponseEvaluation | None:
        return next((m for m in self.models if m.model == name), None)


_WRITTEN_WHEN_SET = ("profiles", "plots", "bundle_file", "bundle_sha256", "scoring_file", "scoring_sha256",
                     "response")


class ModelCard(CardPart):
    """``model_card.json``. ``train`` fills everything up to ``pca``; ``write_model`` adds ``plots`` (when
    drawn), ``bundle_file``, ``bundle_sha256``, ``scoring_file`` and ``scoring_sha256``."""

    card_version: int = CARD_VERSION
    trained_at: str
    model_version: str
    data: DataSummary
    feature_names: list[str]
    k: int
    k_reason: str
    seed: int
    elbow: Elbow
    selection: list[SelectionRow]
    bootstrap_refits: int
    versions: dict[str, str]
    naming: Naming
    segments: dict[str, SegmentSummary]  # segment key -> summary, in knowledge-base order
    # aggregates per segment for the insights (assistant.model.profiling.compute_profiles); None in
    # cards written before profiles existed
    profiles: dict[str, JsonValue] | None = None
    overall: OverallStats
    pca: Pca
    plots: dict[str, str] | None = None  # plot name -> PNG file beside the card
    bundle_file: str | None = None
    bundle_sha256: str | None = None
    # the fitted numbers scoring needs, as plain JSON (assistant.model.params); None in older cards
    scoring_file: str | None = None
    scoring_sha256: str | None = None
    # the campaign-response models' holdout evaluation (assistant.model.response_training); None in older
    # cards and for files without a Response column
    response: ResponseSummary | None = None

    def to_json(self) -> dict[str, Any]:
        """The card as the JSON object written to ``model_card.json`` (optional parts only when set).
        Any: a JSON object, indexed freely by callers that read the card as a dict."""
        unset = {name for name in _WRITTEN_WHEN_SET if getattr(self, name) is None}
        return self.model_dump(exclude=unset)
