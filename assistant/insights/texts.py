"""The insight texts (``knowledge/insights.yaml``), validated at load."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, model_validator

from assistant.core.errors import KnowledgeBaseError
from assistant.core.texts import Placeholders, StrictModel, TextModel, validate_yaml

if TYPE_CHECKING:  # pragma: no cover
    from assistant.core.knowledge import KnowledgeBase
from assistant.model.profiling import (
    ANY_ACCEPTED,
    CAMPAIGN_COLUMNS,
    CHANNEL_COLUMNS,
    EDUCATION_LEVELS,
    INSIGHTS_FILE,
    MARITAL_STATUSES,
    MNT_COLUMNS,
    OTHER,
    RESPONSE_COLUMN,
    TOPICS,
)


def _require(mapping: dict[str, Any], keys: Iterable[str], what: str) -> None:
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise ValueError(f"{what} lacks label(s) for {', '.join(missing)}")


class Labels(StrictModel):
    products: dict[str, str]
    channels: dict[str, str]
    channel_places: dict[str, str]
    deals: str
    campaigns: dict[str, str]
    education: dict[str, str]
    marital_status: dict[str, str]

    @model_validator(mode="after")
    def _complete(self) -> Labels:
        _require(self.products, MNT_COLUMNS, "products")
        _require(self.channels, CHANNEL_COLUMNS, "channels")
        _require(self.channel_places, CHANNEL_COLUMNS, "channel_places")
        _require(self.campaigns, (*CAMPAIGN_COLUMNS, RESPONSE_COLUMN, ANY_ACCEPTED), "campaigns")
        _require(self.education, (*EDUCATION_LEVELS, OTHER), "education")
        _require(self.marital_status, (*MARITAL_STATUSES, OTHER), "marital_status")
        return self


class Matching(StrictModel):
    segments: dict[str, list[str]]
    all_segments: list[str] = Field(min_length=1)
    topics: dict[str, list[str]]

    @model_validator(mode="after")
    def _topics(self) -> Matching:
        missing = [t for t in TOPICS if not self.topics.get(t)]
        unknown = sorted(set(self.topics) - set(TOPICS))
        if missing:
            raise ValueError(f"topics lacks phrases for {', '.join(missing)}")
        if unknown:
            raise ValueError(f"unknown topic(s) {', '.join(unknown)}; expected {', '.join(TOPICS)}")
        return self


_HIGHLIGHT = {"lift", "pct_less", "product", "channel"}


class HighlightTexts(TextModel):
    product: str
    channel: str
    deals: str
    response: str
    any_campaign: str
    children: str
    placeholders: ClassVar[Placeholders] = {
        "product": {"lift", "pct_less", "product"}, "channel": {"lift", "pct_less", "channel"},
        "deals": {"lift", "pct_less"}, "response": {"lift", "pct_less"}, "any_campaign": {"lift", "pct_less"},
        "children": {"lift", "pct_less"},
    }


class SummaryTexts(TextModel):
    sentence: str
    separator: str
    last_separator: str
    none: str
    more: HighlightTexts
    less: HighlightTexts
    placeholders: ClassVar[Placeholders] = {"sentence": {"segment_name", "highlights"}, "none": {"segment_name"}}


class EvidenceTexts(TextModel):
    response: str
    any_campaign: str
    top_product: str
    top_channel: str
    distinctive_channel: str
    deals: str
    children: str
    placeholders: ClassVar[Placeholders] = {
        "response": {"segment_name", "rate", "base_rate", "base_name", "lift"},
        "any_campaign": {"segment_name", "rate", "base_rate", "base_name", "lift"},
        "top_product": {"segment_name", "product", "share", "amount", "lift", "base_name"},
        "top_channel": {"segment_name", "place", "channel", "share", "base_share", "base_name", "lift"},
        "distinctive_channel": {"segment_name", "place", "channel", "share", "base_share", "base_name", "lift"},
        "deals": {"segment_name", "deals", "share", "base_share", "base_name", "lift"},
        "children": {"segment_name", "share", "base_share", "base_name", "lift", "count"},
    }


class ProductsChat(TextModel):
    title: str
    columns: list[str] = Field(min_length=4, max_length=4)
    over: str
    under: str
    title_many: str
    first_column_many: str
    line_many: str
    line_many_under: str
    placeholders: ClassVar[Placeholders] = {
        "title": {"segment_name", "size"}, "columns": {"base_name"},
        "over": {"segment_name", "product", "share", "product_most", "lift"},
        "under": {"segment_name", "product", "share", "product_most", "lift"},
        "title_many": {"base_name"},
        "line_many": {"segment_name", "product", "share", "product_most", "lift"},
        "line_many_under": {"segment_name", "product", "share", "product_most", "lift"},
    }


class ChannelsChat(TextModel):
    title: str
    first_column: str
    deals_row: str
    purchases_row: str
    visits_row: str
    line: str
    line_top_only: str
    placeholders: ClassVar[Placeholders] = {
        "title": {"base_name"}, "line": {"segment_name", "place", "share", "channel", "lift", "base_name"},
        "line_top_only": {"segment_name", "place", "share", "lift", "base_name"},
    }


class CampaignsChat(TextModel):
    title: str
    columns: list[str] = Field(min_length=5, max_length=5)
    best: str
    best_any: str
    title_one: str
    columns_one: list[str] = Field(min_length=4, max_length=4)
    placeholders: ClassVar[Placeholders] = {
        "columns": {"base_name"}, "best": {"segment_name", "rate", "lift", "base_rate", "base_name"},
        "best_any": {"segment_name", "rate", "base_rate", "base_name"}, "title_one": {"segment_name", "size"},
        "columns_one": {"segment_name", "base_label"},
    }


class ChildrenChat(TextModel):
    title: str
    columns: list[str] = Field(min_length=6, max_length=6)
    line: str
    placeholders: ClassVar[Placeholders] = {
        "columns": {"base_name"},
        "line": {"segment_name", "share", "count", "size", "base_share", "base_name", "lift"},
    }


class DistributionChat(TextModel):
    title: str
    first_column: str
    note: str


class ComplaintsChat(TextModel):
    title: str
    columns: list[str] = Field(min_length=4, max_length=4)
    line: str
    placeholders: ClassVar[Placeholders] = {
        "columns": {"base_name"}, "line": {"segment_name", "rate", "base_rate", "base_name"},
    }


class TenureChat(TextModel):
    title: str
    columns: list[str] = Field(min_length=4, max_length=4)
    line: str
    placeholders: ClassVar[Placeholders] = {
        "title": {"reference_date"}, "columns": {"base_name"},
        "line": {"segment_name", "mean", "median", "months", "base_mean", "base_name"},
    }


class ProfileChat(TextModel):
    title: str
    placeholders: ClassVar[Placeholders] = {"title": {"segment_name", "size", "share"}}


class ChatTexts(TextModel):
    note_lift: str
    products: ProductsChat
    channels: ChannelsChat
    campaigns: CampaignsChat
    children: ChildrenChat
    education: DistributionChat
    marital: DistributionChat
    complaints: ComplaintsChat
    tenure: TenureChat
    profile: ProfileChat
    not_available: str
    missing_figures: str
    empty_segment: str
    placeholders: ClassVar[Placeholders] = {
        "note_lift": {"base_name", "rows", "model_version"}, "missing_figures": {"what"},
        "empty_segment": {"segment_name"},
    }


class FigureTexts(TextModel):
    product_mix_title: str
    channel_mix_title: str
    campaigns_title: str
    share_axis: str
    rate_axis: str


class InsightsTexts(TextModel):
    base_name: str
    base_label: str
    labels: Labels
    matching: Matching
    summary: SummaryTexts
    evidence: EvidenceTexts
    chat: ChatTexts
    figures: FigureTexts


def load_insight_texts(directory: str | Path, *, segment_keys: Iterable[str] = ()) -> InsightsTexts:
    """Load and validate ``insights.yaml`` from ``directory``; every segment needs match phrases."""
    path = Path(directory) / INSIGHTS_FILE
    texts = validate_yaml(path, InsightsTexts)
    missing = [k for k in segment_keys if not texts.matching.segments.get(k)]
    if missing:
        raise KnowledgeBaseError(f"{path}: matching.segments lacks phrases for {', '.join(missing)}")
    return texts


def insight_texts(kb: KnowledgeBase) -> InsightsTexts:
    """The insight texts of this knowledge base, loaded on first use and cached on it."""
    texts = kb.extra.get("insights")
    if texts is None:
        texts = load_insight_texts(kb.directory, segment_keys=tuple(kb.segments))
        kb.extra["insights"] = texts
    return texts


# =============================================================================== profiles
