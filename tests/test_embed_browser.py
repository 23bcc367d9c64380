"""Embedding in a real browser: a portal page served from ANOTHER port embeds the assistant (in
an iframe, and as Gradio's ``<gradio-app>`` web component) and holds a conversation through it;
a portal that is not allowed by --allow-origin is refused by the frame-ancestors policy."""

from __future__ import annotations

import time

import pytest
from _browser import need_chromium  # noqa: E402

need_chromium(module_level=True)

from _web_helpers import free_socket, serving  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.responses import HTMLResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from assistant.adapters.web import create_app  # noqa: E402
from assistant.core.schemas import parse_profile  # noqa: E402
from assistant.core.settings import Settings  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.browser]

FIRST = "Hi! My customer is 38 years old and earns 52000 a year."
REST = ("She spent 600 in total, made 4 web purchases and 6 store purchases, visits the website "
        "5 times a month and last bought 30 days ago.")
PROFILE = {"age": 38, "income": 52000, "total_spending": 600, "web_purchases": 4, "store_purchases": 6,
           "web_visits_per_month": 5, "recency_days": 30}


def portal(app_url: str) -> Starlette:
    async def iframe(request):
        return HTMLResponse(f"""<!doctype html><html><head><title>Portal</title></head><body>
<h1>Marketing portal</h1>
<iframe id="assistant" src="{app_url}/" width="1200" height="1000" style="border:0"></iframe>
</body></html>""")

    async def component(request):
        return HTMLResponse(f"""<!doctype html><html><head><title>Portal</title>
<script type="module" src="{app_url}/gradio.js"></script></head><body>
<h1>Marketing portal</h1>
<gradio-app src="{app_url}"></gradio-app>
</body></html>""")

    return Starlette(routes=[Route("/iframe", iframe), Route("/component", component)])


@pytest.fixture(scope="module")
def sites(service):
    """The assistant (allowing one portal origin), that portal, and a second portal it does not allow."""
    allowed_sock, other_sock = free_socket(), free_socket()
    allowed = f"http://127.0.0.1:{allowed_sock.getsockname()[1]}"
    app = create_app(Settings(allow_origins=(allowed,), frame_ancestors=(allowed,)), service=service)
    with serving(app) as app_url, serving(portal(app_url), sock=allowed_sock) as portal_url, \
            serving(portal(app_url), sock=other_sock) as other_url:
        yield {"app": app_url, "portal": portal_url, "other": other_url}


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    yield pg
    context.close()


def _converse(root, expected_name: str) -> None:
    """Two chat turns through ``root`` (a frame or the page): a partial customer, then the rest."""
    bot = root.locator("#chat [data-testid='bot']")
    bot.first.wait_for()
    before = bot.count()
    box = root.locator("#chat-input textarea")
    box.fill(FIRST)
    root.locator("#send").click()
    root.locator("#chat [data-testid='user']").filter(has_text="52000").wait_for()
    deadline = time.monotonic() + 20
    while bot.count() <= before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert bot.count() > before, "no reply to the first message"
    assert expected_name not in bot.last.inner_text()     # not complete yet: it asks for more
    box.fill(REST)
    root.locator("#send").click()
    bot.filter(has_text=expected_name).last.wait_for()


def test_portal_on_another_port_converses_through_an_iframe(sites, page, service):
    expected = service.segment_name(service.label(parse_profile(PROFILE)))
    page.goto(f"{sites['portal']}/iframe", wait_until="load")
    frame = page.frame_locator("#assistant")
    _converse(frame, expected)


def test_portal_converses_through_the_web_component(sites, page, service):
    expected = service.segment_name(service.label(parse_profile(PROFILE)))
    page.goto(f"{sites['portal']}/component", wait_until="load")
    _converse(page.locator("gradio-app"), expected)


def test_a_portal_not_allowed_cannot_frame_the_assistant(sites, page):
    refused: list[str] = []
    page.on("console", lambda msg: refused.append(msg.text) if "frame-ancestors" in msg.text else None)
    page.goto(f"{sites['other']}/iframe", wait_until="load")
    deadline = time.monotonic() + 15
    child = None
    while time.monotonic() < deadline:
        children = [f for f in page.frames if f is not page.main_frame]
        if children and (children[0].url.startswith("chrome-error://") or refused):
            child = children[0]
            break
        time.sleep(0.1)
    assert child is not None, f"the frame was not refused (frames: {[f.url for f in page.frames]})"
    assert page.frame_locator("#assistant").locator("#chat-input textarea").count() == 0


def test_ui_works_behind_a_prefix_stripping_proxy(service, page):
    from _web_helpers import prefix_proxy

    expected = service.segment_name(service.label(parse_profile(PROFILE)))
    app = create_app(Settings(root_path="/segments"), service=service)
    with serving(app, root_path="/segments") as upstream, serving(prefix_proxy(upstream, "/segments")) as proxy:
        outside: list[str] = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(f"{proxy}/segments") else None)
        page.goto(f"{proxy}/segments/", wait_until="load")
        _converse(page, expected)
        assert not [u for u in outside if u.startswith(proxy)], outside   # every request used the prefix


def test_with_auth_the_page_is_401_with_a_login_form_that_signs_in(service, page):
    """--auth: the UI page answers 401 to a visitor who has not signed in, yet the browser shows
    Gradio's login form (no browser password box); signing in there opens the assistant, which then
    answers a conversation."""
    import httpx

    user, password = "ann", "correct-horse-battery"
    app = create_app(Settings(auth=((user, password),)), service=service)
    expected = service.segment_name(service.label(parse_profile(PROFILE)))
    with serving(app) as app_url:
        assert httpx.get(f"{app_url}/", trust_env=False, timeout=10).status_code == 401
        response = page.goto(f"{app_url}/", wait_until="load")
        assert response is not None and response.status == 401
        page.locator("input[type='password']").wait_for()
        assert page.locator("#chat-input textarea").count() == 0          # nothing of the app before signing in
        page.locator("input[type='text']").first.fill(user)
        page.locator("input[type='password']").fill("wrong-password")
        page.get_by_role("button", name="Login").click()
        page.get_by_text("Incorrect Credentials").wait_for()
        page.locator("input[type='text']").first.fill(user)
        page.locator("input[type='password']").fill(password)
        page.get_by_role("button", name="Login").click()
        page.locator("#chat-input textarea").wait_for()
        _converse(page, expected)
