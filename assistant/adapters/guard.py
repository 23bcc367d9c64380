"""The one ASGI layer in front of the whole web app (REST API and Gradio UI): headers, limits, auth.

Per request, in this order:

* Security headers on every answer (frame-ancestors policy, nosniff, same-origin referrer).
* Body size, judged on Content-Length and on the bytes received, before anything parses it:
  uploads ``max_upload_bytes``; Gradio's open session controls and the sign-in form
  ``max_control_bytes`` (:data:`CONTROL_PREFIXES`); everything else ``max_request_bytes``. 413.
* Sign-in: Gradio's form (``POST /login``) and HTTP Basic on the REST routes count failed
  attempts per user name and per client address (:class:`~assistant.adapters.limits.SignInLimiter`);
  beyond the limit the answer is 429 with Retry-After, right password or not. The REST user is put
  in the request scope (:data:`USER_SCOPE_KEY`) so chat sessions can belong to their user.
* Heartbeat streams: at most ``max_streams_per_client`` open per client address. 429.
* Files named in a Gradio event (any JSON object with a ``"path"`` in the body of a ``POST
  /gradio_api/...``, e.g. ``/call/<api>``, ``/queue/join``): accepted only inside this server's
  upload folder (:meth:`GradioCache.holds`), else 403 before Gradio copies, hashes or opens it.

Every refusal is ``{"detail": [message]}`` like every other error of the app.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.adapters.gradio_cache import GradioCache
from assistant.adapters.limits import SignInLimiter, StreamLimiter

log = logging.getLogger(__name__)

PROTECTED_PREFIXES = ("/api/", "/docs", "/openapi.json", "/redoc")
UPLOAD_PREFIX = "/gradio_api/upload"
GRADIO_PREFIX = "/gradio_api/"
HEARTBEAT_PREFIX = "/gradio_api/heartbeat/"
LOGIN_PATHS = ("/login", "/login/")
CONTROL_PREFIXES = ("/gradio_api/cancel", "/gradio_api/reset", "/gradio_api/stream/", HEARTBEAT_PREFIX,
                    *LOGIN_PATHS, "/logout")
USER_SCOPE_KEY = "assistant.user"
REALM = "Customer Segment Assistant"
_LOGIN_MARK = b'"auth_required":true'
"""What Gradio's page config says to a visitor who has not signed in (its login form)."""


# ---------------------------------------------------------------------------- credentials


def credentials_checker(pairs: tuple[tuple[str, str], ...]) -> Callable[[str, str], bool]:
    """A ``(user, password) -> bool`` that compares in constant time against every pair."""
    encoded = [(u.encode("utf-8"), p.encode("utf-8")) for u, p in pairs]

    def check(user: str, password: str) -> bool:
        user_b, pass_b = str(user).encode("utf-8"), str(password).encode("utf-8")
        ok = False
        for u, p in encoded:  # no early exit: the time does not depend on which pair matched
            ok |= secrets.compare_digest(user_b, u) & secrets.compare_digest(pass_b, p)
        return ok

    return check


def basic_credentials(header: bytes | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, token = header.partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def frame_ancestors_policy(origins: tuple[str, ...]) -> str:
    if "*" in origins:
        return "frame-ancestors *"
    return " ".join(["frame-ancestors 'self'", *origins])


# ---------------------------------------------------------------------------- bodies


class _BodyTooLarge(HTTPException):
    """Raised from ``receive``: an HTTPException, so FastAPI's body reading lets it through (as 413). Its
    detail is a list, the app's one error shape, whichever app's handler renders it (Gradio's for uploads)."""

    def __init__(self, message: str) -> None:
        super().__init__(status_code=413, detail=[message])  # type: ignore[arg-type]
        self.message = message


def _too_large(limit: int) -> str:
    return f"the request body is above the limit of {limit:,} bytes"


def _json_messages(status: int, message: str, extra: list[tuple[bytes, bytes]]) -> list[Message]:
    body = json.dumps({"detail": [message]}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    return [{"type": "http.response.start", "status": status, "headers": headers},
            {"type": "http.response.body", "body": body}]


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body, or _BodyTooLarge as soon as it passes ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge(_too_large(limit))
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then whatever the client sends (its disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def named_paths(data: Any) -> Iterator[str]:
    """Every ``"path"`` value of a JSON object anywhere in ``data`` (iterative: no recursion limit)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            path = item.get("path")
            if path is not None:
                yield path if isinstance(path, str) else ""
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


# ---------------------------------------------------------------------------- the middleware


@dataclass(frozen=True)
class GuardPolicy:
    """What the guard enforces (built once from the settings)."""

    max_request_bytes: int
    max_upload_bytes: int
    max_control_bytes: int
    check: Callable[[str, str], bool] | None
    frame_ancestors: tuple[str, ...]
    sign_ins: SignInLimiter
    streams: StreamLimiter
    cache: GradioCache | None = None      # None: no UI mounted (no Gradio files at all)

    def limit_for(self, path: str) -> int:
        if path.startswith(UPLOAD_PREFIX):
            return self.max_upload_bytes
        if path.startswith(CONTROL_PREFIXES):
            return self.max_control_bytes
        return self.max_request_bytes


class GuardMiddleware:
    """Security headers, size limits, sign-in limits, stream limits, HTTP Basic and the file-path rule,
    in one pure ASGI layer."""

    def __init__(self, app: ASGIApp, *, policy: GuardPolicy) -> None:
        self.app = app
        self.policy = policy
        self.extra_headers = [(b"content-security-policy", frame_ancestors_policy(policy.frame_ancestors).encode()),
                              (b"x-content-type-options", b"nosniff"),
                              (b"referrer-policy", b"same-origin")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), *self.extra_headers]
            await send(message)

        limit = self.policy.limit_for(path)
        length = _content_length(scope)
        if length is not None and length > limit:
            log.info("refused a request body of %d bytes (limit %d)", length, limit)
            await self._refuse(send, 413, f"the request body is {length:,} bytes, above the limit of {limit:,}")
            return
        receive = _limited(receive, limit)
        try:
            await self._route(scope, path, receive, send_with_headers)
        except _BodyTooLarge as exc:
            if started:
                raise
            await self._refuse(send, 413, exc.message)

    async def _route(self, scope: Scope, path: str, receive: Receive, send: Send) -> None:
        method = scope["method"]
        address = (scope.get("client") or ("unknown", 0))[0]
        if self.policy.check is not None and path in LOGIN_PATHS and method == "POST":
            await self._sign_in_form(scope, address, receive, send)
        elif self.policy.check is not None and path.startswith(PROTECTED_PREFIXES) and method != "OPTIONS":
            await self._basic(scope, address, receive, send)
        elif path.startswith(HEARTBEAT_PREFIX):
            await self._stream(scope, address, receive, send)
        elif (self.policy.cache is not None and method == "POST" and path.startswith(GRADIO_PREFIX)
              and not path.startswith((UPLOAD_PREFIX, *CONTROL_PREFIXES))):
            await self._gradio_event(scope, receive, send)
        elif self.policy.check is not None and path in ("/", "") and method in ("GET", "HEAD"):
            await self._page(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _refuse(self, send: Send, status: int, message: str,
                      headers: list[tuple[bytes, bytes]] | None = None) -> None:
        for m in _json_messages(status, message, [*(headers or []), *self.extra_headers]):
            await send(m)

    async def _locked(self, send: Send, wait: int) -> None:
        await self._refuse(send, 429, f"too many failed sign-ins: try again in {wait} s",
                           [(b"retry-after", str(wait).encode())])

    # ------------------------------------------------------------------ sign-in

    async def _basic(self, scope: Scope, address: str, receive: Receive, send: Send) -> None:
        creds = basic_credentials(dict(scope["headers"]).get(b"authorization"))
        if creds is not None:
            wait = self.policy.sign_ins.retry_after(creds[0], address)
            if wait:
                await self._locked(send, wait)
                return
            assert self.policy.check is not None
            if self.policy.check(*creds):
                self.policy.sign_ins.succeeded(creds[0])
                scope[USER_SCOPE_KEY] = creds[0]
                await self.app(scope, receive, send)
                return
            self.policy.sign_ins.failed(creds[0], address)
        await self._refuse(send, 401, "authentication required: send HTTP Basic credentials (the user and password "
                                      "given to --auth)",
                           [(b"www-authenticate", f'Basic realm="{REALM}", charset="UTF-8"'.encode())])

    async def _sign_in_form(self, scope: Scope, address: str, receive: Receive, send: Send) -> None:
        """Gradio's login form: refused while locked; its answer (200 or 400) is counted."""
        body = await _read_body(receive, self.policy.max_control_bytes)
        replay = _replay(body, receive)
        user = await _form_user(scope, body)
        wait = self.policy.sign_ins.retry_after(user, address)
        if wait:
            await self._locked(send, wait)
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, replay, watch)
        if status == 200:
            self.policy.sign_ins.succeeded(user)
        elif status == 400:
            self.policy.sign_ins.failed(user, address)

    # ------------------------------------------------------------------ streams and files

    async def _stream(self, scope: Scope, address: str, receive: Receive, send: Send) -> None:
        streams = self.policy.streams
        if not streams.acquire(address):
            await self._refuse(send, 429, f"too many open streams from this client (at most {streams.per_client})")
            return
        try:
            await self.app(scope, receive, send)
        finally:
            streams.release(address)

    async def _gradio_event(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A Gradio event's body may name files only inside this server's upload folder."""
        body = await _read_body(receive, self.policy.max_request_bytes)
        cache = self.policy.cache
        assert cache is not None
        try:
            data = json.loads(body) if body else None
        except (ValueError, RecursionError):
            data = None                          # not JSON: Gradio refuses it; nothing names a file
        if any(not cache.holds(p) for p in named_paths(data)):
            log.warning("refused a Gradio event naming a file outside this server's upload folder")
            await self._refuse(send, 403, "a file named in this request was not uploaded to this server: "
                                          "upload it first (POST /gradio_api/upload) and send the path it returns")
            return
        await self.app(scope, _replay(body, receive), send)

    async def _page(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The UI page with auth on: to someone not signed in Gradio sends its login form (a page
        with no components); it goes out as 401, like every other protected route, with the form
        still in the body so a browser shows it (no WWW-Authenticate: no browser password box)."""
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
        signed_out = _LOGIN_MARK in body
        for message in held:
            if message["type"] == "http.response.start" and signed_out and message.get("status") == 200:
                message = {**message, "status": 401}
            await send(message)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _limited(receive: Receive, limit: int) -> Receive:
    received = 0

    async def receive_with_limit() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _BodyTooLarge(_too_large(limit))
        return message

    return receive_with_limit


async def _form_user(scope: Scope, body: bytes) -> str:
    """The ``username`` of a sign-in form (URL-encoded or multipart), stripped as Gradio strips it."""
    content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1").lower()
    if content_type.startswith("multipart/"):
        try:
            form = await Request(scope, _replay(body, _no_more)).form()
            value = form.get("username")
        except Exception:                      # a malformed form: Gradio refuses it too
            value = None
        return value.strip() if isinstance(value, str) else ""
    values = parse_qs(body.decode("utf-8", "replace")).get("username", [""])
    return values[0].strip()


async def _no_more() -> Message:
    return {"type": "http.disconnect"}


__all__ = ["CONTROL_PREFIXES", "GuardMiddleware", "GuardPolicy", "USER_SCOPE_KEY", "basic_credentials",
           "credentials_checker", "frame_ancestors_policy", "named_paths"]
