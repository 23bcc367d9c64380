"""The trained model as pickled: the bundle (the training artifact, scikit-learn inside).

``ModelBundle`` is what ``train`` fits: the scikit-learn pipeline (scaler + K-Means), the feature
order, the segment key of each cluster and how it was made. On disk it stays a plain dict of built-in
types and the pipeline (:meth:`ModelBundle.to_pickle`), so a pickle never names a class of ours and
bundles written before this module existed keep loading. Scoring does not need it: the fitted numbers
travel beside it as plain JSON (:mod:`assistant.model.params`), so this module (and scikit-learn) is
imported only by training and by code that asks for the pipeline itself.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from sklearn.cluster import KMeans
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from assistant.core.errors import ModelError
from assistant.model.card import validation_summary

BUNDLE_FORMAT = 1
PIPELINE_STEPS = ("scaler", "kmeans")


class ModelBundle(BaseModel):
    """The fitted model, as pickled beside its card."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    format: int = BUNDLE_FORMAT
    pipeline: Pipeline                   # steps "scaler" (StandardScaler) and "kmeans" (KMeans), fitted
    feature_names: list[str]             # the pipeline's input columns, in order (the seven fields)
    segment_keys: list[str]              # segment key of each cluster index
    k: int
    seed: int
    versions: dict[str, str]             # python and library versions the model was trained with
    trained_at: str                      # ISO 8601, UTC, whole seconds
    # the campaign-response models as plain data (assistant.model.response.ResponseParams.model_dump());
    # None in bundles written before them and for files without a Response column
    response: dict[str, object] | None = None

    @field_validator("pipeline")
    @classmethod
    def _has_the_steps(cls, pipeline: Pipeline) -> Pipeline:
        steps = tuple(pipeline.named_steps)
        if steps != PIPELINE_STEPS:
            raise ValueError(f"the pipeline's steps are {steps}, expected {PIPELINE_STEPS}")
        return pipeline

    @property
    def scaler(self) -> StandardScaler:
        scaler: StandardScaler = self.pipeline.named_steps["scaler"]
        return scaler

    @property
    def kmeans(self) -> KMeans:
        kmeans: KMeans = self.pipeline.named_steps["kmeans"]
        return kmeans

    def to_pickle(self) -> dict[str, object]:
        """The object written with joblib: a plain dict (see the module docstring)."""
        return {name: getattr(self, name) for name in type(self).model_fields}

    @classmethod
    def from_pickle(cls, obj: object, *, source: str) -> ModelBundle:
        """The bundle from an unpickled object, or ModelError naming ``source`` and what is wrong."""
        if not isinstance(obj, dict) or "pipeline" not in obj:
            raise ModelError(f"{source} is not a model bundle")
        try:
            return cls.model_validate(obj)
        except ValidationError as exc:
            raise ModelError(f"{source} is not a valid model bundle ({validation_summary(exc)})") from None
