"""``segment-assistant report``: one self-contained HTML file people can send.

The report holds the data overview and cleaning counts, the distributions of the seven fields,
demographics against spending, channel preferences, the model selection (elbow, silhouette,
bootstrap stability), the PCA map and every segment's profile. Plots are plotly figures; the
plotly.js library is inlined once, so the file loads nothing from the network and opens offline.

Without ``--data`` every figure comes from the committed model card (aggregates only: the
profiles, distributions and relationships stored at training time, the selection table and the
PCA sample). With ``--data`` the file is loaded and cleaned (``load_customers``), each customer
is assigned with the model and the profiles are recomputed from it; the report then also shows
an income-vs-spending scatter and the file's customers on the PCA map.

Texts live in ``knowledge/report.yaml`` (validated by :class:`ReportTexts`); column labels come
from ``knowledge/insights.yaml``. The output is written atomically.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import Field

from assistant.core.errors import AssistantError
from assistant.core.fields import FIELD_NAMES, FIELDS, FIELDS_BY_NAME
from assistant.core.files import atomic_write_text
from assistant.core.texts import Placeholders, TextModel, validate_yaml
from assistant.insights.figures import profile_figures, style_figure
from assistant.insights.profiles import profiles_of
from assistant.insights.summaries import evidence_lines, fmt_lift, fmt_money, fmt_num, fmt_pct, fmt_rate, summarise
from assistant.insights.texts import InsightsTexts, insight_texts
from assistant.model.profiling import ANY_ACCEPTED, BASE, CHANNEL_COLUMNS, RESPONSE_COLUMN, compute_profiles

if TYPE_CHECKING:  # pragma: no cover
    from assistant.core.knowledge import KnowledgeBase
    from assistant.model.data import CustomerData
    from assistant.model.segmentation import SegmentationService

REPORT_FILE = "report.yaml"
MAX_SCATTER_POINTS = 3000
MIN_POINT_COUNT = 5  # a mean over fewer customers is not plotted
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


# =============================================================================== texts


class OverviewTexts(TextModel):
    heading: str
    intro: str
    columns: list[str] = Field(min_length=2, max_length=2)
    rows_in: str
    rows_kept: str
    dropped: str
    collection_year: str
    segments_heading: str
    segment_columns: list[str] = Field(min_length=4, max_length=4)
    placeholders: ClassVar[Placeholders] = {"dropped": {"rule"}}


class DistributionTexts(TextModel):
    heading: str
    intro: str
    count_axis: str


class RelationshipTexts(TextModel):
    heading: str
    intro: str
    scatter_title: str
    income_title: str
    age_title: str
    education_title: str
    children_title: str
    spending_axis: str
    income_axis: str
    total_spending_axis: str
    children_axis: str
    band_first: str
    band: str
    band_last: str
    placeholders: ClassVar[Placeholders] = {
        "band_first": {"high"}, "band": {"low", "high"}, "band_last": {"low"},
    }


class ChannelTexts(TextModel):
    heading: str
    intro: str
    title: str
    deals_title: str
    deals_axis: str
    visits_title: str
    visits_axis: str
    web_axis: str


class SelectionTexts(TextModel):
    heading: str
    intro: str
    elbow_title: str
    scores_title: str
    k_axis: str
    inertia_axis: str
    score_axis: str
    silhouette: str
    stability: str
    elbow_marker: str
    chosen_marker: str
    columns: list[str] = Field(min_length=6, max_length=6)
    placeholders: ClassVar[Placeholders] = {
        "intro": {"k", "k_reason", "elbow"}, "elbow_marker": {"k"}, "chosen_marker": {"k"},
    }


class PcaTexts(TextModel):
    heading: str
    intro: str
    intro_data: str
    title: str
    x_axis: str
    y_axis: str
    placeholders: ClassVar[Placeholders] = {
        "intro": {"share"}, "intro_data": {"share", "rows"}, "x_axis": {"share"}, "y_axis": {"share"},
    }


class ProfileTexts(TextModel):
    heading: str
    intro: str
    strategy: str
    evidence_heading: str
    figures_heading: str
    columns: list[str] = Field(min_length=4, max_length=4)
    customers: str
    income: str
    spending: str
    children: str
    tenure: str
    response: str
    any_campaign: str
    complaints: str
    placeholders: ClassVar[Placeholders] = {"strategy": {"headline"}, "columns": {"base_label"}}


class ReportTexts(TextModel):
    title: str
    subtitle: str
    source_card: str
    source_data: str
    contents: str
    overview: OverviewTexts
    rules: dict[str, str]
    distributions: DistributionTexts
    relationships: RelationshipTexts
    channels: ChannelTexts
    selection: SelectionTexts
    pca: PcaTexts
    profiles: ProfileTexts
    footer: str
    written: str
    placeholders: ClassVar[Placeholders] = {
        "subtitle": {"model_version", "trained_at", "rows", "generated_at"},
        "source_data": {"file", "rows"}, "written": {"path", "size", "plots"},
    }


def report_texts(kb: KnowledgeBase) -> ReportTexts:
    """The report texts of this knowledge base, loaded on first use and cached on it."""
    texts = kb.extra.get("report")
    if texts is None:
        texts = validate_yaml(Path(kb.directory) / REPORT_FILE, ReportTexts)
        kb.extra["report"] = texts
    return texts


# =============================================================================== figures


def _colour(key: str) -> str:
    from assistant.model.plots import SEGMENT_COLOURS

    return SEGMENT_COLOURS.get(key, "#F58518")


def _names(service: SegmentationService) -> dict[str, str]:
    return {key: service.segment_name(key) for key in service.knowledge.segments}


def _distribution_figure(profiles: dict, names: dict[str, str], rt: ReportTexts):
    from plotly.subplots import make_subplots

    fields = [f for f in FIELDS if f.name in profiles["distributions"]]
    cols = 2
    rows = (len(fields) + cols - 1) // cols
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"{f.label} ({f.unit})" for f in fields],
                        vertical_spacing=0.08, horizontal_spacing=0.08)
    for i, spec in enumerate(fields):
        dist = profiles["distributions"][spec.name]
        edges = np.asarray(dist["edges"], dtype=float)
        centres, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
        for key, name in names.items():
            fig.add_bar(x=centres, y=dist["counts"][key], width=widths, name=name, legendgroup=key,
                        marker_color=_colour(key), showlegend=(i == 0), row=i // cols + 1, col=i % cols + 1)
    style_figure(fig, title="", height=260 * rows + 80)  # the section heading is the title
    fig.update_layout(barmode="stack", bargap=0.02, legend_y=1.03)
    fig.update_yaxes(title_text=rt.distributions.count_axis, col=1)
    return fig


def _band_labels(edges: list[float], rt: RelationshipTexts, money: bool) -> list[str]:
    def show(v: float) -> str:
        return f"${v / 1000:,.0f}k" if money else f"{v:,.0f}"

    labels = []
    for i, low in enumerate(edges):
        if i == len(edges) - 1:
            labels.append(rt.band_last.format(low=show(low)))
        elif i == 0 and money:
            labels.append(rt.band_first.format(high=show(edges[1])))
        else:
            labels.append(rt.band.format(low=show(low), high=show(edges[i + 1] - (0 if money else 1))))
    return labels


def _mean_lines(rel: dict, labels: list[str], names: dict[str, str], texts: InsightsTexts, title: str,
                axis_x: str, rt: RelationshipTexts, *, bars: bool = False):
    import plotly.graph_objects as go

    keep = [i for i, c in enumerate(rel[BASE]["count"]) if c > 0]  # categories nobody is in are left out
    labels = [labels[i] for i in keep]
    fig = go.Figure()
    for key, name in names.items():
        seg = rel["segments"][key]
        y = [seg["mean_spending"][i] if seg["count"][i] >= MIN_POINT_COUNT else None for i in keep]
        if bars:
            fig.add_bar(x=labels, y=y, name=name, marker_color=_colour(key))
        else:
            fig.add_scatter(x=labels, y=y, name=name, mode="lines+markers", line={"color": _colour(key)})
    base = rel[BASE]
    base_y = [base["mean_spending"][i] if base["count"][i] >= MIN_POINT_COUNT else None for i in keep]
    if bars:
        fig.add_bar(x=labels, y=base_y, name=texts.base_label, marker_color="#3B4A63")
    else:
        fig.add_scatter(x=labels, y=base_y, name=texts.base_label, mode="lines+markers",
                        line={"color": "#3B4A63", "dash": "dash"})
    style_figure(fig, title=title, height=380)
    fig.update_layout(xaxis_title=axis_x, yaxis_title=rt.spending_axis, yaxis_tickprefix="$", barmode="group")
    return fig


def _relationship_figures(profiles: dict, names: dict[str, str], texts: InsightsTexts, rt: ReportTexts,
                          scatter: dict | None) -> list:
    import plotly.graph_objects as go

    r = rt.relationships
    rel = profiles["relationships"]
    figs = []
    if scatter is not None:
        fig = go.Figure()
        for key, name in names.items():
            mask = scatter["keys"] == key
            fig.add_scatter(x=scatter["income"][mask], y=scatter["spending"][mask], mode="markers", name=name,
                            marker={"color": _colour(key), "size": 5, "opacity": 0.6})
        style_figure(fig, title=r.scatter_title, height=420)
        fig.update_layout(xaxis_title=r.income_axis, yaxis_title=r.total_spending_axis, xaxis_tickprefix="$",
                          yaxis_tickprefix="$")
        figs.append(fig)
    figs.append(_mean_lines(rel["income_band"], _band_labels(rel["income_band"]["edges"], r, True), names, texts,
                            r.income_title, r.income_axis, r))
    figs.append(_mean_lines(rel["age_band"], _band_labels(rel["age_band"]["edges"], r, False), names, texts,
                            r.age_title, FIELDS_BY_NAME["age"].label, r))
    if "education" in rel:
        labels = [texts.labels.education.get(c, c) for c in rel["education"]["categories"]]
        figs.append(_mean_lines(rel["education"], labels, names, texts, r.education_title, "", r, bars=True))
    if "children" in rel:
        cats = rel["children"]["categories"]
        labels = [str(c) if i < len(cats) - 1 else f"{c}+" for i, c in enumerate(cats)]
        figs.append(_mean_lines(rel["children"], labels, names, texts, r.children_title, r.children_axis, r, bars=True))
    return figs


def _channel_figures(profiles: dict, names: dict[str, str], texts: InsightsTexts, rt: ReportTexts) -> list:
    import plotly.graph_objects as go

    c = rt.channels
    groups = [(key, name, profiles["segments"][key]) for key, name in names.items()]
    groups.append((BASE, texts.base_label, profiles[BASE]))
    channels = [ch for ch in CHANNEL_COLUMNS if ch in profiles[BASE]["channel_mix"]]
    figs = []
    if channels:
        fig = go.Figure()
        palette = {"NumWebPurchases": "#54A24B", "NumCatalogPurchases": "#F58518", "NumStorePurchases": "#4C78A8"}
        for ch in channels:
            values = [g["channel_mix"][ch] for _, _, g in groups]
            fig.add_bar(y=[n for _, n, _ in groups], x=values, orientation="h", name=texts.labels.channels[ch],
                        marker_color=palette.get(ch), text=[fmt_pct(v) for v in values], textposition="inside")
        style_figure(fig, title=c.title, height=360)
        fig.update_layout(barmode="stack", xaxis_tickformat=".0%", xaxis_range=[0, 1], yaxis_autorange="reversed",
                          legend_traceorder="normal")
        figs.append(fig)
    deals = [g["deal_share"] for _, _, g in groups]
    if any(d is not None for d in deals):
        fig = go.Figure()
        fig.add_bar(y=[n for _, n, _ in groups], x=deals, orientation="h", text=[fmt_pct(d) for d in deals],
                    textposition="outside", cliponaxis=False,
                    marker_color=[_colour(key) if key != BASE else "#3B4A63" for key, _, _ in groups])
        style_figure(fig, title=c.deals_title, height=360)
        fig.update_layout(xaxis_tickformat=".0%", xaxis_title=c.deals_axis, yaxis_autorange="reversed",
                          showlegend=False)
        figs.append(fig)
    numeric = profiles[BASE]["numeric"]
    if "NumWebVisitsMonth" in numeric and "NumWebPurchases" in numeric:
        fig = go.Figure()
        for key, name, g in groups:
            fig.add_scatter(x=[g["numeric"]["NumWebVisitsMonth"]["mean"]], y=[g["numeric"]["NumWebPurchases"]["mean"]],
                            mode="markers", name=name,
                            marker={"size": 16, "symbol": "circle" if key != BASE else "diamond",
                                    "color": _colour(key) if key != BASE else "#3B4A63", "opacity": 0.9})
        style_figure(fig, title=c.visits_title, height=380)
        fig.update_layout(xaxis_title=c.visits_axis, yaxis_title=c.web_axis)
        figs.append(fig)
    return figs


def _selection_figures(card: dict, rt: ReportTexts) -> list:
    import plotly.graph_objects as go

    s = rt.selection
    table = card.get("selection") or []
    if not table:
        return []
    ks = [row["k"] for row in table]
    elbow, chosen = card["elbow"]["k"], card["k"]
    fig = go.Figure()
    fig.add_scatter(x=ks, y=[row["inertia"] for row in table], mode="lines+markers", name=s.inertia_axis,
                    line={"color": "#4C78A8"})
    fig.add_vline(x=elbow, line_dash="dash", line_color="#E45756", annotation_text=s.elbow_marker.format(k=elbow),
                  annotation_position="top right")
    fig.add_vline(x=chosen, line_dash="dot", line_color="#54A24B", annotation_text=s.chosen_marker.format(k=chosen),
                  annotation_position="bottom left")
    style_figure(fig, title=s.elbow_title, height=360)
    fig.update_layout(xaxis_title=s.k_axis, yaxis_title=s.inertia_axis, showlegend=False)
    fig2 = go.Figure()
    fig2.add_scatter(x=ks, y=[row["silhouette"] for row in table], mode="lines+markers", name=s.silhouette,
                     line={"color": "#4C78A8"})
    fig2.add_scatter(x=ks, y=[row["stability"] for row in table], mode="lines+markers", name=s.stability,
                     line={"color": "#F58518"}, marker={"symbol": "square"})
    fig2.add_vline(x=chosen, line_dash="dot", line_color="#54A24B")
    style_figure(fig2, title=s.scores_title, height=360)
    fig2.update_layout(xaxis_title=s.k_axis, yaxis_title=s.score_axis, yaxis_range=[0, 1.05])
    return [fig, fig2]


def _pca_figure(card: dict, names: dict[str, str], rt: ReportTexts, points: dict | None):
    import plotly.graph_objects as go

    p = rt.pca
    pca = card.get("pca")
    if not pca:
        return None
    sample = points or {"x": np.asarray(pca["sample"]["x"]), "y": np.asarray(pca["sample"]["y"]),
                        "keys": np.asarray(pca["sample"]["segment_key"])}
    evr = pca["explained_variance_ratio"]
    fig = go.Figure()
    for key, name in names.items():
        mask = sample["keys"] == key
        fig.add_scatter(x=sample["x"][mask], y=sample["y"][mask], mode="markers", name=name,
                        marker={"color": _colour(key), "size": 5, "opacity": 0.7})
    style_figure(fig, title=p.title, height=480)
    fig.update_layout(xaxis_title=p.x_axis.format(share=fmt_pct(evr[0])),
                      yaxis_title=p.y_axis.format(share=fmt_pct(evr[1])))
    return fig


# =============================================================================== HTML

CSS = """
:root { --ink:#1f2937; --muted:#6b7280; --line:#e5e7eb; --accent:#4C78A8; }
* { box-sizing: border-box; }
body { margin:0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color:var(--ink); background:#f6f7f9; line-height:1.5; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; background:#fff; }
header h1 { margin: 0 0 4px; font-size: 28px; }
header p { margin: 2px 0; color: var(--muted); }
nav { margin: 18px 0 8px; padding: 10px 14px; background:#f3f4f6; border-radius:8px; font-size:14px; }
nav a { color: var(--accent); text-decoration:none; margin-right: 14px; white-space: nowrap; }
section { margin-top: 34px; }
h2 { font-size: 22px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 18px; margin: 26px 0 6px; }
h4 { font-size: 15px; margin: 14px 0 4px; color: var(--muted); }
table { border-collapse: collapse; margin: 10px 0 16px; font-size: 14px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 12px 5px 0; text-align: left; vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; padding-left: 12px; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 12px 18px; }
.plot { min-height: 300px; }
.plot-title { font-size: 14px; font-weight: 600; margin: 8px 0 0 4px; }
.segment { border-left: 6px solid var(--accent); padding: 2px 0 6px 16px; margin-top: 30px; }
.summary { font-size: 16px; }
.strategy { font-weight: 600; }
.swatch { display:inline-block; width:12px; height:12px; border-radius:2px; margin-right:6px; vertical-align:-1px; }
footer { margin-top: 40px; color: var(--muted); font-size: 13px; }
@media (max-width: 800px) { .grid { grid-template-columns: 1fr; } }
@media print { body { background:#fff; } main { padding: 0; } nav { display:none; } .plot { break-inside: avoid; } }
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _html_table(header: list[str], rows: list[list[str]], numeric: tuple[int, ...] | None = None) -> str:
    """A table; columns in ``numeric`` (default: all but the first) are right-aligned."""
    numeric = tuple(range(1, len(header))) if numeric is None else numeric

    def cls(i: int) -> str:
        return ' class="num"' if i in numeric else ""

    head = "".join(f"<th{cls(i)}>{_e(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{_e(c)}</td>" for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class _Plots:
    """Collects figures as HTML divs (plotly.js itself is inlined once in the page head)."""

    def __init__(self) -> None:
        self.count = 0

    def div(self, fig) -> str:
        if fig is None:
            return ""
        self.count += 1
        title = fig.layout.title.text
        fig.update_layout(title_text=None, margin_t=36)
        inner = fig.to_html(full_html=False, include_plotlyjs=False, config=PLOTLY_CONFIG,
                            default_height=f"{int(fig.layout.height or 360)}px", div_id=f"plot-{self.count}")
        caption = f'<div class="plot-title">{_e(title)}</div>' if title else ""
        return f'<div class="plot">{caption}{inner}</div>'

    def grid(self, figs: list) -> str:
        return '<div class="grid">' + "".join(self.div(f) for f in figs if f is not None) + "</div>"


def _scatter_points(data: CustomerData, keys: np.ndarray) -> dict:
    n = len(keys)
    idx = np.arange(n)
    if n > MAX_SCATTER_POINTS:
        idx = np.sort(np.random.default_rng(0).choice(n, size=MAX_SCATTER_POINTS, replace=False))
    feats = data.features
    return {"income": feats["income"].to_numpy(float)[idx], "spending": feats["total_spending"].to_numpy(float)[idx],
            "keys": keys[idx], "idx": idx}


def _pca_points(service: SegmentationService, data: CustomerData, idx: np.ndarray, keys: np.ndarray) -> dict | None:
    pca = service.card.get("pca")
    if not pca:
        return None
    X = data.features[list(FIELD_NAMES)].to_numpy(float)[idx]
    z = (X - service.mean_) / service.scale_
    xy = (z - np.asarray(pca["mean"])) @ np.asarray(pca["components"]).T
    return {"x": xy[:, 0], "y": xy[:, 1], "keys": keys}


def build_report(service: SegmentationService, data: CustomerData | None = None, *,
                 source_name: str | None = None, generated_at: dt.datetime | None = None) -> tuple[str, int]:
    """The report as one HTML string, and the number of plots in it."""
    import plotly.offline

    kb = service.knowledge
    texts, rt = insight_texts(kb), report_texts(kb)
    card = service.card
    names = _names(service)
    generated_at = generated_at or dt.datetime.now(dt.UTC).replace(microsecond=0)
    scatter = pca_points = None
    if data is not None:
        keys = service.assign_many(data.features).to_numpy().astype(str)
        profiles = compute_profiles(data, keys, kb)
        cleaning = data.report.as_dict()
        scatter = _scatter_points(data, keys)
        pca_points = _pca_points(service, data, scatter["idx"], scatter["keys"])
        source = rt.source_data.format(file=source_name or "-", rows=f"{len(keys):,}")
    else:
        profiles = profiles_of(service)
        cleaning = card.get("data", {})
        source = rt.source_card
    plots = _Plots()
    sections: list[tuple[str, str, str]] = []  # (id, heading, html)

    # -- overview
    o = rt.overview
    rows = [[o.rows_in, f"{cleaning.get('rows_in', 0):,}"], [o.rows_kept, f"{cleaning.get('rows_kept', 0):,}"]]
    for rule, n in (cleaning.get("dropped") or {}).items():
        rows.append([o.dropped.format(rule=rt.rules.get(rule, rule)), f"{n:,}"])
    if cleaning.get("collection_year"):
        rows.append([o.collection_year, str(cleaning["collection_year"])])
    seg_rows = []
    for key, name in names.items():
        seg = profiles["segments"][key]
        seg_rows.append([name, f"{seg['size']:,}", fmt_pct(seg["share"]),
                         summarise(profiles, key, texts, segment_name=name)])
    sections.append(("overview", o.heading,
                     f"<p>{_e(o.intro)}</p>{_html_table(o.columns, rows)}<h3>{_e(o.segments_heading)}</h3>"
                     + _html_table(o.segment_columns, seg_rows, numeric=(1, 2))))

    # -- distributions
    sections.append(("distributions", rt.distributions.heading,
                     f"<p>{_e(rt.distributions.intro)}</p>" + plots.div(_distribution_figure(profiles, names, rt))))
    # -- relationships
    sections.append(("relationships", rt.relationships.heading,
                     f"<p>{_e(rt.relationships.intro)}</p>"
                     + plots.grid(_relationship_figures(profiles, names, texts, rt, scatter))))
    # -- channels
    sections.append(("channels", rt.channels.heading,
                     f"<p>{_e(rt.channels.intro)}</p>" + plots.grid(_channel_figures(profiles, names, texts, rt))))
    # -- model selection
    s = rt.selection
    table = card.get("selection") or []
    sel_rows = [[str(r["k"]), f"{r['inertia']:,.0f}", f"{r['silhouette']:.3f}", f"{r['calinski_harabasz']:,.0f}",
                 f"{r['davies_bouldin']:.3f}", f"{r['stability']:.3f}"] for r in table]
    intro = s.intro.format(k=card.get("k", "-"), k_reason=card.get("k_reason", "-"),
                           elbow=card.get("elbow", {}).get("k", "-"))
    sections.append(("selection", s.heading, f"<p>{_e(intro)}</p>" + plots.grid(_selection_figures(card, rt))
                     + _html_table(s.columns, sel_rows)))
    # -- PCA
    if card.get("pca"):
        evr = card["pca"]["explained_variance_ratio"]
        share = fmt_pct(sum(evr[:2]))
        intro = (rt.pca.intro_data.format(share=share, rows=f"{len(pca_points['keys']):,}") if pca_points
                 else rt.pca.intro.format(share=share))
        sections.append(("pca", rt.pca.heading, f"<p>{_e(intro)}</p>"
                         + plots.div(_pca_figure(card, names, rt, pca_points))))
    # -- profiles
    p = rt.profiles
    parts = [f"<p>{_e(p.intro)}</p>"]
    base = profiles[BASE]
    for key, name in names.items():
        seg = profiles["segments"][key]
        spec = kb.segment(key)
        evidence = evidence_lines(profiles, key, texts, segment_name=name)
        fig_rows = _key_figures(seg, base, p)
        figs = profile_figures(profiles, key, texts, segment_name=name)
        parts.append(
            f'<div class="segment" id="segment-{_e(key)}" style="border-left-color:{_colour(key)}">'
            f"<h3>{_e(name)}</h3><p class=\"summary\">{_e(summarise(profiles, key, texts, segment_name=name))}</p>"
            f"<p class=\"strategy\">{_e(p.strategy.format(headline=spec.strategy.headline))}</p>"
            f"<h4>{_e(p.evidence_heading)}</h4><ul>" + "".join(f"<li>{_e(line)}</li>" for line in evidence) + "</ul>"
            f"<h4>{_e(p.figures_heading)}</h4>"
            + _html_table([h.format(base_label=texts.base_label) for h in p.columns], fig_rows)
            + plots.grid([figs.get("product_mix"), figs.get("channel_mix")]) + plots.div(figs.get("campaigns"))
            + "</div>")
    sections.append(("profiles", p.heading, "".join(parts)))

    subtitle = rt.subtitle.format(model_version=card.get("model_version", "-"), trained_at=card.get("trained_at", "-"),
                                  rows=f"{card.get('data', {}).get('rows_kept', 0):,}",
                                  generated_at=generated_at.isoformat())
    nav = "".join(f'<a href="#{sid}">{_e(heading)}</a>' for sid, heading, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{_e(heading)}</h2>{content}</section>'
                   for sid, heading, content in sections)
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_e(rt.title)}</title><style>{CSS}</style>"
        f"<script type=\"text/javascript\">{plotly.offline.get_plotlyjs()}</script></head>"
        f"<body><main><header><h1>{_e(rt.title)}</h1><p>{_e(subtitle)}</p><p>{_e(source)}</p></header>"
        f"<nav aria-label=\"{_e(rt.contents)}\"><strong>{_e(rt.contents)}:</strong> {nav}</nav>{body}"
        f"<footer>{_e(rt.footer)}</footer></main></body></html>\n"
    )
    return page, plots.count


def _key_figures(seg: dict, base: dict, p: ProfileTexts) -> list[list[str]]:
    def mean(group: dict, column: str) -> float | None:
        return group["numeric"].get(column, {}).get("mean")

    rows = [[p.customers, f"{seg['size']:,} ({fmt_pct(seg['share'])})", f"{base['size']:,}", "-"],
            [p.income, fmt_money(mean(seg, "income")), fmt_money(mean(base, "income")),
             fmt_lift(seg["lift"]["numeric"].get("income"))],
            [p.spending, fmt_money(mean(seg, "total_spending")), fmt_money(mean(base, "total_spending")),
             fmt_lift(seg["lift"]["numeric"].get("total_spending"))]]
    if seg["children"]:
        rows.append([p.children, fmt_pct(seg["children"]["share"]), fmt_pct(base["children"]["share"]),
                     fmt_lift(seg["lift"]["children"])])
    if seg["tenure_days"]:
        rows.append([p.tenure, fmt_num(seg["tenure_days"]["mean"], 0), fmt_num(base["tenure_days"]["mean"], 0),
                     fmt_lift(seg["lift"]["tenure_days"])])
    for column, label in ((RESPONSE_COLUMN, p.response), (ANY_ACCEPTED, p.any_campaign)):
        if column in seg["campaigns"]:
            rows.append([label, fmt_rate(seg["campaigns"][column]), fmt_rate(base["campaigns"][column]),
                         fmt_lift(seg["lift"]["campaigns"][column])])
    if seg["complaint_rate"] is not None:
        rows.append([p.complaints, fmt_rate(seg["complaint_rate"]), fmt_rate(base["complaint_rate"]),
                     fmt_lift(seg["lift"]["complaint_rate"])])
    return rows


# =============================================================================== writing


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :mod:`assistant.core.files`)."""
    atomic_write_text(path, text)


def run_report(args, *, service: SegmentationService) -> int:
    """``segment-assistant report [--data PATH] -o report.html``."""
    from assistant.model.data import load_customers

    output = Path(args.output)
    if output.is_dir():
        raise AssistantError(f"--output={str(output)!r} is a folder; give a file name such as report.html")
    if not output.parent.exists():
        raise AssistantError(f"--output={str(output)!r}: the folder {str(output.parent)!r} does not exist")
    data = load_customers(args.data) if getattr(args, "data", None) is not None else None
    page, count = build_report(service, data, source_name=Path(args.data).name if data is not None else None)
    write_atomic(output, page)
    size = len(page.encode("utf-8"))
    print(report_texts(service.knowledge).written.format(path=output, size=f"{size / 1e6:.1f} MB", plots=count))
    return 0


__all__ = ["ReportTexts", "build_report", "report_texts", "run_report", "write_atomic"]
