"""The REST API under concurrent load, every figure also a ratio against ``GET /healthz`` measured
in the same run.

    .venv/bin/python tests/benchmarks/bench_rest.py [--seconds 5] [--clients 1,10,50] [--sessions 20]

The real server (``python -m assistant serve --port FREE``: the full app, Gradio UI and REST API
in one uvicorn process) runs as a subprocess, so the load generator does not share its GIL. The
load comes from ``multiprocessing`` worker processes on loopback, one persistent keep-alive
``http.client.HTTPConnection`` each, in a closed loop (send, read the whole answer, send the next)
for ``--seconds`` per level:

* ``POST /api/v1/segment`` with a distinct valid customer per request (synthetic customers, the
  seven fields), at each ``--clients`` level; a sample of answers is checked against
  ``service.label`` computed here. Baseline: ``GET /healthz`` (a constant, pre-serialised answer
  from the same stack: uvicorn, the middleware, FastAPI routing) at the same concurrency.
  Target (the issue): >= 500 req/s and p95 <= 50 ms at 10 clients.
* One chat turn, ``POST /api/v1/chat``: ``--sessions`` concurrent conversations, each describing
  its own customer one field per turn (``age 45``, ``income 55000``, ...), then ``why?``; the
  seventh turn must complete the profile with the right segment. Baseline: ``/healthz`` at the
  same concurrency.

Every answer must be 200 (errors are counted and must be 0). The CPU time of the generator
processes and of the server is measured per level and reported as a share of the machine (the
generator competes with the server for this machine's cores, which caps what can be measured).
Prints a markdown table and writes it to tests/benchmarks/results/rest.md. Exit code 1 on any
error, wrong answer or missed target.
"""

from __future__ import annotations

# Only the standard library at module level: worker processes are spawned and re-import this file.
import argparse
import http.client
import json
import multiprocessing as mp
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
from array import array
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results" / "rest.md"
HOST = "127.0.0.1"
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
SAMPLE_ANSWERS = 500   # answers per worker and level kept to check against the service


# ---------------------------------------------------------------------------- load-generator worker


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _exchange(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
    conn.request(method, path, body=body, headers=JSON_HEADERS if body is not None else {})
    response = conn.getresponse()
    return response.status, response.read()


def _worker(port: int, commands, results) -> None:
    """One simulated client: runs the commands it is sent, one keep-alive connection per command."""
    while True:
        cmd = commands.get()
        if cmd is None:
            return
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        latencies = array("d")
        errors: list[str] = []
        checks: list[tuple] = []
        kind = cmd["kind"]
        try:  # connect and warm up outside the measured window
            _exchange(conn, "GET", "/healthz", None)
        except (OSError, http.client.HTTPException) as exc:
            errors.append(f"warm-up: {exc!r}")
        start, end = cmd["start"], cmd["end"]
        while time.monotonic() < start:
            time.sleep(min(0.005, max(0.0, start - time.monotonic())))
        cpu0 = _cpu()
        last = start
        if kind == "healthz":
            last = _run_get(conn, end, latencies, errors)
        elif kind == "segment":
            last = _run_segment(conn, end, cmd["bodies"], latencies, errors, checks)
        elif kind == "chat":
            last = _run_chat(conn, end, cmd["conversations"], latencies, errors, checks)
        cpu = _cpu() - cpu0
        conn.close()
        results.put({"latencies": latencies.tobytes(), "errors": len(errors), "error_samples": errors[:3],
                     "checks": checks, "cpu": cpu, "last": last})


def _run_get(conn, end, latencies, errors) -> float:
    now = time.monotonic()
    while now < end:
        t0 = time.perf_counter()
        try:
            status, _ = _exchange(conn, "GET", "/healthz", None)
            if status != 200:
                errors.append(f"/healthz: HTTP {status}")
        except (OSError, http.client.HTTPException) as exc:
            errors.append(f"/healthz: {exc!r}")
            conn.close()
        latencies.append(time.perf_counter() - t0)
        now = time.monotonic()
    return now


def _run_segment(conn, end, bodies, latencies, errors, checks) -> float:
    now = time.monotonic()
    i = 0
    while now < end:
        index = i % len(bodies)
        t0 = time.perf_counter()
        try:
            status, data = _exchange(conn, "POST", "/api/v1/segment", bodies[index][1])
            if status != 200:
                errors.append(f"/api/v1/segment: HTTP {status}: {data[:200]!r}")
            elif len(checks) < SAMPLE_ANSWERS:
                checks.append((bodies[index][0], json.loads(data)["segment_key"]))
        except (OSError, http.client.HTTPException) as exc:
            errors.append(f"/api/v1/segment: {exc!r}")
            conn.close()
        latencies.append(time.perf_counter() - t0)
        i += 1
        now = time.monotonic()
    return now


def _run_chat(conn, end, conversations, latencies, errors, checks) -> float:
    """Whole conversations one after another (a new session each), until the time is up."""
    now = time.monotonic()
    c = 0
    while now < end:
        customer, messages = conversations[c % len(conversations)]
        c += 1
        session_id = None
        for turn, message in enumerate(messages, start=1):
            if now >= end:
                break
            body = json.dumps({"session_id": session_id, "message": message}).encode()
            t0 = time.perf_counter()
            try:
                status, data = _exchange(conn, "POST", "/api/v1/chat", body)
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    errors.append(f"/api/v1/chat turn {turn}: HTTP {status}: {data[:200]!r}")
                    now = time.monotonic()
                    break
                answer = json.loads(data)
                session_id = answer["session_id"]
                if turn == len(messages) - 1:  # the last field: the profile is complete
                    if not answer["complete"] or not answer["result"]:
                        errors.append(f"/api/v1/chat: not complete after {turn} turns: {answer['reply'][:200]!r}")
                    elif len(checks) < SAMPLE_ANSWERS:
                        checks.append((customer, answer["result"]["segment_key"]))
                elif turn == len(messages) and not answer["reply"].strip():
                    errors.append("/api/v1/chat: empty answer to 'why?'")
            except (OSError, http.client.HTTPException, KeyError, ValueError) as exc:
                latencies.append(time.perf_counter() - t0)
                errors.append(f"/api/v1/chat turn {turn}: {exc!r}")
                conn.close()
                now = time.monotonic()
                break
            now = time.monotonic()
    return now


# ---------------------------------------------------------------------------- the run


class Load:
    """A pool of worker processes, each a client with its own command queue."""

    def __init__(self, port: int, size: int) -> None:
        ctx = mp.get_context("spawn")
        self.idle = 0.0   # the server's CPU s per s without load, subtracted from the per-request figure
        self.results = ctx.Queue()
        self.queues = [ctx.Queue() for _ in range(size)]
        self.procs = [ctx.Process(target=_worker, args=(port, q, self.results), daemon=True) for q in self.queues]
        for p in self.procs:
            p.start()

    def run(self, commands: list[dict], seconds: float, server) -> dict:
        """Send ``commands`` (one per client) to as many workers; all start together."""
        start = time.monotonic() + 0.5 + 0.01 * len(commands)  # time for every worker to connect first
        end = start + seconds
        server_cpu0 = None
        for q, cmd in zip(self.queues, commands):
            q.put({**cmd, "start": start, "end": end})
        while time.monotonic() < start:
            time.sleep(0.001)
        server_cpu0, machine0 = _proc_cpu(server), _machine_cpu()
        outs = [self.results.get(timeout=seconds + 120) for _ in commands]
        server_cpu = _proc_cpu(server) - server_cpu0
        machine1 = _machine_cpu()
        busy = (machine1[0] - machine0[0]) / max(machine1[1] - machine0[1], 1e-9)
        import numpy as np

        lat = np.concatenate([np.frombuffer(o["latencies"], dtype=np.float64) for o in outs])
        wall = max(o["last"] for o in outs) - start
        return {
            "clients": len(commands), "requests": len(lat), "rps": len(lat) / wall, "wall": wall,
            "p50": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
            "p95": float(np.percentile(lat, 95)) if len(lat) else float("nan"),
            "errors": sum(o["errors"] for o in outs),
            "error_samples": [e for o in outs for e in o["error_samples"]][:5],
            "checks": [c for o in outs for c in o["checks"]],
            "generator_cpu": sum(o["cpu"] for o in outs) / (wall * os.cpu_count()),
            "server_cpu": server_cpu / (wall * os.cpu_count()),
            "server_cpu_per_request": max(0.0, server_cpu - self.idle * wall) / max(len(lat), 1),
            "machine_busy": busy,
        }

    def close(self) -> None:
        for q in self.queues:
            q.put(None)
        for p in self.procs:
            p.join(10)
            if p.is_alive():
                p.terminate()


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    import psutil

    t = psutil.cpu_times()
    total = sum(t)
    return total - t.idle - getattr(t, "iowait", 0.0), total


def _proc_cpu(proc) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def connection_check(port: int, n: int = 30) -> tuple[float, float]:
    """Median seconds of one ``GET /healthz`` on a new connection and on a kept-alive one. A
    kept-alive answer about 40 ms slower than a fresh one is the Nagle / delayed-ACK stall of a
    server socket without TCP_NODELAY (the first exchange of a connection is acknowledged at once)."""
    import statistics

    fresh, kept = [], []
    for _ in range(n):
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        t0 = time.perf_counter()
        _exchange(conn, "GET", "/healthz", None)
        fresh.append(time.perf_counter() - t0)
        conn.close()
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    _exchange(conn, "GET", "/healthz", None)
    for _ in range(n):
        t0 = time.perf_counter()
        _exchange(conn, "GET", "/healthz", None)
        kept.append(time.perf_counter() - t0)
    conn.close()
    return statistics.median(fresh), statistics.median(kept)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


DEFAULT_SERVER_CMD = "{python} -m assistant serve --host {host} --port {port}"


def start_server(port: int, log_path: Path, command: str = DEFAULT_SERVER_CMD) -> subprocess.Popen:
    """The server (by default ``python -m assistant serve --port PORT``) as a subprocess; returns
    once /healthz answers 200."""
    argv = [part.format(python=sys.executable, host=HOST, port=port) for part in shlex.split(command)]
    log = open(log_path, "wb")
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            status, _ = _exchange(conn, "GET", "/healthz", None)
            conn.close()
            if status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError(f"the server did not answer /healthz within 180 s: {log_path.read_text()[-2000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def make_customers(n: int, seed: int) -> list[dict]:
    """``n`` distinct valid customers (the seven fields) drawn from cleaned synthetic data."""
    sys.path.insert(0, str(ROOT))
    from assistant.core.fields import FIELDS
    from assistant.core.schemas import CustomerProfile
    from assistant.model.data import clean_customers
    from assistant.model.synthetic import generate_customers

    features = clean_customers(generate_customers(int(n * 1.1) + 100, seed=seed)).features
    features = features.drop_duplicates()
    out = []
    for row in features.itertuples(index=False):
        values = {f.name: (int(v) if f.integer or f.name == "income" else round(float(v), 2))
                  for f, v in zip(FIELDS, row)}
        out.append(CustomerProfile(**values).as_dict())  # valid by construction; checked anyway
        if len(out) == n:
            break
    return out


def chat_messages(customer: dict) -> list[str]:
    """One field per turn, named by its first synonym (``age 45``), then ``why?``."""
    from assistant.core.fields import FIELDS

    def number(v) -> str:
        return str(v) if isinstance(v, int) else f"{v:.2f}".rstrip("0").rstrip(".")

    return [f"{f.synonyms[0]} {number(customer[f.name])}" for f in FIELDS] + ["why?"]


def versions() -> str:
    from importlib.metadata import version

    names = ["fastapi", "starlette", "uvicorn", "pydantic", "gradio"]
    text = ", ".join(f"{n} {version(n)}" for n in names)
    extras = []
    for opt in ["httptools", "uvloop"]:
        try:
            extras.append(f"{opt} {version(opt)}")
        except Exception:
            extras.append(f"{opt} not installed")
    return text + " (" + ", ".join(extras) + ")"


def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per level")
    parser.add_argument("--clients", default="1,10,50", help="concurrency levels for /api/v1/segment")
    parser.add_argument("--sessions", type=int, default=20, help="concurrent chat sessions")
    parser.add_argument("--customers", type=int, default=50_000, help="distinct customers to send")
    parser.add_argument("--server-cmd", default=DEFAULT_SERVER_CMD,
                        help="how to start the server; {python}, {host} and {port} are filled in "
                             "(to compare another launcher or configuration of the same app)")
    args = parser.parse_args()
    levels = [int(x) for x in args.clients.split(",") if x.strip()]

    import psutil

    sys.path.insert(0, str(ROOT))
    from assistant.core.schemas import CustomerProfile
    from assistant.model.segmentation import SegmentationService

    load_before = os.getloadavg()
    customers = make_customers(args.customers, seed=11)
    service = SegmentationService.load()
    bodies = [(i, json.dumps(c).encode()) for i, c in enumerate(customers)]
    conversations = [(i, chat_messages(c)) for i, c in enumerate(customers)]

    def expected(i: int) -> str:
        return service.label(CustomerProfile(**customers[i]))

    port = free_port()
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-rest-server-{port}.log"
    started = time.perf_counter()
    server = start_server(port, log_path, args.server_cmd)
    startup = time.perf_counter() - started
    failures: list[str] = []
    rows: list[list[str]] = []
    summary: dict = {}
    idle, fresh, kept = 0.0, float("nan"), float("nan")
    try:
        proc = psutil.Process(server.pid)
        load = Load(port, max(levels + [args.sessions]))
        try:
            # warm up both paths (imports, first-call caches) outside any measured window
            load.run([{"kind": "healthz"}] * 2, 1.0, proc)
            load.run([{"kind": "segment", "bodies": bodies[:2000]}] * 2, 1.0, proc)
            load.run([{"kind": "chat", "conversations": conversations[:50]}] * 2, 1.0, proc)

            fresh, kept = connection_check(port)
            cpu0 = _proc_cpu(proc)
            time.sleep(2.0)
            idle = load.idle = (_proc_cpu(proc) - cpu0) / 2.0   # the server's own background work, CPU s per s

            def measure(kind: str, n: int) -> dict:
                if kind == "healthz":
                    cmds = [{"kind": "healthz"}] * n
                elif kind == "segment":
                    cmds = [{"kind": "segment", "bodies": bodies[w::n]} for w in range(n)]
                else:
                    cmds = [{"kind": "chat", "conversations": conversations[w::n]} for w in range(n)]
                r = load.run(cmds, args.seconds, proc)
                wrong = sum(1 for i, key in r["checks"] if key != expected(i))
                r["checked"], r["wrong"] = len(r["checks"]), wrong
                if r["errors"]:
                    failures.append(f"{kind} x{n}: {r['errors']} errors, e.g. {r['error_samples']}")
                if wrong:
                    failures.append(f"{kind} x{n}: {wrong} of {len(r['checks'])} answers disagree with the service")
                return r

            def row(what: str, r: dict, base: dict | None, target: str = "") -> list[str]:
                def ratio(key: str) -> str:
                    return f"{r[key] / base[key]:.2f}" if base else "1"

                checked = f"; {r['checked'] - r['wrong']}/{r['checked']} answers checked OK" if r["checked"] else ""
                return [what, str(r["clients"]), f"{r['requests']:,}", f"{r['rps']:,.0f}", ratio("rps"),
                        ms(r["p50"]), ratio("p50"), ms(r["p95"]), ratio("p95"), str(r["errors"]),
                        f"{r['server_cpu_per_request'] * 1e6:,.0f} us",
                        f"{100 * r['generator_cpu']:.0f}% / {100 * r['server_cpu']:.0f}% / "
                        f"{100 * max(0.0, r['machine_busy'] - r['generator_cpu'] - r['server_cpu']):.0f}%",
                        target + checked]

            for n in levels:
                base = measure("healthz", n)
                seg = measure("segment", n)
                rows.append(row("GET /healthz (baseline)", base, None))
                rows.append(row("POST /api/v1/segment", seg, base,
                                ">= 500 req/s, p95 <= 50 ms" if n == 10 else ""))
                summary[("segment", n)] = seg
            base = measure("healthz", args.sessions)
            chat = measure("chat", args.sessions)
            rows.append(row("GET /healthz (baseline)", base, None))
            rows.append(row("POST /api/v1/chat (one turn; 8-turn conversations)", chat, base))
            summary[("chat", args.sessions)] = chat
        finally:
            load.close()
    finally:
        stop_server(server)

    target_line = "target at 10 clients not measured (10 is not among --clients)"
    if ("segment", 10) in summary:
        r = summary[("segment", 10)]
        met = r["rps"] >= 500 and r["p95"] <= 0.050
        target_line = (f"target at 10 clients (>= 500 req/s and p95 <= 50 ms): "
                       f"{'MET' if met else 'NOT MET'} ({r['rps']:,.0f} req/s, p95 {ms(r['p95'])})")
        if not met:
            failures.append(target_line)
    errors_total = sum(r["errors"] for r in summary.values())

    header = (f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
              f"load average {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f} (1/5/15 min) before "
              f"the run; {versions()}")
    server_what = ("`python -m assistant serve`" if args.server_cmd == DEFAULT_SERVER_CMD
                   else f"`{args.server_cmd}`")
    setup = (f"server: {server_what} (Gradio UI + REST, one uvicorn process), ready in {startup:.1f} s; "
             f"load: one spawned process per client, each a keep-alive `http.client` connection in a closed loop, "
             f"{args.seconds:g} s per level, {len(customers):,} distinct customers. Ratios are against "
             f"`GET /healthz` at the same concurrency in this run (req/s: higher is better; latency: lower). "
             f"CPU = load generator / server / everything else on the machine, as shares of all "
             f"{os.cpu_count()} CPUs; server CPU per request = (the server's CPU time - its idle CPU, "
             f"{1000 * idle:.0f} ms per s) / requests answered.")
    cols = ["request", "clients", "requests", "req/s", "ratio", "p50", "ratio", "p95", "ratio", "errors",
            "server CPU per request", "CPU gen / server / other", "target; checks"]
    lines = [header, "", setup, "",
             "| " + " | ".join(cols) + " |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    stall = kept > 0.020 and kept > 5 * fresh
    connection_line = (f"one `GET /healthz`, median of 30: {ms(fresh)} on a new connection, {ms(kept)} on a kept-alive one"
                       + (" - kept-alive answers stall about 40 ms (Nagle + delayed ACK): the server's accepted "
                          "sockets probably lack TCP_NODELAY, which caps each connection at about 25 requests/s"
                          if stall else ""))
    lines += ["", connection_line, target_line, f"errors: {errors_total} (must be 0)"]
    if failures:
        lines += ["", "FAILED: " + "; ".join(failures)]
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("# REST API benchmark\n\n`.venv/bin/python tests/benchmarks/bench_rest.py "
                       + " ".join(sys.argv[1:]) + "`\n\n" + text + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
