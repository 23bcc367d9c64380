"""The Gradio app: handlers called directly, the Blocks' config, and a gradio_client round trip."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys

import pytest
from _web_helpers import free_port
from hypothesis import example, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

gr = pytest.importorskip("gradio")

from assistant.adapters import app, app_look, app_texts, pca_map  # noqa: E402
from assistant.adapters.app import escape_markdown  # noqa: E402
from assistant.conversation.dialogue import Dialogue  # noqa: E402
from assistant.conversation.state import DialogueState  # noqa: E402
from assistant.core.errors import KnowledgeBaseError  # noqa: E402
from assistant.core.fields import FIELD_NAMES, FIELDS  # noqa: E402
from assistant.core.knowledge import default_knowledge_dir  # noqa: E402
from assistant.core.schemas import parse_profile  # noqa: E402
from assistant.core.settings import Settings  # noqa: E402

EXAMPLE = "38, makes $71k, spent 1.2k, buys online 5x, in store 7x, visits 6x a month, last bought 2 weeks ago"
VIP = {"age": 45, "income": 90000, "total_spending": 2000, "web_purchases": 5, "store_purchases": 9,
           "web_visits_per_month": 2, "recency_days": 40}
MARKUP = "<img src=x onerror=alert(1)> **bold**"


@pytest.fixture(scope="module")
def texts():
    return app.load_app_texts()


@pytest.fixture(scope="module")
def dialogue(service):
    return Dialogue.create(service)


@pytest.fixture(scope="module")
def pca(service, texts):
    return app.build_pca_plot(service, texts)


@pytest.fixture(scope="module")
def view(service, dialogue, texts):
    return app.build_result_view(service, dialogue, texts)


@pytest.fixture(scope="module")
def chat(dialogue, service, pca, view):
    def send(message, session):
        return app.chat_turn(message, session, dialogue=dialogue, service=service, plot=pca, settings=Settings(),
                             view=view)
    return send


@pytest.fixture(scope="module")
def form(service, texts, pca, view):
    def submit(**values):
        return app.segment_form(service=service, texts=texts, plot=pca, view=view, **values)
    return submit


def _plot_traces(plot) -> list[dict]:
    assert plot.type == "plotly"
    return json.loads(plot.plot)["data"]


def _star(plot) -> dict | None:
    stars = [t for t in _plot_traces(plot) if t.get("marker", {}).get("symbol") == "star"]
    assert len(stars) <= 1
    return stars[0] if stars else None


# ---------------------------------------------------------------------------- texts


def test_app_texts_load_and_have_the_example_prompt(texts):
    assert texts.title and texts.tabs.assistant and texts.form.error_intro
    assert EXAMPLE in texts.chat.examples
    assert 3 <= len(texts.chat.examples) <= 4


def test_app_texts_reject_an_unknown_placeholder(tmp_path):
    for name in ("segments.yaml", "explanations.yaml", "dialogue.yaml", "app.yaml"):
        shutil.copy(default_knowledge_dir() / name, tmp_path / name)
    text = (tmp_path / "app.yaml").read_text()
    (tmp_path / "app.yaml").write_text(text.replace('field_label: "{label} ({unit})"', 'field_label: "{label} ({colour})"'))
    with pytest.raises(KnowledgeBaseError, match=r"app\.yaml.*field_label.*colour"):
        app.load_app_texts(tmp_path)


def test_app_texts_reject_a_missing_key(tmp_path):
    text = (default_knowledge_dir() / "app.yaml").read_text()
    (tmp_path / "app.yaml").write_text(re.sub(r"(?m)^title:.*\n", "", text))
    with pytest.raises(KnowledgeBaseError, match="title"):
        app.load_app_texts(tmp_path)


# ---------------------------------------------------------------------------- chat handler


def test_chat_one_message_with_all_seven_values_gives_the_result(chat, service):
    history, session, plot, data = chat(EXAMPLE, None)
    expected = service.label(parse_profile({"age": 38, "income": 71000, "total_spending": 1200, "web_purchases": 5,
                                                "store_purchases": 7, "web_visits_per_month": 6, "recency_days": 14}))
    assert data["complete"] is True
    assert data["result"]["segment_key"] == expected
    assert [m["role"] for m in history] == ["assistant", "user", "assistant"]  # greeting, message, answer
    answer = history[-1]["content"]
    assert data["result"]["segment_name"] in answer
    assert data["result"]["strategy"]["headline"] in answer
    star = _star(plot)
    assert star is not None
    assert (star["x"][0], star["y"][0]) == pytest.approx(service.project(parse_profile(data["result"]["customer"])))


def test_chat_guided_one_field_at_a_time(chat, service):
    session = None
    answers = ["45", "90000", "2000", "5", "9", "2", "40"]
    for i, answer in enumerate(answers):
        history, session, plot, data = chat(answer, session)
        if i < len(answers) - 1:
            assert data["complete"] is False and data["result"] is None
            assert isinstance(plot, dict)  # gr.skip(): the plot keeps what it shows
        assert data["profile"][FIELD_NAMES[i]] == pytest.approx(float(answer))
    assert data["complete"] is True
    assert data["result"]["segment_key"] == service.label(parse_profile(VIP)) == "vip_customers"
    assert "VIP Customers" in history[-1]["content"]
    assert len(history) == 1 + 2 * len(answers)
    assert _star(plot) is not None


def test_chat_sessions_are_independent_and_unchanged(chat):
    _, first, _, _ = chat("age 45", None)
    _, second, _, data = chat("age 30", first)
    assert data["profile"]["age"] == 30
    assert first.state.profile.age == 45  # the old session object is not modified
    _, other, _, data = chat("income 20k", None)
    assert data["profile"]["age"] is None


def test_chat_blank_message_changes_nothing(chat):
    history, session, _, _ = chat("age 45", None)
    again, same, plot, data = chat("   \n", session)
    assert again == history and same is session and plot == gr.skip() and data == gr.skip()


def test_chat_escapes_user_markup_in_history(chat):
    history, _, _, _ = chat(MARKUP, None)
    shown = history[1]["content"]
    assert history[1]["role"] == "user"
    assert "<img" not in shown and "**bold**" not in shown
    assert "&lt;img" in shown
    for message in history:
        assert "<img" not in message["content"]


def test_chat_too_long_message_is_refused_and_echo_is_short(chat):
    message = "a" * (Settings().max_message_chars + 1)
    history, session, _, data = chat(message, None)
    assert len(history[1]["content"]) < 300
    assert "limit" in history[-1]["content"]
    assert data["profile"] == dict.fromkeys(FIELD_NAMES)


def test_clear_chat_starts_over(dialogue, pca):
    history, session, plot, data = app.clear_chat(dialogue=dialogue, plot=pca)
    assert [m["role"] for m in history] == ["assistant"] and data is None
    assert session.state.profile.filled() == {}
    assert _star(plot) is None and len(_plot_traces(plot)) == 4


# ---------------------------------------------------------------------------- form handler


def test_form_good_values(form, service):
    answer, plot, data = form(**VIP)
    result = service.assign(VIP)
    assert data["segment_key"] == result.segment_key == "vip_customers"
    assert data["segment_name"] == "VIP Customers"
    assert "VIP Customers" in answer and result.strategy.headline in answer and result.confidence.text in answer
    assert "| Age | 45 | 45.9 |" in answer and "$90,000" in answer  # the customer beside the segment averages
    assert answer.startswith('<div class="result-card"')  # the card first, the rest in <details>
    assert _star(plot)["hovertemplate"].startswith(app.load_app_texts().plot.customer)


def test_form_same_segment_as_chat(form, chat):
    _, _, data = form(**VIP)
    _, _, _, turn = chat("45 years old, income 90k, spent 2,000, 5 web purchases, 9 store purchases, "
                         "2 visits a month, last bought 40 days ago", None)
    assert turn["result"]["segment_key"] == data["segment_key"]


def test_form_out_of_range_value_names_value_and_rule(form, texts):
    answer, plot, data = form(**{**VIP, "age": 250})
    # the person reads the field's label as on the form; the JSON keeps the field's name
    assert texts.form.problem_line.format(label="Age", problem="250 is above the maximum of 110") in answer
    assert "age=" not in answer
    assert answer.startswith(texts.form.error_intro)
    assert data == {"detail": ["age=250 is above the maximum of 110"]}
    assert _star(plot) is None
    assert "Traceback" not in answer


def test_form_empty_field_is_required(form, texts):
    answer, _, data = form(**{**VIP, "income": None})
    assert texts.form.missing_line.format(label="Yearly income") in answer
    assert data["detail"] == ["income is required"]


def test_form_lists_every_problem_by_its_label(form, texts):
    answer, _, data = form(**{**VIP, "age": 250, "web_purchases": -1, "recency_days": 2.5, "income": None})
    assert len(data["detail"]) == 4
    lines = [line for line in answer.splitlines() if line.startswith("- ")]
    assert lines == [
        "- " + texts.form.problem_line.format(label="Age", problem="250 is above the maximum of 110"),
        "- " + texts.form.missing_line.format(label="Yearly income"),
        "- " + texts.form.problem_line.format(label="Web purchases", problem=escape_markdown("-1 is below the minimum of 0")),
        "- " + texts.form.problem_line.format(label="Days since last purchase", problem=escape_markdown("2.5 must be a whole number")),
    ]
    assert not any(name in answer.replace("\\_", "_") for name in ("recency_days", "web_purchases"))


def test_form_problem_not_about_a_field_is_shown_as_it_is(texts):
    answer = app.problems_markdown(texts, ["shoe_size is not a customer field"])
    assert answer.endswith("- shoe\\_size is not a customer field")


def test_form_missing_and_unknown_names(form):
    values = dict(VIP)
    del values["age"]
    _, _, data = form(**values, shoe_size=44)
    assert "age is required" in data["detail"]
    assert any("shoe_size" in p for p in data["detail"])


def test_form_non_number_from_an_api_client_is_a_message(form):
    answer, _, data = form(**{**VIP, "age": "<b>old</b>"})
    assert data["detail"] == ["age='<b>old</b>' is not a number"]
    assert "<b>" not in answer


# ---------------------------------------------------------------------------- escaping


def test_chat_escapes_the_user_words_a_reply_quotes(chat, dialogue):
    """The dialogue quotes the user as typed (plain text for JSON and the terminal); the Gradio
    adapter escapes the quoted span before it enters the chat history."""
    history, _, _, turn = chat(MARKUP, None)
    reply = history[-1]["content"]
    assert history[-1]["role"] == "assistant"
    assert "<img" not in reply and "**bold**" not in reply
    assert app.escape_user_text(MARKUP) in reply
    assert MARKUP in turn["reply"]                      # the turn JSON carries the plain text
    assert "&#x27;" not in dialogue.respond(DialogueState(), "it's <b>x</b>").reply


def test_chat_reply_with_an_apostrophe_renders_as_typed(chat):
    markdown_it = pytest.importorskip("markdown_it")
    history, _, _, _ = chat("she's 'great' & <fine>", None)
    rendered = markdown_it.MarkdownIt("commonmark").render(history[-1]["content"])
    assert "she's 'great' &amp; &lt;fine&gt;" in rendered.replace("&#x27;", "'")
    assert "<fine>" not in rendered


def test_escape_markdown():
    assert escape_markdown("<a href='x'>&</a>") == "&lt;a href=&#x27;x&#x27;&gt;&amp;&lt;/a&gt;"
    assert escape_markdown("*_`[]#|~$\\") == "\\*\\_\\`\\[\\]\\#\\|\\~\\$\\\\"


def test_escape_user_text_examples():
    assert app.escape_user_text(MARKUP) == r"&lt;img src\=x onerror\=alert\(1\)&gt; \*\*bold\*\*"
    assert app.escape_user_text("a & b") == "a &amp; b"
    assert app.escape_user_text("plain words 38") == "plain words 38"


_HARMLESS_TAGS = re.compile(r"</?p>|<br />|<pre><code>|</code></pre>")


@hyp_settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from("\n *#>-+1.)"),
               max_size=80))
@example("1. one")
@example("- item")
@example("+ 1")
@example("a\n===")
@example("x  \ny")
@example("---")
@example("<script>alert(1)</script>")
@example("[a](javascript:alert(1))")
@example("![x](y)")
@example("| a | b |")
@example("a\n\n    code")
def test_escaped_text_renders_as_itself(text):
    """CommonMark renders the escaped text back to exactly the typed characters: no emphasis,
    list, heading, link, image or HTML element, only paragraphs and line breaks."""
    markdown_it = pytest.importorskip("markdown_it")
    if not text.strip():
        return
    rendered = markdown_it.MarkdownIt("commonmark").render(app.escape_user_text(text))
    inner = _HARMLESS_TAGS.sub(" ", rendered)
    assert "<" not in inner, rendered
    assert " ".join(html.unescape(inner).split()) == " ".join(text.split())


# ---------------------------------------------------------------------------- the Blocks


@pytest.fixture(scope="module")
def demo(service, dialogue):
    return app.build_app(service, settings=Settings(concurrency_limit=17), dialogue=dialogue)


def _dependencies(blocks) -> dict[str, dict]:
    return {d["api_name"]: d for d in blocks.config["dependencies"] if d.get("api_name")}


def test_build_app_returns_blocks_with_public_chat_and_segment(demo):
    assert isinstance(demo, gr.Blocks)
    deps = _dependencies(demo)
    assert deps["chat"]["api_visibility"] == "public"
    assert deps["segment"]["api_visibility"] == "public"
    public = {name for name, d in deps.items() if d["api_visibility"] == "public"}
    assert public == {"chat", "segment"}
    info = demo.get_api_info()["named_endpoints"]
    assert [p["parameter_name"] for p in info["/segment"]["parameters"]] == list(FIELD_NAMES)
    assert [p["parameter_name"] for p in info["/chat"]["parameters"]] == ["message"]


def test_elem_ids_of_the_layout(demo):
    ids = {b.elem_id for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    expected = {"chat", "chat-input", "send", "clear", "use-in-form", "segment-btn", "discuss-in-chat", "form-result",
                "chat-map", "form-map", "chat-map-caption", "form-map-caption", *(f"field-{name}" for name in FIELD_NAMES)}
    assert expected <= ids


def test_form_numbers_carry_the_field_ranges(demo):
    from assistant.core.fields import FIELDS_BY_NAME

    numbers = {b.elem_id: b for b in demo.blocks.values() if isinstance(b, gr.Number)}
    for name, spec in FIELDS_BY_NAME.items():
        number = numbers[f"field-{name}"]
        assert (number.minimum, number.maximum) == (spec.minimum, spec.maximum)
        assert spec.description in number.info and spec.format(spec.maximum) in number.info
        assert number.label == app.field_label(spec, app.load_app_texts())


def test_form_labels_say_the_unit_once(texts):
    from assistant.core.fields import FIELDS_BY_NAME as F

    labels = {name: app.field_label(spec, texts) for name, spec in F.items()}
    assert labels == {"age": "Age (years)", "income": "Yearly income ($)", "total_spending": "Total spending ($)",
                      "web_purchases": "Web purchases", "store_purchases": "Store purchases",
                      "web_visits_per_month": "Website visits per month", "recency_days": "Days since last purchase"}
    assert app.field_range(F["age"]) == ("18", "110 years")
    assert app.field_range(F["income"]) == ("$0", "$10,000,000")
    assert app.field_range(F["web_purchases"]) == ("0", "1,000 purchases")


def test_chat_scrolls_itself_and_its_trash_button_starts_over(demo):
    chatbot = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "chat")
    assert chatbot.autoscroll is False  # SHOW_ANSWER_JS places each reply instead
    deps = _dependencies(demo)
    assert deps["clear_trash"]["api_visibility"] == "private"
    assert [tuple(t) for t in deps["clear_trash"]["targets"]] == [(chatbot._id, "clear")]
    assert sorted(deps["clear_trash"]["outputs"]) == sorted(deps["clear"]["outputs"])
    assert any(d.get("js") == app.SHOW_ANSWER_JS for d in demo.config["dependencies"])


def test_queue_concurrency_is_the_settings_value(demo):
    assert demo._queue.default_concurrency_limit == 17


def test_segments_tab_has_the_selection_plots_and_tables(demo, service, texts):
    images = [b for b in demo.blocks.values() if isinstance(b, gr.Image)]
    assert {b.elem_id for b in images} == {"plot-elbow", "plot-silhouette"}
    frames = {b.elem_id: b for b in demo.blocks.values() if isinstance(b, gr.Dataframe)}
    selection = frames["selection-table"].value
    assert len(selection["data"]) == len(service.card["selection"])
    averages = app.averages_table(service, texts)
    assert list(averages.columns[1:-1]) == [s.name for s in service.segments()]
    # the values carry their unit, the row labels do not repeat it
    assert averages.iloc[1:, 0].tolist() == [spec.label for spec in FIELDS]
    vip = averages["VIP Customers"].tolist()
    assert vip[0].startswith(f"{service.card['segments']['vip_customers']['size']:,}")
    for info in service.segments():
        md = app._segment_markdown(info, texts)
        assert info.name in md and info.strategy.headline in md and info.strategy.kpi in md


def test_extra_tabs_hook_is_called_inside_the_blocks(service, dialogue):
    calls = []

    def batch_tab(svc, settings):
        calls.append((svc, settings))
        with gr.Tab("Batch"):
            gr.Markdown("batch here", elem_id="batch-marker")

    settings = Settings(concurrency_limit=5)
    demo = app.build_app(service, settings=settings, dialogue=dialogue, extra_tabs=[batch_tab])
    assert calls == [(service, settings)]
    tabs = [b for b in demo.blocks.values() if isinstance(b, gr.Tab)]
    assert [t.label for t in tabs][-1] == "Batch"
    assert any(getattr(b, "elem_id", None) == "batch-marker" for b in demo.blocks.values())


@pytest.mark.slow
def test_importing_the_app_does_no_work():
    code = ("import sys, assistant.adapters.app\n"
            "print(sorted(m for m in ('sklearn', 'plotly', 'joblib', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- gradio_client


@pytest.fixture(scope="module")
def launched(demo):
    pytest.importorskip("gradio_client")
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                theme=app_look.APP_THEME, css=app_look.APP_CSS)
    try:
        yield demo.local_url
    finally:
        demo.close()


def test_client_segment_round_trip(launched, service):
    from gradio_client import Client

    client = Client(launched, verbose=False)
    answer, plot, data = client.predict(**VIP, api_name="/segment")
    assert data["segment_key"] == service.assign(VIP).segment_key and data["segment_name"] in answer
    assert plot["type"] == "plotly"
    answer, _, data = client.predict(**{**VIP, "age": 250}, api_name="/segment")
    assert "250 is above the maximum of 110" in answer and data == {"detail": ["age=250 is above the maximum of 110"]}


def test_client_chat_round_trip_keeps_one_conversation_per_client(launched):
    from gradio_client import Client

    client = Client(launched, verbose=False)
    history, plot, data = client.predict(EXAMPLE, api_name="/chat")
    assert data["complete"] is True and data["result"]["segment_key"]
    assert plot["type"] == "plotly"
    history, _, data = client.predict("actually the income is 20k", api_name="/chat")
    assert data["profile"]["income"] == 20000 and data["profile"]["age"] == 38  # same conversation
    assert len(history) == 5
    fresh = Client(launched, verbose=False)
    _, _, data = fresh.predict("age 50", api_name="/chat")
    assert data["profile"]["income"] is None  # a new client is a new conversation


# ---------------------------------------------------------------------------- the result card (issue 13)

BORDERLINE = {"age": 45, "income": 20000, "total_spending": 200, "web_purchases": 5, "store_purchases": 7,
                  "web_visits_per_month": 5, "recency_days": 40}


def test_chat_answer_is_a_card_then_details_and_the_text_answer_stays_complete(chat, dialogue, service, texts):
    history, _, _, data = chat("45 years old, income 90k, spent 2,000, 5 web purchases, 9 store purchases, "
                               "2 visits a month, last bought 40 days ago", None)
    result = service.assign(VIP)
    answer = history[-1]["content"]
    card, _, details = answer.partition("<details")
    assert '<div class="result-card"' in card and "VIP Customers" in card and result.summary in card
    assert texts.card.badge_clear in card
    assert card.count('class="rc-row"') == len(FIELDS)
    for tactic in result.strategy.tactics[:3]:
        assert html.escape(tactic) in card
    assert html.escape(result.strategy.tactics[3]) not in card  # the rest is in the details
    for part in (result.strategy.tactics[-1], result.strategy.kpi, result.reasons[0], result.confidence.text):
        assert part in details
    assert details.count("<details") == 3  # table, why, strategy, evidence (the first one partitioned off)
    # the terminal / REST / JSON reply is the full text answer, unchanged
    assert dialogue.render(result) in data["reply"] and "result-card" not in data["reply"]


def test_card_chart_places_each_field_on_its_training_range(service, view):
    from assistant.adapters.result_card import position

    assert position(5, 0, 10) == 50.0 and position(-3, 0, 10) == 0.0 and position(99, 0, 10) == 100.0
    assert position(1, 1, 1) == 50.0
    html_ = view.html(service.assign(VIP))
    low, high = service.card["overall"]["min"]["income"], service.card["overall"]["max"]["income"]
    assert f"left:{position(90000, low, high)}%" in html_


def test_card_escapes_every_text(service, view):
    result = service.assign(VIP)
    evil = result.model_copy(update={"segment_name": "<img src=x onerror=alert(1)>", "summary": "<b>x</b> & y"})
    out = view.html(evil).partition("<details")[0]   # the card; the details are the dialogue's own Markdown
    assert "<img" not in out and "<b>" not in out and "&lt;img src=x" in out and "&amp; y" in out


def test_borderline_badge_and_map_line(form, service, texts):
    result = service.assign(BORDERLINE)
    assert result.confidence.level == "borderline"
    answer, plot, data = form(**BORDERLINE)
    badge = texts.card.badge_borderline.format(segment_name=result.segment_name,
                                               runner_up_name=result.confidence.runner_up_name)
    assert html.escape(badge) in answer
    pca = app.build_pca_plot(service, texts)
    caption = app.form_map_caption(data, texts=texts, plot=pca)
    assert result.confidence.runner_up_name in caption and pca.what in caption
    clear = app.form_map_caption(form(**VIP)[2], texts=texts, plot=pca)
    assert "VIP Customers" in clear and texts.plot.borderline_line.split("**")[1] not in clear
    assert app.form_map_caption({"detail": ["x"]}, texts=texts, plot=pca).endswith(pca.what)


def test_map_axes_are_named_by_their_loadings_and_the_label_covers_no_dot(service, texts, pca):
    layout = pca.base["layout"]
    assert "component" not in json.dumps(layout).lower()
    assert layout["xaxis"]["title"]["text"] == "higher income and more spending \u2192"
    assert layout["yaxis"]["title"]["text"] == "longer since the last purchase \u2192"
    assert "higher income and more spending" in pca.what
    # a made-up axis loaded mostly negatively on visits
    loadings = [0.0, 0.1, 0.0, 0.0, 0.0, -0.9, 0.2]
    assert pca_map.axis_drivers(loadings, texts.plot) == "fewer site visits"
    fig = json.loads(pca.figure((0.0, 0.0), "VIP Customers").plot)
    (label,) = fig["layout"]["annotations"]
    top = max(max(t["y"]) for t in fig["data"])
    assert label["ay"] > top and label["text"] == texts.plot.customer  # in the free band above every dot
    assert fig["layout"]["yaxis"]["range"][1] > label["ay"]
    assert pca.base["layout"]["legend"]["y"] < 0  # below the map: never under the toolbar


def test_segment_colours_have_enough_contrast():
    for key, colour in app.SEGMENT_PALETTE.items():
        assert app_texts.contrast_on_white(colour) >= app_texts.MIN_CONTRAST, (key, colour)
    assert app_texts.readable_colour("#4C78A8") == "#4C78A8"  # already readable: unchanged


def test_form_starts_empty_with_placeholders(demo, texts):
    numbers = [b for b in demo.blocks.values() if isinstance(b, gr.Number)]
    assert len(numbers) == len(FIELDS)
    for number in numbers:
        assert number.value is None and number.placeholder.startswith(texts.form.field_placeholder.split("{")[0])


def test_use_in_form_takes_the_chat_customer(chat):
    assert all(v == gr.skip() for v in app.use_in_form(None))
    _, session, _, _ = chat("age 45, income 90k", None)
    assert app.use_in_form(session) == (45, 90000.0, None, None, None, None, None)


@hyp_settings(max_examples=40, deadline=None)
@given(values=st.fixed_dictionaries({f.name: (st.integers(int(f.minimum), min(int(f.maximum), 5000)) if f.integer
                                       else st.floats(f.minimum, f.maximum, allow_nan=False).map(lambda x: round(x, 3)))
                              for f in FIELDS}))
@example(values={"age": 18, "income": 0.0, "total_spending": 0.0, "web_purchases": 0, "store_purchases": 0,
                 "web_visits_per_month": 0, "recency_days": 2012})   # a count that reads like a year
def test_discuss_in_chat_sends_the_form_customer_exactly(values, dialogue, service, pca, texts, view, form):
    message = app.discuss_message([values[n] for n in FIELD_NAMES], texts)
    history, session, plot, data = app.discuss_in_chat(*[values[n] for n in FIELD_NAMES], None, dialogue=dialogue,
                                                       service=service, plot=pca, settings=Settings(), view=view,
                                                       texts=texts)
    assert history[-2]["content"] == app.escape_user_text(message)
    assert data["complete"] is True, (message, data["reply"])
    assert data["profile"] == pytest.approx(parse_profile(values).as_dict())
    assert data["result"]["segment_key"] == form(**values)[2]["segment_key"]


def test_discuss_in_chat_with_an_empty_form_changes_nothing(dialogue, service, pca, texts, view):
    out = app.discuss_in_chat(*([None] * len(FIELDS)), None, dialogue=dialogue, service=service, plot=pca,
                              settings=Settings(), view=view, texts=texts)
    assert all(v == gr.skip() for v in out)


def test_one_meaning_of_segment_average(service, dialogue):
    """The reasons quote the segment's mean from the model card, as the table does (not the centroid)."""
    for profile in (VIP, BORDERLINE, dict(VIP, income=30000, total_spending=150)):
        result = service.assign(profile)
        text = dialogue.render(result)
        for reason in result.reasons:
            quoted = re.findall(r"\(([^()]+)\)", reason)[:2]   # "closer to X (25.3) than to Y (31.2)"
            for value in quoted:
                assert f"| {value} |" in text or any(
                    spec.number(a) == value for s in service.segments() for spec in FIELDS
                    for a in [s.averages[spec.name]]), (value, reason)
        card = service.card["segments"][result.segment_key]["averages"]
        for spec in FIELDS:
            assert spec.number(card[spec.name]) in text


def test_evidence_leaves_out_lines_without_a_difference(service):
    from assistant.insights.profiles import profiles_of
    from assistant.insights.summaries import evidence_by_segment, no_difference

    evidence = evidence_by_segment(service)
    lifts = profiles_of(service)["segments"]["vip_customers"]["lift"]
    assert no_difference(lifts["channel_mix"]["NumStorePurchases"])  # 46% against 46%
    assert not any("46% of their purchases (46%" in line for lines in evidence.values() for line in lines)
    assert all(lines for lines in evidence.values())


def test_web_answer_keeps_every_part_of_the_text_answer(service, dialogue, view):
    """Each section of the text answer is in the web answer (the card, or a collapsible section)."""
    from assistant.conversation.render import result_sections

    for profile in (VIP, BORDERLINE):
        result = service.assign(profile)
        sections = result_sections(result, dialogue.texts, tuple(view.evidence.get(result.segment_key, ())))
        web = view.html(result)
        for name in ("table", "confidence", "reasons", "strategy", "channels_kpi", "evidence", "response"):
            part = getattr(sections, name, "")
            assert part in web, name
        assert all(w in web for w in sections.warnings)
