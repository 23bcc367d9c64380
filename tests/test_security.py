"""Security: with ``--auth`` nothing but ``/healthz`` (and the sign-in page Gradio needs) answers
without credentials; a public share link without auth is refused; no secret in the repository,
in the logs or in error messages.

The route list is read from the app's own route table (FastAPI routes, the mounted Gradio app and
its routers), so a route added later is checked without editing this file: it must answer 401
unless it is listed below with the reason it may be open.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from _soak import ServerProcess, scored_file_path, sse_result
from _web_helpers import serving

from assistant.adapters.web import create_app
from assistant.core.settings import Settings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
USER, PASSWORD = "lena", "Vx9-pelican-Quartz-4471"
WRONG = "Wrong-guess-Aardvark-5529"
# Distinctive customer values: none of them may appear in any log line.
CUSTOMER = {"age": 57, "income": 73519, "total_spending": 1847, "web_purchases": 13, "store_purchases": 11,
            "web_visits_per_month": 9, "recency_days": 277}
VALUES_NEVER_LOGGED = ("73519", "73,519", "73519.0", "1847", "1,847", "1847.0", "277 days")
SEGMENT_KEYS = ("casual_shoppers", "vip_customers", "browsers_without_conversion", "digital_enthusiasts")

# ---------------------------------------------------------------------------- routes that may be open

OPEN_APP_ROUTES = {
    "/healthz": "liveness for load balancers: status, model version and fingerprints, no customer data",
}
# What Gradio's sign-in page needs before anyone has signed in: the page shell (which holds no
# components or config when auth is on), its scripts, styles and icons, and the login itself.
SIGN_IN_PAGE = {
    "/login": "the login form posts here",
    "/login/": "the login form posts here", "/logout": "signs out (clears the cookie)",
    "/favicon.ico": "icon", "/theme.css": "styles", "/gradio_api/theme.css": "styles", "/robots.txt": "robots",
    "/manifest.json": "PWA manifest (app name, icons)", "/pwa_icon": "icon", "/pwa_icon/{size}": "icon",
    "/svelte/{path:path}": "front-end scripts", "/static/{path:path}": "front-end files",
    "/assets/{path:path}": "front-end scripts", "/gradio.js": "web-component loader (front-end script)",
    "/gradio_api/startup-events": "whether the app has started (true/false)",
    "/gradio_api/user": "the signed-in user name (null before sign-in)", "/gradio_api/user/": "same",
    "/gradio_api/token": "the caller's own cookie token (null before sign-in)", "/gradio_api/token/": "same",
    "/gradio_api/app_id": "a random per-process id the front end uses", "/gradio_api/app_id/": "same",
    "/gradio_api/custom_component/{id}/{environment}/{type}/{file_name}": "custom component scripts (none here)",
}
# Gradio features switched off in this app: refused with 4xx whatever the credentials.
DISABLED = {
    "/monitoring/{key}": "monitoring is not enabled", "/gradio_api/runs": "run history is off (run_history=False)",
    "/gradio_api/runs/": "same", "/gradio_api/vibe-edit": "vibe editor off", "/gradio_api/vibe-edit/": "same",
    "/gradio_api/undo-vibe-edit": "vibe editor off", "/gradio_api/undo-vibe-edit/": "same",
    "/gradio_api/vibe-code": "vibe editor off", "/gradio_api/vibe-code/": "same",
    "/gradio_api/vibe-starter-queries": "vibe editor off", "/gradio_api/vibe-starter-queries/": "same",
}
# Gradio leaves these open (no login check in gradio/routes.py): each acts only on a random
# session hash or event id that the caller must already hold, and returns no data.
GRADIO_SESSION_CONTROL = {
    "/gradio_api/heartbeat/{session_hash}": "keeps a session alive (an SSE stream of ALIVE)",
    "/gradio_api/stream/{event_id}": "input of a streaming event (none here)",
    "/gradio_api/stream/{event_id}/close": "closes a streaming event",
    "/gradio_api/stream/{session_hash}/{run}/{component_id}/playlist.m3u8": "media streams (none here)",
    "/gradio_api/stream/{session_hash}/{run}/{component_id}/{segment_id}.{ext}": "media streams (none here)",
    "/gradio_api/stream/{session_hash}/{run}/{component_id}/playlist-file": "media streams (none here)",
    "/gradio_api/reset": "a no-op in Gradio 6", "/gradio_api/reset/": "same",
    "/gradio_api/cancel": "cancels the caller's own event by session hash and event id",
}
ALLOWED_OPEN = {**OPEN_APP_ROUTES, **SIGN_IN_PAGE, **DISABLED, **GRADIO_SESSION_CONTROL}


def route_table(app) -> list[tuple[str, str]]:
    """Every (method, path) the app serves: its own routes, included routers and mounted apps."""
    found: list[tuple[str, str]] = []

    def walk(routes, prefix: str) -> None:
        for route in routes:
            original = getattr(route, "original_router", None)          # FastAPI's included router
            if original is not None:
                walk(original.routes, prefix + route.include_context.prefix)
                continue
            sub = getattr(route, "routes", None)
            if sub is not None and not getattr(route, "methods", None):   # a Mount
                walk(sub, prefix + route.path)
                continue
            for method in sorted(getattr(route, "methods", None) or ()):
                found.append((method, prefix + route.path))

    walk(app.routes, "")
    return sorted(set(found))


def concrete(path: str) -> str:
    values = {"size": "192", "component_id": "1", "environment": "prod", "type": "js", "api_name": "chat"}
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values.get(m.group(1), "abc123"), path)


@pytest.fixture(scope="module")
def secured_app(service):
    return create_app(Settings(auth=((USER, PASSWORD),)), service=service)


def test_every_route_needs_credentials_except_the_listed_ones(secured_app):
    routes = route_table(secured_app)
    paths = {p for _, p in routes}
    # the enumeration sees every family (so it cannot pass by finding nothing)
    assert {"/api/v1/chat", "/api/v1/segment", "/openapi.json", "/docs", "/config", "/gradio_api/info",
            "/gradio_api/call/{api_name}", "/gradio_api/queue/join", "/gradio_api/upload",
            "/gradio_api/file={path_or_url:path}", "/monitoring", "/healthz"} <= paths
    assert len(routes) > 60
    unknown_listed = set(ALLOWED_OPEN) - paths
    assert not unknown_listed, f"listed as open but no longer served (remove them): {sorted(unknown_listed)}"
    wrong: list[str] = []
    checked = protected = 0
    with serving(secured_app) as base, httpx.Client(base_url=base, timeout=10, trust_env=False) as http:
        for method, path in routes:
            kwargs = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
            with http.stream(method, concrete(path), **kwargs) as r:
                status = r.status_code
                body = b"" if path in GRADIO_SESSION_CONTROL or method == "HEAD" else r.read()
            checked += 1
            if path not in ALLOWED_OPEN:
                if status != 401:
                    wrong.append(f"{method} {path}: {status} without credentials (expected 401)")
                protected += 1
                continue
            if path in DISABLED and not 400 <= status < 500:
                wrong.append(f"{method} {path}: {status} (a disabled feature must be refused)")
            text = body.decode("utf-8", "replace")
            if any(key in text for key in SEGMENT_KEYS) or '"components":[{' in text:
                wrong.append(f"{method} {path}: open, and its answer shows the app's data")
    assert not wrong, "\n".join(wrong)
    print(f"{checked} (method, route) pairs checked: {protected} answer 401 without credentials, "
          f"{checked - protected} are open by design ({len(ALLOWED_OPEN)} listed paths)")


def test_healthz_is_the_one_open_application_route(secured_app):
    with serving(secured_app) as base, httpx.Client(base_url=base, timeout=10, trust_env=False) as http:
        health = http.get("/healthz")
        assert health.status_code == 200 and health.json()["model_loaded"] is True
        # what it shows: the model's identity and size, nothing about segments or customers
        assert set(health.json()) == {"status", "model_loaded", "model_version", "trained_at", "k", "data_sha256",
                                      "bundle_sha256", "rows_kept"}
        page = http.get("/")                     # 401, and the body is the login form only
        assert page.status_code == 401
        assert '"auth_required":true' in page.text and '"components":[]' in page.text


# ---------------------------------------------------------------------------- a public link without auth


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("SEGMENT_ASSISTANT_AUTH", None)
    return subprocess.run([sys.executable, "-m", "assistant", *args], cwd=ROOT, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("args, message", [
    (["serve", "--share"], "--share would open a public link without a password"),
    (["serve", "--share", "--host", "0.0.0.0", "--port", "0"], "--share would open a public link without a password"),
    (["serve", "--share", "--auth", "nopassword"], "credentials must look like USER:PASS"),
    (["serve", "--share", "--auth-file", "/nonexistent/auth.txt"], "cannot be read"),
])
def test_a_public_link_without_a_password_is_refused(args, message):
    done = _cli(*args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stdout == ""


def test_the_share_refusal_can_be_overridden(tmp_path):
    """--share-without-auth is the explicit override: the server starts (here without internet, so it
    says no link could be made and keeps serving locally)."""
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "HTTPS_PROXY": dead, "HTTP_PROXY": dead, "ALL_PROXY": dead, "NO_PROXY": "127.0.0.1,localhost",
           "PYTHONUNBUFFERED": "1"}
    env.pop("SEGMENT_ASSISTANT_AUTH", None)
    proc = subprocess.Popen([sys.executable, "-m", "assistant", "serve", "--share", "--share-without-auth", "--port", "0"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "No public share link could be made" in line or "Public share link" in line:
                break
        ready = next(line for line in seen if "ready in" in line)
        base = re.search(r"at (http://\S+/) ", ready).group(1)
        assert httpx.get(f"{base}healthz", timeout=10, trust_env=False).status_code == 200
    finally:
        proc.terminate()
        proc.wait(15)
    assert not any("Traceback" in line for line in seen), "".join(seen)


# ---------------------------------------------------------------------------- secrets in the repository


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):      # not a git checkout: every project file
        skip = {".venv", ".git", ".hypothesis", ".pytest_cache", "__pycache__"}
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                 if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]
    return [ROOT / n for n in names if (ROOT / n).is_file()]


# Split so that this file does not match its own patterns.
KEY_PATTERNS = {
    "private key": re.compile("-----BEGIN [A-Z ]*" + "PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\b(AKIA|ASIA)" + r"[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_" + r"[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abposr]-" + r"[A-Za-z0-9-]{10,}"),
    "Hugging Face token": re.compile(r"\bhf_" + r"[A-Za-z0-9]{30,}\b"),
    "OpenAI key": re.compile(r"\bsk-" + r"[A-Za-z0-9_-]{32,}\b"),
}
PASSWORD_LITERAL = re.compile(
    r"""(?ix)\b(password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token)\b\s*[:=]\s*["']([^"'\s]{4,})["']""")
SECRET_FILE_NAMES = re.compile(r"(^|/)(\.env(\..*)?|id_rsa|id_ed25519|.*\.pem|.*\.key|.*\.p12|credentials(\.json)?|\.netrc)$")


def test_no_secrets_in_the_repository():
    files = tracked_files()
    assert len(files) > 30
    problems = []
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        if SECRET_FILE_NAMES.search(rel):
            problems.append(f"{rel}: a credentials file is tracked")
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue                                    # binary (the model bundle, plots)
        text = data.decode("utf-8", "replace")
        for name, pattern in KEY_PATTERNS.items():
            if pattern.search(text):
                problems.append(f"{rel}: looks like it holds a {name}")
        if not rel.startswith("tests/"):                # tests hold throwaway passwords for test servers
            for m in PASSWORD_LITERAL.finditer(text):
                problems.append(f"{rel}: {m.group(1)} = '{m.group(2)[:2]}...' looks like a hard-coded secret")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------- logs and error messages

# Everything our own loggers (assistant.*) may say: counts, segment keys, timings.
OUR_LOG_LINES = [
    r"segment: ({})".format("|".join(SEGMENT_KEYS)),
    r"batch: \d+ items, \d+ scored, \d+ rejected in [\d.]+ ms",
    r"chat turn: new_session=(True|False) complete=(True|False)",
    r"refused a request body of \d+ bytes \(limit \d+\)",
    r"dialogue failed on a message of -?\d+ characters",
    r"cleaned customer file: \d+ rows in, \d+ kept, dropped .*",
]


def _gradio_call(http: httpx.Client, name: str, data: list) -> tuple[str, object]:
    r = http.post(f"/gradio_api/call/{name}", json={"data": data})
    assert r.status_code == 200, r.text
    return sse_result(http.get(f"/gradio_api/call/{name}/{r.json()['event_id']}").text)


def test_logs_hold_no_password_and_no_customer_value(tmp_path):
    """A server with auth at DEBUG level (every logger, uvicorn's access log included) through
    wrong and right sign-ins, REST segment/batch/chat, the Gradio chat, form and batch upload."""
    values = list(CUSTOMER.values())
    message = ("she is 57, income 73519, spent 1847, 13 web purchases, 11 store purchases, "
               "9 web visits per month, last purchase 277 days ago")
    upload = ("ID,age,income,total_spending,web_purchases,store_purchases,web_visits_per_month,recency_days\n"
              "1,57,73519,1847,13,11,9,277\n2,250,73519,1847x,13,11,9,277\n")
    env = {"GRADIO_TEMP_DIR": str(tmp_path / "gradio"), "TMPDIR": str(tmp_path)}
    with ServerProcess("--auth", f"{USER}:{PASSWORD}", "--log-level", "DEBUG", env=env) as server:
        with httpx.Client(base_url=server.base, timeout=30, trust_env=False) as http:
            # REST: wrong credentials, then the right ones
            denied = http.post("/api/v1/segment", json=CUSTOMER, auth=(USER, WRONG))
            assert denied.status_code == 401 and WRONG not in denied.text and WRONG not in str(denied.headers)
            ok = http.post("/api/v1/segment", json=CUSTOMER, auth=(USER, PASSWORD))
            assert ok.status_code == 200 and ok.json()["segment_key"] in SEGMENT_KEYS
            bad = http.post("/api/v1/segment", json={**CUSTOMER, "age": 250}, auth=(USER, PASSWORD))
            assert bad.status_code == 422 and "age=250" in bad.text
            batch = http.post("/api/v1/segment/batch", json=[CUSTOMER, {**CUSTOMER, "total_spending": "1847x"}],
                              auth=(USER, PASSWORD))
            assert batch.status_code == 200 and "error" in batch.json()[1]
            chat = http.post("/api/v1/chat", json={"message": message}, auth=(USER, PASSWORD)).json()
            assert chat["complete"] is True and chat["profile"]["income"] == 73519
            # Gradio: wrong sign-in, then the right one (cookie)
            refused = http.post("/login", data={"username": USER, "password": WRONG})
            assert refused.status_code == 400 and WRONG not in refused.text and WRONG not in str(refused.headers)
            assert not any(c.startswith("access-token") for c in refused.cookies)
            assert http.post("/login", data={"username": USER, "password": PASSWORD}).status_code == 200
            event, data = _gradio_call(http, "chat", [message])
            assert event == "complete" and data[-1]["profile"]["income"] == 73519
            event, data = _gradio_call(http, "segment", values)
            assert event == "complete" and data[-1]["segment_key"] in SEGMENT_KEYS
            up = http.post("/gradio_api/upload", files={"files": ("customers.csv", upload.encode(), "text/csv")})
            assert up.status_code == 200
            event, data = _gradio_call(http, "score_file", [{"path": up.json()[0], "orig_name": "customers.csv",
                                                             "meta": {"_type": "gradio.FileData"}}])
            assert event == "complete" and "**1** of 2 rows scored" in data[0]
            scored = http.get(f"/gradio_api/file={scored_file_path(data)}")
            assert scored.status_code == 200 and "73519" in scored.text      # the download itself has the data
            stranger = httpx.get(f"{server.base}/gradio_api/file={scored_file_path(data)}", timeout=10, trust_env=False)
            assert stranger.status_code == 401 and "73519" not in stranger.text   # ... and needs the sign-in
        server.stop()
        log = server.log_text()

    assert "uvicorn.access" in log and "POST /api/v1/chat" in log     # the log really was at DEBUG
    leaked = [v for v in (PASSWORD, WRONG, *VALUES_NEVER_LOGGED) if v in log]
    creds = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    leaked += [name for name, v in (("basic credentials", creds), ("chat message", message[:30])) if v in log]
    assert not leaked, f"the log holds {leaked}"
    ours = [line.split(": ", 1)[1] for line in log.splitlines() if line.split(" ", 2)[1:2]
            and line.split(" ", 2)[1].startswith("assistant.")]
    assert any(line.startswith("batch: 2 items") for line in ours), ours
    unexpected = [line for line in ours if not any(re.fullmatch(p, line) for p in OUR_LOG_LINES)]
    assert not unexpected, f"our loggers said something other than counts, keys and timings: {unexpected}"


def test_error_messages_never_echo_a_password(service):
    """The REST 401, the Gradio login refusal and the CLI's auth errors never repeat a password."""
    app = create_app(Settings(auth=((USER, PASSWORD),)), service=service)
    with serving(app) as base, httpx.Client(base_url=base, timeout=10, trust_env=False) as http:
        for auth in ((USER, WRONG), (WRONG, PASSWORD), (PASSWORD, WRONG)):
            r = http.get("/api/v1/segments", auth=auth)
            assert r.status_code == 401 and PASSWORD not in r.text and WRONG not in r.text
        r = http.post("/login", data={"username": PASSWORD, "password": WRONG})
        assert r.status_code == 400 and PASSWORD not in r.text and WRONG not in r.text
    # a password typed without its user (or a broken second pair) is not repeated in the refusal
    for given in (WRONG, f"{USER}:{PASSWORD},{WRONG}", f":{WRONG}"):
        done = _cli("serve", "--auth", given)
        assert done.returncode == 2 and "credentials must look like USER:PASS" in done.stderr
        assert PASSWORD not in done.stderr and WRONG not in done.stderr, done.stderr
    done = _cli("serve", "--auth", f"{USER}:")
    assert done.returncode == 2 and f"(user '{USER}' has none)" in done.stderr
