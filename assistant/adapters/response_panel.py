"""The Segments tab's section on the response model: its holdout quality beside every probability the
app shows, a calibration plot and a cumulative-gains plot, all from the model card's ``response``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from assistant.adapters.app_texts import AppTexts, ResponseTexts

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from assistant.model.segmentation import SegmentationService

LINE = "#1F4E79"
REFERENCE = "#6B7280"


def _pct(x: float) -> str:
    return f"{x:.0%}"


def response_models(service: SegmentationService) -> list[dict[str, Any]]:
    """The evaluated response models of the model card (none for a card trained without ``Response``)."""
    response = service.card.get("response") or {}
    models: list[dict[str, Any]] = list(response.get("models") or [])
    return models


def response_intro(service: SegmentationService, texts: ResponseTexts) -> str:
    response = service.card.get("response") or {}
    return texts.intro.format(holdout=f"{response['holdout_customers']:,}",
                              training=f"{response['training_customers']:,}",
                              share=_pct(response["holdout_share"]), overall=_pct(response["overall_rate"]))


def _repeated(repeated: dict[str, Any] | None, texts: ResponseTexts) -> str:
    """The holdout AUC over the card's repeated splits, or a dash for a card trained without them."""
    if not repeated:
        return "-"
    return texts.repeated.format(mean=f"{repeated['roc_auc_mean']:.2f}", sd=f"{repeated['roc_auc_sd']:.2f}",
                                 low=f"{repeated['roc_auc_min']:.2f}", high=f"{repeated['roc_auc_max']:.2f}",
                                 share=_pct(repeated["share_at_target_auc"]), splits=repeated["splits"])


def quality_table(service: SegmentationService, texts: ResponseTexts) -> pd.DataFrame:
    """One row per model: holdout ROC AUC, PR AUC, Brier (against the base rate's), ECE, lift, targets."""
    c = texts.columns
    rows = []
    for m in response_models(service):
        rows.append({
            c.model: texts.models.get(m["model"], m["model"]),
            c.roc_auc: texts.auc.format(auc=f"{m['roc_auc']:.2f}", target=f"{m['target_roc_auc']:.2f}"),
            c.pr_auc: f"{m['pr_auc']:.2f}",
            c.brier: texts.brier.format(brier=f"{m['brier']:.3f}", base=f"{m['brier_base_rate']:.3f}"),
            c.ece: texts.ece.format(ece=f"{m['ece']:.3f}", target=f"{m['target_ece']:.2f}") + (
                texts.ece_noise.format(noise=f"{m['ece_if_calibrated_median']:.3f}")
                if m.get("ece_if_calibrated_median") is not None else ""),
            c.lift: texts.lift.format(lift10=f"{m['lift_top10']:.1f}", lift20=f"{m['lift_top20']:.1f}"),
            c.repeated: _repeated(m.get("repeated"), texts),
            c.verdict: texts.met if m.get("meets_targets") else texts.missed,
        })
    return pd.DataFrame(rows)


def quality_markdown(table: pd.DataFrame, texts: ResponseTexts) -> str:
    """The quality table turned on its side for reading (one row per measure, one column per model), as a
    Markdown table whose cells wrap at any width (a wide grid scrolled sideways on phones)."""
    c = texts.columns
    models = table[c.model].tolist()
    lines = [f"| {texts.table_label} | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    for column in table.columns:
        if column == c.model:
            continue
        lines.append(f"| {column} | " + " | ".join(str(v) for v in table[column]) + " |")
    return "\n".join(lines)


def _style(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    fig.update_layout(title={"text": title, "x": 0.02, "xanchor": "left", "yref": "container", "y": 0.97},
                      xaxis={"title": x, "range": [0, 1], "tickformat": ".0%"},
                      yaxis={"title": y, "range": [0, 1], "tickformat": ".0%", "automargin": True},
                      legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
                      margin={"l": 60, "r": 16, "t": 48, "b": 96}, height=380, template="plotly_white")
    return fig


def _with_diagonal(name: str) -> go.Figure:
    """A figure holding the dashed reference diagonal (perfect calibration, or contacting at random)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=name, line={"color": REFERENCE, "dash": "dash"}))
    return fig


def calibration_figure(service: SegmentationService, texts: AppTexts) -> go.Figure:
    """Observed response rate against the mean predicted chance per bin, per model (holdout)."""
    import plotly.graph_objects as go

    r = texts.response
    fig = _with_diagonal(r.perfect)
    for m, dash in zip(response_models(service), ("solid", "dot"), strict=False):
        bins = [b for b in m["calibration"] if b["customers"]]
        fig.add_trace(go.Scatter(
            x=[b["mean_predicted"] for b in bins], y=[b["observed_rate"] for b in bins], mode="lines+markers",
            name=r.models.get(m["model"], m["model"]), line={"color": LINE, "dash": dash},
            marker={"size": [6 + min(b["customers"], 200) / 20 for b in bins]},
            customdata=[b["customers"] for b in bins],
            hovertemplate="%{x:.0%} predicted, %{y:.0%} accepted (%{customdata} customers)<extra></extra>"))
    return _style(fig, r.calibration_title, r.calibration_x, r.calibration_y)


def gains_figure(service: SegmentationService, texts: AppTexts) -> go.Figure:
    """Share of responders reached against the share contacted, highest chance first (holdout)."""
    import plotly.graph_objects as go

    r = texts.response
    fig = _with_diagonal(r.random)
    for m, dash in zip(response_models(service), ("solid", "dot"), strict=False):
        gains = m["gains"]
        fig.add_trace(go.Scatter(x=gains["share"], y=gains["captured"], mode="lines",
                                 name=r.models.get(m["model"], m["model"]), line={"color": LINE, "dash": dash},
                                 hovertemplate="top %{x:.0%} reach %{y:.0%} of responders<extra></extra>"))
    return _style(fig, r.gains_title, r.gains_x, r.gains_y)


def response_section(service: SegmentationService, texts: AppTexts, *, min_width: int) -> None:
    """The section itself (inside a gr.Blocks): nothing when the card has no response model."""
    import gradio as gr

    if not response_models(service):
        return
    r = texts.response
    gr.Markdown(f"### {r.heading}\n{response_intro(service, r)}", elem_id="response-heading")
    gr.Markdown(quality_markdown(quality_table(service, r), r), elem_id="response-quality")
    with gr.Row():
        gr.Plot(value=calibration_figure(service, texts), elem_id="response-calibration", min_width=min_width,
                show_label=False)
        gr.Plot(value=gains_figure(service, texts), elem_id="response-gains", min_width=min_width,
                show_label=False)
