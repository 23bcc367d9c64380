"""Segment profiles computed at training time (aggregates only, stored in the model card).

See :mod:`assistant.insights` for what a profile holds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from assistant.core.fields import FIELD_NAMES, FIELDS

if TYPE_CHECKING:  # pragma: no cover
    from assistant.core.knowledge import KnowledgeBase
    from assistant.model.data import CustomerData


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


def _f(value: Any) -> float | None:
    """A JSON-safe float: None for NaN, missing or infinite values."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _ratio(num: Any, den: Any) -> float | None:
    numerator, denominator = _f(num), _f(den)
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


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


def _build_frame(data: CustomerData) -> _Frame:
    from assistant.model.data import ALL_COLUMNS, numeric_raw

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
             categories: Sequence[str] | Sequence[int]) -> dict[str, Any]:
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


def compute_profiles(data: CustomerData, segment_keys: np.ndarray, kb: KnowledgeBase) -> dict[str, Any]:
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
