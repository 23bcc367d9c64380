"""The web app in its own process, for the reliability tests and the soak benchmark.

``python tests/_server_proc.py [--max-sessions N] [--ttl S] [--max-ui-sessions N] [--auth USER:PASS]
[--log-level DEBUG] [--no-ui] [--model-dir DIR]``
builds the app with ``assistant.web.create_app``, as ``segment-assistant serve`` does, serves
it with uvicorn on a free loopback port and prints one line ``READY <base url>`` when it answers.
Running it in a separate process keeps its memory (RSS) apart from the test's. With
``--log-level DEBUG`` every logger (ours, uvicorn's access log, Gradio's, httpx's) writes to
stderr, so a test can read everything the server logged.

``GET /_test/stats`` (answered by a thin wrapper in front of the app, never part of the product)
gives the REST session store's size and counters, the Gradio session count and the Python heap size
(``sys.getallocatedblocks()``).
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import sys
import threading
import time


def _gradio_state_holder(app):
    for route in app.routes:
        holder = getattr(getattr(route, "app", None), "state_holder", None)
        if holder is not None:
            return holder
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-sessions", type=int, default=10_000)
    parser.add_argument("--ttl", type=float, default=3600.0)
    parser.add_argument("--max-ui-sessions", type=int, default=1_000)
    parser.add_argument("--auth", default=None)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--no-ui", action="store_true")
    parser.add_argument("--model-dir", default=None)
    args = parser.parse_args(argv)
    level = args.log_level.upper()
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s", force=True)

    import uvicorn

    from assistant.adapters.web import KEEP_ALIVE_SECONDS, create_app
    from assistant.core.settings import Settings, parse_credentials
    from assistant.model.segmentation import SegmentationService

    settings = Settings(max_sessions=args.max_sessions, session_ttl_seconds=args.ttl,
                        max_ui_sessions=args.max_ui_sessions,
                        auth=parse_credentials(args.auth, source="--auth") if args.auth else ())
    app = create_app(settings, service=SegmentationService.load(args.model_dir), ui=not args.no_ui)
    store = app.state.sessions
    holder = _gradio_state_holder(app)

    async def wrapper(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/_test/stats":
            body = json.dumps({"sessions": len(store), "evicted": store.evicted, "expired": store.expired,
                               "max_sessions": store.max_sessions,
                               "gradio_sessions": len(holder.session_data) if holder is not None else None,
                               "max_ui_sessions": holder.capacity if holder is not None else None,
                               "threads": threading.active_count(),
                               "python_blocks": sys.getallocatedblocks()}).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    debug = level == "DEBUG"
    server = uvicorn.Server(uvicorn.Config(wrapper, log_level=level.lower(), access_log=debug,
                                           timeout_graceful_shutdown=3, log_config=None,
                                           timeout_keep_alive=KEEP_ALIVE_SECONDS))   # as run_server

    def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.01)
        print(f"READY http://127.0.0.1:{port}", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
