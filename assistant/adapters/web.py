"""The web adapter: one ASGI app serving the Gradio UI at ``/`` and the REST API at ``/api/v1``.

``create_app(settings, service=...)`` builds a FastAPI app holding the versioned REST API
(:mod:`assistant.adapters.api`), ``/healthz``, the OpenAPI docs and, mounted last at ``/``, the Gradio UI
from :mod:`assistant.adapters.app`, all sharing the one loaded service. ``run_server`` serves it with
uvicorn and, with ``--share``, opens a Gradio share tunnel to it.

Policies (see docs/embedding.md):

* Auth (``settings.auth``): the UI uses Gradio's login form; the REST API, ``/docs`` and
  ``/openapi.json`` need HTTP Basic with the same user and password. ``/healthz`` stays open
  (it shows only the model version and fingerprints). Passwords are compared with
  ``secrets.compare_digest`` and never logged.
* Embedding: every response carries ``Content-Security-Policy: frame-ancestors 'self' <origins>``
  with the origins given by ``--allow-origin`` (``settings.frame_ancestors``); with none, only
  the app itself may frame it. The same origins may call the API from a browser (CORS).
* Size, sign-in and stream limits, and the rule that a Gradio event may name only files uploaded to
  this server: :mod:`assistant.adapters.guard` (one ASGI layer in front of everything).
* Gradio's cache: a private folder per server process, cleaned on start and stop
  (:mod:`assistant.adapters.gradio_cache`); Gradio deletes its copies after an hour.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from assistant.adapters.api import build_api_router, install_error_handlers
from assistant.adapters.gradio_cache import CACHE_SWEEP_SECONDS, CACHE_TTL_SECONDS, GradioCache
from assistant.adapters.guard import GuardMiddleware, GuardPolicy, credentials_checker, frame_ancestors_policy
from assistant.adapters.limits import SignInLimiter, StreamLimiter
from assistant.adapters.sessions import SessionStore
from assistant.core.errors import AssistantError
from assistant.core.settings import Settings

log = logging.getLogger(__name__)

KEEP_ALIVE_SECONDS = 75
"""How long an idle kept-alive connection stays open. Above the reuse time of HTTP clients (httpx: 5 s,
browsers: up to 60 s), so the server never closes a connection at the moment a client sends on it
(the client would see "Server disconnected without sending a response")."""

# ---------------------------------------------------------------------------- the app


def create_app(settings, *, service, dialogue=None, ui: bool = True) -> FastAPI:
    """The whole web app for one loaded service. ``ui=False`` leaves out the Gradio UI (REST only)."""
    if dialogue is None:
        from assistant.conversation.dialogue import Dialogue

        dialogue = Dialogue.create(service, knowledge_dir=settings.knowledge_dir,
                                   max_message_chars=settings.max_message_chars)
    sessions = SessionStore(settings.max_sessions, settings.session_ttl_seconds,
                            max_per_owner=settings.max_sessions_per_user)
    info = service.model_info()
    cache = GradioCache.for_this_process() if ui else None

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        if cache is not None:
            cache.prepare()                 # (again, if an earlier serve of this app removed it)
        try:
            yield
        finally:
            if cache is not None:
                from assistant.adapters.batch_tab import remove_process_workdir

                remove_process_workdir()    # scored customer files do not outlive the server
                cache.remove()              # nor Gradio's copies of uploads and downloads

    app = FastAPI(
        lifespan=lifespan,
        title="Customer Segment Assistant API",
        version=str(info["model_version"]),
        description="Segment customers with the committed K-Means model. Errors are `{\"detail\": [messages]}`, "
                    "each message naming the value and the rule it broke.",
        docs_url="/docs", redoc_url=None, openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.service = service
    app.state.dialogue = dialogue
    app.state.sessions = sessions
    install_error_handlers(app)
    app.include_router(build_api_router(service=service, dialogue=dialogue, settings=settings, sessions=sessions))
    check = credentials_checker(settings.auth) if settings.auth else None
    if check is not None:
        _document_basic_auth(app)

    # Middleware: the last added is the outermost. CORS answers preflights before auth.
    app.add_middleware(GuardMiddleware, policy=_guard_policy(settings, check, cache))
    origins = list(settings.allow_origins)
    app.add_middleware(CORSMiddleware, allow_origins=origins, allow_credentials="*" not in origins,
                       allow_methods=["GET", "POST", "OPTIONS"],
                       allow_headers=["*"], max_age=600)

    if cache is not None:
        cache.prepare()                     # before Gradio builds components: they keep the folder
        _mount_ui(app, settings=settings, service=service, dialogue=dialogue, check=check)
    return app


def _guard_policy(settings: Settings, check: Callable[[str, str], bool] | None,
                  cache: GradioCache | None) -> GuardPolicy:
    return GuardPolicy(
        max_request_bytes=settings.max_request_bytes, max_upload_bytes=settings.max_upload_bytes,
        max_control_bytes=settings.max_control_bytes, check=check, frame_ancestors=settings.frame_ancestors,
        sign_ins=SignInLimiter(per_user=settings.max_failed_sign_ins_per_user,
                               per_address=settings.max_failed_sign_ins_per_address,
                               window_seconds=settings.sign_in_window_seconds),
        streams=StreamLimiter(settings.max_streams_per_client), cache=cache)


def _document_basic_auth(app: FastAPI) -> None:
    """Show HTTP Basic in the OpenAPI document (the GuardMiddleware enforces it)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["basic"] = {
                "type": "http", "scheme": "basic"}
            for path, ops in schema.get("paths", {}).items():
                if path.startswith("/api/"):
                    for op in ops.values():
                        op["security"] = [{"basic": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _mount_ui(app: FastAPI, *, settings, service, dialogue, check) -> None:
    from pathlib import Path

    import gradio as gr
    from fastapi.responses import FileResponse

    from assistant.adapters import app as ui_app
    from assistant.adapters.app_look import APP_CSS, APP_THEME

    loader = Path(gr.__file__).parent / "templates" / "frontend" / "gradio.js"

    @app.get("/gradio.js", include_in_schema=False)
    async def web_component_loader() -> FileResponse:
        """Gradio's web-component loader, served by this app (no CDN needed): it imports
        ``./assets/index-*.js`` relative to itself, which the mounted UI serves."""
        return FileResponse(loader, media_type="text/javascript")

    from assistant.adapters.batch_tab import batch_tab

    demo = ui_app.build_app(service, settings=settings, dialogue=dialogue, extra_tabs=[batch_tab])
    demo.delete_cache = (CACHE_SWEEP_SECONDS, CACHE_TTL_SECONDS)   # Gradio's copies expire after an hour
    gr.mount_gradio_app(
        app, demo, path="/",
        auth=check,
        theme=APP_THEME, css=APP_CSS,
        max_file_size=settings.max_upload_bytes,
        run_history=False,   # never keep customer values in the browser's run history
        ssr_mode=False, mcp_server=False,
        server_name=settings.host, server_port=settings.port,
    )


# ---------------------------------------------------------------------------- serving


def _listen(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        # pass the protocol (IPPROTO_TCP): asyncio turns TCP_NODELAY on only for sockets that say TCP;
        # without it every answer on a kept-alive connection waits ~40 ms (Nagle + delayed ACK)
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        raise AssistantError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                             f"is another server using the port? Pick another with --port") from None
    sock.set_inheritable(True)
    return sock


def _local_url(host: str, port: int, root_path: str) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{root_path}/"


def open_share_link(host: str, port: int) -> tuple[str | None, Any, str | None]:
    """Try to open a Gradio share tunnel to ``host:port``: (url, tunnel, None) or (None, None, reason)."""
    from urllib.parse import urlparse, urlunparse

    from gradio import networking

    local = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    try:
        address = networking.setup_tunnel(local, port, secrets.token_urlsafe(32), None, None)
    except Exception as exc:  # no internet, blocked download, share server down: all mean "no link"
        cause = exc.__cause__ or exc
        return None, None, f"{exc} ({cause.__class__.__name__}: {cause})" if cause is not exc else str(exc)
    from gradio.tunneling import CURRENT_TUNNELS

    tunnel = CURRENT_TUNNELS[-1] if CURRENT_TUNNELS else None
    return urlunparse(("https",) + tuple(urlparse(address))[1:]), tunnel, None


def run_server(settings, *, service, out=None) -> int:
    """Serve the app until interrupted. Prints one line when it is ready (and the share link)."""
    out = out or sys.stdout
    if settings.share and not settings.auth and not settings.share_without_auth:
        raise AssistantError("--share would open a public link without a password: add --auth USER:PASS "
                             "or pass --share-without-auth")
    if settings.share and settings.root_path:
        raise AssistantError(f"--share cannot be combined with --root-path {settings.root_path}: the share link "
                             f"reaches the server directly, not through your proxy")
    import uvicorn

    started = time.perf_counter()
    sock = _listen(settings.host, settings.port)  # a busy port fails before the slow part
    port = sock.getsockname()[1]
    try:
        app = create_app(settings, service=service)
    except BaseException:
        sock.close()
        raise
    config = uvicorn.Config(app, host=settings.host, port=port, root_path=settings.root_path,
                            log_level="warning", access_log=False, timeout_graceful_shutdown=5,
                            timeout_keep_alive=KEEP_ALIVE_SECONDS)
    server = uvicorn.Server(config)
    tunnels: list[Any] = []

    def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.01)
        url = _local_url(settings.host, port, settings.root_path)
        print(f"Customer Segment Assistant ready in {time.perf_counter() - started:.1f} s at {url} "
              f"(REST API: {url}api/v1, docs: {url}docs)"
              + (" - sign in with the --auth credentials" if settings.auth else ""), file=out, flush=True)
        if settings.share:
            print("Opening a public share link...", file=out, flush=True)
            link, tunnel, reason = open_share_link(settings.host, port)
            if link is None:
                print(f"No public share link could be made: {reason}. The assistant keeps serving locally at {url}",
                      file=out, flush=True)
            else:
                tunnels.append(tunnel)
                print(f"Public share link (temporary, Gradio keeps it up to a week): {link}", file=out, flush=True)

    threading.Thread(target=announce, name="announce", daemon=True).start()
    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal; a stop asked
    # for is a normal end here (exit 0), not an interruption.
    in_main = threading.current_thread() is threading.main_thread()
    previous_term = signal.signal(signal.SIGTERM, lambda *_: None) if in_main else None
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous_term)
        for tunnel in tunnels:
            if tunnel is not None:
                try:
                    tunnel.kill()
                except Exception:  # the process may already be gone
                    pass
        sock.close()
    print("Customer Segment Assistant stopped.", file=out, flush=True)
    return 0


__all__ = ["KEEP_ALIVE_SECONDS", "create_app", "credentials_checker", "frame_ancestors_policy",
           "open_share_link", "run_server"]
