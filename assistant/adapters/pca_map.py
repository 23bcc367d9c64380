"""The map of the training customers (PCA plane) with this customer's star, axes named by what drives them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gradio.components.plot import PlotData

from assistant.core.fields import FIELDS
from assistant.core.schemas import CustomerProfile, SegmentResult

if TYPE_CHECKING:
    from assistant.model.segmentation import SegmentationService
from assistant.adapters.app_texts import FALLBACK_COLOUR, SEGMENT_PALETTE, AppTexts, PlotTexts

CUSTOMER_COLOUR = "#111827"
CUSTOMER_FILL = "#FACC15"


MAP_HEIGHT = 440            # px
DRIVER_SHARE = 0.8          # a second field names a map axis when it loads at least this share of the first
# The customer's label sits in a band kept free above every dot (LABEL_BAND of the dots' height), never on
# a dot, its centre at least LABEL_HALF_WIDTH of the map's width from either side (it fits on a phone).
MAP_PAD = 0.04
LABEL_BAND = 0.16
LABEL_HALF_WIDTH = 0.2


# ---------------------------------------------------------------------------- plot


def _percent(x: float) -> str:
    return f"{x:.0%}"



def axis_drivers(loadings: Sequence[float], texts: PlotTexts) -> str:
    """What grows along a map axis, from its PCA loadings: the one or two fields that load most (a
    second one when it loads at least ``DRIVER_SHARE`` of the first), each said in its direction
    ("higher income and more spending", "longer since the last purchase")."""
    order = sorted(range(len(FIELDS)), key=lambda j: -abs(loadings[j]))
    top = abs(loadings[order[0]])
    chosen = [j for j in order[:2] if abs(loadings[j]) >= DRIVER_SHARE * top]
    return texts.axis_and.join((texts.axis_up if loadings[j] > 0 else texts.axis_down)[FIELDS[j].name]
                               for j in chosen)


@dataclass(frozen=True, slots=True)
class PcaPlot:
    """The PCA map of the training customers, built once per app as plain JSON; marking a customer
    appends one trace and one label (no plotly validation per request: about 1 ms instead of 15).

    ``what`` is the sentence that says what the map is; ``points`` the sample's coordinates, used
    to keep a band above them free for the customer's label."""

    base: dict[str, Any]
    customer_label: str
    customer_hover: str
    what: str
    points: tuple[tuple[float, float], ...] = ()

    def figure(self, xy: tuple[float, float] | None = None, segment_name: str = "") -> PlotData:
        """The map; with ``xy``, the customer's star, and its label in a band kept free above every dot
        (so it covers none, on any screen), with a line down to the star."""
        fig = self.base
        if xy is not None:
            star = {
                "type": "scatter", "x": [xy[0]], "y": [xy[1]], "mode": "markers", "name": self.customer_label,
                "marker": {"symbol": "star", "size": 24, "color": CUSTOMER_FILL,
                           "line": {"width": 2, "color": CUSTOMER_COLOUR}},
                "hovertemplate": self.customer_hover.format(segment_name=segment_name) + "<extra></extra>",
                "cliponaxis": False,
            }
            xs = [p[0] for p in self.points] + [xy[0]]
            ys = [p[1] for p in self.points] + [xy[1]]
            x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
            width, height = (x1 - x0) or 1.0, (y1 - y0) or 1.0
            x_range = [x0 - MAP_PAD * width, x1 + MAP_PAD * width]
            y_range = [y0 - MAP_PAD * height, y1 + (MAP_PAD + LABEL_BAND) * height]
            # the label's centre: in the band, above the star, kept far enough from the sides to fit
            lx = min(max(xy[0], x_range[0] + LABEL_HALF_WIDTH * (x_range[1] - x_range[0])),
                     x_range[1] - LABEL_HALF_WIDTH * (x_range[1] - x_range[0]))
            ly = y1 + (MAP_PAD + LABEL_BAND / 2) * height
            label = {"x": xy[0], "y": xy[1], "xref": "x", "yref": "y", "axref": "x", "ayref": "y", "ax": lx,
                     "ay": ly, "text": self.customer_label, "showarrow": True, "arrowhead": 0, "arrowwidth": 1.5,
                     "arrowcolor": CUSTOMER_COLOUR, "standoff": 10, "bgcolor": "rgba(255,255,255,0.95)",
                     "bordercolor": CUSTOMER_COLOUR, "borderwidth": 1, "borderpad": 3,
                     "font": {"size": 13, "color": CUSTOMER_COLOUR}}
            layout = {**fig["layout"], "annotations": [*fig["layout"].get("annotations", ()), label],
                      "xaxis": {**fig["layout"].get("xaxis", {}), "range": x_range, "autorange": False},
                      "yaxis": {**fig["layout"].get("yaxis", {}), "range": y_range, "autorange": False}}
            fig = {**fig, "data": [*fig["data"], star], "layout": layout}
        return PlotData(type="plotly", plot=json.dumps(fig))


def build_pca_plot(service: SegmentationService, texts: AppTexts) -> PcaPlot:
    """The training customers (the model card's PCA sample) on the first two principal
    components, coloured by segment, the axes named by what drives them."""
    import plotly.graph_objects as go

    pca = service.card["pca"]
    sample = pca["sample"]
    components = pca["components"]
    fig = go.Figure()
    for info in service.segments():
        idx = [i for i, k in enumerate(sample["segment_key"]) if k == info.key]
        fig.add_trace(go.Scatter(
            x=[round(sample["x"][i], 4) for i in idx], y=[round(sample["y"][i], 4) for i in idx], mode="markers",
            name=info.name,
            marker={"size": 6, "opacity": 0.85, "color": SEGMENT_PALETTE.get(info.key, FALLBACK_COLOUR)},
            hovertemplate=f"{info.name}<extra></extra>",
        ))
    x_drivers, y_drivers = axis_drivers(components[0], texts.plot), axis_drivers(components[1], texts.plot)
    fig.update_layout(
        template="plotly_white", height=MAP_HEIGHT, margin={"l": 44, "r": 12, "t": 12, "b": 10},
        # the legend below the map: at the top it wrapped under the toolbar on a phone
        legend={"orientation": "h", "yanchor": "top", "y": -0.14, "xanchor": "left", "x": 0, "font": {"size": 12}},
        xaxis={"title": {"text": texts.plot.axis.format(drivers=x_drivers), "standoff": 6}, "automargin": True,
               "zeroline": False, "showticklabels": False},
        yaxis={"title": {"text": texts.plot.axis.format(drivers=y_drivers), "standoff": 6}, "automargin": True,
               "zeroline": False, "showticklabels": False},
        font={"size": 13},
    )
    base = json.loads(fig.to_json())
    # the toolbar: only what helps a marketer (zoom, pan, reset, download), no plotly logo
    base["config"] = {"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}
    what = texts.plot.what.format(n=f"{len(sample['x']):,}", x_drivers=x_drivers, y_drivers=y_drivers)
    points = tuple(zip((float(v) for v in sample["x"]), (float(v) for v in sample["y"]), strict=True))
    return PcaPlot(base=base, customer_label=texts.plot.customer, customer_hover=texts.plot.customer_hover,
                   what=what, points=points)


def result_plot(service: SegmentationService, plot: PcaPlot, result: SegmentResult) -> PlotData:
    """The plot with ``result``'s customer marked."""
    xy = service.project(CustomerProfile.model_validate(result.customer))
    return plot.figure(xy, result.segment_name)


def map_caption(texts: AppTexts, plot: PcaPlot, heading: str, result: Mapping[str, Any] | None = None) -> str:
    """The map's heading and what it is; with a result, which segment the star is in and, for a
    borderline customer, that it sits between two segments. ``result`` is a ``SegmentResult`` as JSON."""
    lines = [f"### {heading}", plot.what]
    if result and "segment_name" in result:
        p = texts.plot
        lines[-1] += " " + p.customer_line.format(segment_name=result["segment_name"])
        confidence = result.get("confidence") or {}
        if confidence.get("level") == "borderline":
            lines.append(p.borderline_line.format(segment_name=result["segment_name"],
                                                  runner_up_name=confidence.get("runner_up_name", "")))
    return "\n\n".join(lines)
