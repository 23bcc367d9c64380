"""The fitted numbers scoring needs, as plain checksummed JSON beside the joblib bundle.

Scoring a customer needs the scaler's mean and scale, the K-Means centroids and the segment key of
each cluster: a few dozen numbers. ``write_model`` stores them as ``scoring-<sha>.json`` and names the
file and its sha256 in the model card, so ``SegmentationService.load`` verifies and reads plain JSON:
no unpickling and no scikit-learn import on the ``predict``, ``score`` and ``segments`` paths. The
joblib bundle stays the training artifact, still verified before it is ever unpickled (only when
the scikit-learn pipeline itself is asked for).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from assistant.core.errors import ModelError
from assistant.core.readable import file_problem
from assistant.model.card import ModelCard, validation_summary
from assistant.model.response import ResponseParams

if TYPE_CHECKING:  # pragma: no cover
    from assistant.model.bundle import ModelBundle

PARAMS_FORMAT = 1


class ScoringParams(BaseModel):
    """What a StandardScaler + K-Means pipeline computes, in plain numbers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int = PARAMS_FORMAT
    feature_names: list[str]
    mean: list[float]                  # the scaler's mean_, one per feature
    scale: list[float]                 # the scaler's scale_, one per feature
    centroids: list[list[float]]       # K-Means cluster_centers_ in standardised units, one row per cluster
    segment_keys: list[str]            # segment key of each cluster index
    # the campaign-response models (assistant.model.response); None for models trained without them
    response: ResponseParams | None = None

    @model_validator(mode="after")
    def _shapes_agree(self) -> ScoringParams:
        n = len(self.feature_names)
        if len(self.mean) != n or len(self.scale) != n:
            raise ValueError(f"mean and scale need {n} values, one per feature")
        if any(s <= 0 for s in self.scale):
            raise ValueError("every scale must be above 0")
        if len(self.centroids) != len(self.segment_keys) or any(len(c) != n for c in self.centroids):
            raise ValueError(f"centroids need one row of {n} values per segment key")
        return self

    @classmethod
    def from_bundle(cls, bundle: ModelBundle) -> ScoringParams:
        scaler, kmeans = bundle.scaler, bundle.kmeans
        return cls(feature_names=list(bundle.feature_names), mean=[float(v) for v in scaler.mean_],
                   scale=[float(v) for v in scaler.scale_],
                   centroids=[[float(v) for v in row] for row in kmeans.cluster_centers_],
                   segment_keys=list(bundle.segment_keys),
                   response=ResponseParams.model_validate(bundle.response) if bundle.response else None)

    def to_bytes(self) -> bytes:
        """The JSON written to disk (floats as Python's repr: they read back exactly)."""
        return (json.dumps(self.model_dump(), indent=1) + "\n").encode()


def scoring_file_name(payload: bytes) -> tuple[str, str]:
    """(content-addressed file name, sha256) of a serialised :class:`ScoringParams`."""
    digest = hashlib.sha256(payload).hexdigest()
    return f"scoring-{digest[:12]}.json", digest


def load_verified_params(model_dir: Path, card: ModelCard) -> ScoringParams:
    """The scoring parameters named by ``card``, their sha256 checked first; ModelError naming the file."""
    name, expected = card.scoring_file, card.scoring_sha256
    retrain = f"retrain with `segment-assistant train --data marketing_campaign.csv --out {model_dir}`"
    if name is None or expected is None:
        raise ModelError(f"{model_dir / 'model_card.json'} names no scoring_file and scoring_sha256; {retrain}")
    if Path(name).name != name:
        raise ModelError(f"{model_dir / 'model_card.json'}: scoring_file {name!r} must be a plain file name")
    path = model_dir / name
    problem = file_problem(path)
    if problem is not None:
        raise ModelError(f"{path} {problem} (named by model_card.json); {retrain}")
    try:
        payload = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path} cannot be read ({exc.strerror}); {retrain}") from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest != expected:
        raise ModelError(f"{path} does not match its model card (sha256 {digest[:12]}... expected "
                         f"{expected[:12]}...); restore the file or {retrain}")
    try:
        return ScoringParams.model_validate_json(payload)
    except ValidationError as exc:
        raise ModelError(f"{path} is not valid scoring parameters ({validation_summary(exc)}); {retrain}") from None
