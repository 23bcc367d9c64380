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
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from assistant.adapters.response_panel import response_section
from assistant.adapters.result_card import CardTexts, answer_html
from assistant.adapters.segments_tab import segment_profiles_section
from assistant.conversation.dialogue import Dialogue
from assistant.conversation.render import result_sections
from assistant.conversation.state import DialogueState, Turn
from assistant.conversation.texts import DialogueTexts
from assistant.core.errors import InvalidProfileError
from assistant.core.fields import AMBIGUOUS_DOT, FIELD_NAMES, FIELDS
from assistant.core.schemas import SegmentResult, parse_profile
from assistant.core.settings import Settings
from assistant.insights.summaries import evidence_by_segment

if TYPE_CHECKING:
    from assistant.model.segmentation import SegmentationService
from assistant.adapters.app_look import (
    ECHO_CHARS,
    EMPTY_FORM_JS,
    NARROW_BLOCK,
    SHOW_ANSWER_JS,
    SHOW_CHAT_JS,
    SHOW_FORM_JS,
    SHOW_FORM_RESULT_JS,
)
from assistant.adapters.app_texts import FALLBACK_COLOUR, SEGMENT_PALETTE, AppTexts, load_app_texts
from assistant.adapters.pca_map import PcaPlot, _percent, build_pca_plot, map_caption, result_plot

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


def _year_like_unit(spec: Any, value: float) -> str:
    """" days" after a count that reads like a year (``recency 2012``): the parser takes a bare year for a date,
    never a field, so the form's value says its unit."""
    return f" {spec.unit}" if not spec.money and 1000 <= float(value) <= 2999 and spec.unit.isalpha() else ""


def discuss_message(values: Sequence[float | None], texts: AppTexts) -> str:
    """The chat message that starts a new customer with the form's values ("" when the form is empty)."""
    given = [texts.form.discuss_value.format(label=spec.label.lower(),
                                             value=_typed_number(v) + _year_like_unit(spec, v))
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
    opening: list[Any] = list(greeting.history)
    with gr.Row(equal_height=False, elem_id="assistant-row"):
        with gr.Column(scale=5, min_width=420, elem_id="chat-column"):
            chatbot = gr.Chatbot(
                value=opening, label=texts.chat.label, show_label=False, elem_id="chat", height=620,
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
    # every probability the app shows has the model's holdout quality here, beside its calibration and gains
    response_section(service, texts, min_width=NARROW_BLOCK)
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
