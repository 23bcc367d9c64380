"""The Gradio app: a chat and a form over one segmentation service, plus a Segments tab.

``build_app(service, settings=..., dialogue=..., extra_tabs=...)`` returns a ``gr.Blocks``; it
does not launch it. ``assistant.adapters.web`` mounts it into FastAPI with ``theme=APP_THEME`` and
``css=APP_CSS`` (Gradio 6 takes both at launch/mount time, not in ``gr.Blocks``).

* Every handler is a module-level function; ``build_app`` binds the service, the dialogue and
  the texts with ``functools.partial``. The module holds no mutable state: a browser tab's
  conversation lives in a ``gr.State`` (a :class:`ChatSession`), which Gradio keeps per session.
* Chat and form share one path to the model: the chat goes through the dialogue (which
  validates what it parses); the form builds a dict and validates it with ``parse_profile``.
  ``InvalidProfileError`` is turned into a message in ONE place, :func:`problems_markdown`.
* Escaping user text for the Markdown chat happens here, and only here: the user's message is
  escaped (:func:`escape_user_text`) before it enters the chat history, and so are the user's
  words the dialogue quotes back in a reply (``Turn.render(escape_user_text)``: the dialogue marks
  them and keeps them plain for the terminal, ``chat --json`` and the REST API). Typed Markdown or
  HTML shows as the literal text. ``escape_markdown`` is the lighter inline form, for the form's
  problem lines.
* All texts come from ``knowledge/app.yaml`` (:class:`AppTexts`), the replies from the dialogue.

Named endpoints (``gradio_client``):

* ``/segment``: the seven values in field order -> (answer Markdown, plot, result JSON). The
  JSON is ``SegmentResult`` (``segment_key`` and ``segment_name`` at the top level) or
  ``{"detail": [problems]}``. Stateless.
* ``/chat``: one message -> (chat history, plot, turn JSON). The conversation is the hidden
  ``gr.State`` of the client's session: one ``Client`` instance is one conversation (its
  ``session_hash``); a new ``Client`` starts a new one. A message with all seven values gets
  the answer in a single call, so one-shot use is stateless in practice.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import gradio as gr
from gradio.components.plot import PlotData
from pydantic import Field, model_validator

from assistant.adapters.result_card import CARD_CSS, CardTexts, answer_html
from assistant.adapters.segments_tab import segment_profiles_section
from assistant.conversation.dialogue import Dialogue
from assistant.conversation.render import result_sections
from assistant.conversation.state import DialogueState, Turn
from assistant.conversation.texts import DialogueTexts
from assistant.core.errors import InvalidProfileError
from assistant.core.fields import AMBIGUOUS_DOT, FIELD_NAMES, FIELDS
from assistant.core.paths import default_knowledge_dir
from assistant.core.schemas import CustomerProfile, SegmentResult, parse_profile
from assistant.core.settings import Settings
from assistant.core.texts import Placeholders, StrictModel, TextModel, validate_yaml
from assistant.insights.summaries import evidence_by_segment
from assistant.model.plots import SEGMENT_COLOURS

if TYPE_CHECKING:
    from assistant.model.segmentation import SegmentationService

APP_TEXTS_FILE = "app.yaml"
CUSTOMER_COLOUR = "#111827"
CUSTOMER_FILL = "#FACC15"
MIN_CONTRAST = 3.5          # against white, for every segment's colour (WCAG's minimum for graphics)
MAP_HEIGHT = 440            # px
DRIVER_SHARE = 0.8          # a second field names a map axis when it loads at least this share of the first
# The customer's label sits in a band kept free above every dot (LABEL_BAND of the dots' height), never on
# a dot, its centre at least LABEL_HALF_WIDTH of the map's width from either side (it fits on a phone).
MAP_PAD = 0.04
LABEL_BAND = 0.16
LABEL_HALF_WIDTH = 0.2
ECHO_CHARS = 200  # how much of an over-long message is echoed into the chat
NARROW_BLOCK = 320  # px: side-by-side blocks narrower than this wrap onto their own line

# ---------------------------------------------------------------------------- texts (knowledge/app.yaml)


class ChatTexts(TextModel):
    label: str
    input_label: str
    placeholder: str
    send: str
    clear: str
    use_in_form: str
    examples_label: str
    examples: list[str] = Field(min_length=1, max_length=6)


class FormTexts(TextModel):
    heading: str
    help: str
    field_label: str
    field_info: str
    field_placeholder: str
    button: str
    discuss: str
    discuss_message: str
    discuss_value: str
    placeholder: str
    result_label: str
    error_intro: str
    problem_line: str
    missing_line: str

    placeholders: ClassVar[Placeholders] = {
        "field_label": {"label", "unit"}, "field_info": {"minimum", "maximum", "description"},
        "field_placeholder": {"example"}, "discuss_message": {"values"}, "discuss_value": {"label", "value"},
        "problem_line": {"label", "problem"}, "missing_line": {"label"},
    }


class PlotTexts(TextModel):
    label: str
    chat_heading: str
    form_heading: str
    what: str
    customer_line: str
    borderline_line: str
    axis: str
    axis_and: str
    axis_up: dict[str, str]
    axis_down: dict[str, str]
    customer: str
    customer_hover: str

    placeholders: ClassVar[Placeholders] = {
        "what": {"n", "x_drivers", "y_drivers"}, "customer_line": {"segment_name"},
        "borderline_line": {"segment_name", "runner_up_name"}, "axis": {"drivers"},
        "customer_hover": {"segment_name"},
    }

    @model_validator(mode="after")
    def _every_field(self) -> PlotTexts:
        for name in ("axis_up", "axis_down"):
            keys = set(getattr(self, name))
            if keys != set(FIELD_NAMES):
                raise ValueError(f"{name} must name each field once: {', '.join(FIELD_NAMES)} "
                                 f"(missing: {', '.join(sorted(set(FIELD_NAMES) - keys)) or 'none'}; "
                                 f"unknown: {', '.join(sorted(keys - set(FIELD_NAMES))) or 'none'})")
        return self


class SelectionColumns(StrictModel):
    k: str
    inertia: str
    silhouette: str
    calinski_harabasz: str
    davies_bouldin: str
    stability: str


class SegmentsTexts(TextModel):
    heading: str
    intro: str
    size: str
    characteristics: str
    strategy: str
    channels: str
    kpi: str
    averages_heading: str
    averages_label: str
    profiles_heading: str
    profiles_intro: str
    field_column: str
    overall_column: str
    size_row: str
    selection_heading: str
    selection_intro: str
    elbow_label: str
    silhouette_label: str
    selection_label: str
    selection_columns: SelectionColumns

    placeholders: ClassVar[Placeholders] = {
        "intro": {"n", "k_reason"}, "size": {"size", "share"}, "selection_intro": {"k", "k_reason", "elbow"},
    }


class TabTexts(StrictModel):
    assistant: str
    segments: str


class AppTexts(StrictModel):
    """The validated contents of ``knowledge/app.yaml``."""

    title: str = Field(min_length=1)
    intro: str = Field(min_length=1)
    result_json_label: str = Field(min_length=1)
    tabs: TabTexts
    chat: ChatTexts
    form: FormTexts
    card: CardTexts
    plot: PlotTexts
    segments: SegmentsTexts


def load_app_texts(knowledge_dir: str | Path | None = None) -> AppTexts:
    """Read and validate ``app.yaml`` (KnowledgeBaseError naming file and field when it is wrong)."""
    directory = Path(knowledge_dir) if knowledge_dir is not None else default_knowledge_dir()
    return validate_yaml(directory / APP_TEXTS_FILE, AppTexts)


# ---------------------------------------------------------------------------- colours


def _luminance(colour: str) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast_on_white(colour: str) -> float:
    """The WCAG contrast ratio of ``colour`` (``#RRGGBB``) against white."""
    return 1.05 / (_luminance(colour) + 0.05)


def readable_colour(colour: str, minimum: float = MIN_CONTRAST) -> str:
    """``colour``, darkened just enough to reach ``minimum`` contrast against white (WCAG asks 3:1
    for graphics): the segments keep their hue everywhere, and the light ones become visible."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    out = colour.upper()
    factor = 1.0
    while contrast_on_white(out) < minimum and factor > 0:
        factor -= 0.02
        out = "#" + "".join(f"{round(c * factor):02X}" for c in (r, g, b))
    return out


SEGMENT_PALETTE = {key: readable_colour(colour) for key, colour in SEGMENT_COLOURS.items()}
"""The segments' colours in the app (map, result card, Segments tab): the plot colours with enough contrast."""
FALLBACK_COLOUR = "#4B5563"

# ---------------------------------------------------------------------------- look (for launch / mount)

APP_THEME = gr.themes.Soft(
    primary_hue="indigo", secondary_hue="slate", neutral_hue="slate", radius_size="md",
    font=["Inter", "ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
).set(
    # plain field titles instead of the theme's tinted pills: seven pills in a column are noisy
    block_title_background_fill="transparent", block_title_text_color="*neutral_800", block_title_padding="0",
    block_label_background_fill="transparent", block_label_text_color="*neutral_600",
    body_text_color_subdued="*neutral_500", button_large_text_size="*text_md",
)

# One coloured top edge per segment card, in the segment's plot colour.
_SEGMENT_CARD_CSS = "".join(f"#segment-{key} {{ border-top: 4px solid {colour} !important; }}\n"
                            for key, colour in SEGMENT_PALETTE.items())

APP_CSS = """
/* width: with auto margins the container would size to its content, and one wide table made the
   whole page scroll sideways in a narrow window (a portal iframe) */
.gradio-container { width: 100% !important; max-width: 1320px !important; margin: 0 auto !important; }
#app-header { padding: 6px 2px 2px; }
#app-header h1 { margin: 0 0 4px; font-size: 1.65rem; }
#app-header p { margin: 0; color: var(--body-text-color-subdued); font-size: 1rem; }
#form-heading h3, .map-caption h3 { margin: 0 0 2px; }
.map-caption p { margin: 2px 0 0; font-size: .9rem; color: var(--body-text-color-subdued); }
.map-caption strong { color: var(--body-text-color); }
#form-heading p { margin: 0; color: var(--body-text-color-subdued); font-size: .9rem; }
#chat table, #form-result table {
  border-collapse: collapse !important; border: none !important; width: 100%; font-size: .9rem; margin: 6px 0 10px;
}
#chat tr, #form-result tr { border: none !important; }
#chat th, #chat td, #form-result th, #form-result td {
  padding: 4px 10px !important; border: none !important;
  border-bottom: 1px solid var(--border-color-primary) !important;
}
#chat th, #chat td, #form-result th, #form-result td {
  overflow-wrap: normal !important; word-break: normal !important;
}
#chat td:not(:first-child), #chat th:not(:first-child), #form-result td:not(:first-child),
#form-result th:not(:first-child) { text-align: right !important; font-variant-numeric: tabular-nums; }
/* numbers with their unit stay on one line; headers (long segment names) may wrap */
#chat td:not(:first-child), #form-result td:not(:first-child) { white-space: nowrap; }
#chat td:first-child, #form-result td:first-child { min-width: 7.5em; }
/* a table never widens the chat bubble or the page: it fits (cells wrap); only a table too wide even
   then scrolls sideways inside its bubble */
#chat table, #form-result table { display: table; table-layout: auto; max-width: 100%; }
#chat .message-content, #chat .prose, #form-result .prose { max-width: 100%; min-width: 0; overflow-wrap: anywhere; }
@media (max-width: 640px) {
  /* narrow windows and portal iframes: values and headers may wrap */
  #chat td:not(:first-child), #form-result td:not(:first-child) { white-space: normal; }
  #chat td:first-child, #form-result td:first-child { min-width: 0; }
  #chat th, #chat td, #form-result th, #form-result td { padding: 3px 5px !important; font-size: .85rem; }
  /* the chat's buttons on one line, the chat a little shorter than the screen */
  #chat-buttons button { min-width: 0 !important; padding-left: 6px; padding-right: 6px; }
  #chat { height: min(700px, calc(100svh - 110px)) !important; }
}
#chat th, #form-result th { background: var(--background-fill-secondary); font-weight: 600; vertical-align: bottom; }
/* the segment's name heads the answer: make it the most visible line of it */
#chat h3, #form-result h3 { font-size: 1.3rem !important; font-weight: 700; color: var(--primary-700) !important;
  margin: .5em 0 .25em !important; }
#form-result {
  border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 12px 16px;
  background: var(--background-fill-primary); min-height: 60px;
}
#form-result h3 { margin-top: .2em; }
.segment-map { min-height: 440px; }
.segment-card h3 { margin-top: 0; }
#segment-averages, #selection-table, #batch-table { --font-mono: var(--font); font-size: .9rem; }
#send, #segment-btn { min-width: 120px; }
""" + CARD_CSS + _SEGMENT_CARD_CSS + """
@media (max-width: 640px) {
  /* the page's side padding and the bubbles' side margins would leave a phone's answer 260 px wide */
  /* (Gradio scopes this CSS inside the page's padded container, so it is undone from inside) */
  #app-header, .tabs:has(#chat) { margin-left: -24px !important; margin-right: -24px !important;
    width: calc(100% + 48px) !important; max-width: none !important; }
  #chat .message-row.bubble { margin: 8px 4px !important; max-width: calc(100% - 8px) !important; }
  #chat .message-row.bubble.bot-row { margin-right: 30px !important; max-width: calc(100% - 34px) !important; }
  #chat .message.bot, #chat .message.user { padding: 4px 8px !important; }
  #app-header h1 { font-size: 1.35rem; }
  #app-header p { font-size: .9rem; }
  .result-card { padding: 8px 9px; }
  .result-card .rc-row { grid-template-columns: minmax(5em, 7.4em) minmax(48px, 1fr) auto; gap: 5px;
    font-size: .78rem; padding: 1px 0; }
  .result-card .rc-name { font-size: 1.15rem; }
  .result-card .rc-summary, .result-card ol.rc-tactics { font-size: .92rem; }
  .result-card .rc-strategy { font-size: .95rem; }
  .result-card .rc-legend { gap: 0 10px; }
}
"""

# The Chatbot's own autoscroll is off (it always lands on the LAST line, and a full result is
# several screens tall: the user would see "What the data says", not the segment's name). After
# each chat turn this scrolls the conversation instead: a long reply is shown from its top, a
# short one to the end, as usual. It runs twice because the reply's Markdown renders a moment
# after the event ends.
SHOW_ANSWER_JS = """() => {
  const place = () => {
    const log = document.querySelector('#chat [role="log"]');
    const bots = document.querySelectorAll('#chat [data-testid="bot"]');
    if (!log || !bots.length) return;
    const last = bots[bots.length - 1];
    let top = log.scrollHeight;
    if (last.offsetHeight > log.clientHeight * 0.8) {
      top = last.getBoundingClientRect().top - log.getBoundingClientRect().top + log.scrollTop - 8;
    }
    log.scrollTo({top: Math.max(0, top)});
    // a phone, or a short window: bring the chat itself into view when a long answer came in
    const box = document.querySelector('#chat').getBoundingClientRect();
    if (last.offsetHeight > log.clientHeight * 0.8 && (box.top < 0 || box.top > window.innerHeight * 0.4)) {
      window.scrollBy({top: box.top - 4});
    }
  };
  setTimeout(place, 50);
  setTimeout(place, 300);
}"""

def _show_js(selector: str) -> str:
    """JS that scrolls the page so ``selector``'s top is in view (when it is not already in the top half)."""
    return ("() => { const el = document.querySelector('" + selector + "'); if (!el) return;"
            " const top = el.getBoundingClientRect().top;"
            " if (top < 0 || top > window.innerHeight * 0.5) window.scrollBy({top: top - 8}); }")


SHOW_FORM_RESULT_JS = _show_js("#form-result")   # the form's answer, after "Segment this customer"
SHOW_FORM_JS = _show_js("#form-heading")         # the form, after "Use in form"
SHOW_CHAT_JS = _show_js("#chat")                 # the chat, after "Discuss in chat"
EMPTY_FORM_JS = "() => [" + ", ".join(["null"] * len(FIELDS)) + "]"

# ---------------------------------------------------------------------------- escaping

# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that can start
# Markdown syntax. <, > and & become entities, which renders them as text and stops raw HTML.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$=:^\"'])")


def escape_user_text(text: str) -> str:
    """User text for a Markdown view: shown literally, never rendered as Markdown or HTML."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return escaped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]#|~$])")


def escape_markdown(text: str) -> str:
    """Text made inert inside a Markdown line: Markdown specials backslashed, HTML escaped."""
    return html.escape(_INLINE_SPECIAL.sub(r"\\\1", text), quote=True)


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
    xy = service.project(CustomerProfile.model_construct(**result.customer))
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


# ---------------------------------------------------------------------------- the answer as a card


@dataclass(frozen=True, slots=True)
class ResultView:
    """Turns a ``SegmentResult`` into the web view's answer: the result card, then the rest of the
    answer in collapsible sections (:mod:`assistant.adapters.result_card`). Built once per app."""

    dialogue_texts: DialogueTexts
    card: CardTexts
    evidence: Mapping[str, Sequence[str]]
    minimum: Mapping[str, float]
    maximum: Mapping[str, float]

    def html(self, result: SegmentResult) -> str:
        sections = result_sections(result, self.dialogue_texts, tuple(self.evidence.get(result.segment_key, ())))
        return answer_html(result, sections, self.card, minimum=self.minimum, maximum=self.maximum,
                           colour=SEGMENT_PALETTE.get(result.segment_key, FALLBACK_COLOUR))


def build_result_view(service: SegmentationService, dialogue: Dialogue, texts: AppTexts) -> ResultView:
    overall = service.card["overall"]
    return ResultView(dialogue_texts=dialogue.texts, card=texts.card, evidence=evidence_by_segment(service),
                      minimum=dict(overall["min"]), maximum=dict(overall["max"]))


# ---------------------------------------------------------------------------- handlers


@dataclass(frozen=True, slots=True)
class ChatSession:
    """One browser tab's conversation: the dialogue state and the history shown in the Chatbot."""

    state: DialogueState
    history: tuple[dict[str, str], ...]


def start_session(dialogue: Dialogue) -> ChatSession:
    """A new conversation: the dialogue's greeting as the first message."""
    turn = dialogue.greet(DialogueState())
    return ChatSession(state=turn.state, history=({"role": "assistant", "content": turn.reply},))


def chat_reply(turn: Turn, dialogue: Dialogue, view: ResultView) -> str:
    """The reply for the Chatbot: the user's words escaped, and a full result answer (as the
    dialogue renders it for the terminal) replaced by the result card and its collapsible details."""
    reply = turn.render(escape_user_text)
    if turn.result is not None:
        text = dialogue.render(turn.result)
        if text in reply:
            reply = reply.replace(text, view.html(turn.result), 1)
    return reply


def chat_turn(message: str | None, session: ChatSession | None, *, dialogue: Dialogue,
              service: SegmentationService, plot: PcaPlot, settings: Settings, view: ResultView):
    """Send one chat message. Returns (history, session, plot, turn JSON).

    A whitespace-only message changes nothing. The plot is redrawn only when the turn has a
    result (``gr.skip()`` otherwise)."""
    if session is None:
        session = start_session(dialogue)
    message = message or ""
    if not message.strip():
        return list(session.history), session, gr.skip(), gr.skip()
    turn = dialogue.respond(session.state, message)
    # The dialogue refuses an over-long message itself; we only keep the echo short.
    shown = message if len(message) <= settings.max_message_chars else message[:ECHO_CHARS] + "\u2026"
    history = session.history + ({"role": "user", "content": escape_user_text(shown)},
                                 {"role": "assistant", "content": chat_reply(turn, dialogue, view)})
    session = ChatSession(state=turn.state, history=history)
    figure = result_plot(service, plot, turn.result) if turn.result is not None else gr.skip()
    return list(history), session, figure, turn.as_json()


def clear_chat(*, dialogue: Dialogue, plot: PcaPlot):
    """A new conversation: (history, session, plot without a customer, empty JSON)."""
    session = start_session(dialogue)
    return list(session.history), session, plot.figure(), None


def chat_map_caption(turn_json: Mapping[str, Any] | None, *, texts: AppTexts, plot: PcaPlot):
    """The chat map's caption after a turn: from the turn's result; unchanged when it has none."""
    if turn_json is None:
        return map_caption(texts, plot, texts.plot.chat_heading)
    result = turn_json.get("result") if isinstance(turn_json, Mapping) else None
    return map_caption(texts, plot, texts.plot.chat_heading, result) if result else gr.skip()


def form_map_caption(result_json: Mapping[str, Any] | None, *, texts: AppTexts, plot: PcaPlot):
    """The form map's caption: the form's result (or none after a refused form)."""
    return map_caption(texts, plot, texts.plot.form_heading, result_json if isinstance(result_json, Mapping) else None)


def use_in_form(session: ChatSession | None):
    """The chat's current customer for the form's seven boxes (a value not known yet leaves its box
    empty). Nothing changes before the chat knows any value."""
    values = session.state.profile.as_dict() if session is not None else {}
    if not any(v is not None for v in values.values()):
        return tuple(gr.skip() for _ in FIELDS)
    return tuple(values[name] for name in FIELD_NAMES)


def _typed_number(value: float) -> str:
    """A form value written as the chat's parser reads it back exactly: ``45``, ``90000``, ``52000.5``
    (never ``71.125`` alone, which the parser refuses as ambiguous: ``71.1250``)."""
    number = float(value)
    if number.is_integer():
        return str(int(number))
    text = repr(number)
    return text + "0" if AMBIGUOUS_DOT.match(text) else text


def discuss_message(values: Sequence[float | None], texts: AppTexts) -> str:
    """The chat message that starts a new customer with the form's values ("" when the form is empty)."""
    given = [texts.form.discuss_value.format(label=spec.label.lower(), value=_typed_number(v))
             for spec, v in zip(FIELDS, values, strict=True) if v is not None]
    return texts.form.discuss_message.format(values=", ".join(given)) if given else ""


def discuss_in_chat(*values: Any, dialogue: Dialogue, service: SegmentationService, plot: PcaPlot,
                    settings: Settings, view: ResultView, texts: AppTexts):
    """Send the form's customer to the chat as a message: (history, session, plot, turn JSON). The last
    input is the chat's session; an empty form changes nothing."""
    *numbers, session = values
    message = discuss_message([v if isinstance(v, (int, float)) and not isinstance(v, bool) else None
                               for v in numbers], texts)
    if not message:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    return chat_turn(message, session, dialogue=dialogue, service=service, plot=plot, settings=settings, view=view)


def _problem_line(texts: AppTexts, problem: str) -> str:
    """One problem for a person reading the form: the field's label (as on the form) instead of
    its identifier. ``age=250 is above the maximum of 110`` -> **Age**: 250 is above the maximum of
    110; ``income is required`` -> the ``missing_line``. Anything else is shown as it is."""
    for spec in FIELDS:
        if problem == f"{spec.name} is required":
            return texts.form.missing_line.format(label=spec.label)
        if problem.startswith(f"{spec.name}="):
            return texts.form.problem_line.format(label=spec.label,
                                                  problem=escape_markdown(problem[len(spec.name) + 1:]))
    return escape_markdown(problem)


def problems_markdown(texts: AppTexts, problems: Sequence[str]) -> str:
    """The one place where an invalid profile becomes a message for a person."""
    return texts.form.error_intro + "\n\n" + "\n".join(f"- {_problem_line(texts, p)}" for p in problems)


def segment_form(*, service: SegmentationService, texts: AppTexts, plot: PcaPlot, view: ResultView, **values: Any):
    """Score the form: ``values`` are the seven fields by name. Returns (answer, plot, JSON): the answer
    is the result card and its collapsible details (HTML inside Markdown).

    The values arrive raw (``preprocess=False``) so that our validation, not Gradio's, judges
    them: ``None`` (an empty box) is "age is required", 250 for age is "age=250 is above the
    maximum of 110". The JSON is the ``SegmentResult`` or ``{"detail": [problems]}``."""
    try:
        profile = parse_profile(values)
    except InvalidProfileError as exc:
        return problems_markdown(texts, exc.problems), plot.figure(), {"detail": exc.problems}
    result = service.assign(profile)
    return view.html(result), result_plot(service, plot, result), result.model_dump(mode="json")


# ---------------------------------------------------------------------------- layout


def field_label(spec, texts: AppTexts) -> str:
    """The form's label for a field: with its unit, unless the label already says it
    ("Web purchases", not "Web purchases (purchases)"; "Age (years)")."""
    words = set(re.findall(r"[a-z]+", spec.label.lower()))
    unit_words = re.findall(r"[a-z]+", spec.unit.lower())
    if unit_words and all(w in words or w.rstrip("s") in words for w in unit_words):
        return spec.label
    return texts.form.field_label.format(label=spec.label, unit=spec.unit)


def field_range(spec) -> tuple[str, str]:
    """(minimum, maximum) for the form's help line: the unit once, on the maximum ("18", "110 years"),
    except money, which carries its sign on both ("$0", "$10,000,000")."""
    maximum = spec.format(spec.maximum)
    if spec.unit == "$":
        return spec.format(spec.minimum), maximum
    return f"{spec.minimum:,.0f}" if float(spec.minimum).is_integer() else f"{spec.minimum:,}", maximum


def _field_number(spec, texts: AppTexts) -> gr.Number:
    # Empty boxes with the field's example as a placeholder: a form that opens filled in is easily
    # sent by accident. An empty box arrives as None ("... is required").
    example = int(spec.example) if spec.integer else spec.example
    return gr.Number(
        value=None, placeholder=texts.form.field_placeholder.format(example=f"{example:g}"),
        label=field_label(spec, texts),
        info=texts.form.field_info.format(minimum=field_range(spec)[0], maximum=field_range(spec)[1],
                                          description=spec.description),
        minimum=spec.minimum, maximum=spec.maximum, step=1 if spec.integer else 100,
        elem_id=f"field-{spec.name}",
    )


def _map(plot: PcaPlot, texts: AppTexts, heading: str, prefix: str) -> tuple[gr.Markdown, gr.Plot]:
    caption = gr.Markdown(map_caption(texts, plot, heading), elem_id=f"{prefix}-map-caption",
                          elem_classes=["map-caption"], latex_delimiters=[])
    figure = gr.Plot(value=plot.figure(), label=heading, show_label=False, elem_id=f"{prefix}-map",
                     elem_classes=["segment-map"])
    return caption, figure


def _assistant_tab(service: SegmentationService, settings: Settings, dialogue: Dialogue,
                   texts: AppTexts) -> list[gr.Number]:
    """The chat and the form, each with its own answer and map. Returns the form's number boxes."""
    greeting = start_session(dialogue)
    pca = build_pca_plot(service, texts)
    view = build_result_view(service, dialogue, texts)
    with gr.Row(equal_height=False, elem_id="assistant-row"):
        with gr.Column(scale=5, min_width=420, elem_id="chat-column"):
            chatbot = gr.Chatbot(
                value=list(greeting.history), label=texts.chat.label, show_label=False, elem_id="chat", height=620,
                layout="bubble", latex_delimiters=[], sanitize_html=True, render_markdown=True,
                autoscroll=False,  # SHOW_ANSWER_JS scrolls instead
                feedback_options=None, buttons=["copy"], group_consecutive_messages=False,
            )
            # No autofocus: focusing the box on load scrolls a short window (a laptop, a portal's
            # iframe) down past the header, and the page then settles at the plot.
            chat_input = gr.Textbox(
                label=texts.chat.input_label, show_label=False, placeholder=texts.chat.placeholder, lines=1,
                max_lines=6, max_length=settings.max_message_chars, elem_id="chat-input",
            )
            with gr.Row(elem_id="chat-buttons"):
                send = gr.Button(texts.chat.send, variant="primary", elem_id="send", scale=2, min_width=90)
                to_form = gr.Button(texts.chat.use_in_form, variant="secondary", elem_id="use-in-form", scale=1,
                                    min_width=110)
                clear = gr.Button(texts.chat.clear, variant="secondary", elem_id="clear", scale=1, min_width=110)
            # the chat's map right after the chat, before the examples (on a phone: right after the answer)
            chat_caption, chat_plot = _map(pca, texts, texts.plot.chat_heading, "chat")
            gr.Examples(examples=[[e] for e in texts.chat.examples], inputs=[chat_input],
                        label=texts.chat.examples_label, cache_examples=False, examples_per_page=6)
        with gr.Column(scale=4, min_width=340, elem_id="form-column"):
            gr.Markdown(f"### {texts.form.heading}\n{texts.form.help}", elem_id="form-heading")
            numbers = [_field_number(spec, texts) for spec in FIELDS]
            with gr.Row(elem_id="form-buttons"):
                segment_btn = gr.Button(texts.form.button, variant="primary", elem_id="segment-btn", scale=2,
                                        min_width=150)
                to_chat = gr.Button(texts.form.discuss, variant="secondary", elem_id="discuss-in-chat", scale=1,
                                    min_width=130)
            form_result = gr.Markdown(texts.form.placeholder, label=texts.form.result_label, elem_id="form-result",
                                      latex_delimiters=[], sanitize_html=True)
            form_caption, form_plot = _map(pca, texts, texts.plot.form_heading, "form")
    # The structured results for API clients; not shown in the page. One per answer: the chat's and
    # the form's results (and maps) are separate.
    chat_json = gr.JSON(visible=False, label=texts.result_json_label, elem_id="chat-json")
    form_json = gr.JSON(visible=False, label=texts.result_json_label, elem_id="result-json")
    session = gr.State(None)

    chat = functools.partial(chat_turn, dialogue=dialogue, service=service, plot=pca, settings=settings, view=view)
    chat_outputs = [chatbot, session, chat_plot, chat_json]
    chat_events: dict[str, Any] = {"fn": chat, "inputs": [chat_input, session], "outputs": chat_outputs,
                                   "show_progress": "hidden"}
    clear_input: dict[str, Any] = {"fn": None, "inputs": None, "outputs": [chat_input], "js": "() => ''",
                                   "queue": False}
    show_answer: dict[str, Any] = {"fn": None, "inputs": None, "outputs": None, "js": SHOW_ANSWER_JS, "queue": False}
    chat_caption_event: dict[str, Any] = {
        "fn": functools.partial(chat_map_caption, texts=texts, plot=pca), "inputs": [chat_json],
        "outputs": [chat_caption], "api_visibility": "private", "show_progress": "hidden", "queue": False}
    # One public endpoint /chat (the Send button is the same handler, kept out of the API).
    for event, name, visibility in ((chat_input.submit, "chat", "public"), (send.click, "chat_send", "private")):
        (event(**chat_events, api_name=name, api_visibility=visibility)
         .then(**clear_input).then(**chat_caption_event).then(**show_answer))
    restart: dict[str, Any] = {"fn": functools.partial(clear_chat, dialogue=dialogue, plot=pca), "inputs": None,
                               "outputs": chat_outputs, "api_visibility": "private", "show_progress": "hidden"}
    clear.click(**restart, api_name="clear").then(**clear_input).then(**chat_caption_event)
    # The Chatbot's own trash button empties the view; without this the conversation would carry
    # on behind it (and come back with the next reply). It starts over, like the button.
    chatbot.clear(**restart, api_name="clear_trash").then(**clear_input).then(**chat_caption_event)

    segment_btn.click(
        functools.partial(segment_form, service=service, texts=texts, plot=pca, view=view),
        inputs_kwargs=dict(zip(FIELD_NAMES, numbers, strict=True)),  # the API takes age=..., income=..., ...
        outputs=[form_result, form_plot, form_json], api_name="segment", api_visibility="public",
        preprocess=False,  # our validation judges the raw numbers (see segment_form)
        show_progress="hidden",
    ).then(fn=functools.partial(form_map_caption, texts=texts, plot=pca), inputs=[form_json], outputs=[form_caption],
           api_visibility="private", show_progress="hidden", queue=False,
           ).then(fn=None, inputs=None, outputs=None, js=SHOW_FORM_RESULT_JS, queue=False)

    to_form.click(use_in_form, inputs=[session], outputs=numbers, api_name="use_in_form", api_visibility="private",
                  show_progress="hidden", queue=False,
                  ).then(fn=None, inputs=None, outputs=None, js=SHOW_FORM_JS, queue=False)
    to_chat.click(
        functools.partial(discuss_in_chat, dialogue=dialogue, service=service, plot=pca, settings=settings,
                          view=view, texts=texts),
        inputs=[*numbers, session], outputs=chat_outputs, api_name="discuss_in_chat", api_visibility="private",
        show_progress="hidden",
    ).then(**chat_caption_event).then(fn=None, inputs=None, outputs=None, js=SHOW_CHAT_JS, queue=False
                                      ).then(**show_answer)
    return numbers


def _segment_markdown(info, texts: AppTexts) -> str:
    s = texts.segments
    lines = [f"### {info.name}", f"**{s.size.format(size=f'{info.size:,}', share=_percent(info.share))}**", "",
             info.summary, "", f"**{s.characteristics}**", ""]
    lines += [f"- {c}" for c in info.characteristics]
    lines += ["", f"**{s.strategy}:** {info.strategy.headline}", ""]
    lines += [f"- {t}" for t in info.strategy.tactics]
    lines += ["", f"**{s.channels}:** {', '.join(info.strategy.channels)}  ", f"**{s.kpi}:** {info.strategy.kpi}"]
    return "\n".join(lines)


def averages_table(service: SegmentationService, texts: AppTexts):
    """Fields as rows, one column per segment plus all customers; values formatted in their unit."""
    import pandas as pd

    s = texts.segments
    segments = service.segments()
    overall = service.card["overall"]["mean"]
    rows = [[s.size_row] + [f"{info.size:,} ({_percent(info.share)})" for info in segments]
            + [f"{sum(i.size for i in segments):,}"]]
    for spec in FIELDS:
        # the values carry their unit ("2.2 purchases", "$33,809"), so the label goes without it
        rows.append([spec.label] + [spec.format(info.averages[spec.name]) for info in segments]
                    + [spec.format(overall[spec.name])])
    return pd.DataFrame(rows, columns=[s.field_column] + [i.name for i in segments] + [s.overall_column])


def selection_table(service: SegmentationService, texts: AppTexts):
    """The model card's model-selection scores by k, formatted for reading."""
    import pandas as pd

    columns = texts.segments.selection_columns
    formats = {"k": "{:d}", "inertia": "{:,.0f}", "silhouette": "{:.3f}", "calinski_harabasz": "{:,.1f}",
               "davies_bouldin": "{:.3f}", "stability": "{:.3f}"}
    rows = [[fmt.format(row[name]) for name, fmt in formats.items()] for row in service.card["selection"]]
    return pd.DataFrame(rows, columns=[getattr(columns, name) for name in formats])


def _segments_tab(service: SegmentationService, texts: AppTexts) -> None:
    """The Segments tab. Per-segment profile pages are to be added here (one place, by design)."""
    s = texts.segments
    card = service.card
    gr.Markdown(f"## {s.heading}\n" + s.intro.format(n=f"{card['data']['rows_kept']:,}", k_reason=card["k_reason"]))
    segments = service.segments()
    for row_start in range(0, len(segments), 2):
        with gr.Row(equal_height=True):
            for info in segments[row_start:row_start + 2]:
                # the column's min_width: in a narrow window the row wraps to one card per line
                with gr.Column(min_width=NARROW_BLOCK):
                    gr.Markdown(_segment_markdown(info, texts), elem_classes=["segment-card"],
                                elem_id=f"segment-{info.key}", container=True, padding=True)
    gr.Markdown(f"### {s.averages_heading}")
    gr.Dataframe(value=averages_table(service, texts), label=s.averages_label, interactive=False, wrap=True,
                 elem_id="segment-averages", show_label=False)
    # What marketing reads (each segment's profile) before how the number of segments was chosen.
    gr.Markdown(f"### {s.profiles_heading}\n{s.profiles_intro}", elem_id="profiles-heading")
    segment_profiles_section(service)  # a profile page per segment: product, channel and campaign mix
    gr.Markdown(f"### {s.selection_heading}\n"
                + s.selection_intro.format(k=card["k"], k_reason=card["k_reason"], elbow=card["elbow"]["k"]))
    plots = card.get("plots", {})
    with gr.Row():
        for name, label in (("elbow", s.elbow_label), ("silhouette", s.silhouette_label)):
            if name in plots and service.model_dir is not None and (service.model_dir / plots[name]).is_file():
                gr.Image(value=str(service.model_dir / plots[name]), label=label, type="filepath", format="png",
                         interactive=False, show_label=False, elem_id=f"plot-{name}", min_width=NARROW_BLOCK,
                         buttons=["download", "fullscreen"])
    gr.Dataframe(value=selection_table(service, texts), label=s.selection_label, interactive=False,
                 elem_id="selection-table")


def build_app(service: SegmentationService, *, settings: Settings | None = None, dialogue: Dialogue | None = None,
              extra_tabs: Sequence[Callable[[SegmentationService, Settings], None]] = ()) -> gr.Blocks:
    """The Gradio Blocks for ``service``. Not launched: see ``assistant.adapters.web`` (or ``demo.launch``
    with ``theme=APP_THEME, css=APP_CSS``). ``extra_tabs`` are called, in order, inside the Blocks
    after the built-in tabs, each with ``(service, settings)``, so each can add its own ``gr.Tab``."""
    settings = settings or Settings()
    dialogue = dialogue or Dialogue.create(service, knowledge_dir=settings.knowledge_dir,
                                           max_message_chars=settings.max_message_chars)
    texts = load_app_texts(settings.knowledge_dir)
    # Gradio keeps its own copies of uploads and downloads: every 10 minutes delete those older than 30.
    with gr.Blocks(title=texts.title, analytics_enabled=False, delete_cache=(600, 1800)) as demo:
        gr.Markdown(f"# {texts.title}\n{texts.intro}", elem_id="app-header")
        with gr.Tabs():
            with gr.Tab(texts.tabs.assistant, id="assistant"):
                numbers = _assistant_tab(service, settings, dialogue, texts)
            with gr.Tab(texts.tabs.segments, id="segments"):
                _segments_tab(service, texts)
            for add_tab in extra_tabs:
                add_tab(service, settings)
        # Gradio 6's Number shows an empty value as 0 when the page is built (its front end sets a missing
        # value to 0, placeholder or not); emptied once the page is loaded, the boxes show their placeholders.
        demo.load(fn=None, inputs=None, outputs=numbers, js=EMPTY_FORM_JS, queue=False, api_visibility="private")
    # Gradio 6 runs each event one at a time unless told otherwise (default_concurrency_limit=1).
    # Our handlers are pure CPU and short (the form about 0.5 ms, a chat turn about 1 ms, most of
    # it serialising the plot), hold no locks and share only the read-only service and dialogue,
    # so many sessions may run them at once; a limit of 1 would make every user queue behind
    # every other one. settings.concurrency_limit bounds the worker threads they occupy.
    demo.queue(default_concurrency_limit=settings.concurrency_limit)
    # Gradio's default of 10,000 sessions at ~150 KB each would let memory grow by ~1.5 GB.
    demo.state_session_capacity = settings.max_ui_sessions
    return demo
