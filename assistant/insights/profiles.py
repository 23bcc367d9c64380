"""Typed access to the segment profiles stored in the model card."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from assistant.core.errors import InvalidValueError, ModelError

if TYPE_CHECKING:  # pragma: no cover
    from assistant.model.segmentation import SegmentationService

ProfileData = dict[str, Any]
"""The ``profiles`` of the model card, as JSON (see ``assistant.model.profiling.compute_profiles``):
``segments`` (key -> :data:`GroupData`), ``base`` (all customers) and the reference date."""

GroupData = dict[str, Any]
"""One group's figures in :data:`ProfileData`: size, numeric means, mixes, rates, lifts (JSON)."""


class MeanMedian(BaseModel):
    mean: float | None
    median: float | None


class ChildrenFigure(BaseModel):
    share: float | None = Field(description="Share of customers with kids or teenagers at home.")
    count: int = Field(description="Number of customers with kids or teenagers at home.")


class ProfileLift(BaseModel):
    """Segment figure divided by the same figure for all customers (None when that is 0)."""

    numeric: dict[str, float | None]
    product_mix: dict[str, float | None]
    channel_mix: dict[str, float | None]
    deal_share: float | None
    education: dict[str, float | None]
    marital_status: dict[str, float | None]
    children: float | None
    tenure_days: float | None
    campaigns: dict[str, float | None]
    complaint_rate: float | None


class GroupProfile(BaseModel):
    """Aggregates of one group of customers (a segment, or all customers)."""

    size: int
    share: float = Field(description="Share of all customers.")
    numeric: dict[str, MeanMedian] = Field(description="Mean and median of the seven fields and the numeric columns.")
    product_mix: dict[str, float | None] = Field(description="Each product line's share of total spending.")
    channel_mix: dict[str, float | None] = Field(description="Web, catalogue and store shares of all purchases.")
    deal_share: float | None = Field(description="Purchases made with a discount, as a share of all purchases.")
    education: dict[str, float] = Field(description="Share of customers by education ('2n Cycle' is master's level).")
    marital_status: dict[str, float] = Field(description="Share of customers by marital status "
                                                         "(odd values as 'Other').")
    children: ChildrenFigure | None
    tenure_days: MeanMedian | None = Field(description="Days from joining to the latest join date in the file.")
    campaigns: dict[str, float | None] = Field(
        description="Acceptance rate of each past campaign, any of 1-5, and the last (Response).")
    complaint_rate: float | None
    lift: ProfileLift


class SegmentProfile(BaseModel):
    """One segment's profile against all customers, with a summary generated from the figures."""

    segment_key: str
    segment_name: str
    summary: str
    evidence: list[str]
    model_version: str
    reference_date: str | None
    profile: GroupProfile
    base: GroupProfile


def profiles_of(service: SegmentationService) -> ProfileData:
    """``service.card["profiles"]``, or ModelError when the model was trained before profiles existed."""
    profiles = service.card.get("profiles")
    if not isinstance(profiles, dict) or "segments" not in profiles:
        raise ModelError("the model card has no segment profiles; retrain with "
                         "`segment-assistant train --data marketing_campaign.csv`")
    return profiles


def _check_key(service: SegmentationService, key: str) -> str:
    if key not in service.knowledge.segments:
        raise InvalidValueError("segment", key, f"is not one of {', '.join(service.knowledge.segments)}")
    return key




# =============================================================================== formatting
