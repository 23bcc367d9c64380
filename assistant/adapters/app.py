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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import gradio as gr
from gradio.components.plot import PlotData
from pydantic import Field

from assistant.adapters.segments_tab import segment_profiles_section
from assistant.conversation.dialogue import Dialogue
from assistant.conversation.state import DialogueState
from assistant.core.errors import InvalidProfileError
from assistant.core.fields import FIELD_NAMES, FIELDS
from assistant.core.paths import default_knowledge_dir
from assistant.core.schemas import CustomerProfile, SegmentResult, parse_profile
from assistant.core.settings import Settings
from assistant.core.texts import Placeholders, StrictModel, TextModel, validate_yaml
from assistant.model.plots import SEGMENT_COLOURS

if TYPE_CHECKING:
    from assistant.model.segmentation import SegmentationService

APP_TEXTS_FILE = "app.yaml"
CUSTOMER_COLOUR = "#111827"
CUSTOMER_FILL = "#FACC15"
ECHO_CHARS = 200  # how much of an over-long message is echoed into the chat
NARROW_BLOCK = 320  # px: side-by-side blocks narrower than this wrap onto their own line

# ---------------------------------------------------------------------------- texts (knowledge/app.yaml)


class ChatTexts(TextModel):
    label: str
    input_label: str
    placeholder: str
    send: str
    clear: str
    examples_label: str
    examples: list[str] = Field(min_length=1, max_length=6)


class FormTexts(TextModel):
    heading: str
    help: str
    field_label: str
    field_info: str
    button: str
    placeholder: str
    result_label: str
    error_intro: str
    problem_line: str
    missing_line: str

    placeholders: ClassVar[Placeholders] = {
        "field_label": {"label", "unit"}, "field_info": {"minimum", "maximum", "description"},
        "problem_line": {"label", "problem"}, "missing_line": {"label"},
    }


class PlotTexts(TextModel):
    label: str
    x_axis: str
    y_axis: str
    customer: str
    customer_hover: str

    placeholders: ClassVar[Placeholders] = {"x_axis": {"share"}, "y_axis": {"share"}, "customer_hover": {"segment_name"}}


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
    plot: PlotTexts
    segments: SegmentsTexts


def load_app_texts(knowledge_dir: str | Path | None = None) -> AppTexts:
    """Read and validate ``app.yaml`` (KnowledgeBaseError naming file and field when it is wrong)."""
    directory = Path(knowledge_dir) if knowledge_dir is not None else default_knowledge_dir()
    return validate_yaml(directory / APP_TEXTS_FILE, AppTexts)


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
                            for key, colour in SEGMENT_COLOURS.items())

APP_CSS = """
/* width: with auto margins the container would size to its content, and one wide table made the
   whole page scroll sideways in a narrow window (a portal iframe) */
.gradio-container { width: 100% !important; max-width: 1320px !important; margin: 0 auto !important; }
#app-header { padding: 6px 2px 2px; }
#app-header h1 { margin: 0 0 4px; font-size: 1.65rem; }
#app-header p { margin: 0; color: var(--body-text-color-subdued); font-size: 1rem; }
#form-heading h3, #plot-heading h3 { margin: 0 0 2px; }
#form-heading p { margin: 0; color: var(--body-text-color-subdued); font-size: .9rem; }
#chat table, #form-result table {
  border-collapse: collapse !important; border: none !important; width: 100%; font-size: .9rem; margin: 6px 0 10px;
}
#chat tr, #form-result tr { border: none !important; }
#chat th, #chat td, #form-result th, #form-result td {
  padding: 4px 10px !important; border: none !important; border-bottom: 1px solid var(--border-color-primary) !important;
}
#chat th, #chat td, #form-result th, #form-result td { overflow-wrap: normal !important; word-break: normal !important; }
#chat td:not(:first-child), #chat th:not(:first-child), #form-result td:not(:first-child),
#form-result th:not(:first-child) { text-align: right !important; font-variant-numeric: tabular-nums; }
/* numbers with their unit stay on one line; headers (long segment names) may wrap */
#chat td:not(:first-child), #form-result td:not(:first-child) { white-space: nowrap; }
#chat td:first-child, #form-result td:first-child { min-width: 7.5em; }
/* a table never widens the chat bubble or the page: it scrolls sideways inside it instead */
#chat table, #form-result table { display: block; max-width: 100%; overflow-x: auto; }
@media (max-width: 640px) {
  /* narrow windows and portal iframes: values may wrap ("6.1 / visits/month") */
  #chat td:not(:first-child), #form-result td:not(:first-child) { white-space: normal; }
  #chat td:first-child, #form-result td:first-child { min-width: 6em; }
  #chat th, #chat td, #form-result th, #form-result td { padding: 4px 6px !important; }
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
#pca-plot { min-height: 480px; }
.segment-card h3 { margin-top: 0; }
#segment-averages, #selection-table, #batch-table { --font-mono: var(--font); font-size: .9rem; }
#send, #segment-btn { min-width: 120px; }
""" + _SEGMENT_CARD_CSS

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
  };
  setTimeout(place, 50);
  setTimeout(place, 300);
}"""

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


@dataclass(frozen=True, slots=True)
class PcaPlot:
    """The PCA scatter of the training customers, built once per app as plain JSON; marking a
    customer appends one trace (no plotly validation per request: about 1 ms instead of 15)."""

    base: dict[str, Any]
    customer_label: str
    customer_hover: str

    def figure(self, xy: tuple[float, float] | None = None, segment_name: str = "") -> PlotData:
        fig = self.base
        if xy is not None:
            star = {
                "type": "scatter", "x": [xy[0]], "y": [xy[1]], "mode": "markers+text", "name": self.customer_label,
                "text": [self.customer_label], "textposition": "top center",
                "textfont": {"size": 15, "color": CUSTOMER_COLOUR},
                "marker": {"symbol": "star", "size": 28, "color": CUSTOMER_FILL,
                           "line": {"width": 2, "color": CUSTOMER_COLOUR}},
                "hovertemplate": self.customer_hover.format(segment_name=segment_name) + "<extra></extra>",
                "cliponaxis": False,
            }
            fig = {**fig, "data": [*fig["data"], star]}
        return PlotData(type="plotly", plot=json.dumps(fig))


def build_pca_plot(service: SegmentationService, texts: AppTexts) -> PcaPlot:
    """The training customers (the model card's PCA sample) on the first two principal
    components, coloured by segment with ``SEGMENT_COLOURS``."""
    import plotly.graph_objects as go

    pca = service.card["pca"]
    sample = pca["sample"]
    evr = pca["explained_variance_ratio"]
    fig = go.Figure()
    for info in service.segments():
        idx = [i for i, k in enumerate(sample["segment_key"]) if k == info.key]
        fig.add_trace(go.Scatter(
            x=[round(sample["x"][i], 4) for i in idx], y=[round(sample["y"][i], 4) for i in idx], mode="markers",
            name=info.name, marker={"size": 6, "opacity": 0.55, "color": SEGMENT_COLOURS.get(info.key)},
            hovertemplate=f"{info.name}<extra></extra>",
        ))
    fig.update_layout(
        template="plotly_white", height=480, margin={"l": 60, "r": 20, "t": 40, "b": 55},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.01, "xanchor": "left", "x": 0, "font": {"size": 13}},
        xaxis_title=texts.plot.x_axis.format(share=_percent(evr[0])),
        yaxis_title=texts.plot.y_axis.format(share=_percent(evr[1])),
        font={"size": 13},
    )
    return PcaPlot(base=json.loads(fig.to_json()), customer_label=texts.plot.customer,
                   customer_hover=texts.plot.customer_hover)


def result_plot(service: SegmentationService, plot: PcaPlot, result: SegmentResult) -> PlotData:
    """The plot with ``result``'s customer marked."""
    xy = service.project(CustomerProfile.model_construct(**result.customer))
    return plot.figure(xy, result.segment_name)


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


def chat_turn(message: str | None, session: ChatSession | None, *, dialogue: Dialogue,
              service: SegmentationService, plot: PcaPlot, settings: Settings):
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
                                 {"role": "assistant", "content": turn.render(escape_user_text)})
    session = ChatSession(state=turn.state, history=history)
    figure = result_plot(service, plot, turn.result) if turn.result is not None else gr.skip()
    return list(history), session, figure, turn.as_json()


def clear_chat(*, dialogue: Dialogue, plot: PcaPlot):
    """A new conversation: (history, session, plot without a customer, empty JSON)."""
    session = start_session(dialogue)
    return list(session.history), session, plot.figure(), None


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


def segment_form(*, service: SegmentationService, dialogue: Dialogue, texts: AppTexts, plot: PcaPlot,
                 **values: Any):
    """Score the form: ``values`` are the seven fields by name. Returns (answer Markdown, plot, JSON).

    The values arrive raw (``preprocess=False``) so that our validation, not Gradio's, judges
    them: ``None`` (an empty box) is "age is required", 250 for age is "age=250 is above the
    maximum of 110". The JSON is the ``SegmentResult`` or ``{"detail": [problems]}``."""
    try:
        profile = parse_profile(values)
    except InvalidProfileError as exc:
        return problems_markdown(texts, exc.problems), plot.figure(), {"detail": exc.problems}
    result = service.assign(profile)
    return dialogue.render(result), result_plot(service, plot, result), result.model_dump(mode="json")


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
    # Gradio 6 shows an empty Number as 0, so the boxes start at the field's example value (a
    # realistic customer); a box the user empties arrives as None ("... is required").
    return gr.Number(
        value=int(spec.example) if spec.integer else spec.example,
        label=field_label(spec, texts),
        info=texts.form.field_info.format(minimum=field_range(spec)[0], maximum=field_range(spec)[1],
                                          description=spec.description),
        minimum=spec.minimum, maximum=spec.maximum, step=1 if spec.integer else 100,
        elem_id=f"field-{spec.name}",
    )


def _assistant_tab(service: SegmentationService, settings: Settings, dialogue: Dialogue, texts: AppTexts) -> None:
    greeting = start_session(dialogue)
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=420):
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
            with gr.Row():
                send = gr.Button(texts.chat.send, variant="primary", elem_id="send", scale=3)
                clear = gr.Button(texts.chat.clear, variant="secondary", elem_id="clear", scale=1, min_width=150)
            gr.Examples(examples=[[e] for e in texts.chat.examples], inputs=[chat_input],
                        label=texts.chat.examples_label, cache_examples=False, examples_per_page=6)
        with gr.Column(scale=4, min_width=340):
            gr.Markdown(f"### {texts.form.heading}\n{texts.form.help}", elem_id="form-heading")
            numbers = [_field_number(spec, texts) for spec in FIELDS]
            segment_btn = gr.Button(texts.form.button, variant="primary", elem_id="segment-btn")
            form_result = gr.Markdown(texts.form.placeholder, label=texts.form.result_label, elem_id="form-result",
                                      latex_delimiters=[], sanitize_html=True)
    pca = build_pca_plot(service, texts)
    gr.Markdown(f"### {texts.plot.label}", elem_id="plot-heading")
    plot = gr.Plot(value=pca.figure(), label=texts.plot.label, show_label=False, elem_id="pca-plot")
    # The structured result for API clients; not shown in the page.
    result_json = gr.JSON(visible=False, label=texts.result_json_label, elem_id="result-json")
    session = gr.State(None)

    chat = functools.partial(chat_turn, dialogue=dialogue, service=service, plot=pca, settings=settings)
    chat_events = dict(fn=chat, inputs=[chat_input, session], outputs=[chatbot, session, plot, result_json],
                       show_progress="hidden")
    clear_input = dict(fn=None, inputs=None, outputs=[chat_input], js="() => ''", queue=False)
    show_answer = dict(fn=None, inputs=None, outputs=None, js=SHOW_ANSWER_JS, queue=False)
    # One public endpoint /chat (the Send button is the same handler, kept out of the API).
    chat_input.submit(**chat_events, api_name="chat", api_visibility="public").then(**clear_input).then(**show_answer)
    send.click(**chat_events, api_name="chat_send", api_visibility="private").then(**clear_input).then(**show_answer)
    restart = dict(fn=functools.partial(clear_chat, dialogue=dialogue, plot=pca), inputs=None,
                   outputs=[chatbot, session, plot, result_json], api_visibility="private", show_progress="hidden")
    clear.click(**restart, api_name="clear").then(**clear_input)
    # The Chatbot's own trash button empties the view; without this the conversation would carry
    # on behind it (and come back with the next reply). It starts over, like the button.
    chatbot.clear(**restart, api_name="clear_trash").then(**clear_input)

    segment_btn.click(
        functools.partial(segment_form, service=service, dialogue=dialogue, texts=texts, plot=pca),
        inputs_kwargs=dict(zip(FIELD_NAMES, numbers)),  # the API takes age=..., income=..., ...
        outputs=[form_result, plot, result_json], api_name="segment", api_visibility="public",
        preprocess=False,  # our validation judges the raw numbers (see segment_form)
        show_progress="hidden",
    )


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
                _assistant_tab(service, settings, dialogue, texts)
            with gr.Tab(texts.tabs.segments, id="segments"):
                _segments_tab(service, texts)
            for add_tab in extra_tabs:
                add_tab(service, settings)
    # Gradio 6 runs each event one at a time unless told otherwise (default_concurrency_limit=1).
    # Our handlers are pure CPU and short (the form about 0.5 ms, a chat turn about 1 ms, most of
    # it serialising the plot), hold no locks and share only the read-only service and dialogue,
    # so many sessions may run them at once; a limit of 1 would make every user queue behind
    # every other one. settings.concurrency_limit bounds the worker threads they occupy.
    demo.queue(default_concurrency_limit=settings.concurrency_limit)
    # Gradio's default of 10,000 sessions at ~150 KB each would let memory grow by ~1.5 GB.
    demo.state_session_capacity = settings.max_ui_sessions
    return demo
