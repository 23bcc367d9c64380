"""The whole web app (Gradio UI mounted beside the REST API): auth on every route family, CORS and
frame-ancestors, the reverse-proxy sub-path, share refusal and offline share, startup."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from _web_helpers import free_socket, prefix_proxy, serving
from fastapi.testclient import TestClient

from assistant.adapters.web import create_app, credentials_checker, frame_ancestors_policy, run_server
from assistant.core.errors import AssistantError
from assistant.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
GOOD = {"age": 38, "income": 52000, "total_spending": 600, "web_purchases": 4, "store_purchases": 6,
        "web_visits_per_month": 5, "recency_days": 30}
USER, PASSWORD = "ana", "s3cret:with:colons"
PORTAL = "https://portal.example.com"


@pytest.fixture(scope="module")
def secured(service):
    # these tests send the same wrong name many times on purpose: the failed sign-in limit
    # (tests/test_security_round2.py) must not turn their 401s into 429s
    app = create_app(Settings(auth=((USER, PASSWORD), ("bo", "other")), max_failed_sign_ins_per_user=100),
                     service=service)
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def open_app(service):
    app = create_app(Settings(), service=service)
    with TestClient(app) as c:
        yield c


def _event_name(client: TestClient) -> str:
    """The first named event of the Gradio app (from /config, which needs a login when auth is on)."""
    config = client.get("/config").json()
    names = [d.get("api_name") for d in config["dependencies"] if d.get("api_name")]
    assert names, "the UI exposes no named event"
    return names[0]


# ---------------------------------------------------------------------------- auth

REST_CALLS = [
    ("post", "/api/v1/segment", {"json": GOOD}),
    ("post", "/api/v1/segment/batch", {"json": [GOOD]}),
    ("get", "/api/v1/segments", {}),
    ("post", "/api/v1/chat", {"json": {"message": "hello"}}),
    ("get", "/openapi.json", {}),
    ("get", "/docs", {}),
]


@pytest.mark.parametrize("method, path, kwargs", REST_CALLS)
def test_rest_routes_need_basic_auth(secured, method, path, kwargs):
    r = getattr(secured, method)(path, **kwargs)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Basic ")
    assert r.json()["detail"][0].startswith("authentication required")
    assert getattr(secured, method)(path, auth=(USER, "wrong"), **kwargs).status_code == 401
    assert getattr(secured, method)(path, auth=("nobody", PASSWORD), **kwargs).status_code == 401
    assert getattr(secured, method)(path, headers={"Authorization": "Basic !!!"}, **kwargs).status_code == 401
    assert getattr(secured, method)(path, headers={"Authorization": "Bearer x"}, **kwargs).status_code == 401
    assert getattr(secured, method)(path, auth=(USER, PASSWORD), **kwargs).status_code == 200
    assert getattr(secured, method)(path, auth=("bo", "other"), **kwargs).status_code == 200


def test_401_never_echoes_the_credentials(secured):
    r = secured.post("/api/v1/segment", json=GOOD, auth=(USER, "guess-me-not"))
    assert "guess-me-not" not in r.text and "guess-me-not" not in str(r.headers)


def test_healthz_stays_open_with_auth(secured):
    r = secured.get("/healthz")
    assert r.status_code == 200 and r.json()["model_loaded"] is True


def test_gradio_routes_need_login(service):
    app = create_app(Settings(auth=((USER, PASSWORD),)), service=service)
    with TestClient(app) as c:
        page = c.get("/")
        assert page.status_code == 401              # not signed in: 401, with Gradio's login form as the body
        assert '"auth_required":true' in page.text and '"components":[]' in page.text  # ... and no UI
        for path in ("/config", "/gradio_api/info", "/gradio_api/queue/status"):
            assert c.get(path).status_code == 401, path
        assert c.post("/gradio_api/call/anything", json={"data": []}).status_code == 401
        assert c.post("/gradio_api/queue/join", json={"data": [], "fn_index": 0, "session_hash": "x"}).status_code == 401
        # HTTP Basic is for the REST API; the UI wants its own login
        assert c.get("/config", auth=(USER, PASSWORD)).status_code == 401
        assert c.post("/login", data={"username": USER, "password": "wrong"}).status_code == 400
        assert c.post("/login", data={"username": USER, "password": PASSWORD}).status_code == 200
        assert c.get("/config").status_code == 200
        assert c.get("/gradio_api/info").status_code == 200
        name = _event_name(c)
        assert c.post(f"/gradio_api/call/{name}", json={"data": []}).status_code != 401


def test_credentials_checker_compares_every_pair():
    check = credentials_checker((("a", "1"), ("b", "2")))
    assert check("a", "1") and check("b", "2")
    assert not check("a", "2") and not check("b", "1") and not check("", "") and not check("a", "")
    assert not check("ä", "1")


# ---------------------------------------------------------------------------- embedding: CSP and CORS


def test_default_policy_allows_only_self_to_frame(open_app):
    for path in ("/", "/healthz", "/api/v1/segments"):
        assert open_app.get(path).headers["content-security-policy"] == "frame-ancestors 'self'"
    r = open_app.options("/api/v1/segment", headers={"Origin": PORTAL, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers
    r = open_app.get("/api/v1/segments", headers={"Origin": PORTAL})
    assert "access-control-allow-origin" not in r.headers


def test_configured_origin_may_frame_and_call(service):
    settings = Settings(allow_origins=(PORTAL,), frame_ancestors=(PORTAL,), auth=((USER, PASSWORD),))
    with TestClient(create_app(settings, service=service)) as c:
        assert c.get("/").headers["content-security-policy"] == f"frame-ancestors 'self' {PORTAL}"
        pre = c.options("/api/v1/segment", headers={"Origin": PORTAL, "Access-Control-Request-Method": "POST",
                                                    "Access-Control-Request-Headers": "authorization,content-type"})
        assert pre.status_code == 200                       # preflight needs no credentials
        assert pre.headers["access-control-allow-origin"] == PORTAL
        assert pre.headers["access-control-allow-credentials"] == "true"
        assert "authorization" in pre.headers["access-control-allow-headers"].lower()
        r = c.post("/api/v1/segment", json=GOOD, auth=(USER, PASSWORD), headers={"Origin": PORTAL})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == PORTAL
        denied = c.post("/api/v1/segment", json=GOOD, headers={"Origin": PORTAL})
        assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] == PORTAL
        other = c.options("/api/v1/segment", headers={"Origin": "https://evil.example",
                                                      "Access-Control-Request-Method": "POST"})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        gradio = c.options("/config", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in gradio.headers


def test_frame_ancestors_policy_text():
    assert frame_ancestors_policy(()) == "frame-ancestors 'self'"
    assert frame_ancestors_policy(("https://a.example", "http://b:8080")) == \
        "frame-ancestors 'self' https://a.example http://b:8080"
    assert frame_ancestors_policy(("*",)) == "frame-ancestors *"


def test_upload_limit_is_separate_from_the_request_limit(service):
    settings = Settings(max_request_bytes=1000, max_upload_bytes=5000)
    with TestClient(create_app(settings, service=service)) as c:
        big = c.post("/api/v1/segment", content=b"x" * 2000, headers={"content-type": "application/json"})
        assert big.status_code == 413
        upload = c.post("/gradio_api/upload", files={"files": ("a.csv", b"a,b\n" * 500)})
        assert upload.status_code != 413
        huge = c.post("/gradio_api/upload", files={"files": ("a.csv", b"a,b\n" * 2000)})
        assert huge.status_code == 413
        assert huge.json()["detail"][0].endswith("above the limit of 5,000")


# ---------------------------------------------------------------------------- reverse proxy sub-path


def test_works_behind_a_prefix_stripping_proxy(service):
    app = create_app(Settings(root_path="/segments"), service=service)
    with serving(app, root_path="/segments") as upstream, serving(prefix_proxy(upstream, "/segments")) as proxy:
        base = f"{proxy}/segments"
        with httpx.Client(timeout=20) as http:
            assert http.get(f"{base}/healthz").json()["model_loaded"] is True
            r = http.post(f"{base}/api/v1/segment", json=GOOD)
            assert r.status_code == 200 and r.json()["segment_key"]
            page = http.get(f"{base}/")
            assert page.status_code == 200 and "<gradio-app" in page.text
            config = http.get(f"{base}/config").json()
            assert config["root"] == base                    # the UI loads everything through the prefix
            docs = http.get(f"{base}/docs")
            assert "/segments/openapi.json" in docs.text
            assert http.get(f"{base}/openapi.json").status_code == 200
            assert http.get(f"{proxy}/healthz").status_code == 404   # nothing outside the prefix


# ---------------------------------------------------------------------------- share and serving


def test_cli_refuses_a_public_link_without_auth(capsys, monkeypatch):
    from assistant.adapters import cli

    monkeypatch.delenv("SEGMENT_ASSISTANT_AUTH", raising=False)
    assert cli.main(["serve", "--share"]) == 2
    err = capsys.readouterr().err
    assert "--share would open a public link without a password" in err and "--auth" in err


def test_run_server_refuses_share_without_auth_and_share_with_root_path(service):
    with pytest.raises(AssistantError, match="without a password"):
        run_server(Settings(share=True), service=service)
    with pytest.raises(AssistantError, match="--root-path /segments"):
        run_server(Settings(share=True, share_without_auth=True, root_path="/segments"), service=service)


def test_port_in_use_is_a_plain_error(service):
    sock = free_socket()
    sock.listen(1)
    try:
        with pytest.raises(AssistantError, match=r"cannot listen on 127\.0\.0\.1:\d+"):
            run_server(Settings(port=sock.getsockname()[1]), service=service)
    finally:
        sock.close()


class _Output:
    """The merged stdout/stderr of a child process, read line by line in a thread."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(proc,), daemon=True).start()

    def _pump(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if m := re.search(pattern, line):
                return m
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s; output:\n" + "\n".join(self.seen))


def _serve_process(*args: str, env_extra: dict[str, str] | None = None) -> tuple[subprocess.Popen, _Output]:
    env = {**os.environ, **(env_extra or {}), "PYTHONUNBUFFERED": "1"}
    env.pop("SEGMENT_ASSISTANT_AUTH", None)
    proc = subprocess.Popen([sys.executable, "-m", "assistant", "serve", "--port", "0", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, _Output(proc)


def _stop(proc: subprocess.Popen, sig: int = signal.SIGINT) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


@pytest.mark.slow
def test_share_without_internet_says_so_and_keeps_serving():
    # A dead proxy for all outgoing traffic makes "no internet" certain, even on a machine that has it.
    dead = "http://127.0.0.1:9"
    proc, out = _serve_process("--share", "--auth", f"{USER}:{PASSWORD}",
                          env_extra={"HTTPS_PROXY": dead, "HTTP_PROXY": dead, "ALL_PROXY": dead,
                                     "NO_PROXY": "127.0.0.1,localhost"})
    try:
        base = out.wait_for(r"ready in [\d.]+ s at (http://\S+/) ", 60).group(1)
        out.wait_for(r"No public share link could be made", 60)
        assert not any("Traceback" in line for line in out.seen)
        with httpx.Client(timeout=10, trust_env=False) as http:
            assert http.get(f"{base}healthz").status_code == 200
            r = http.post(f"{base}api/v1/segment", json=GOOD, auth=(USER, PASSWORD))
            assert r.status_code == 200 and r.json()["segment_key"]
        assert proc.poll() is None
    finally:
        code = _stop(proc)
    assert code == 0


@pytest.mark.slow
def test_serve_starts_and_chats():
    started = time.monotonic()
    proc, out = _serve_process()
    try:
        ready = out.wait_for(r"ready in ([\d.]+) s at (http://\S+/) ", 60)
        base = ready.group(2)
        with httpx.Client(timeout=10, trust_env=False) as http:
            body = http.post(f"{base}api/v1/chat", json={"message": "hello"}).json()
            assert body["reply"] and body["session_id"]
            assert http.get(base).status_code == 200
        print(f"serve: ready line after {time.monotonic() - started:.2f} s wall "
              f"(server says {ready.group(1)} s after loading the model)")
    finally:
        assert _stop(proc, signal.SIGTERM) == 0         # a service manager's stop is a normal end
    assert out.wait_for("stopped", 5)


def test_listening_socket_says_tcp_so_keep_alive_answers_are_not_delayed():
    """asyncio sets TCP_NODELAY only on sockets whose protocol is TCP; a plain socket(family,
    SOCK_STREAM) has proto 0 and every kept-alive answer then waits ~40 ms (Nagle + delayed ACK)."""
    import socket

    from assistant.adapters.web import _listen

    sock = _listen("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
