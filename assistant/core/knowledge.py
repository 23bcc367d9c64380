"""The knowledge base: segment texts, strategies and signatures, and the explanation templates.

Loaded from ``knowledge/*.yaml`` and validated by pydantic; any error names the file, the entry
and the field. Nothing is read at import time: call :func:`load_knowledge`.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from assistant.core.errors import KnowledgeBaseError
from assistant.core.fields import FIELD_NAMES
from assistant.core.schemas import Strategy

SEGMENT_KEYS = ("casual_shoppers", "vip_customers", "browsers_without_conversion", "digital_enthusiasts")


def default_knowledge_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "knowledge"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


class _Templated(_Strict):
    """Checks each template uses only the placeholders the service fills in."""

    _allowed: ClassVar[dict[str, set[str]]] = {}

    @model_validator(mode="after")
    def _check_placeholders(self) -> _Templated:
        for name, allowed in self._allowed.items():
            value = getattr(self, name)
            templates = (
                [(f"{name}.{sub}", t) for sub, t in value.model_dump().items()]
                if isinstance(value, BaseModel) else [(name, value)]
            )
            for where, template in templates:
                extra = _placeholders(template) - allowed
                if extra:
                    raise ValueError(f"{where} uses unknown placeholder(s) {sorted(extra)}; allowed: {sorted(allowed)}")
        return self


class Levels(_Strict):
    very_low: str = Field(min_length=1)
    low: str = Field(min_length=1)
    typical: str = Field(min_length=1)
    high: str = Field(min_length=1)
    very_high: str = Field(min_length=1)

    def bands(self) -> tuple[str, str, str, str, str]:
        return (self.very_low, self.low, self.typical, self.high, self.very_high)


class ConfidenceTexts(_Strict):
    clear: str
    borderline: str


class ExplanationsFile(_Templated):
    levels: Levels
    reason: str
    headlines: dict[str, Levels]   # per field: what a value in each band says ("Bought recently")
    confidence: ConfidenceTexts
    warning: str

    _allowed: ClassVar[dict[str, set[str]]] = {
        "reason": {"headline", "Level", "level", "label", "label_lower", "short", "short_lower", "customer", "overall",
                   "segment", "segment_name", "runner_up", "runner_up_name"},
        "confidence": {"segment_name", "runner_up_name"},
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


def read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise KnowledgeBaseError(f"{path} is missing (it ships with the project; restore it from git)")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise KnowledgeBaseError(f"{path} is not valid YAML: {exc}") from None


def validate_yaml(path: Path, model: type[BaseModel], data: Any = None) -> Any:
    """Validate a YAML file against ``model``; the error names the file, the entry and the field."""
    data = read_yaml(path) if data is None else data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = list(err["loc"])
            where = ".".join(str(p) for p in loc)
            # name the segment by key rather than list index when possible
            if len(loc) >= 2 and loc[0] == "segments" and isinstance(loc[1], int):
                try:
                    key = data["segments"][loc[1]].get("key", f"#{loc[1] + 1}")
                except (KeyError, IndexError, TypeError, AttributeError):
                    key = f"#{loc[1] + 1}"
                where = f"segment {key!r}, field " + ".".join(str(p) for p in loc[2:]) if loc[2:] else f"segment {key!r}"
            problems.append(f"{where}: {err['msg']}" if where else err["msg"].removeprefix("Value error, "))
        raise KnowledgeBaseError(f"{path}: " + "; ".join(problems)) from None


def load_knowledge(directory: str | Path | None = None, *, required_keys: tuple[str, ...] = SEGMENT_KEYS) -> KnowledgeBase:
    """Load and validate ``segments.yaml`` and ``explanations.yaml`` from ``directory``."""
    directory = Path(directory) if directory is not None else default_knowledge_dir()
    segments = validate_yaml(directory / "segments.yaml", SegmentsFile)
    missing = [k for k in required_keys if k not in {s.key for s in segments.segments}]
    if missing:
        raise KnowledgeBaseError(f"{directory / 'segments.yaml'}: missing segment(s) {', '.join(missing)}")
    explanations = validate_yaml(directory / "explanations.yaml", ExplanationsFile)
    return KnowledgeBase(segments=segments, explanations=explanations, directory=directory)
