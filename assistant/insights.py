"""Segment insights: what each segment buys, where, how it answers campaigns, who it is.

``compute_profiles`` runs at training time and stores aggregates only (never a customer) in the
model card under ``card["profiles"]``:

- per segment and for the whole base (``"base"``): size and share; mean and median of the seven
  fields and of every numeric raw column (except ID, Z_CostContact, Z_Revenue); product mix
  (each line's share of the group's total spending); channel mix (web, catalogue and store as
  shares of all purchases) and the share of purchases bought on a deal (NumDealsPurchases is a
  discount flag across channels, not a fourth channel); education and marital status
  distributions (Marital_Status "Alone", "Absurd", "YOLO" grouped as "Other"; Education
  "2n Cycle" is master's level but keeps its label); share and count with children at home
  (Kidhome + Teenhome > 0); tenure in days up to the latest Dt_Customer; acceptance rate of each
  past campaign, of any of campaigns 1-5 and of the last one (Response); complaint rate;
- ``lift``: the segment's figure divided by the base's, for every mean, share and rate
  (``None`` when the base figure is 0);
- ``distributions`` (binned counts of the seven fields by segment) and ``relationships`` (mean
  spending by income band, age band, education and children at home) for reports made from the
  card alone.

Everything a person reads (labels, summaries, chat answers, plot titles) comes from
``knowledge/insights.yaml``, validated by :class:`InsightsTexts` at load. Nothing is read at
import time; the texts are loaded on first use and cached on the knowledge base.
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from assistant.errors import InvalidValueError, ModelError
from assistant.fields import FIELD_NAMES, FIELDS
from assistant.knowledge import validate_yaml

if TYPE_CHECKING:  # pragma: no cover
    from assistant.data import CustomerData
    from assistant.knowledge import KnowledgeBase
    from assistant.segmentation import SegmentationService

PROFILES_VERSION = 1
INSIGHTS_FILE = "insights.yaml"
BASE = "base"

MNT_COLUMNS = ("MntWines", "MntFruits", "MntMeatProducts", "MntFishProducts", "MntSweetProducts", "MntGoldProds")
CHANNEL_COLUMNS = ("NumWebPurchases", "NumCatalogPurchases", "NumStorePurchases")
DEALS_COLUMN = "NumDealsPurchases"
VISITS_COLUMN = "NumWebVisitsMonth"
CAMPAIGN_COLUMNS = ("AcceptedCmp1", "AcceptedCmp2", "AcceptedCmp3", "AcceptedCmp4", "AcceptedCmp5")
RESPONSE_COLUMN = "Response"
ANY_ACCEPTED = "any_accepted"
COMPLAIN_COLUMN = "Complain"
EXCLUDED_COLUMNS = ("ID", "Z_CostContact", "Z_Revenue")
TEXT_COLUMNS = ("Education", "Marital_Status", "Dt_Customer")
EDUCATION_LEVELS = ("Basic", "Graduation", "2n Cycle", "Master", "PhD")
MARITAL_STATUSES = ("Married", "Together", "Single", "Divorced", "Widow")
OTHER = "Other"
INCOME_BAND_EDGES = (0, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000, 80_000, 90_000, 100_000)  # last band open
AGE_BAND_EDGES = (18, 30, 40, 50, 60, 70)  # last band open
MAX_BINS = 30
TOPICS = ("products", "channels", "campaigns", "children", "education", "marital", "complaints", "tenure", "profile")

# the data-driven summary: a lift is notable when it is at least this far from 1 (x1.25 or /1.25)
NOTABLE_LOG_LIFT = math.log(1.25)
MAX_HIGHLIGHTS = 3
LESS_WEIGHT = 0.6         # ranking weight of a below-average figure against an above-average one
DISTINCTIVE_LIFT = 1.1    # a channel other than the main one is cited when its share is >= 1.1x the base's
MIN_EXPECTED_EVENTS = 10  # a rate's lift is only quoted when the base rate predicts >= 10 events in the segment


# =============================================================================== texts (YAML)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


class TemplateBlock(_Strict):
    """A block of templates; ``_placeholders`` maps each field to the placeholders it may use."""

    _placeholders: ClassVar[dict[str, set[str]]] = {}

    @model_validator(mode="after")
    def _check(self) -> "TemplateBlock":
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, BaseModel):
                continue
            allowed = self._placeholders.get(name, set())
            items = value if isinstance(value, list) else [value]
            for item in items:
                if not isinstance(item, str):
                    continue
                try:
                    used = _placeholders(item)
                except ValueError as exc:
                    raise ValueError(f"{name}: {item!r} is not a valid template ({exc})") from None
                extra = used - allowed
                if extra:
                    raise ValueError(f"{name} uses unknown placeholder(s) {sorted(extra)}; allowed: {sorted(allowed)}")
        return self


def _require(mapping: dict[str, Any], keys: Iterable[str], what: str) -> None:
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise ValueError(f"{what} lacks label(s) for {', '.join(missing)}")


class Labels(_Strict):
    products: dict[str, str]
    channels: dict[str, str]
    channel_places: dict[str, str]
    deals: str
    campaigns: dict[str, str]
    education: dict[str, str]
    marital_status: dict[str, str]

    @model_validator(mode="after")
    def _complete(self) -> "Labels":
        _require(self.products, MNT_COLUMNS, "products")
        _require(self.channels, CHANNEL_COLUMNS, "channels")
        _require(self.channel_places, CHANNEL_COLUMNS, "channel_places")
        _require(self.campaigns, (*CAMPAIGN_COLUMNS, RESPONSE_COLUMN, ANY_ACCEPTED), "campaigns")
        _require(self.education, (*EDUCATION_LEVELS, OTHER), "education")
        _require(self.marital_status, (*MARITAL_STATUSES, OTHER), "marital_status")
        return self


class Matching(_Strict):
    segments: dict[str, list[str]]
    all_segments: list[str] = Field(min_length=1)
    topics: dict[str, list[str]]

    @model_validator(mode="after")
    def _topics(self) -> "Matching":
        missing = [t for t in TOPICS if not self.topics.get(t)]
        unknown = sorted(set(self.topics) - set(TOPICS))
        if missing:
            raise ValueError(f"topics lacks phrases for {', '.join(missing)}")
        if unknown:
            raise ValueError(f"unknown topic(s) {', '.join(unknown)}; expected {', '.join(TOPICS)}")
        return self


_HIGHLIGHT = {"lift", "pct_less", "product", "channel"}


class HighlightTexts(TemplateBlock):
    product: str
    channel: str
    deals: str
    response: str
    any_campaign: str
    children: str
    _placeholders: ClassVar[dict[str, set[str]]] = {
        "product": {"lift", "pct_less", "product"}, "channel": {"lift", "pct_less", "channel"},
        "deals": {"lift", "pct_less"}, "response": {"lift", "pct_less"}, "any_campaign": {"lift", "pct_less"},
        "children": {"lift", "pct_less"},
    }


class SummaryTexts(TemplateBlock):
    sentence: str
    separator: str
    last_separator: str
    none: str
    more: HighlightTexts
    less: HighlightTexts
    _placeholders: ClassVar[dict[str, set[str]]] = {"sentence": {"segment_name", "highlights"}, "none": {"segment_name"}}


class EvidenceTexts(TemplateBlock):
    response: str
    any_campaign: str
    top_product: str
    top_channel: str
    distinctive_channel: str
    deals: str
    children: str
    _placeholders: ClassVar[dict[str, set[str]]] = {
        "response": {"segment_name", "rate", "base_rate", "base_name", "lift"},
        "any_campaign": {"segment_name", "rate", "base_rate", "base_name", "lift"},
        "top_product": {"segment_name", "product", "share", "amount", "lift", "base_name"},
        "top_channel": {"segment_name", "place", "channel", "share", "base_share", "base_name", "lift"},
        "distinctive_channel": {"segment_name", "place", "channel", "share", "base_share", "base_name", "lift"},
        "deals": {"segment_name", "deals", "share", "base_share", "base_name", "lift"},
        "children": {"segment_name", "share", "base_share", "base_name", "lift", "count"},
    }


class ProductsChat(TemplateBlock):
    title: str
    columns: list[str] = Field(min_length=4, max_length=4)
    over: str
    under: str
    title_many: str
    first_column_many: str
    line_many: str
    line_many_under: str
    _placeholders: ClassVar[dict[str, set[str]]] = {
        "title": {"segment_name", "size"}, "columns": {"base_name"},
        "over": {"segment_name", "product", "share", "product_most", "lift"},
        "under": {"segment_name", "product", "share", "product_most", "lift"},
        "title_many": {"base_name"},
        "line_many": {"segment_name", "product", "share", "product_most", "lift"},
        "line_many_under": {"segment_name", "product", "share", "product_most", "lift"},
    }


class ChannelsChat(TemplateBlock):
    title: str
    first_column: str
    deals_row: str
    purchases_row: str
    visits_row: str
    line: str
    line_top_only: str
    _placeholders: ClassVar[dict[str, set[str]]] = {
        "title": {"base_name"}, "line": {"segment_name", "place", "share", "channel", "lift", "base_name"},
        "line_top_only": {"segment_name", "place", "share", "lift", "base_name"},
    }


class CampaignsChat(TemplateBlock):
    title: str
    columns: list[str] = Field(min_length=5, max_length=5)
    best: str
    best_any: str
    title_one: str
    columns_one: list[str] = Field(min_length=4, max_length=4)
    _placeholders: ClassVar[dict[str, set[str]]] = {
        "columns": {"base_name"}, "best": {"segment_name", "rate", "lift", "base_rate", "base_name"},
        "best_any": {"segment_name", "rate", "base_rate", "base_name"}, "title_one": {"segment_name", "size"},
        "columns_one": {"segment_name", "base_label"},
    }


class ChildrenChat(TemplateBlock):
    title: str
    columns: list[str] = Field(min_length=6, max_length=6)
    line: str
    _placeholders: ClassVar[dict[str, set[str]]] = {
        "columns": {"base_name"},
        "line": {"segment_name", "share", "count", "size", "base_share", "base_name", "lift"},
    }


class DistributionChat(TemplateBlock):
    title: str
    first_column: str
    note: str


class ComplaintsChat(TemplateBlock):
    title: str
    columns: list[str] = Field(min_length=4, max_length=4)
    line: str
    _placeholders: ClassVar[dict[str, set[str]]] = {
        "columns": {"base_name"}, "line": {"segment_name", "rate", "base_rate", "base_name"},
    }


class TenureChat(TemplateBlock):
    title: str
    columns: list[str] = Field(min_length=4, max_length=4)
    line: str
    _placeholders: ClassVar[dict[str, set[str]]] = {
        "title": {"reference_date"}, "columns": {"base_name"},
        "line": {"segment_name", "mean", "median", "months", "base_mean", "base_name"},
    }


class ProfileChat(TemplateBlock):
    title: str
    _placeholders: ClassVar[dict[str, set[str]]] = {"title": {"segment_name", "size", "share"}}


class ChatTexts(TemplateBlock):
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
    _placeholders: ClassVar[dict[str, set[str]]] = {
        "note_lift": {"base_name", "rows", "model_version"}, "missing_figures": {"what"},
        "empty_segment": {"segment_name"},
    }


class FigureTexts(TemplateBlock):
    product_mix_title: str
    channel_mix_title: str
    campaigns_title: str
    share_axis: str
    rate_axis: str


class InsightsTexts(TemplateBlock):
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
    from assistant.errors import KnowledgeBaseError

    path = Path(directory) / INSIGHTS_FILE
    texts = validate_yaml(path, InsightsTexts)
    missing = [k for k in segment_keys if not texts.matching.segments.get(k)]
    if missing:
        raise KnowledgeBaseError(f"{path}: matching.segments lacks phrases for {', '.join(missing)}")
    return texts


def insight_texts(kb: "KnowledgeBase") -> InsightsTexts:
    """The insight texts of this knowledge base, loaded on first use and cached on it."""
    texts = kb.extra.get("insights")
    if texts is None:
        texts = load_insight_texts(kb.directory, segment_keys=tuple(kb.segments))
        kb.extra["insights"] = texts
    return texts


# =============================================================================== profiles


def _f(value: Any) -> float | None:
    """A JSON-safe float: None for NaN, missing or infinite values."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _ratio(num: Any, den: Any) -> float | None:
    num, den = _f(num), _f(den)
    if num is None or den is None or den == 0:
        return None
    return num / den


def _lift(value: float | None, base: float | None) -> float | None:
    return _ratio(value, base) if value is not None else None


def _group_label(series: pd.Series, known: tuple[str, ...]) -> pd.Series:
    text = series.astype(str).str.strip()
    return text.where(text.isin(known), OTHER)


@dataclass(frozen=True)
class _Frame:
    """The columns a profile needs, one row per kept customer."""

    table: pd.DataFrame
    numeric: tuple[str, ...]           # columns with mean/median, in order: seven fields then raw columns
    reference_date: str | None


def _build_frame(data: "CustomerData") -> _Frame:
    from assistant.data import ALL_COLUMNS, numeric_raw

    raw = numeric_raw(data.raw)
    features = data.features[list(FIELD_NAMES)].reset_index(drop=True)
    raw = raw.reset_index(drop=True)
    order = [c for c in ALL_COLUMNS if c in raw.columns] + [c for c in raw.columns if c not in ALL_COLUMNS]
    raw_numeric = [c for c in order if c not in EXCLUDED_COLUMNS and c not in TEXT_COLUMNS
                   and pd.api.types.is_numeric_dtype(raw[c])]
    table = pd.concat([features, raw[raw_numeric].astype("float64")], axis=1)
    if "Education" in raw.columns:
        table["education"] = _group_label(raw["Education"], EDUCATION_LEVELS)
    if "Marital_Status" in raw.columns:
        table["marital_status"] = _group_label(raw["Marital_Status"], MARITAL_STATUSES)
    if "Kidhome" in table.columns and "Teenhome" in table.columns:
        kids = table["Kidhome"].fillna(0) + table["Teenhome"].fillna(0)
        table["children_at_home"] = kids
    reference = None
    if "Dt_Customer" in raw.columns:
        dates = pd.to_datetime(raw["Dt_Customer"].astype(str).str.strip(), format=data.report.date_format,
                               errors="coerce")
        if dates.notna().any():
            ref = dates.max()
            table["tenure_days"] = (ref - dates).dt.days.astype("float64")
            reference = ref.date().isoformat()
    return _Frame(table=table, numeric=tuple(FIELD_NAMES) + tuple(raw_numeric), reference_date=reference)


def _shares(series: pd.Series, categories: tuple[str, ...]) -> dict[str, float]:
    n = len(series)
    counts = series.value_counts()
    return {c: (float(counts.get(c, 0)) / n if n else 0.0) for c in categories}


def _group_stats(df: pd.DataFrame, frame: _Frame, total: int) -> dict[str, Any]:
    n = int(len(df))
    cols = df.columns
    out: dict[str, Any] = {"size": n, "share": n / total if total else 0.0}
    out["numeric"] = {c: {"mean": _f(df[c].mean()), "median": _f(df[c].median())} for c in frame.numeric}
    mnt = [c for c in MNT_COLUMNS if c in cols]
    spend = float(np.nansum(df[mnt].to_numpy(dtype=float))) if mnt else 0.0
    out["product_mix"] = {c: _ratio(np.nansum(df[c].to_numpy(dtype=float)), spend) for c in mnt}
    channels = [c for c in CHANNEL_COLUMNS if c in cols]
    purchases = float(np.nansum(df[channels].to_numpy(dtype=float))) if channels else 0.0
    out["channel_mix"] = {c: _ratio(np.nansum(df[c].to_numpy(dtype=float)), purchases) for c in channels}
    out["deal_share"] = (_ratio(np.nansum(df[DEALS_COLUMN].to_numpy(dtype=float)), purchases)
                         if DEALS_COLUMN in cols and channels else None)
    out["education"] = _shares(df["education"], (*EDUCATION_LEVELS, OTHER)) if "education" in cols else {}
    out["marital_status"] = (_shares(df["marital_status"], (*MARITAL_STATUSES, OTHER))
                             if "marital_status" in cols else {})
    if "children_at_home" in cols:
        with_children = int((df["children_at_home"] > 0).sum())
        out["children"] = {"share": with_children / n if n else None, "count": with_children}
    else:
        out["children"] = None
    out["tenure_days"] = ({"mean": _f(df["tenure_days"].mean()), "median": _f(df["tenure_days"].median())}
                          if "tenure_days" in cols else None)
    campaigns: dict[str, float | None] = {}
    present = [c for c in CAMPAIGN_COLUMNS if c in cols]
    for c in present:
        campaigns[c] = _f(df[c].mean())
    if present:
        campaigns[ANY_ACCEPTED] = _f((df[present].fillna(0).to_numpy() > 0).any(axis=1).mean()) if n else None
    if RESPONSE_COLUMN in cols:
        campaigns[RESPONSE_COLUMN] = _f(df[RESPONSE_COLUMN].mean())
    out["campaigns"] = campaigns
    out["complaint_rate"] = _f(df[COMPLAIN_COLUMN].mean()) if COMPLAIN_COLUMN in cols else None
    return out


def _lifts(seg: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    def mapping(name: str) -> dict[str, float | None]:
        return {k: _lift(v, base[name].get(k)) for k, v in seg[name].items()}

    return {
        "numeric": {c: _lift(s["mean"], base["numeric"][c]["mean"]) for c, s in seg["numeric"].items()},
        "product_mix": mapping("product_mix"),
        "channel_mix": mapping("channel_mix"),
        "deal_share": _lift(seg["deal_share"], base["deal_share"]),
        "education": mapping("education"),
        "marital_status": mapping("marital_status"),
        "children": _lift(seg["children"]["share"], base["children"]["share"]) if seg["children"] else None,
        "tenure_days": (_lift(seg["tenure_days"]["mean"], base["tenure_days"]["mean"])
                        if seg["tenure_days"] else None),
        "campaigns": mapping("campaigns"),
        "complaint_rate": _lift(seg["complaint_rate"], base["complaint_rate"]),
    }


def _bin_edges(values: np.ndarray, integer: bool) -> np.ndarray:
    low, high = float(np.min(values)), float(np.max(values))
    if integer and high - low <= 2 * MAX_BINS:
        step = max(1, math.ceil((high - low + 1) / MAX_BINS))
        return np.arange(low - 0.5, high + step + 0.5, step, dtype=float)
    if high == low:
        return np.array([low - 0.5, high + 0.5])
    return np.linspace(low, high, MAX_BINS + 1)


def _distributions(table: pd.DataFrame, keys: np.ndarray, order: list[str]) -> dict[str, Any]:
    out = {}
    for spec in FIELDS:
        values = table[spec.name].to_numpy(dtype=float)
        if len(values) == 0:
            continue
        edges = _bin_edges(values, spec.integer)
        counts = {key: np.histogram(values[keys == key], bins=edges)[0].astype(int).tolist() for key in order}
        out[spec.name] = {"edges": [round(float(e), 4) for e in edges], "counts": counts}
    return out


def _band_labels(edges: tuple[int, ...], values: pd.Series) -> pd.Series:
    bins = list(edges[1:])
    return pd.Series(np.searchsorted(bins, values.to_numpy(dtype=float), side="right"), index=values.index)


def _mean_by(table: pd.DataFrame, by: pd.Series, keys: np.ndarray, order: list[str],
             categories: list[str]) -> dict[str, Any]:
    spending = table["total_spending"]
    out: dict[str, Any] = {"categories": categories, BASE: {}, "segments": {}}
    out[BASE] = {"count": [int((by == c).sum()) for c in categories],
                 "mean_spending": [_f(spending[by == c].mean()) for c in categories]}
    for key in order:
        mask = keys == key
        out["segments"][key] = {"count": [int(((by == c) & mask).sum()) for c in categories],
                                "mean_spending": [_f(spending[(by == c) & mask].mean()) for c in categories]}
    return out


def _relationships(table: pd.DataFrame, keys: np.ndarray, order: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    income_band = _band_labels(INCOME_BAND_EDGES, table["income"])
    out["income_band"] = {"edges": list(INCOME_BAND_EDGES),
                          **_mean_by(table, income_band, keys, order, list(range(len(INCOME_BAND_EDGES))))}
    age_band = _band_labels(AGE_BAND_EDGES, table["age"])
    out["age_band"] = {"edges": list(AGE_BAND_EDGES),
                       **_mean_by(table, age_band, keys, order, list(range(len(AGE_BAND_EDGES))))}
    if "education" in table.columns:
        out["education"] = _mean_by(table, table["education"], keys, order, [*EDUCATION_LEVELS, OTHER])
    if "children_at_home" in table.columns:
        kids = table["children_at_home"].clip(upper=3).astype(int)
        out["children"] = _mean_by(table, kids, keys, order, [0, 1, 2, 3])
    return out


def compute_profiles(data: "CustomerData", segment_keys: np.ndarray, kb: "KnowledgeBase") -> dict[str, Any]:
    """Aggregate profiles per segment and for the whole base (see the module docstring).

    ``segment_keys[i]`` is the segment key of row ``i`` of ``data.features`` / ``data.raw``.
    The result is JSON-serialisable and holds aggregates only.
    """
    keys = np.asarray(segment_keys).astype(str)
    if len(keys) != len(data.features):
        raise ValueError(f"segment_keys has {len(keys)} entries for {len(data.features)} customers")
    order = list(kb.segments)
    unknown = sorted(set(keys.tolist()) - set(order))
    if unknown:
        raise ValueError(f"segment key(s) {', '.join(unknown)} are not in the knowledge base")
    frame = _build_frame(data)
    table, total = frame.table, len(frame.table)
    base = _group_stats(table, frame, total)
    base["lift"] = _lifts(base, base)
    segments = {}
    for key in order:
        stats = _group_stats(table[keys == key], frame, total)
        stats["lift"] = _lifts(stats, base)
        segments[key] = {"name": kb.segment(key).name, **stats}
    return {
        "version": PROFILES_VERSION,
        "reference_date": frame.reference_date,
        "rows": total,
        "numeric_columns": list(frame.numeric),
        BASE: base,
        "segments": segments,
        "distributions": _distributions(table, keys, order),
        "relationships": _relationships(table, keys, order),
    }


# =============================================================================== typed access


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
    marital_status: dict[str, float] = Field(description="Share of customers by marital status (odd values as 'Other').")
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


def profiles_of(service: "SegmentationService") -> dict[str, Any]:
    """``service.card["profiles"]``, or ModelError when the model was trained before profiles existed."""
    profiles = service.card.get("profiles")
    if not isinstance(profiles, dict) or "segments" not in profiles:
        raise ModelError("the model card has no segment profiles; retrain with "
                         "`segment-assistant train --data marketing_campaign.csv`")
    return profiles


def _check_key(service: "SegmentationService", key: str) -> str:
    if key not in service.knowledge.segments:
        raise InvalidValueError("segment", key, f"is not one of {', '.join(service.knowledge.segments)}")
    return key


def segment_profile(service: "SegmentationService", key: str) -> SegmentProfile:
    """The typed profile of one segment (for ``GET /api/v1/segments/{key}/profile``)."""
    _check_key(service, key)
    profiles = profiles_of(service)
    seg = {k: v for k, v in profiles["segments"][key].items() if k != "name"}
    return SegmentProfile(
        segment_key=key, segment_name=service.segment_name(key),
        summary=segment_summary(service, key), evidence=strategy_evidence(service, key),
        model_version=str(service.card.get("model_version", "")), reference_date=profiles.get("reference_date"),
        profile=GroupProfile.model_validate(seg), base=GroupProfile.model_validate(profiles[BASE]),
    )


# =============================================================================== formatting


def fmt_pct(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 100:.1f}%" if 0 < abs(x) < 0.1 else f"{x * 100:.0f}%"


def fmt_rate(x: float | None) -> str:
    """A rate (campaign acceptance, complaints) with one decimal: ``14.8%``."""
    return "-" if x is None else f"{x * 100:.1f}%"


def fmt_lift(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2f}x" if x < 0.095 else f"{x:.1f}x"


def fmt_money(x: float | None) -> str:
    return "-" if x is None else f"${x:,.0f}"


def fmt_num(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def _pct_less(lift: float) -> str:
    return f"{max(0.0, min(1.0, 1 - lift)) * 100:.0f}%"


def _join(parts: list[str], texts: SummaryTexts) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return texts.separator.join(parts[:-1]) + texts.last_separator + parts[-1]


def _table(header: list[str], rows: list[list[str]]) -> str:
    def clean(cell: str) -> str:
        return str(cell).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(clean(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(clean(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# =============================================================================== summary & evidence


@dataclass(frozen=True)
class _Highlight:
    kind: str       # one highlight per kind: product, channel, deals, campaign, household
    template: str   # HighlightTexts field
    lift: float
    label: str = ""


def _highlights(seg: dict, base: dict, texts: InsightsTexts) -> list[_Highlight]:
    lift = seg["lift"]
    out: list[_Highlight] = []
    for c in MNT_COLUMNS:
        if lift["numeric"].get(c) is not None:
            out.append(_Highlight("product", "product", lift["numeric"][c], texts.labels.products[c]))
    for c in CHANNEL_COLUMNS:
        if lift["numeric"].get(c) is not None:
            out.append(_Highlight("channel", "channel", lift["numeric"][c], texts.labels.channels[c]))
    if lift["deal_share"] is not None:
        out.append(_Highlight("deals", "deals", lift["deal_share"]))

    def rate(kind: str, template: str, value: float | None, base_rate: float | None) -> None:
        if value is not None and base_rate is not None and base_rate * seg["size"] >= MIN_EXPECTED_EVENTS:
            out.append(_Highlight(kind, template, value))

    rate("campaign", "response", lift["campaigns"].get(RESPONSE_COLUMN), base["campaigns"].get(RESPONSE_COLUMN))
    rate("campaign", "any_campaign", lift["campaigns"].get(ANY_ACCEPTED), base["campaigns"].get(ANY_ACCEPTED))
    if seg["children"] and base["children"]:
        rate("household", "children", lift["children"], base["children"]["share"])
    return out


def _score(lift: float) -> float:
    """How far a lift is from 1, on a log scale (capped at 20x)."""
    return min(abs(math.log(max(lift, 1e-3))), math.log(20))


def _rank(lift: float) -> float:
    """The ranking weight of a highlight: a figure above average counts more than one below it."""
    return _score(lift) * (1.0 if lift >= 1 else LESS_WEIGHT)


def segment_summary(service: "SegmentationService", key: str) -> str:
    """A one-sentence, data-driven summary: the 2-3 most notable lifts, at most one of each kind."""
    _check_key(service, key)
    texts = insight_texts(service.knowledge)
    profiles = profiles_of(service)
    return summarise(profiles, key, texts, segment_name=service.segment_name(key))


def summarise(profiles: dict, key: str, texts: InsightsTexts, *, segment_name: str) -> str:
    seg, base = profiles["segments"][key], profiles[BASE]
    if not seg["size"]:
        return texts.summary.none.format(segment_name=segment_name)
    candidates = sorted(_highlights(seg, base, texts), key=lambda h: -_rank(h.lift))
    chosen: list[_Highlight] = []
    for h in candidates:
        if len(chosen) >= MAX_HIGHLIGHTS:
            break
        if _score(h.lift) >= NOTABLE_LOG_LIFT and all(c.kind != h.kind for c in chosen):
            chosen.append(h)
    if not chosen:
        return texts.summary.none.format(segment_name=segment_name)
    parts = []
    for h in chosen:
        block = texts.summary.more if h.lift >= 1 else texts.summary.less
        parts.append(getattr(block, h.template).format(lift=fmt_lift(h.lift), pct_less=_pct_less(h.lift),
                                                       product=h.label, channel=h.label))
    return texts.summary.sentence.format(segment_name=segment_name, highlights=_join(parts, texts.summary))


def _top(mix: dict[str, float | None]) -> str | None:
    items = [(k, v) for k, v in mix.items() if v is not None]
    return max(items, key=lambda kv: kv[1])[0] if items else None


def _most_lifted(lifts: dict[str, float | None], among: Iterable[str]) -> str | None:
    items = [(k, lifts.get(k)) for k in among if lifts.get(k) is not None]
    return max(items, key=lambda kv: kv[1])[0] if items else None


def strategy_evidence(service: "SegmentationService", key: str) -> list[str]:
    """Sentences citing the figures behind the segment's strategy: campaign response against the
    base, top product line, main channel, deals and children at home."""
    _check_key(service, key)
    texts = insight_texts(service.knowledge)
    return evidence_lines(profiles_of(service), key, texts, segment_name=service.segment_name(key))


def evidence_by_segment(service: "SegmentationService") -> dict[str, list[str]]:
    """``strategy_evidence`` for every segment, computed once (empty where the model card has no
    profiles, e.g. a model trained before profiles existed)."""
    try:
        return {key: strategy_evidence(service, key) for key in service.knowledge.segments}
    except (ModelError, KeyError):
        return {}


def evidence_lines(profiles: dict, key: str, texts: InsightsTexts, *, segment_name: str) -> list[str]:
    seg, base = profiles["segments"][key], profiles[BASE]
    ev, common = texts.evidence, {"segment_name": segment_name, "base_name": texts.base_name}
    out = []
    camp, base_camp, lift = seg["campaigns"], base["campaigns"], seg["lift"]
    if camp.get(RESPONSE_COLUMN) is not None:
        out.append(ev.response.format(**common, rate=fmt_rate(camp[RESPONSE_COLUMN]),
                                      base_rate=fmt_rate(base_camp.get(RESPONSE_COLUMN)),
                                      lift=fmt_lift(lift["campaigns"].get(RESPONSE_COLUMN))))
    if camp.get(ANY_ACCEPTED) is not None:
        out.append(ev.any_campaign.format(**common, rate=fmt_rate(camp[ANY_ACCEPTED]),
                                          base_rate=fmt_rate(base_camp.get(ANY_ACCEPTED)),
                                          lift=fmt_lift(lift["campaigns"].get(ANY_ACCEPTED))))
    product = _top(seg["product_mix"])
    if product:
        out.append(ev.top_product.format(**common, product=texts.labels.products[product],
                                         share=fmt_pct(seg["product_mix"][product]),
                                         amount=fmt_money(seg["numeric"][product]["mean"]),
                                         lift=fmt_lift(lift["numeric"].get(product))))
    channel = _top(seg["channel_mix"])
    distinctive = _most_lifted(lift["channel_mix"], seg["channel_mix"])
    for template, c in ((ev.top_channel, channel), (ev.distinctive_channel, distinctive)):
        if c is None or (template is ev.distinctive_channel
                         and (c == channel or (lift["channel_mix"][c] or 0) < DISTINCTIVE_LIFT)):
            continue
        out.append(template.format(**common, place=texts.labels.channel_places[c], channel=texts.labels.channels[c],
                                   share=fmt_pct(seg["channel_mix"][c]), base_share=fmt_pct(base["channel_mix"].get(c)),
                                   lift=fmt_lift(lift["channel_mix"].get(c))))
    if seg["deal_share"] is not None:
        out.append(ev.deals.format(**common, deals=texts.labels.deals, share=fmt_pct(seg["deal_share"]),
                                   base_share=fmt_pct(base["deal_share"]), lift=fmt_lift(lift["deal_share"])))
    if seg["children"] and seg["children"]["share"] is not None:
        out.append(ev.children.format(**common, share=fmt_pct(seg["children"]["share"]),
                                      base_share=fmt_pct(base["children"]["share"]), lift=fmt_lift(lift["children"]),
                                      count=f"{seg['children']['count']:,}"))
    return out


# =============================================================================== chat answers


def _normalise(text: str) -> str:
    text = text.lower().replace("\u2019", "'")
    return " " + re.sub(r"[^a-z0-9]+", " ", text).strip() + " "


@dataclass(frozen=True)
class _Matcher:
    segments: tuple[tuple[str, str], ...]             # (normalised phrase, key), longest first
    all_segments: tuple[str, ...]
    topics: tuple[tuple[str, tuple[str, ...]], ...]   # (topic, normalised phrases), in TOPICS order


def _matcher(kb: "KnowledgeBase") -> _Matcher:
    cached = kb.extra.get("insights_matcher")
    if cached is not None:
        return cached
    texts = insight_texts(kb)
    pairs = set()
    for key, spec in kb.segments.items():
        phrases = [*texts.matching.segments.get(key, []), spec.name, key.replace("_", " ")]
        pairs.update((_normalise(p).strip(), key) for p in phrases if _normalise(p).strip())
    segments = tuple(sorted(pairs, key=lambda pk: (-len(pk[0]), pk[0])))
    all_cues = tuple(p for p in (_normalise(c).strip() for c in texts.matching.all_segments) if p)
    topics = tuple((t, tuple(p for p in (_normalise(x).strip() for x in texts.matching.topics[t]) if p))
                   for t in TOPICS)
    matcher = _Matcher(segments=segments, all_segments=all_cues, topics=topics)
    kb.extra["insights_matcher"] = matcher
    return matcher


@dataclass(frozen=True)
class InsightQuestion:
    topic: str
    segments: tuple[str, ...]   # the segments named, in the order named; empty = all segments


def parse_question(text: str, kb: "KnowledgeBase") -> InsightQuestion | None:
    """Recognise an insight question: a topic plus a segment (or an all-segments cue such as
    "which segment" / "who"). Returns None for anything else."""
    if not text or not text.strip():
        return None
    m = _matcher(kb)
    norm = _normalise(text[:2000])
    found: list[tuple[int, str]] = []
    blanked = norm
    for phrase, key in m.segments:
        needle = f" {phrase} "
        start = blanked.find(needle)
        while start != -1:
            found.append((start, key))
            blanked = blanked[:start + 1] + "#" * len(phrase) + blanked[start + 1 + len(phrase):]
            start = blanked.find(needle)
    named = tuple(dict.fromkeys(k for _, k in sorted(found)))
    all_cue = any(f" {c} " in blanked for c in m.all_segments)
    if not named and not all_cue:
        return None
    best_topic, best_score = None, 0
    for topic, phrases in m.topics:
        score = sum(len(p) for p in phrases if f" {p} " in blanked)
        if score > best_score:
            best_topic, best_score = topic, score
    if best_topic is None:
        return None
    return InsightQuestion(topic=best_topic, segments=named)


def answer_question(text: str, service: "SegmentationService") -> str | None:
    """A markdown answer when ``text`` asks about segment profiles (what they buy, channels,
    campaign response, children, education, marital status, complaints, tenure), else None."""
    question = parse_question(text, service.knowledge)
    if question is None:
        return None
    texts = insight_texts(service.knowledge)
    try:
        profiles = profiles_of(service)
    except ModelError:
        return texts.chat.not_available
    keys = list(question.segments) or list(service.knowledge.segments)
    if all(not profiles["segments"][k]["size"] for k in keys):
        return texts.chat.empty_segment.format(segment_name=", ".join(service.segment_name(k) for k in keys))
    answer = _ANSWERS[question.topic](_Context(service, profiles, texts), keys, bool(question.segments))
    note = texts.chat.note_lift.format(base_name=texts.base_name, rows=f"{profiles[BASE]['size']:,}",
                                       model_version=service.card.get("model_version", ""))
    return f"{answer}\n\n{note}"


@dataclass(frozen=True)
class _Context:
    service: "SegmentationService"
    profiles: dict
    texts: InsightsTexts

    def seg(self, key: str) -> dict:
        return self.profiles["segments"][key]

    @property
    def base(self) -> dict:
        return self.profiles[BASE]

    def name(self, key: str) -> str:
        return self.service.segment_name(key)

    def missing(self, what: str) -> str:
        return self.texts.chat.missing_figures.format(what=what)


def _answer_products(ctx: _Context, keys: list[str], named: bool) -> str:
    t, labels = ctx.texts.chat.products, ctx.texts.labels.products
    lines = [c for c in MNT_COLUMNS if c in ctx.base["product_mix"]]
    if not lines:
        return ctx.missing("product (Mnt...)")
    if len(keys) == 1:
        key = keys[0]
        seg = ctx.seg(key)
        rows = [[labels[c].capitalize(), fmt_pct(seg["product_mix"][c]), fmt_money(seg["numeric"][c]["mean"]),
                 fmt_lift(seg["lift"]["numeric"][c])]
                for c in sorted(lines, key=lambda c: -(seg["product_mix"][c] or 0))]
        top = _top(seg["product_mix"])
        most = _most_lifted(seg["lift"]["numeric"], lines)
        most_lift = seg["lift"]["numeric"][most]
        closing = (t.over if most_lift is not None and most_lift >= 1 else t.under).format(
            segment_name=ctx.name(key), product=labels[top], share=fmt_pct(seg["product_mix"][top]),
            product_most=labels[most], lift=fmt_lift(most_lift))
        header = [h.format(base_name=ctx.texts.base_name) for h in t.columns]
        return "\n\n".join([t.title.format(segment_name=ctx.name(key), size=f"{seg['size']:,}"),
                            _table(header, rows), closing])
    header = [t.first_column_many, *(ctx.name(k) for k in keys), ctx.texts.base_label]
    rows = []
    for c in lines:
        cells = [f"{fmt_pct(ctx.seg(k)['product_mix'][c])} ({fmt_lift(ctx.seg(k)['lift']['numeric'][c])})" for k in keys]
        rows.append([labels[c].capitalize(), *cells, fmt_pct(ctx.base["product_mix"][c])])
    summary = []
    for k in keys:
        seg = ctx.seg(k)
        top, most = _top(seg["product_mix"]), _most_lifted(seg["lift"]["numeric"], lines)
        if top and most:
            template = t.line_many if (seg["lift"]["numeric"][most] or 0) >= 1 else t.line_many_under
            summary.append(template.format(segment_name=ctx.name(k), product=labels[top],
                                              share=fmt_pct(seg["product_mix"][top]), product_most=labels[most],
                                              lift=fmt_lift(seg["lift"]["numeric"][most])))
    return "\n\n".join([t.title_many.format(base_name=ctx.texts.base_name), _table(header, rows), "\n".join(summary)])


def _answer_channels(ctx: _Context, keys: list[str], named: bool) -> str:
    t, labels = ctx.texts.chat.channels, ctx.texts.labels
    channels = [c for c in CHANNEL_COLUMNS if c in ctx.base["channel_mix"]]
    if not channels:
        return ctx.missing("purchase channel (Num...Purchases)")
    header = [t.first_column, *(ctx.name(k) for k in keys), ctx.texts.base_label]

    def cell(value: str, lift: float | None) -> str:
        return f"{value} ({fmt_lift(lift)})"

    rows = []
    for c in channels:
        rows.append([labels.channels[c].capitalize(),
                     *(cell(fmt_pct(ctx.seg(k)["channel_mix"][c]), ctx.seg(k)["lift"]["channel_mix"][c]) for k in keys),
                     fmt_pct(ctx.base["channel_mix"][c])])
    if ctx.base["deal_share"] is not None:
        rows.append([t.deals_row, *(cell(fmt_pct(ctx.seg(k)["deal_share"]), ctx.seg(k)["lift"]["deal_share"])
                                    for k in keys), fmt_pct(ctx.base["deal_share"])])

    def purchases(group: dict) -> float | None:
        means = [group["numeric"].get(c, {}).get("mean") for c in channels]
        return None if any(m is None for m in means) else sum(means)

    rows.append([t.purchases_row, *(fmt_num(purchases(ctx.seg(k))) for k in keys), fmt_num(purchases(ctx.base))])
    if VISITS_COLUMN in ctx.base["numeric"]:
        rows.append([t.visits_row, *(fmt_num(ctx.seg(k)["numeric"][VISITS_COLUMN]["mean"]) for k in keys),
                     fmt_num(ctx.base["numeric"][VISITS_COLUMN]["mean"])])
    lines = []
    for k in keys:
        seg = ctx.seg(k)
        top, distinct = _top(seg["channel_mix"]), _most_lifted(seg["lift"]["channel_mix"], channels)
        if top and distinct:
            template = t.line if distinct != top else t.line_top_only
            lines.append(template.format(segment_name=ctx.name(k), place=labels.channel_places[top],
                                         share=fmt_pct(seg["channel_mix"][top]), channel=labels.channels[distinct],
                                         lift=fmt_lift(seg["lift"]["channel_mix"][distinct]),
                                         base_name=ctx.texts.base_name))
    return "\n\n".join([t.title.format(base_name=ctx.texts.base_name), _table(header, rows), "\n".join(lines)])


def _answer_campaigns(ctx: _Context, keys: list[str], named: bool) -> str:
    t, labels = ctx.texts.chat.campaigns, ctx.texts.labels.campaigns
    base_camp = ctx.base["campaigns"]
    if not base_camp:
        return ctx.missing("campaign (AcceptedCmp1-5, Response)")
    if len(keys) == 1:
        key = keys[0]
        seg = ctx.seg(key)
        header = [h.format(segment_name=ctx.name(key), base_label=ctx.texts.base_label) for h in t.columns_one]
        order = [c for c in (RESPONSE_COLUMN, ANY_ACCEPTED, *CAMPAIGN_COLUMNS) if c in base_camp]
        rows = [[labels[c], fmt_rate(seg["campaigns"][c]), fmt_rate(base_camp[c]), fmt_lift(seg["lift"]["campaigns"][c])]
                for c in order]
        return "\n\n".join([t.title_one.format(segment_name=ctx.name(key), size=f"{seg['size']:,}"),
                            _table(header, rows), "\n".join(evidence_lines(ctx.profiles, key, ctx.texts,
                                                                           segment_name=ctx.name(key))[:2])])
    ranking_col = RESPONSE_COLUMN if RESPONSE_COLUMN in base_camp else ANY_ACCEPTED
    ranked = sorted(keys, key=lambda k: -(ctx.seg(k)["campaigns"].get(ranking_col) or 0))
    header = [h.format(base_name=ctx.texts.base_name) for h in t.columns]
    rows = [[ctx.name(k), fmt_rate(ctx.seg(k)["campaigns"].get(RESPONSE_COLUMN)),
             fmt_rate(ctx.seg(k)["campaigns"].get(ANY_ACCEPTED)),
             fmt_lift(ctx.seg(k)["lift"]["campaigns"].get(RESPONSE_COLUMN)), f"{ctx.seg(k)['size']:,}"] for k in ranked]
    rows.append([ctx.texts.base_label, fmt_rate(base_camp.get(RESPONSE_COLUMN)), fmt_rate(base_camp.get(ANY_ACCEPTED)),
                 fmt_lift(1.0 if base_camp.get(RESPONSE_COLUMN) else None), f"{ctx.base['size']:,}"])
    best = ranked[0]
    out = [t.title, _table(header, rows)]
    if ctx.seg(best)["campaigns"].get(RESPONSE_COLUMN) is not None:
        out.append(t.best.format(segment_name=ctx.name(best), rate=fmt_rate(ctx.seg(best)["campaigns"][RESPONSE_COLUMN]),
                                 lift=fmt_lift(ctx.seg(best)["lift"]["campaigns"][RESPONSE_COLUMN]),
                                 base_rate=fmt_rate(base_camp[RESPONSE_COLUMN]), base_name=ctx.texts.base_name))
    if ANY_ACCEPTED in base_camp:
        best_any = max(keys, key=lambda k: ctx.seg(k)["campaigns"].get(ANY_ACCEPTED) or 0)
        out.append(t.best_any.format(segment_name=ctx.name(best_any),
                                     rate=fmt_rate(ctx.seg(best_any)["campaigns"][ANY_ACCEPTED]),
                                     base_rate=fmt_rate(base_camp[ANY_ACCEPTED]), base_name=ctx.texts.base_name))
    return "\n\n".join(out)


def _answer_children(ctx: _Context, keys: list[str], named: bool) -> str:
    t = ctx.texts.chat.children
    if not ctx.base["children"]:
        return ctx.missing("household (Kidhome, Teenhome)")

    def line(k: str) -> str:
        seg = ctx.seg(k)
        return t.line.format(segment_name=ctx.name(k), share=fmt_pct(seg["children"]["share"]),
                             count=f"{seg['children']['count']:,}", size=f"{seg['size']:,}",
                             base_share=fmt_pct(ctx.base["children"]["share"]), base_name=ctx.texts.base_name,
                             lift=fmt_lift(seg["lift"]["children"]))

    if len(keys) == 1:
        return line(keys[0])

    def row(label: str, group: dict, lift: float | None) -> list[str]:
        num = group["numeric"]
        return [label, fmt_pct(group["children"]["share"]), f"{group['children']['count']:,}",
                fmt_num(num.get("Kidhome", {}).get("mean"), 2), fmt_num(num.get("Teenhome", {}).get("mean"), 2),
                fmt_lift(lift)]

    rows = [row(ctx.name(k), ctx.seg(k), ctx.seg(k)["lift"]["children"]) for k in keys]
    rows.append(row(ctx.texts.base_label, ctx.base, 1.0))
    out = [t.title, _table([h.format(base_name=ctx.texts.base_name) for h in t.columns], rows)]
    if named:
        out.append("\n".join(line(k) for k in keys))
    return "\n\n".join(out)


def _answer_distribution(field: str, texts_attr: str, labels_attr: str):
    def answer(ctx: _Context, keys: list[str], named: bool) -> str:
        t = getattr(ctx.texts.chat, texts_attr)
        labels = getattr(ctx.texts.labels, labels_attr)
        if not ctx.base[field]:
            return ctx.missing(labels_attr)
        header = [t.first_column, *(ctx.name(k) for k in keys), ctx.texts.base_label]
        cats = [c for c in ctx.base[field] if ctx.base[field][c] > 0 or any(ctx.seg(k)[field].get(c) for k in keys)]
        rows = [[labels.get(c, c), *(fmt_pct(ctx.seg(k)[field].get(c)) for k in keys), fmt_pct(ctx.base[field][c])]
                for c in cats]
        return "\n\n".join([t.title, _table(header, rows), t.note])

    return answer


def _answer_complaints(ctx: _Context, keys: list[str], named: bool) -> str:
    t = ctx.texts.chat.complaints
    if ctx.base["complaint_rate"] is None:
        return ctx.missing("complaint (Complain)")

    def count(group: dict) -> str:
        return f"{round(group['complaint_rate'] * group['size']):,}" if group["complaint_rate"] is not None else "-"

    ranked = sorted(keys, key=lambda k: -(ctx.seg(k)["complaint_rate"] or 0))
    rows = [[ctx.name(k), fmt_rate(ctx.seg(k)["complaint_rate"]), count(ctx.seg(k)),
             fmt_lift(ctx.seg(k)["lift"]["complaint_rate"])] for k in ranked]
    rows.append([ctx.texts.base_label, fmt_rate(ctx.base["complaint_rate"]), count(ctx.base), fmt_lift(1.0)])
    top = ranked[0]
    return "\n\n".join([t.title, _table([h.format(base_name=ctx.texts.base_name) for h in t.columns], rows),
                        t.line.format(segment_name=ctx.name(top), rate=fmt_rate(ctx.seg(top)["complaint_rate"]),
                                      base_rate=fmt_rate(ctx.base["complaint_rate"]), base_name=ctx.texts.base_name)])


def _answer_tenure(ctx: _Context, keys: list[str], named: bool) -> str:
    t = ctx.texts.chat.tenure
    if not ctx.base["tenure_days"]:
        return ctx.missing("join date (Dt_Customer)")
    base_mean = ctx.base["tenure_days"]["mean"]

    def line(k: str) -> str:
        ten = ctx.seg(k)["tenure_days"]
        return t.line.format(segment_name=ctx.name(k), mean=fmt_num(ten["mean"], 0), median=fmt_num(ten["median"], 0),
                             months=fmt_num(ten["mean"] / 30.44 if ten["mean"] is not None else None, 0),
                             base_mean=fmt_num(base_mean, 0), base_name=ctx.texts.base_name)

    rows = [[ctx.name(k), fmt_num(ctx.seg(k)["tenure_days"]["mean"], 0), fmt_num(ctx.seg(k)["tenure_days"]["median"], 0),
             fmt_lift(ctx.seg(k)["lift"]["tenure_days"])] for k in keys]
    rows.append([ctx.texts.base_label, fmt_num(base_mean, 0), fmt_num(ctx.base["tenure_days"]["median"], 0), fmt_lift(1.0)])
    out = [t.title.format(reference_date=ctx.profiles.get("reference_date") or "-"),
           _table([h.format(base_name=ctx.texts.base_name) for h in t.columns], rows)]
    if named:
        out.append("\n".join(line(k) for k in keys))
    return "\n\n".join(out)


def _answer_profile(ctx: _Context, keys: list[str], named: bool) -> str:
    t = ctx.texts.chat.profile
    blocks = []
    for k in keys:
        seg = ctx.seg(k)
        evidence = evidence_lines(ctx.profiles, k, ctx.texts, segment_name=ctx.name(k))
        title = t.title.format(segment_name=ctx.name(k), size=f"{seg['size']:,}", share=fmt_pct(seg["share"]))
        blocks.append("\n".join([title,
                                 "", summarise(ctx.profiles, k, ctx.texts, segment_name=ctx.name(k)), "",
                                 *(f"- {e}" for e in evidence)]))
    return "\n\n".join(blocks)


_ANSWERS = {
    "products": _answer_products,
    "channels": _answer_channels,
    "campaigns": _answer_campaigns,
    "children": _answer_children,
    "education": _answer_distribution("education", "education", "education"),
    "marital": _answer_distribution("marital_status", "marital", "marital_status"),
    "complaints": _answer_complaints,
    "tenure": _answer_tenure,
    "profile": _answer_profile,
}


# =============================================================================== figures (plotly)

BASE_COLOUR = "#3B4A63"


def _segment_colour(key: str) -> str:
    from assistant.plots import SEGMENT_COLOURS

    return SEGMENT_COLOURS.get(key, "#F58518")


PROFILE_ROW_PX = 46      # height per category: two bars and their value labels, side by side
PROFILE_FRAME_PX = 130   # title, x axis and legend


def _bar_pair(title: str, categories: list[str], seg_values: list, base_values: list, *, segment_name: str,
              key: str, texts: InsightsTexts, axis: str, fmt=fmt_pct, rows: int = 0):
    """A segment's bars beside all customers', readable from a 320 px phone to a wide screen.

    Horizontal bars: the category names read level on the left (never rotated or cut) and each
    value label sits at the end of its own bar, so labels cannot collide at any width. The title
    is pinned to the figure's top and the legend to its bottom (container coordinates: neither
    meets the other or the bars); the height grows with the number of categories. A value label
    that does not fit its bar's thickness is hidden; the hover still gives every value. ``rows``: at
    least this many categories' height (plots shown side by side get the same height)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, values, colour in ((segment_name, seg_values, _segment_colour(key)),
                                 (texts.base_label, base_values, BASE_COLOUR)):
        labels = [fmt(v) for v in values]
        fig.add_bar(y=categories, x=[v if v is not None else 0 for v in values], name=name, orientation="h",
                    marker_color=colour, text=labels, textposition="outside", cliponaxis=False,
                    customdata=labels, hovertemplate="%{y}: %{customdata}<extra>" + name + "</extra>")
    style_figure(fig, title=title, height=PROFILE_FRAME_PX + PROFILE_ROW_PX * max(rows, len(categories)))
    top = max([v for v in (*seg_values, *base_values) if v is not None] or [1.0])
    fig.update_layout(
        title={"x": 0, "xref": "container", "xanchor": "left", "y": 1, "yref": "container", "yanchor": "top",
               "pad": {"t": 12, "l": 12}},
        legend={"orientation": "h", "x": 0, "xref": "container", "xanchor": "left", "y": 0, "yref": "container",
                "yanchor": "bottom", "traceorder": "normal", "font": {"size": 12}},
        margin={"l": 12, "r": 16, "t": 44, "b": 40},
        barmode="group", bargap=0.22, bargroupgap=0.04,
        xaxis={"range": [0, top * 1.28], "tickformat": ".0%", "title": {"text": axis, "standoff": 6},
               "automargin": True, "nticks": 5},
        yaxis={"autorange": "reversed", "automargin": True, "tickfont": {"size": 12}, "ticksuffix": " "},
        uniformtext={"minsize": 10, "mode": "hide"},
    )
    fig.update_traces(textfont_size=11)
    return fig


def style_figure(fig, *, title: str, height: int = 340):
    """The common look of every plot (white template, compact margins, legend on top)."""
    fig.update_layout(template="plotly_white", title={"text": title, "x": 0.01, "font": {"size": 15}}, height=height,
                      margin={"l": 56, "r": 16, "t": 72, "b": 48},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0.0},
                      font={"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12})
    return fig


def profile_figures(profiles: dict, key: str, texts: InsightsTexts, *, segment_name: str) -> dict[str, Any]:
    """Plotly figures of one segment against all customers: product mix, channel mix, campaigns."""
    seg, base = profiles["segments"][key], profiles[BASE]
    labels, ft = texts.labels, texts.figures
    figs: dict[str, Any] = {}
    products = [c for c in MNT_COLUMNS if c in base["product_mix"]]
    channels = [c for c in CHANNEL_COLUMNS if c in base["channel_mix"]]
    side_by_side = max(len(products), len(channels) + (base.get("deal_share") is not None))  # the same height
    if products:
        figs["product_mix"] = _bar_pair(ft.product_mix_title, [labels.products[c] for c in products],
                                        [seg["product_mix"][c] for c in products],
                                        [base["product_mix"][c] for c in products],
                                        segment_name=segment_name, key=key, texts=texts, axis=ft.share_axis,
                                        rows=side_by_side)
    if channels:
        cats = [labels.channels[c] for c in channels]
        seg_v = [seg["channel_mix"][c] for c in channels]
        base_v = [base["channel_mix"][c] for c in channels]
        if base["deal_share"] is not None:
            cats, seg_v, base_v = cats + [labels.deals], seg_v + [seg["deal_share"]], base_v + [base["deal_share"]]
        figs["channel_mix"] = _bar_pair(ft.channel_mix_title, cats, seg_v, base_v, segment_name=segment_name,
                                        key=key, texts=texts, axis=ft.share_axis, rows=side_by_side)
    campaigns = [c for c in (*CAMPAIGN_COLUMNS, ANY_ACCEPTED, RESPONSE_COLUMN) if c in base["campaigns"]]
    if campaigns:
        figs["campaigns"] = _bar_pair(ft.campaigns_title, [labels.campaigns[c] for c in campaigns],
                                      [seg["campaigns"][c] for c in campaigns], [base["campaigns"][c] for c in campaigns],
                                      segment_name=segment_name, key=key, texts=texts, axis=ft.rate_axis,
                                      fmt=fmt_rate)
    return figs


def segment_figures(service: "SegmentationService", key: str) -> dict[str, Any]:
    _check_key(service, key)
    return profile_figures(profiles_of(service), key, insight_texts(service.knowledge),
                           segment_name=service.segment_name(key))


__all__ = [
    "GroupProfile", "InsightQuestion", "InsightsTexts", "SegmentProfile", "answer_question", "compute_profiles",
    "evidence_lines", "insight_texts", "load_insight_texts", "parse_question", "profile_figures", "profiles_of",
    "segment_figures", "segment_profile", "segment_summary", "strategy_evidence", "style_figure", "summarise",
]
