"""Helpers for the web tests: serve an ASGI app with uvicorn in a thread, and a tiny
prefix-stripping reverse proxy (what nginx does with ``location /segments/ { proxy_pass ...; }``)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
              "proxy-authenticate", "host", "content-length"}


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    """A loopback port that was free a moment ago (for servers that bind it themselves)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(app, *, root_path: str = "", sock: socket.socket | None = None) -> Iterator[str]:
    """Run ``app`` on ``sock`` (default: a free loopback port); yields its base URL (without root_path)."""
    sock = sock or free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, root_path=root_path, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def prefix_proxy(upstream: str, prefix: str) -> Starlette:
    """Forward ``{prefix}/anything`` to ``{upstream}/anything`` (streaming), like a reverse proxy that
    strips the prefix; sets X-Forwarded-Host/Proto as nginx would be told to."""
    client = httpx.AsyncClient(base_url=upstream, timeout=None)

    async def forward(request: Request):
        path = request.url.path
        if not (path == prefix or path.startswith(prefix + "/")):
            return PlainTextResponse("not behind this prefix", status_code=404)
        target = path[len(prefix):] or "/"
        if request.url.query:
            target += "?" + request.url.query
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        headers += [("x-forwarded-host", request.headers["host"]), ("x-forwarded-proto", "http")]
        upstream_request = client.build_request(request.method, target, headers=headers, content=await request.body())
        response = await client.send(upstream_request, stream=True)
        out_headers = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
        return StreamingResponse(response.aiter_raw(), status_code=response.status_code, headers=out_headers,
                                 background=BackgroundTask(response.aclose))

    methods = ["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)])
