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

from assistant.adapters import app  # noqa: E402
from assistant.adapters.app import escape_markdown  # noqa: E402
from assistant.conversation.dialogue import Dialogue  # noqa: E402
from assistant.conversation.state import DialogueState  # noqa: E402
from assistant.core.errors import KnowledgeBaseError  # noqa: E402
from assistant.core.fields import FIELD_NAMES, FIELDS  # noqa: E402
from assistant.core.knowledge import default_knowledge_dir  # noqa: E402
from assistant.core.schemas import parse_profile  # noqa: E402
from assistant.core.settings import Settings  # noqa: E402

EXAMPLE = "38, makes $71k, spent 1.2k, buys online 5x, in store 7x, visits 6x a month, last bought 2 weeks ago"
VIP = dict(age=45, income=90000, total_spending=2000, web_purchases=5, store_purchases=9,
           web_visits_per_month=2, recency_days=40)
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
def chat(dialogue, service, pca):
    def send(message, session):
        return app.chat_turn(message, session, dialogue=dialogue, service=service, plot=pca, settings=Settings())
    return send


@pytest.fixture(scope="module")
def form(service, dialogue, texts, pca):
    def submit(**values):
        return app.segment_form(service=service, dialogue=dialogue, texts=texts, plot=pca, **values)
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
    expected = service.label(parse_profile(dict(age=38, income=71000, total_spending=1200, web_purchases=5,
                                                store_purchases=7, web_visits_per_month=6, recency_days=14)))
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
    assert "| Age | 45 |" in answer and "$90,000" in answer  # the customer beside the segment averages
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
    expected = {"chat", "chat-input", "send", "clear", "segment-btn", "form-result", "pca-plot",
                *(f"field-{name}" for name in FIELD_NAMES)}
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
                theme=app.APP_THEME, css=app.APP_CSS)
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
