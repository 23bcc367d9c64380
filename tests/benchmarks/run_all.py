"""Every benchmark, one command:

    .venv/bin/python tests/benchmarks/run_all.py [--quick]

Runs, one after another, each in its own subprocess (so none inherits another's memory or
threads):

1. ``bench_service.py``: single-customer latency against scikit-learn;
2. ``bench_batch.py``: in-memory and file scoring against pandas + scikit-learn, and peak memory
   (1,000,000 rows; plus the 10,000,000-row runs unless ``--quick``);
3. ``bench_rest.py``: the REST API under 1, 10 and 50 concurrent clients and 20 chat sessions
   against ``/healthz`` (5 s per level; 3 s with ``--quick``).

Each benchmark writes its own table to ``tests/benchmarks/results/<name>.md``; this command then
assembles ``tests/benchmarks/results/latest.md`` with all of them, the date, the machine and the
library versions. Exit code 1 when any benchmark failed (an error, wrong labels or a missed target).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = HERE / "results"
LIBRARIES = ["numpy", "pandas", "pyarrow", "scikit-learn", "pydantic", "fastapi", "starlette", "uvicorn",
             "gradio", "httptools", "uvloop"]


def plan(quick: bool) -> list[tuple[str, list[str], str]]:
    """(script, arguments, results file) in the order they run."""
    return [
        ("bench_service.py", ["--customers", "20000"], "service.md"),
        ("bench_batch.py", ["--rows", "1000000", "--big-rows", "0" if quick else "10000000", "--repeat", "3"],
         "batch.md"),
        ("bench_rest.py", ["--seconds", "3" if quick else "5", "--clients", "1,10,50", "--sessions", "20"],
         "rest.md"),
    ]


def library_versions() -> str:
    parts = []
    for name in LIBRARIES:
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} not installed")
    return ", ".join(parts)


def machine() -> str:
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    try:
        import psutil

        memory = f", {psutil.virtual_memory().total / 2**30:.0f} GiB RAM"
    except ImportError:
        memory = ""
    return f"{platform.platform()}, {os.cpu_count()} CPUs ({model}){memory}, Python {platform.python_version()}"


def without_title(text: str) -> str:
    """A results file minus its ``# title`` line (the section heading replaces it)."""
    lines = text.strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1M rows only (no 10M runs), 3 s per REST level")
    args = parser.parse_args()

    started = dt.datetime.now().astimezone()
    load_before = os.getloadavg()
    sections: list[str] = []
    failed: list[str] = []
    for script, script_args, result_name in plan(args.quick):
        command = [sys.executable, str(HERE / script), *script_args]
        shown = " ".join([".venv/bin/python", f"tests/benchmarks/{script}", *script_args])
        print(f"\n=== {shown}", flush=True)
        result_file = RESULTS / result_name
        before = result_file.stat().st_mtime if result_file.exists() else None
        t0 = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT)
        seconds = time.perf_counter() - t0
        fresh = result_file.exists() and result_file.stat().st_mtime != before
        status = "passed" if done.returncode == 0 else f"FAILED (exit code {done.returncode})"
        if done.returncode != 0:
            failed.append(script)
        title = {"service.md": "Single-customer service", "batch.md": "Batch scoring",
                 "rest.md": "REST API"}[result_name]
        body = (without_title(result_file.read_text()) if fresh
                else f"(no results: {script} wrote no {result_name}; see its output above)")
        sections.append(f"## {title}: {status}, {seconds:.0f} s\n\n{body}")

    finished = dt.datetime.now().astimezone()
    header = [
        "# Benchmarks",
        "",
        f"`.venv/bin/python tests/benchmarks/run_all.py{' --quick' if args.quick else ''}` "
        f"on {started:%Y-%m-%d %H:%M %Z} ({(finished - started).total_seconds() / 60:.1f} min)",
        "",
        f"- machine: {machine()}",
        f"- load average before the run: {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f} "
        f"(1/5/15 min); after: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- libraries: {library_versions()}",
        f"- result: {'all passed' if not failed else 'FAILED: ' + ', '.join(failed)}",
        "",
        "Every figure is a ratio against a baseline measured in the same run (this machine may be shared: "
        "compare the ratios, not the absolute figures, between runs).",
    ]
    text = "\n".join(header) + "\n\n" + "\n\n".join(sections) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.md").write_text(text)
    print("\n" + text)
    print(f"written to {RESULTS / 'latest.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
