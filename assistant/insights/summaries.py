"""Numbers in words and the data-driven summaries and evidence lines of a segment."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.core.errors import ModelError
from assistant.core.fields import format_number

if TYPE_CHECKING:  # pragma: no cover
    from assistant.model.segmentation import SegmentationService
from assistant.insights.profiles import GroupData, GroupProfile, ProfileData, SegmentProfile, _check_key, profiles_of
from assistant.insights.texts import InsightsTexts, SummaryTexts, insight_texts
from assistant.model.profiling import ANY_ACCEPTED, BASE, CHANNEL_COLUMNS, MNT_COLUMNS, RESPONSE_COLUMN

# the data-driven summary: a lift is notable when it is at least this far from 1 (x1.25 or /1.25)
NOTABLE_LOG_LIFT = math.log(1.25)
MAX_HIGHLIGHTS = 3
LESS_WEIGHT = 0.6         # ranking weight of a below-average figure against an above-average one
DISTINCTIVE_LIFT = 1.1    # a channel other than the main one is cited when its share is >= 1.1x the base's
MIN_EXPECTED_EVENTS = 10  # a rate's lift is only quoted when the base rate predicts >= 10 events in the segment
SAME_LIFT = (0.9, 1.1)    # an evidence line whose lift lies in this band says nothing: it is left out


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
    """Money as every answer writes it (the customer fields' formatter): ``$1,274``."""
    return "-" if x is None else format_number(x, money=True)


def no_difference(lift: float | None) -> bool:
    """Whether a figure is about the same as the base's (lift within ``SAME_LIFT``): not worth a line."""
    return lift is not None and SAME_LIFT[0] <= lift <= SAME_LIFT[1]


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


def _highlights(seg: GroupData, base: GroupData, texts: InsightsTexts) -> list[_Highlight]:
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


def segment_summary(service: SegmentationService, key: str) -> str:
    """A one-sentence, data-driven summary: the 2-3 most notable lifts, at most one of each kind."""
    _check_key(service, key)
    texts = insight_texts(service.knowledge)
    profiles = profiles_of(service)
    return summarise(profiles, key, texts, segment_name=service.segment_name(key))


def summarise(profiles: ProfileData, key: str, texts: InsightsTexts, *, segment_name: str) -> str:
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
    items = [(k, lift) for k in among if (lift := lifts.get(k)) is not None]
    return max(items, key=lambda kv: kv[1])[0] if items else None


def strategy_evidence(service: SegmentationService, key: str) -> list[str]:
    """Sentences citing the figures behind the segment's strategy: campaign response against the
    base, top product line, main channel, deals and children at home."""
    _check_key(service, key)
    texts = insight_texts(service.knowledge)
    return evidence_lines(profiles_of(service), key, texts, segment_name=service.segment_name(key))


def evidence_by_segment(service: SegmentationService) -> dict[str, list[str]]:
    """``strategy_evidence`` for every segment, computed once (empty where the model card has no
    profiles, e.g. a model trained before profiles existed)."""
    try:
        return {key: strategy_evidence(service, key) for key in service.knowledge.segments}
    except (ModelError, KeyError):
        return {}


def evidence_lines(profiles: ProfileData, key: str, texts: InsightsTexts, *, segment_name: str) -> list[str]:
    seg, base = profiles["segments"][key], profiles[BASE]
    ev, common = texts.evidence, {"segment_name": segment_name, "base_name": texts.base_name}
    out = []
    camp, base_camp, lift = seg["campaigns"], base["campaigns"], seg["lift"]
    if camp.get(RESPONSE_COLUMN) is not None and not no_difference(lift["campaigns"].get(RESPONSE_COLUMN)):
        out.append(ev.response.format(**common, rate=fmt_rate(camp[RESPONSE_COLUMN]),
                                      base_rate=fmt_rate(base_camp.get(RESPONSE_COLUMN)),
                                      lift=fmt_lift(lift["campaigns"].get(RESPONSE_COLUMN))))
    if camp.get(ANY_ACCEPTED) is not None and not no_difference(lift["campaigns"].get(ANY_ACCEPTED)):
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
        if template is ev.top_channel and no_difference(lift["channel_mix"].get(c)):
            continue  # "46% of their purchases (46% for all customers)": no difference to report
        out.append(template.format(**common, place=texts.labels.channel_places[c], channel=texts.labels.channels[c],
                                   share=fmt_pct(seg["channel_mix"][c]), base_share=fmt_pct(base["channel_mix"].get(c)),
                                   lift=fmt_lift(lift["channel_mix"].get(c))))
    if seg["deal_share"] is not None and not no_difference(lift["deal_share"]):
        out.append(ev.deals.format(**common, deals=texts.labels.deals, share=fmt_pct(seg["deal_share"]),
                                   base_share=fmt_pct(base["deal_share"]), lift=fmt_lift(lift["deal_share"])))
    if seg["children"] and seg["children"]["share"] is not None and not no_difference(lift["children"]):
        out.append(ev.children.format(**common, share=fmt_pct(seg["children"]["share"]),
                                      base_share=fmt_pct(base["children"]["share"]), lift=fmt_lift(lift["children"]),
                                      count=f"{seg['children']['count']:,}"))
    return out


# =============================================================================== chat answers


def segment_profile(service: SegmentationService, key: str) -> SegmentProfile:
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
