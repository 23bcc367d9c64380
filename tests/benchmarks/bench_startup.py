"""Start-up against its floor, whole processes, best of N, ratios in one run:

    .venv/bin/python tests/benchmarks/bench_startup.py [--repeat 3]

- ``serve`` until ``GET /healthz`` answers, against ``python -c "import gradio"`` (target <= 1.5x);
- ``score`` of a 200-row file, against ``python -c "import pandas, pyarrow.csv"`` (target <= 2x);
- ``predict`` and ``segments``, against ``python -c "import numpy"`` (reported);
- which heavy libraries each command imports (none of gradio, fastapi, uvicorn, plotly, matplotlib,
  scipy or sklearn on the ``predict``, ``score`` and ``segments`` paths).

Writes ``tests/benchmarks/results/startup.md``. Exit code 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PY = sys.executable
CLI = [PY, "-m", "assistant"]
HEAVY = ("gradio", "fastapi", "uvicorn", "plotly", "matplotlib", "scipy", "sklearn")
PREDICT = ["predict", "--age", "38", "--income", "71000", "--total-spending", "1200", "--web-purchases", "5",
           "--store-purchases", "7", "--web-visits-per-month", "6", "--recency-days", "14"]


def _timed(cmd: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def best(repeat: int, fn) -> float:
    return min(fn() for _ in range(repeat))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_ready(cwd: Path) -> float:
    port = _free_port()
    started = time.perf_counter()
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port)], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - started
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError("serve exited before /healthz answered") from None
                time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def imported(args: list[str], cwd: Path) -> list[str]:
    """The heavy top-level packages a command leaves in sys.modules."""
    code = ("import runpy, sys\n"
            f"sys.argv = ['segment-assistant', *{args!r}]\n"
            "try:\n    runpy.run_module('assistant', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            f"print('HEAVY:' + ','.join(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))")
    out = subprocess.run([PY, "-c", code], cwd=cwd, capture_output=True, text=True, check=True)
    marked = [line for line in out.stdout.splitlines() if line.startswith("HEAVY:")]
    return [m for m in marked[-1].removeprefix("HEAVY:").split(",") if m] if marked else ["(no answer)"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str, str]] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = ROOT / "data" / "sample_customers.csv"
        out = work / "out.csv"

        gradio = best(args.repeat, lambda: _timed([PY, "-c", "import gradio"], work))
        serve = best(args.repeat, lambda: serve_ready(work))
        ratio = serve / gradio
        rows.append(("`serve` until `/healthz` answers", f'`import gradio` {gradio:.2f} s', f"{serve:.2f} s",
                     f"{ratio:.2f}x", "<= 1.5x"))
        if ratio > 1.5:
            failures.append(f"serve {ratio:.2f}x import gradio")

        floor = best(args.repeat, lambda: _timed([PY, "-c", "import pandas, pyarrow.csv"], work))
        score = best(args.repeat, lambda: _timed([*CLI, "score", str(src), "-o", str(out)], work))
        ratio = score / floor
        rows.append(("`score` of a 200-row file", f"`import pandas, pyarrow.csv` {floor:.2f} s", f"{score:.2f} s",
                     f"{ratio:.2f}x", "<= 2x"))
        if ratio > 2:
            failures.append(f"score {ratio:.2f}x import pandas, pyarrow.csv")

        numpy = best(args.repeat, lambda: _timed([PY, "-c", "import numpy"], work))
        for name, cmd in (("predict", PREDICT), ("segments", ["segments"])):
            took = best(args.repeat, lambda cmd=cmd: _timed([*CLI, *cmd], work))
            rows.append((f"`{name}`", f"`import numpy` {numpy:.2f} s", f"{took:.2f} s", f"{took / numpy:.2f}x", ""))

        for name, cmd in (("predict", PREDICT), ("segments", ["segments"]),
                          ("score", ["score", str(src), "-o", str(out)])):
            heavy = imported(cmd, work)
            rows.append((f"heavy imports of `{name}`", "", ", ".join(heavy) or "none", "", "none"))
            if heavy:
                failures.append(f"{name} imports {', '.join(heavy)}")

    table = ["| what | floor (same run) | ours | ratio | target |", "|---|---|---:|---:|---|"]
    table += [f"| {' | '.join(r)} |" for r in rows]
    text = "\n".join(table) + "\n"
    print(text)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "startup.md").write_text(
        f"# Start-up ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, best of {args.repeat})\n\n{text}")
    for failure in failures:
        print("MISSED:", failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
