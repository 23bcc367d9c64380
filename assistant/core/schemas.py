"""Pydantic schemas shared by the service, the dialogue, the API and the CLI.

``CustomerProfile`` (all seven fields required) and ``ProfileDraft`` (all optional) name the seven
fields, and take each field's type, range, documentation and validation from the field table in
:mod:`assistant.core.fields` (:func:`field_info`, :func:`field_check`), so those are written once.
Validation happens here, at the edge; everything behind it trusts these objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, computed_field
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from assistant.core.errors import InvalidProfileError, InvalidValueError
from assistant.core.fields import FIELD_NAMES, FIELDS, FieldSpec, get_field


def _checker(spec: FieldSpec, *, optional: bool) -> Callable[[object], object]:
    def check(value: object) -> object:
        if value is None and optional:
            return None
        if value is None:
            raise PydanticCustomError("missing_value", "{detail}", {"detail": f"{spec.name} is required"})
        try:
            return spec.check(value)
        except InvalidValueError as exc:
            raise PydanticCustomError("invalid_value", "{detail}", {"detail": str(exc)}) from None

    return check


def field_info(name: str) -> FieldInfo:
    """The pydantic Field of customer field ``name``, from its FieldSpec: title, description with unit
    and range, bounds (``ge``/``le``) and example. Put in the field's ``Annotated[...]``."""
    spec = get_field(name)
    info: FieldInfo = Field(
        title=spec.label,
        description=f"{spec.description} Unit: {spec.unit}. Allowed: {spec.minimum:g} to {spec.maximum:g}.",
        ge=spec.minimum,
        le=spec.maximum,
        examples=[spec.example if not spec.integer else int(spec.example)],
    )
    return info


def field_check(name: str, *, optional: bool = False) -> BeforeValidator:
    """The validator of customer field ``name``: :meth:`FieldSpec.check` (text numbers, range, whole
    numbers), its InvalidValueError message kept word for word; None is allowed when ``optional``."""
    return BeforeValidator(_checker(get_field(name), optional=optional))


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

    def merged(self, values: dict[str, Any]) -> Self:
        """A new draft with ``values`` (already validated) laid over this one."""
        return self.model_copy(update=values)

    def to_profile(self) -> CustomerProfile:
        missing = self.missing()
        if missing:
            raise InvalidProfileError([f"{name} is required" for name in missing])
        return CustomerProfile.model_construct(**self.as_dict())


# The seven fields are spelled out so that type checkers see them; everything about a field (type,
# range, title, description, example, validation) still comes from its FieldSpec in
# assistant/core/fields.py, and tests/test_schemas.py checks both classes against FIELDS.


class CustomerProfile(_ProfileBase):
    """A complete customer description: the seven model inputs, all required."""

    age: Annotated[int, field_info("age"), field_check("age")]
    income: Annotated[float, field_info("income"), field_check("income")]
    total_spending: Annotated[float, field_info("total_spending"), field_check("total_spending")]
    web_purchases: Annotated[int, field_info("web_purchases"), field_check("web_purchases")]
    store_purchases: Annotated[int, field_info("store_purchases"), field_check("store_purchases")]
    web_visits_per_month: Annotated[int, field_info("web_visits_per_month"), field_check("web_visits_per_month")]
    recency_days: Annotated[int, field_info("recency_days"), field_check("recency_days")]


class ProfileDraft(_DraftBase):
    """A partial customer description, as gathered in a conversation: every field optional."""

    age: Annotated[int | None, field_info("age"), field_check("age", optional=True)] = None
    income: Annotated[float | None, field_info("income"), field_check("income", optional=True)] = None
    total_spending: Annotated[float | None, field_info("total_spending"),
                              field_check("total_spending", optional=True)] = None
    web_purchases: Annotated[int | None, field_info("web_purchases"),
                             field_check("web_purchases", optional=True)] = None
    store_purchases: Annotated[int | None, field_info("store_purchases"),
                               field_check("store_purchases", optional=True)] = None
    web_visits_per_month: Annotated[int | None, field_info("web_visits_per_month"),
                                    field_check("web_visits_per_month", optional=True)] = None
    recency_days: Annotated[int | None, field_info("recency_days"), field_check("recency_days", optional=True)] = None


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


class ResponseDriver(BaseModel):
    """One of the customer's values and how far it moves the chance to respond (log-odds)."""

    field: str
    label: str
    effect: float = Field(description="The value's part of the score against the average customer's "
                                      "(log-odds; above 0 raises the chance).")


class ResponseLikelihood(BaseModel):
    """The customer's calibrated chance to answer the next campaign, with what to read it against."""

    probability: float = Field(description="Calibrated probability (0 to 1) of accepting the next campaign.")
    segment_rate: float = Field(description="Share of the segment's training customers who accepted the last campaign.")
    overall_rate: float = Field(description="Share of all training customers who accepted the last campaign.")
    model: Literal["seven_fields", "full_record"] = Field(
        description="Which response model made it: the seven fields, or the full customer record.")
    holdout_auc: float = Field(description="The model's ROC AUC on held-out customers training never saw.")
    drivers: list[ResponseDriver] = Field(default_factory=list,
                                          description="The values that push the chance up or down most.")


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
    response: ResponseLikelihood | None = Field(
        default=None, description="Likelihood to respond to the next campaign (None for a model trained "
                                  "without campaign responses).")

    # derived on access, so building a result stays cheap; mypy does not type a decorator over @property
    # (the pattern pydantic documents for computed fields)
    @computed_field  # type: ignore[prop-decorator]
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
