"""The Gradio app in a real browser (Debian Chromium driven by Playwright).

The app is launched with ``demo.launch(prevent_thread_lock=True)`` on a free port. The tests hold
a guided conversation one field at a time, a one-message VIP conversation, fill in the form with
the same values, check that typed markup is shown as text and never run, and that the form shows
our validation messages. Screenshots go to pytest's tmp_path and one of each to /tmp/screens/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _browser import need_chromium  # noqa: E402
from _web_helpers import free_port

need_chromium(module_level=True)

from playwright.sync_api import expect  # noqa: E402

from assistant.adapters import app, app_look  # noqa: E402
from assistant.conversation.dialogue import Dialogue  # noqa: E402
from assistant.core.fields import FIELD_NAMES  # noqa: E402
from assistant.core.schemas import parse_profile  # noqa: E402
from assistant.core.settings import Settings  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SCREENS = Path("/tmp/screens")
VIP = {"age": 45, "income": 90000, "total_spending": 2000, "web_purchases": 5, "store_purchases": 9,
       "web_visits_per_month": 2, "recency_days": 40}
VIP_MESSAGE = ("45 years old, income 90k, spent 2,000, 5 web purchases, 9 store purchases, 2 visits a month, "
               "last bought 40 days ago")
MARKUP = "<img src=x onerror=alert(1)> **bold**"


@pytest.fixture(scope="module")
def dialogue(service):
    return Dialogue.create(service)


@pytest.fixture(scope="module")
def url(service, dialogue):
    demo = app.build_app(service, settings=Settings(), dialogue=dialogue)
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                theme=app_look.APP_THEME, css=app_look.APP_CSS)
    try:
        yield demo.local_url
    finally:
        demo.close()


@pytest.fixture
def page(browser, url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    dialogs: list[str] = []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pg.dialogs = dialogs  # any alert() the page runs lands here
    pg.goto(url, wait_until="load")
    pg.locator("#chat [data-testid='bot']").first.wait_for()
    yield pg
    context.close()


def _shot(page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SCREENS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SCREENS / path.name)


def _bots(page):
    return page.locator("#chat [data-testid='bot']")


def _send(page, text: str, *, button: bool = False) -> str:
    """Type ``text``, send it (Enter or the Send button) and return the new bot reply's text."""
    before = _bots(page).count()
    box = page.locator("#chat-input textarea")
    box.fill(text)
    if button:
        page.locator("#send").click()
    else:
        box.press("Enter")
    reply = _bots(page).nth(before)
    reply.wait_for()
    expect(box).to_have_value("")  # the input is cleared after sending
    return reply.inner_text()


def _plot_traces(page, which: str = "chat") -> int:
    page.locator(f"#{which}-map .js-plotly-plot").wait_for()
    return page.evaluate(f"() => document.querySelector('#{which}-map .js-plotly-plot').data.length")


def test_guided_conversation_one_field_at_a_time(page, dialogue, tmp_path):
    questions = dialogue.texts.questions
    first = _bots(page).first.inner_text()
    assert questions["age"].split("{")[0].strip() in first
    for i, name in enumerate(FIELD_NAMES):
        reply = _send(page, str(VIP[name]))
        if i + 1 < len(FIELD_NAMES):
            nxt = FIELD_NAMES[i + 1]
            assert questions[nxt].split("{")[0].strip() in reply, reply
    assert "VIP Customers" in reply
    expect(page.locator("#chat [data-testid='user']")).to_have_count(len(FIELD_NAMES))
    assert _plot_traces(page) == 5  # four segments + this customer
    _shot(page, tmp_path, "browser_guided_chat")


def test_free_text_vip_then_the_form_agrees(page, service, tmp_path):
    result = service.assign(parse_profile(VIP))
    assert result.segment_key == "vip_customers"
    reply = _send(page, VIP_MESSAGE, button=True)
    assert "VIP Customers" in reply and result.strategy.headline in reply
    assert result.strategy.kpi not in reply  # in a closed section of the answer, shown on request
    assert result.strategy.kpi in _bots(page).last.text_content()
    assert _plot_traces(page) == 5
    _shot(page, tmp_path, "browser_vip_chat")

    for name, value in VIP.items():
        page.locator(f"#field-{name} input").fill(str(value))
    page.locator("#segment-btn").click()
    answer = page.locator("#form-result")
    expect(answer.locator(".rc-name")).to_have_text(result.segment_name)
    text = answer.inner_text()
    assert result.strategy.headline in text and "$90,000" in text
    _shot(page, tmp_path, "browser_form")


def test_form_shows_our_validation_messages(page, tmp_path):
    page.locator("#field-age input").fill("250")
    page.locator("#segment-btn").click()
    expect(page.locator("#form-result")).to_contain_text("Age: 250 is above the maximum of 110")
    page.locator("#field-age input").fill("45")
    page.locator("#field-income input").fill("")
    page.locator("#segment-btn").click()
    expect(page.locator("#form-result")).to_contain_text("Yearly income: enter a value")
    assert "Traceback" not in page.locator("#form-result").inner_text()
    _shot(page, tmp_path, "browser_form_error")


def test_typed_markup_is_shown_as_text(page, tmp_path):
    _send(page, MARKUP)
    user = page.locator("#chat [data-testid='user']").last
    expect(user).to_have_text(MARKUP)
    assert user.locator("img").count() == 0 and user.locator("strong").count() == 0
    assert page.locator("#chat img[src='x']").count() == 0
    _send(page, "**bold** and _italic_ <b>tag</b>", button=True)
    expect(page.locator("#chat [data-testid='user']").last).to_have_text("**bold** and _italic_ <b>tag</b>")
    page.wait_for_timeout(300)  # give a would-be onerror handler the chance to fire
    assert page.dialogs == []
    _shot(page, tmp_path, "browser_markup")


def test_start_over_and_segments_tab(page, service, tmp_path):
    _send(page, VIP_MESSAGE)
    page.locator("#clear").click()
    expect(_bots(page)).to_have_count(1)
    expect(page.locator("#chat [data-testid='user']")).to_have_count(0)
    page.get_by_role("tab", name=app.load_app_texts().tabs.segments).click()
    for info in service.segments():
        expect(page.locator(f"#segment-{info.key}")).to_contain_text(info.strategy.headline)
    # the model-selection plots sit below the segment profiles; their images load lazily, on scroll
    page.locator("#selection-table").scroll_into_view_if_needed()
    expect(page.locator("#plot-elbow img")).to_be_visible()
    expect(page.locator("#plot-silhouette img")).to_be_visible()
    expect(page.locator("#selection-table")).to_contain_text("Silhouette")
    _shot(page, tmp_path, "browser_segments")


IN_VIEW_JS = """([i, o]) => { const a = document.querySelector(i).getBoundingClientRect();
    const b = document.querySelector(o).getBoundingClientRect(); return a.top >= b.top && a.top < b.bottom; }"""


def _in_view(page, inner: str, outer: str) -> bool:
    """Whether the top of ``inner`` lies inside ``outer``'s visible box."""
    return page.evaluate("""([i, o]) => { const a = document.querySelector(i).getBoundingClientRect();
        const b = document.querySelector(o).getBoundingClientRect(); return a.top >= b.top && a.top < b.bottom; }""",
                         [inner, outer])


def test_a_long_answer_is_shown_from_its_segment_name(page, tmp_path):
    _send(page, VIP_MESSAGE)
    heading = page.locator("#chat [data-testid='bot']").last.locator(".rc-name")
    expect(heading).to_have_text("VIP Customers")
    # SHOW_ANSWER_JS runs after the render: wait for its effect, not for a time
    page.wait_for_function(IN_VIEW_JS, arg=["#chat .result-card .rc-name", "#chat [role='log']"])
    reply = _send(page, "why?")  # a short reply: the end of the conversation is shown, as usual
    page.wait_for_function("""() => { const l = document.querySelector('#chat [role="log"]');
        return l.scrollHeight - l.scrollTop - l.clientHeight < 4; }"""), reply
    _shot(page, tmp_path, "browser_answer_top")


def test_the_chat_trash_button_starts_over(page):
    _send(page, "age 50")
    page.locator("#chat button[aria-label='Clear']").click()
    expect(_bots(page)).to_have_count(1)
    reply = _send(page, "what do you have so far")
    assert "50" not in reply  # the conversation itself started over, not only the view
    expect(page.locator("#chat [data-testid='user']")).to_have_count(1)


@pytest.mark.parametrize("width", [420, 360])
def test_narrow_window_no_jump_no_sideways_scroll(browser, url, service, tmp_path, width):
    """A portal iframe: the page stays at its top on load and no tab scrolls sideways."""
    context = browser.new_context(viewport={"width": width, "height": 800})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    try:
        pg.goto(url, wait_until="load")
        pg.locator("#chat [data-testid='bot']").first.wait_for()
        pg.locator("#chat-map .js-plotly-plot").wait_for()
        pg.wait_for_timeout(500)
        assert pg.evaluate("window.scrollY") == 0
        assert pg.evaluate("document.documentElement.scrollWidth") <= width
        pg.get_by_role("tab", name=app.load_app_texts().tabs.segments).click()
        expect(pg.locator("#segment-averages")).to_be_visible()
        pg.wait_for_timeout(500)
        assert pg.evaluate("document.documentElement.scrollWidth") <= width
        cards = [pg.locator(f"#segment-{info.key}").bounding_box() for info in service.segments()]
        assert all(c["x"] + c["width"] <= width for c in cards)  # one card per line
        _shot(pg, tmp_path, f"browser_narrow_{width}_segments")
    finally:
        context.close()


# ---------------------------------------------------------------------------- phones, tablets, desktops (issue 13)

WIDTHS = {390: 844, 768: 1024, 1440: 1000}

BOX_JS = "(sel) => { const e = document.querySelector(sel); if (!e) return null; const r = e.getBoundingClientRect();" \
         " return {x: r.x, y: r.y, w: r.width, h: r.height, right: r.right, bottom: r.bottom}; }"


def _box(page, selector: str) -> dict:
    box = page.evaluate(BOX_JS, selector)
    assert box is not None, selector
    return box


def _overlap(a: dict, b: dict) -> bool:
    return a["x"] < b["right"] and b["x"] < a["right"] and a["y"] < b["bottom"] and b["y"] < a["bottom"]


def _no_sideways_scroll(page) -> None:
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth"), \
        page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")


def _check_map(page, which: str) -> None:
    """The map's legend and toolbar do not overlap, and its axis titles are inside the map."""
    page.locator(f"#{which}-map .js-plotly-plot .legend").wait_for(state="attached")
    plot = _box(page, f"#{which}-map .js-plotly-plot")
    legend = _box(page, f"#{which}-map .legend")
    modebar = page.evaluate(BOX_JS, f"#{which}-map .modebar")
    if modebar and modebar["w"] > 0:
        assert not _overlap(legend, modebar), (legend, modebar)
    for title in (".xtitle", ".ytitle"):
        t = _box(page, f"#{which}-map {title}")
        assert plot["x"] - 1 <= t["x"] and t["right"] <= plot["right"] + 1, (title, t, plot)
        assert plot["y"] - 1 <= t["y"] and t["bottom"] <= plot["bottom"] + 1, (title, t, plot)


@pytest.fixture(params=sorted(WIDTHS), ids=lambda w: f"{w}px")
def sized(request, browser, url):
    width = request.param
    context = browser.new_context(viewport={"width": width, "height": WIDTHS[width]})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.goto(url, wait_until="load")
    pg.locator("#chat [data-testid='bot']").first.wait_for()
    pg.width = width
    yield pg
    context.close()


def test_answer_card_chart_and_strategy_in_the_first_view(sized, service, tmp_path):
    page, width = sized, sized.width
    result = service.assign(parse_profile(VIP))
    _send(page, VIP_MESSAGE)
    card = page.locator("#chat [data-testid='bot']").last.locator(".result-card")
    expect(card.locator(".rc-name")).to_have_text(result.segment_name)
    expect(card.locator(".rc-row")).to_have_count(len(FIELD_NAMES))
    # the picture is drawn: three marks on each field's line
    expect(card.locator(".rc-track .rc-mark")).to_have_count(3 * len(FIELD_NAMES))
    assert page.evaluate("() => getComputedStyle(document.querySelector('#chat .rc-track .rc-you')).position") == "absolute"
    # the segment, the picture and what to do, without scrolling: inside the window and the chat's pane
    for part in (".rc-name", ".rc-chart", ".rc-strategy", ".rc-tactics li"):
        selector = f"#chat .result-card {part}"
        page.wait_for_function(IN_VIEW_JS, arg=[selector, "#chat [role='log']"])
        box = _box(page, selector)
        assert 0 <= box["y"] and box["bottom"] <= WIDTHS[width], (part, box)
        assert box["right"] <= width
    # details stay closed until asked for; the full table and every tactic are in them
    details = card.locator("xpath=..").locator("details")
    assert details.count() >= 3 and all(not d.get_attribute("open") for d in details.all()) is not None
    _shot_view(page, tmp_path, f"browser_card_{width}")
    page.evaluate("() => document.querySelectorAll('#chat details').forEach(d => d.open = true)")
    bot = page.locator("#chat [data-testid='bot']").last
    expect(bot.locator("table")).to_have_count(1)
    expect(bot).to_contain_text(result.strategy.tactics[-1])
    expect(bot).to_contain_text(result.strategy.kpi)
    # tables fit their bubble (no hidden sideways scroll) and the page does not scroll sideways
    assert page.evaluate("""() => Array.from(document.querySelectorAll('#chat table')).every(
        t => t.scrollWidth <= t.clientWidth + 1 && t.getBoundingClientRect().right <= window.innerWidth)""")
    _no_sideways_scroll(page)
    assert page.dialogs == []
    _shot(page, tmp_path, f"browser_details_{width}")


def test_maps_explain_themselves_and_follow_their_answers(sized, service, tmp_path):
    page, width = sized, sized.width
    texts = app.load_app_texts()
    _send(page, VIP_MESSAGE)
    expect(page.locator("#chat-map-caption")).to_contain_text("VIP Customers")
    assert _plot_traces(page, "chat") == 5
    # the map's axes say what drives them
    assert "higher income" in page.locator("#chat-map .xtitle").text_content()
    expect(page.locator("#chat-map-caption")).to_contain_text(texts.plot.what.split("{")[0].strip())
    _check_map(page, "chat")
    # the chat's map comes right after the chat (before the form on a narrow screen, in the chat's column on a wide one)
    chat_map, form, chat = _box(page, "#chat-map"), _box(page, "#form-heading"), _box(page, "#chat")
    caption = _box(page, "#chat-map-caption")  # the map's heading: only the message box and buttons before it
    assert chat["bottom"] < caption["y"] < chat["bottom"] + 200 and caption["bottom"] <= chat_map["y"] + 1
    if width < 800:
        assert chat_map["bottom"] < form["y"]
    else:
        assert chat_map["right"] <= form["x"]
    # the form: empty boxes with placeholders; a borderline customer has its own answer and map
    for name in FIELD_NAMES:
        box = page.locator(f"#field-{name} input")
        expect(box).to_have_value("")
        assert box.get_attribute("placeholder")
    borderline = {"age": 45, "income": 20000, "total_spending": 200, "web_purchases": 5, "store_purchases": 7,
                  "web_visits_per_month": 5, "recency_days": 40}
    result = service.assign(parse_profile(borderline))
    assert result.confidence.level == "borderline"
    for name, value in borderline.items():
        page.locator(f"#field-{name} input").fill(str(value))
    page.locator("#segment-btn").click()
    expect(page.locator("#form-result .rc-name")).to_have_text(result.segment_name)
    expect(page.locator("#form-result .rc-borderline")).to_contain_text(result.confidence.runner_up_name)
    expect(page.locator("#form-map-caption")).to_contain_text(result.confidence.runner_up_name)
    expect(page.locator("#form-result .result-card")).to_be_in_viewport()
    assert _plot_traces(page, "form") == 5
    _check_map(page, "form")
    # the two maps mark their own customers
    stars = page.evaluate("""() => ['chat', 'form'].map(w => {
        const d = document.querySelector('#' + w + '-map .js-plotly-plot').data; return d[d.length - 1].x[0]; })""")
    assert stars[0] != pytest.approx(stars[1])
    expect(page.locator("#chat-map-caption")).to_contain_text("VIP Customers")
    _no_sideways_scroll(page)
    _shot(page, tmp_path, f"browser_maps_{width}")


def test_use_in_form_and_discuss_in_chat(page, service, tmp_path):
    _send(page, "age 45, income 90k, spent 2000")
    page.locator("#use-in-form").click()
    expect(page.locator("#field-age input")).to_have_value("45")
    expect(page.locator("#field-income input")).to_have_value("90000")
    expect(page.locator("#field-total_spending input")).to_have_value("2000")
    expect(page.locator("#field-recency_days input")).to_have_value("")
    for name in ("web_purchases", "store_purchases", "web_visits_per_month", "recency_days"):
        page.locator(f"#field-{name} input").fill(str(VIP[name]))
    before = _bots(page).count()
    page.locator("#discuss-in-chat").click()
    reply = _bots(page).nth(before)
    expect(reply.locator(".rc-name")).to_have_text(service.assign(parse_profile(VIP)).segment_name)
    expect(page.locator("#chat [data-testid='user']").last).to_contain_text("new customer")
    expect(page.locator("#chat-map-caption")).to_contain_text("VIP Customers")
    _shot(page, tmp_path, "browser_discuss_in_chat")


def _shot_view(page, tmp_path: Path, name: str) -> None:
    """A screenshot of what the window shows (not the whole page)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    SCREENS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SCREENS / path.name)
