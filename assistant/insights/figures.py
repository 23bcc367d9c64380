"""Plotly figures of a segment's profile against all customers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

    from assistant.model.segmentation import SegmentationService
from assistant.insights.profiles import ProfileData, _check_key, profiles_of
from assistant.insights.summaries import fmt_pct, fmt_rate
from assistant.insights.texts import InsightsTexts, insight_texts
from assistant.model.profiling import (
    ANY_ACCEPTED,
    BASE,
    CAMPAIGN_COLUMNS,
    CHANNEL_COLUMNS,
    MNT_COLUMNS,
    RESPONSE_COLUMN,
)

BASE_COLOUR = "#3B4A63"


def _segment_colour(key: str) -> str:
    from assistant.model.plots import SEGMENT_COLOURS

    return SEGMENT_COLOURS.get(key, "#F58518")


PROFILE_ROW_PX = 46      # height per category: two bars and their value labels, side by side
PROFILE_FRAME_PX = 130   # title, x axis and legend


def _bar_pair(title: str, categories: list[str], seg_values: Sequence[float | None],
              base_values: Sequence[float | None], *, segment_name: str, key: str, texts: InsightsTexts, axis: str,
              fmt: Callable[[float | None], str] = fmt_pct, rows: int = 0) -> go.Figure:
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


def style_figure(fig: go.Figure, *, title: str, height: int = 340) -> go.Figure:
    """The common look of every plot (white template, compact margins, legend on top)."""
    fig.update_layout(template="plotly_white", title={"text": title, "x": 0.01, "font": {"size": 15}}, height=height,
                      margin={"l": 56, "r": 16, "t": 72, "b": 48},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0.0},
                      font={"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12})
    return fig


def profile_figures(profiles: ProfileData, key: str, texts: InsightsTexts, *,
                    segment_name: str) -> dict[str, go.Figure]:
    """Plotly figures of one segment against all customers: product mix, channel mix, campaigns."""
    seg, base = profiles["segments"][key], profiles[BASE]
    labels, ft = texts.labels, texts.figures
    figs: dict[str, go.Figure] = {}
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
                                      [seg["campaigns"][c] for c in campaigns],
                                      [base["campaigns"][c] for c in campaigns],
                                      segment_name=segment_name, key=key, texts=texts, axis=ft.rate_axis,
                                      fmt=fmt_rate)
    return figs


def segment_figures(service: SegmentationService, key: str) -> dict[str, go.Figure]:
    _check_key(service, key)
    return profile_figures(profiles_of(service), key, insight_texts(service.knowledge),
                           segment_name=service.segment_name(key))
