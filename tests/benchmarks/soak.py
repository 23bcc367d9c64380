"""The long soak: many concurrent chat sessions against a real server process, for minutes.

    .venv/bin/python tests/benchmarks/soak.py --seconds 60 [--rest-workers 50] [--gradio-workers 20]
        [--max-sessions 200] [--max-ui-sessions 40] [--ttl 3]

The same load and checks as ``tests/test_load.py`` (tests/_soak.py), run longer: REST and
Gradio-queue conversations, each about its own customer, every answer checked against that
conversation's values. Prints (and writes to tests/benchmarks/results/soak.md) sessions,
requests, errors, latency p50/p95, the server's RSS and Python heap at start/middle/end and a
timeline of both. Exit code 1 when any check fails: an error, a cap exceeded, idle REST
sessions not expired, the Python heap growing once the caps are reached, or (runs of 180 s or
more) RSS growing by more than 10 % over the last third of the run: the allocator's high-water
mark rises for the first minute or two with Gradio traffic, then stays flat.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))            # tests/ (the shared load generator)
sys.path.insert(0, str(HERE.parents[1]))        # the checkout

from _soak import ServerProcess, model_labels, run_load  # noqa: E402

RESULTS = HERE / "results" / "soak.md"
HEAP_PER_GRADIO, HEAP_PER_REST, HEAP_SLACK = 150, 10, 20_000
RSS_CHECK_FROM = 180  # seconds: shorter runs end while RSS is still rising to its plateau


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rest-workers", type=int, default=50)
    parser.add_argument("--gradio-workers", type=int, default=20)
    parser.add_argument("--max-sessions", type=int, default=200)
    parser.add_argument("--max-ui-sessions", type=int, default=40)
    parser.add_argument("--ttl", type=float, default=3.0)
    parser.add_argument("--no-write", action="store_true", help="do not write results/soak.md")
    args = parser.parse_args(argv)

    labels = model_labels()
    started = time.perf_counter()
    timeline: list[tuple[float, float, int]] = []
    with ServerProcess("--max-sessions", str(args.max_sessions), "--ttl", str(args.ttl),
                       "--max-ui-sessions", str(args.max_ui_sessions)) as server:
        ready_in = time.perf_counter() - started
        stop = threading.Event()
        every = max(1.0, args.seconds / 12)

        def sample() -> None:
            t0 = time.monotonic()
            while not stop.wait(every):
                try:
                    timeline.append((time.monotonic() - t0, server.rss_mb(), server.stats()["python_blocks"]))
                except Exception:  # noqa: BLE001 - the server may be stopping
                    return

        threading.Thread(target=sample, daemon=True).start()
        report = run_load(server, labels, seconds=args.seconds, rest_workers=args.rest_workers,
                          gradio_workers=args.gradio_workers, fill_gradio=args.max_ui_sessions)
        stop.set()
        time.sleep(args.ttl + 0.5)
        after_ttl = server.stats()

    lines = report.lines()
    lines.append(f"after {args.ttl + 0.5:.1f} s idle: REST sessions held {after_ttl['sessions']} "
                 f"(expired in all: {after_ttl['expired']:,})")
    failures = []
    if report.errors:
        failures.append(f"{len(report.errors)} errors, first: {report.errors[:3]}")
    for name, stats in report.stats.items():
        if stats["sessions"] > args.max_sessions or stats["gradio_sessions"] > args.max_ui_sessions:
            failures.append(f"a session cap was exceeded at {name}: {stats}")
    if after_ttl["sessions"] != 0:
        failures.append(f"{after_ttl['sessions']} REST sessions still held {args.ttl} s after the run")
    heap = report.stats["end"]["python_blocks"] - report.stats["start"]["python_blocks"]
    allowed = (HEAP_PER_GRADIO * report.conversations["gradio"] + HEAP_PER_REST * report.conversations["rest"]
               + HEAP_SLACK)
    lines.append(f"Python heap growth start -> end: {heap:+,} blocks (allowed {allowed:,})")
    if heap > allowed:
        failures.append(f"the Python heap grew by {heap:,} blocks (allowed {allowed:,})")
    last_third = [rss for t, rss, _ in timeline if t >= 2 * args.seconds / 3]
    if len(last_third) >= 2:
        growth = (last_third[-1] - last_third[0]) / last_third[0]
        checked = args.seconds >= RSS_CHECK_FROM
        lines.append(f"RSS over the last third: {last_third[0]:.0f} -> {last_third[-1]:.0f} MB ({growth:+.1%})"
                     + ("" if checked else f"; not checked under {RSS_CHECK_FROM} s (the allocator's high-water "
                                           f"mark still rises in the first minutes)"))
        if checked and growth > 0.10:
            failures.append(f"RSS grew {growth:.1%} over the last third of the run")
    verdict = "passed" if not failures else "FAILED: " + "; ".join(failures)
    print("\n".join(lines))
    print("timeline (s, RSS MB, Python heap blocks): "
          + ", ".join(f"{t:.0f}: {rss:.0f}/{blocks:,}" for t, rss, blocks in timeline))
    print(verdict)

    if not args.no_write:
        given = " ".join(argv if argv is not None else sys.argv[1:])
        command = f"`.venv/bin/python tests/benchmarks/soak.py{' ' + given if given else ''}`"
        body = [
            "# Soak: concurrent chat sessions against a real server process", "",
            command, "",
            f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.platform()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}; server ready in "
            f"{ready_in:.1f} s; caps: REST {args.max_sessions} sessions, idle TTL {args.ttl:g} s, "
            f"Gradio {args.max_ui_sessions} sessions", "",
            *[f"- {line}" for line in lines], "",
            "| t (s) | RSS (MB) | Python heap (blocks) |", "|---:|---:|---:|",
            *[f"| {t:.0f} | {rss:.0f} | {blocks:,} |" for t, rss, blocks in timeline], "",
            f"Result: {verdict}", "",
        ]
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text("\n".join(body))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
