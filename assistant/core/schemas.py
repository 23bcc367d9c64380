"""Pydantic schemas shared by the service, the dialogue, the API and the CLI.

``CustomerProfile`` (all seven fields required) and ``ProfileDraft`` (all optional) are derived
from the field table in :mod:`assistant.core.fields`, so a field's type, range and documentation are
written once. Validation happens here, at the edge; everything behind it trusts these objects.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, computed_field, create_model
from pydantic_core import PydanticCustomError

from assistant.core.errors import InvalidProfileError, InvalidValueError
from assistant.core.fields import FIELD_NAMES, FIELDS, FieldSpec


def _checker(spec: FieldSpec, *, optional: bool):
    def check(value: Any) -> Any:
        if value is None and optional:
            return None
        if value is None:
            raise PydanticCustomError("missing_value", "{detail}", {"detail": f"{spec.name} is required"})
        try:
            return spec.check(value)
        except InvalidValueError as exc:
            raise PydanticCustomError("invalid_value", "{detail}", {"detail": str(exc)}) from None

    return check


def _field_type(spec: FieldSpec, *, optional: bool) -> tuple[Any, Any]:
    base = spec.python_type | None if optional else spec.python_type
    annotated = Annotated[base, BeforeValidator(_checker(spec, optional=optional))]
    info = Field(
        default=None if optional else ...,
        title=spec.label,
        description=f"{spec.description} Unit: {spec.unit}. Allowed: {spec.minimum:g} to {spec.maximum:g}.",
        ge=spec.minimum,
        le=spec.maximum,
        examples=[spec.example if not spec.integer else int(spec.example)],
    )
    return annotated, info


class _ProfileBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def as_dict(self) -> dict[str, Any]:
        """The seven values in field order (None where a draft has no value yet)."""
        return {name: getattr(self, name) for name in FIELD_NAMES}


class _DraftBase(_ProfileBase):
    def missing(self) -> list[str]:
        """Fields still without a value, in the order they are asked for."""
        return [name for name in FIELD_NAMES if getattr(self, name) is None]

    def filled(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELD_NAMES if getattr(self, name) is not None}

    def merged(self, values: dict[str, Any]) -> ProfileDraft:
        """A new draft with ``values`` (already validated) laid over this one."""
        return self.model_copy(update=values)

    def to_profile(self) -> CustomerProfile:
        missing = self.missing()
        if missing:
            raise InvalidProfileError([f"{name} is required" for name in missing])
        return CustomerProfile.model_construct(**self.as_dict())


CustomerProfile = create_model(
    "CustomerProfile",
    __base__=_ProfileBase,
    __doc__="A complete customer description: the seven model inputs, all required.",
    **{f.name: _field_type(f, optional=False) for f in FIELDS},
)

ProfileDraft = create_model(
    "ProfileDraft",
    __base__=_DraftBase,
    __doc__="A partial customer description, as gathered in a conversation: every field optional.",
    **{f.name: _field_type(f, optional=True) for f in FIELDS},
)


def validation_problems(exc: ValidationError) -> list[str]:
    """Turn a pydantic ValidationError into one plain line per problem."""
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        if err["type"] in ("invalid_value", "missing_value"):
            problems.append(err["msg"])
        elif err["type"] == "missing":
            problems.append(f"{loc} is required")
        elif err["type"] == "extra_forbidden":
            problems.append(f"{loc} is not a customer field (expected: {', '.join(FIELD_NAMES)})")
        else:
            problems.append(f"{loc}: {err['msg']}" if loc else err["msg"])
    return problems


def parse_profile(data: Any) -> CustomerProfile:
    """Validate a mapping into a CustomerProfile, raising InvalidProfileError with every problem."""
    try:
        return CustomerProfile.model_validate(data)
    except ValidationError as exc:
        raise InvalidProfileError(validation_problems(exc)) from None


# ---------------------------------------------------------------------------- results


class Strategy(BaseModel):
    headline: str
    tactics: list[str]
    channels: list[str]
    kpi: str


class FieldComparison(BaseModel):
    field: str
    label: str
    unit: str
    customer: float
    segment_average: float
    overall_average: float


class Confidence(BaseModel):
    level: Literal["clear", "borderline"]
    margin: float = Field(description="Relative margin between the nearest two centroids (0 = exactly between).")
    runner_up_key: str
    runner_up_name: str
    text: str


class SegmentResult(BaseModel):
    """The answer for one customer. ``segment_key`` and ``segment_name`` are always at the top level."""

    segment_key: str
    segment_name: str
    summary: str
    description: str
    strategy: Strategy
    customer: dict[str, float]
    segment_averages: dict[str, float]
    overall_averages: dict[str, float]
    distances: dict[str, float]
    confidence: Confidence
    reasons: list[str]
    warnings: list[str]

    @computed_field  # derived on access, so building a result stays cheap
    @property
    def comparison(self) -> list[FieldComparison]:
        """The customer's value beside the segment's and the average customer's, field by field."""
        return [
            FieldComparison(field=f.name, label=f.label, unit=f.unit, customer=self.customer[f.name],
                            segment_average=self.segment_averages[f.name],
                            overall_average=self.overall_averages[f.name])
            for f in FIELDS
        ]


class SegmentInfo(BaseModel):
    """One segment as the knowledge base and the model card describe it."""

    key: str
    name: str
    summary: str
    description: str
    characteristics: list[str]
    strategy: Strategy
    size: int
    share: float
    averages: dict[str, float]
