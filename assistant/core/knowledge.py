"""The knowledge base: segment texts, strategies and signatures, and the explanation templates.

Loaded from ``knowledge/*.yaml`` and validated by pydantic; any error names the file, the entry
and the field. Nothing is read at import time: call :func:`load_knowledge`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from assistant.core.errors import KnowledgeBaseError
from assistant.core.fields import FIELD_NAMES
from assistant.core.paths import default_knowledge_dir
from assistant.core.schemas import Strategy
from assistant.core.texts import Placeholders, StrictModel, TextModel
from assistant.core.texts import read_yaml as read_yaml  # re-exported: moved to assistant.core.texts
from assistant.core.texts import validate_yaml as validate_yaml

SEGMENT_KEYS = ("casual_shoppers", "vip_customers", "browsers_without_conversion", "digital_enthusiasts")


_Strict = StrictModel


class StrategySpec(_Strict):
    headline: str = Field(min_length=1)
    tactics: list[str] = Field(min_length=3, max_length=6)
    channels: list[str] = Field(min_length=1)
    kpi: str = Field(min_length=1)


class SegmentSpec(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)
    summary: str = Field(min_length=1)
    description: str = Field(min_length=1)
    characteristics: list[str] = Field(min_length=1)
    strategy: StrategySpec
    signature: dict[str, float]

    @field_validator("signature")
    @classmethod
    def _known_fields(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(FIELD_NAMES))
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}; expected some of {', '.join(FIELD_NAMES)}")
        if not value:
            raise ValueError("must give at least one field")
        return value

    def signature_vector(self) -> list[float]:
        return [float(self.signature.get(name, 0.0)) for name in FIELD_NAMES]

    def strategy_model(self) -> Strategy:
        return Strategy(**self.strategy.model_dump())


class MatchingSpec(_Strict):
    max_distance: float = Field(gt=0)
    min_margin_ratio: float = Field(ge=1)


class SegmentsFile(_Strict):
    segments: list[SegmentSpec] = Field(min_length=2)
    matching: MatchingSpec

    @model_validator(mode="after")
    def _unique(self) -> SegmentsFile:
        keys = [s.key for s in self.segments]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"duplicate segment key(s): {', '.join(dupes)}")
        return self


class Levels(_Strict):
    very_low: str = Field(min_length=1)
    low: str = Field(min_length=1)
    typical: str = Field(min_length=1)
    high: str = Field(min_length=1)
    very_high: str = Field(min_length=1)

    def bands(self) -> tuple[str, str, str, str, str]:
        return (self.very_low, self.low, self.typical, self.high, self.very_high)


class ConfidenceTexts(TextModel):
    clear: str
    borderline: str

    placeholders: ClassVar[Placeholders] = {"clear": {"segment_name", "runner_up_name"},
                                            "borderline": {"segment_name", "runner_up_name"}}


class ExplanationsFile(TextModel):
    levels: Levels
    reason: str
    headlines: dict[str, Levels]   # per field: what a value in each band says ("Bought recently")
    confidence: ConfidenceTexts
    warning: str

    placeholders: ClassVar[Placeholders] = {
        "reason": {"headline", "Level", "level", "label", "label_lower", "short", "short_lower", "customer", "overall",
                   "segment", "segment_name", "runner_up", "runner_up_name"},
        "warning": {"label", "value", "low", "high"},
    }

    @field_validator("headlines")
    @classmethod
    def _every_field(cls, value: dict[str, Levels]) -> dict[str, Levels]:
        missing = [n for n in FIELD_NAMES if n not in value]
        if missing:
            raise ValueError(f"no headlines for field(s) {', '.join(missing)}")
        unknown = sorted(set(value) - set(FIELD_NAMES))
        if unknown:
            raise ValueError(f"headlines for unknown field(s) {', '.join(unknown)}; fields: {', '.join(FIELD_NAMES)}")
        return {n: value[n] for n in FIELD_NAMES}


class KnowledgeBase:
    """The validated contents of ``knowledge/``; ``segments`` keyed by segment key, in file order."""

    def __init__(self, *, segments: SegmentsFile, explanations: ExplanationsFile, directory: Path,
                 extra: dict[str, Any] | None = None) -> None:
        self.segments_file = segments
        self.segments: dict[str, SegmentSpec] = {s.key: s for s in segments.segments}
        self.matching = segments.matching
        self.explanations = explanations
        self.directory = directory
        self.extra = extra or {}

    def segment(self, key: str) -> SegmentSpec:
        return self.segments[key]


def load_knowledge(directory: str | Path | None = None, *,
                   required_keys: tuple[str, ...] = SEGMENT_KEYS) -> KnowledgeBase:
    """Load and validate ``segments.yaml`` and ``explanations.yaml`` from ``directory``."""
    directory = Path(directory) if directory is not None else default_knowledge_dir()
    segments = validate_yaml(directory / "segments.yaml", SegmentsFile)
    missing = [k for k in required_keys if k not in {s.key for s in segments.segments}]
    if missing:
        raise KnowledgeBaseError(f"{directory / 'segments.yaml'}: missing segment(s) {', '.join(missing)}")
    explanations = validate_yaml(directory / "explanations.yaml", ExplanationsFile)
    return KnowledgeBase(segments=segments, explanations=explanations, directory=directory)
