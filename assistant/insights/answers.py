"""Questions about the segments answered from the profiles (products, channels, campaigns...)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.core.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    from assistant.core.knowledge import KnowledgeBase
    from assistant.model.segmentation import SegmentationService
from assistant.insights.profiles import GroupData, ProfileData, profiles_of
from assistant.insights.summaries import (
    _most_lifted,
    _table,
    _top,
    evidence_lines,
    fmt_lift,
    fmt_money,
    fmt_num,
    fmt_pct,
    fmt_rate,
    summarise,
)
from assistant.insights.texts import DistributionChat, InsightsTexts, insight_texts
from assistant.model.profiling import (
    ANY_ACCEPTED,
    BASE,
    CAMPAIGN_COLUMNS,
    CHANNEL_COLUMNS,
    MNT_COLUMNS,
    RESPONSE_COLUMN,
    TOPICS,
    VISITS_COLUMN,
)


def _normalise(text: str) -> str:
    text = text.lower().replace("\u2019", "'")
    return " " + re.sub(r"[^a-z0-9]+", " ", text).strip() + " "


@dataclass(frozen=True)
class _Matcher:
    segments: tuple[tuple[str, str], ...]             # (normalised phrase, key), longest first
    all_segments: tuple[str, ...]
    topics: tuple[tuple[str, tuple[str, ...]], ...]   # (topic, normalised phrases), in TOPICS order


def _matcher(kb: KnowledgeBase) -> _Matcher:
    cached = kb.extra.get("insights_matcher")
    if isinstance(cached, _Matcher):
        return cached
    texts = insight_texts(kb)
    pairs: set[tuple[str, str]] = set()
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


def parse_question(text: str, kb: KnowledgeBase) -> InsightQuestion | None:
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


def answer_question(text: str, service: SegmentationService) -> str | None:
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
    service: SegmentationService
    profiles: ProfileData
    texts: InsightsTexts

    def seg(self, key: str) -> GroupData:
        group: GroupData = self.profiles["segments"][key]
        return group

    @property
    def base(self) -> GroupData:
        group: GroupData = self.profiles[BASE]
        return group

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
        closing = ""  # no closing sentence when the segment bought nothing at all
        if top is not None and most is not None:
            most_lift = seg["lift"]["numeric"][most]
            closing = (t.over if most_lift is not None and most_lift >= 1 else t.under).format(
                segment_name=ctx.name(key), product=labels[top], share=fmt_pct(seg["product_mix"][top]),
                product_most=labels[most], lift=fmt_lift(most_lift))
        header = [h.format(base_name=ctx.texts.base_name) for h in t.columns]
        parts = [t.title.format(segment_name=ctx.name(key), size=f"{seg['size']:,}"), _table(header, rows), closing]
        return "\n\n".join(part for part in parts if part)
    header = [t.first_column_many, *(ctx.name(k) for k in keys), ctx.texts.base_label]
    rows = []
    for c in lines:
        cells = [f"{fmt_pct(ctx.seg(k)['product_mix'][c])} ({fmt_lift(ctx.seg(k)['lift']['numeric'][c])})"
                 for k in keys]
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

    def purchases(group: GroupData) -> float | None:
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
        rows = [[labels[c], fmt_rate(seg["campaigns"][c]), fmt_rate(base_camp[c]),
                 fmt_lift(seg["lift"]["campaigns"][c])] for c in order]
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
        out.append(t.best.format(segment_name=ctx.name(best),
                                 rate=fmt_rate(ctx.seg(best)["campaigns"][RESPONSE_COLUMN]),
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

    def row(label: str, group: GroupData, lift: float | None) -> list[str]:
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


_Answer = Callable[["_Context", list[str], bool], str]
"""An answer to one topic: the context, the segment keys asked about, whether segments were named."""


def _answer_distribution(field: str, texts_attr: str, labels_attr: str) -> _Answer:
    def answer(ctx: _Context, keys: list[str], named: bool) -> str:
        t: DistributionChat = getattr(ctx.texts.chat, texts_attr)
        labels: dict[str, str] = getattr(ctx.texts.labels, labels_attr)
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

    def count(group: GroupData) -> str:
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

    rows = [[ctx.name(k), fmt_num(ctx.seg(k)["tenure_days"]["mean"], 0),
             fmt_num(ctx.seg(k)["tenure_days"]["median"], 0), fmt_lift(ctx.seg(k)["lift"]["tenure_days"])]
            for k in keys]
    rows.append([ctx.texts.base_label, fmt_num(base_mean, 0), fmt_num(ctx.base["tenure_days"]["median"], 0),
                 fmt_lift(1.0)])
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


_ANSWERS: dict[str, _Answer] = {
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
