"""The load generator shared by ``tests/test_load.py`` and ``tests/benchmarks/soak.py``.

A server runs in its own process (``tests/_server_proc.py``) so that its memory (RSS, read from
``/proc/<pid>/status``) is its own. Worker threads, each with its own keep-alive connection, run
conversations in a closed loop until the time is up:

* REST workers: ``POST /api/v1/chat`` (the session id comes back in each answer);
* Gradio workers: raw HTTP through the Gradio queue, ``POST /gradio_api/call/chat`` with the
  session's own ``session_hash``, then ``GET /gradio_api/call/chat/{event_id}`` (server-sent
  events) for the result.

Every conversation describes a different customer (:func:`customer`: the income alone is
unique to each conversation, and customers talked about at the same time differ in every field),
one field per message, then asks "what do you have so far". Every answer is checked against
that conversation's own values only: the profile so far, the value just given quoted back in
the reply, the summary listing all seven values, the segment the committed model gives for them
and (Gradio) a history holding exactly this conversation's messages. So one session's values
showing up in another's answer is an error, as is any non-200 answer or exception.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from assistant.core.fields import FIELD_NAMES, FIELDS_BY_NAME

ROOT = Path(__file__).resolve().parent.parent
SERVER_SCRIPT = Path(__file__).resolve().parent / "_server_proc.py"

MESSAGES = {
    "age": "age {v}",
    "income": "income {v}",
    "total_spending": "spent {v}",
    "web_purchases": "{v} web purchases",
    "store_purchases": "{v} store purchases",
    "web_visits_per_month": "{v} web visits per month",
    "recency_days": "last purchase {v} days ago",
}
SUMMARY = "what do you have so far"


def customer(u: int) -> dict[str, int]:
    """The customer of conversation number ``u``: distinct from every other conversation's."""
    return {"age": 18 + u % 90, "income": 15_000 + 13 * u, "total_spending": 5 + (u * 7) % 2_500,
            "web_purchases": u % 25, "store_purchases": (u * 3) % 14, "web_visits_per_month": (u * 5) % 21,
            "recency_days": (u * 11) % 100}


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


# ---------------------------------------------------------------------------- the server process


def scored_file_path(data: list) -> str:
    """The scored file's server path from the Batch tab's outputs (a file, or a gr.update wrapping one)."""
    scored = data[3]
    return scored.get("value", scored)["path"]


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL if it has not ended within 15 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class ServerProcess:
    """``tests/_server_proc.py`` in a child process; ``base`` is its URL once ready."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, timeout: float = 90) -> None:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        full_env.pop("SEGMENT_ASSISTANT_AUTH", None)
        self.stderr_lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, str(SERVER_SCRIPT), *args], cwd=ROOT, env=full_env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._stdout: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(self.proc.stdout, self._stdout, None), daemon=True).start()
        self._err_thread = threading.Thread(target=self._pump, args=(self.proc.stderr, None, self.stderr_lines),
                                            daemon=True)
        self._err_thread.start()
        deadline = time.monotonic() + timeout
        self.base = ""
        while time.monotonic() < deadline:
            try:
                line = self._stdout.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            if line.startswith("READY "):
                self.base = line.split()[1]
                break
        if not self.base:
            self.stop()
            raise RuntimeError("the server did not start:\n" + "\n".join(self.stderr_lines[-30:]))

    @staticmethod
    def _pump(stream, out: queue.Queue | None, lines: list[str] | None) -> None:
        for line in stream:
            if out is not None:
                out.put(line.rstrip("\n"))
            if lines is not None:
                lines.append(line.rstrip("\n"))
        if out is not None:
            out.put(None)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_mb(self) -> float:
        return rss_mb(self.proc.pid)

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.base}/_test/stats", timeout=10, trust_env=False).json()

    def stop(self) -> int:
        stop_process(self.proc)
        self._err_thread.join(5)
        return self.proc.returncode

    def log_text(self) -> str:
        return "\n".join(self.stderr_lines)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------------------- conversations


@dataclass
class Tally:
    """What the workers did (thread-safe: list.append is atomic)."""

    rest_latency: list[float] = field(default_factory=list)
    gradio_latency: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    conversations: dict[str, int] = field(default_factory=lambda: {"rest": 0, "gradio": 0})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, text: str) -> None:
        self.errors.append(text[:500])

    def done(self, kind: str) -> None:
        with self.lock:
            self.conversations[kind] += 1


class Mismatch(Exception):
    pass


def _check_turn(u: int, values: dict[str, int], given: list[str], body: dict[str, Any], reply: str) -> None:
    expected = {n: (values[n] if n in given else None) for n in FIELD_NAMES}
    got = body.get("profile")
    if got != expected:
        raise Mismatch(f"conversation {u}: profile {got} is not this conversation's {expected}")
    name = given[-1]
    shown = FIELDS_BY_NAME[name].say(values[name])
    if shown not in reply:
        raise Mismatch(f"conversation {u}: the reply to {name}={values[name]} does not say {shown!r}: {reply[:200]!r}")


def _check_summary(u: int, values: dict[str, int], body: dict[str, Any], reply: str, labels: dict) -> None:
    if body.get("profile") != values or body.get("complete") is not True:
        raise Mismatch(f"conversation {u}: summary profile {body.get('profile')} is not {values}")
    for name in FIELD_NAMES:
        shown = FIELDS_BY_NAME[name].say(values[name])
        if shown not in reply:
            raise Mismatch(f"conversation {u}: the summary does not list {shown!r}: {reply[:300]!r}")
    expected_key = labels["key"](values)
    if labels["name"](expected_key) not in reply:
        raise Mismatch(f"conversation {u}: the summary does not name the segment {expected_key}")


def rest_conversation(http: httpx.Client, u: int, tally: Tally, labels: dict) -> None:
    values = customer(u)
    sid = None
    given: list[str] = []

    def send(message: str) -> dict[str, Any]:
        started = time.perf_counter()
        r = http.post("/api/v1/chat", json={"session_id": sid, "message": message})
        tally.rest_latency.append(time.perf_counter() - started)
        if r.status_code != 200:
            raise Mismatch(f"conversation {u}: HTTP {r.status_code} {r.text[:200]}")
        return r.json()

    for name in FIELD_NAMES:
        body = send(MESSAGES[name].format(v=values[name]))
        if sid is not None and body["session_id"] != sid:
            raise Mismatch(f"conversation {u}: session id changed from {sid} to {body['session_id']}")
        sid = body["session_id"]
        given.append(name)
        _check_turn(u, values, given, body, body["reply"])
    result = body["result"]
    if result is None or result["segment_key"] != labels["key"](values) or result["customer"] != values:
        raise Mismatch(f"conversation {u}: result {result and result['segment_key']} / {result and result['customer']}"
                       f" is not this customer's")
    body = send(SUMMARY)
    _check_summary(u, values, body, body["reply"], labels)


def sse_result(text: str) -> tuple[str, Any]:
    """(last event name, its data) from a server-sent-events body."""
    event, data = "", None
    for block in text.split("\n\n"):
        lines = block.strip().splitlines()
        name = next((ln[7:] for ln in lines if ln.startswith("event: ")), None)
        payload = next((ln[6:] for ln in lines if ln.startswith("data: ")), None)
        if name in ("complete", "error"):
            event, data = name, json.loads(payload) if payload else None
    return event, data


def gradio_conversation(http: httpx.Client, u: int, tally: Tally, labels: dict) -> None:
    values = customer(u)
    session_hash = uuid.uuid4().hex[:12]
    sent: list[str] = []
    given: list[str] = []

    def send(message: str) -> tuple[dict[str, Any], str]:
        started = time.perf_counter()
        r = http.post("/gradio_api/call/chat", json={"data": [message], "session_hash": session_hash})
        if r.status_code != 200:
            raise Mismatch(f"conversation {u} (gradio): HTTP {r.status_code} {r.text[:200]}")
        event_id = r.json()["event_id"]
        r = http.get(f"/gradio_api/call/chat/{event_id}")
        tally.gradio_latency.append(time.perf_counter() - started)
        event, data = sse_result(r.text)
        if r.status_code != 200 or event != "complete":
            raise Mismatch(f"conversation {u} (gradio): {r.status_code} {event} {str(data)[:200]}")
        sent.append(message)
        history, turn = data[0], data[-1]
        users = [m["content"][0]["text"] if isinstance(m["content"], list) else m["content"]
                 for m in history if m["role"] == "user"]
        if users != sent or len(history) != 1 + 2 * len(sent):
            raise Mismatch(f"conversation {u} (gradio): history {users} is not this conversation's {sent}")
        last = history[-1]["content"]
        reply = last[0]["text"] if isinstance(last, list) else last
        # the web chat shows a full answer as the result card (segment name first) in place of its Markdown
        result = turn.get("result")
        carded = result is not None and 'class="result-card"' in reply
        same = result["segment_name"] in reply if carded else reply == turn["reply"]
        if not same:
            raise Mismatch(f"conversation {u} (gradio): the history's last reply is not the turn's reply")
        return turn, reply

    for name in FIELD_NAMES:
        turn, reply = send(MESSAGES[name].format(v=values[name]))
        given.append(name)
        _check_turn(u, values, given, turn, reply)
    result = turn["result"]
    if result is None or result["segment_key"] != labels["key"](values) or result["customer"] != values:
        raise Mismatch(f"conversation {u} (gradio): the result is not this customer's")
    turn, reply = send(SUMMARY)
    _check_summary(u, values, turn, reply, labels)


# ---------------------------------------------------------------------------- the run


@dataclass
class LoadReport:
    seconds: float
    rest_workers: int
    gradio_workers: int
    conversations: dict[str, int]
    requests: dict[str, int]
    errors: list[str]
    latency_ms: dict[str, dict[str, float]]
    rss_mb: dict[str, float]                 # start / middle / end
    stats: dict[str, dict[str, Any]]         # the server's /_test/stats at start / middle / end
    done_at: dict[str, dict[str, int]]       # conversations finished by start / middle / end

    def lines(self) -> list[str]:
        lat = self.latency_ms
        heap = {k: v["python_blocks"] for k, v in self.stats.items()}
        return [
            f"load: {self.seconds:.0f} s, {self.rest_workers} REST + {self.gradio_workers} Gradio sessions at a time",
            f"conversations: {self.conversations['rest']:,} REST + {self.conversations['gradio']:,} Gradio; "
            f"requests: {self.requests['rest']:,} REST + {self.requests['gradio']:,} Gradio round trips "
            f"({sum(self.requests.values()) / self.seconds:,.0f}/s); errors: {len(self.errors)}",
            f"latency: REST p50 {lat['rest']['p50']:.1f} ms, p95 {lat['rest']['p95']:.1f} ms; "
            f"Gradio (call + SSE) p50 {lat['gradio']['p50']:.1f} ms, p95 {lat['gradio']['p95']:.1f} ms",
            "server RSS: " + ", ".join(f"{k} {v:.0f} MB" for k, v in self.rss_mb.items()),
            "server Python heap (allocated blocks): " + ", ".join(f"{k} {v:,}" for k, v in heap.items()),
            "sessions held: " + "; ".join(
                f"{k}: REST {v['sessions']} (cap {v['max_sessions']}, evicted {v['evicted']}, expired {v['expired']}), "
                f"Gradio {v['gradio_sessions']} (cap {v['max_ui_sessions']})" for k, v in self.stats.items()),
        ]

    def heap_growth_per_conversation(self) -> float:
        """Python heap blocks gained from start to end per conversation run in that time."""
        grown = self.stats["end"]["python_blocks"] - self.stats["start"]["python_blocks"]
        return grown / max(1, sum(self.conversations.values()))


def _quantiles(samples: list[float]) -> dict[str, float]:
    if len(samples) < 2:
        return {"p50": float("nan"), "p95": float("nan")}
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": 1000 * q[49], "p95": 1000 * q[94]}


def _fill_gradio(http: httpx.Client, n: int, u0: int) -> None:
    """``n`` one-message Gradio sessions, so that the session cap is reached before measuring."""
    for i in range(n):
        r = http.post("/gradio_api/call/chat", json={"data": [f"age {18 + (u0 + i) % 90}"],
                                                     "session_hash": uuid.uuid4().hex[:12]})
        r.raise_for_status()
        event, _ = sse_result(http.get(f"/gradio_api/call/chat/{r.json()['event_id']}").text)
        if event != "complete":
            raise Mismatch(f"filling the Gradio sessions: {event}")


def run_load(server: ServerProcess, labels: dict, *, seconds: float, rest_workers: int = 50,
             gradio_workers: int = 20, fill_gradio: int = 0) -> LoadReport:
    """Run the workers against ``server`` for ``seconds``.

    Warm-up first: one conversation per worker, plus ``fill_gradio`` one-message Gradio sessions
    (to reach the server's Gradio session cap). Then RSS and the server's counters are sampled at
    the start, at half time and at the end of the timed run."""
    counter = itertools.count()
    tally = Tally()
    workers = rest_workers + gradio_workers
    ready = threading.Barrier(workers + 1)
    go = threading.Barrier(workers + 1)
    deadline = [0.0]
    per_worker_fill = -(-fill_gradio // gradio_workers) if gradio_workers else 0

    def worker(kind: str) -> None:
        run = rest_conversation if kind == "rest" else gradio_conversation
        with httpx.Client(base_url=server.base, timeout=60, trust_env=False) as http:
            try:
                run(http, next(counter), Tally(), labels)
                if kind == "gradio" and per_worker_fill:
                    _fill_gradio(http, per_worker_fill, next(counter))
            except Exception as exc:  # noqa: BLE001 - every failure is counted, none stops the run
                tally.error(f"warm-up {kind}: {exc!r}")
            ready.wait()
            go.wait()
            while time.monotonic() < deadline[0]:
                try:
                    run(http, next(counter), tally, labels)
                    tally.done(kind)
                except Exception as exc:  # noqa: BLE001
                    tally.error(f"{kind}: {exc!r}")

    threads = [threading.Thread(target=worker, args=("rest",), daemon=True) for _ in range(rest_workers)]
    threads += [threading.Thread(target=worker, args=("gradio",), daemon=True) for _ in range(gradio_workers)]
    for t in threads:
        t.start()
    ready.wait()
    rss, stats, done_at = {}, {}, {}

    def sample(name: str) -> None:
        rss[name] = server.rss_mb()
        stats[name] = server.stats()
        done_at[name] = dict(tally.conversations)

    sample("start")
    began = time.monotonic()
    deadline[0] = began + seconds
    go.wait()
    time.sleep(seconds / 2)
    sample("middle")
    for t in threads:
        t.join(seconds + 120)
    elapsed = time.monotonic() - began
    sample("end")
    return LoadReport(
        seconds=elapsed, rest_workers=rest_workers, gradio_workers=gradio_workers,
        conversations=dict(tally.conversations),
        requests={"rest": len(tally.rest_latency), "gradio": len(tally.gradio_latency)},
        errors=list(tally.errors),
        latency_ms={"rest": _quantiles(tally.rest_latency), "gradio": _quantiles(tally.gradio_latency)},
        rss_mb=rss, stats=stats, done_at=done_at)


def model_labels() -> dict:
    """The committed model's answers, computed in this process, to check the server's."""
    from assistant.core.schemas import parse_profile
    from assistant.model.segmentation import SegmentationService

    service = SegmentationService.load()
    return {"key": lambda values: service.label(parse_profile(values)), "name": service.segment_name}
