"""Restarts and kill -9: completed batch output is never lost, a killed ``score`` leaves the previous
output intact (atomic write), and a server killed with SIGKILL serves again when restarted on the
same model and port. (SIGKILL during ``train`` and broken model files: tests/test_faults.py.)"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from _soak import scored_file_path, sse_result, stop_process

from assistant.batch.score import score_file
from assistant.core.fields import FIELD_NAMES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CUSTOMER = {"age": 45, "income": 90000, "total_spending": 2000, "web_purchases": 5, "store_purchases": 9,
            "web_visits_per_month": 2, "recency_days": 40}
RANGES = {"age": (18, 90), "income": (5_000, 150_000), "total_spending": (0, 2_500), "web_purchases": (0, 25),
          "store_purchases": (0, 14), "web_visits_per_month": (0, 20), "recency_days": (0, 100)}


def customers_csv(path: Path, n: int, seed: int, bad_every: int = 0) -> Path:
    """``n`` customers in the seven-field format (fast: pyarrow); every ``bad_every``-th age is 250."""
    rng = np.random.default_rng(seed)
    columns = {"ID": np.arange(1, n + 1)}
    columns.update({name: rng.integers(lo, hi, n) for name, (lo, hi) in RANGES.items()})
    if bad_every:
        columns["age"][::bad_every] = 250
    pacsv.write_csv(pa.table(columns), str(path))
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    env.pop("SEGMENT_ASSISTANT_AUTH", None)
    return env


class _Stream:
    """A child's stream read in a thread; ``text`` is everything so far (progress lines use \\r)."""

    def __init__(self, stream) -> None:
        self.chunks: list[str] = []
        self.closed = threading.Event()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        while chunk := os.read(stream.fileno(), 65536):
            self.chunks.append(chunk.decode("utf-8", "replace"))
        self.closed.set()

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def wait_for(self, pattern: str, timeout: float) -> re.Match | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if m := re.search(pattern, self.text):
                return m
            if self.closed.is_set():
                return re.search(pattern, self.text)
            time.sleep(0.005)
        return None


# ---------------------------------------------------------------------------- batch scoring on the command line


def test_output_is_complete_once_the_summary_is_printed_even_if_killed_then(service, tmp_path):
    src = customers_csv(tmp_path / "in.csv", 200_000, seed=1, bad_every=1000)
    out = tmp_path / "out.csv"
    proc = subprocess.Popen([sys.executable, "-m", "assistant", "score", str(src), "-o", str(out)], cwd=ROOT,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    stdout = _Stream(proc.stdout)
    assert stdout.wait_for(r"Scored [\d,]+ of [\d,]+ rows", 120), stdout.text
    proc.send_signal(signal.SIGKILL)            # no clean exit: whatever was reported done must be on disk
    proc.wait(10)
    expected = score_file(service, src, tmp_path / "reference.csv")
    assert sha(out) == sha(tmp_path / "reference.csv")
    assert sha(tmp_path / "out.errors.csv") == sha(tmp_path / "reference.errors.csv")
    assert len(pd.read_csv(out)) == expected.rows_scored == 200_000 - 200
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_sigkill_midway_through_score_leaves_the_previous_output_intact(service, tmp_path):
    n = 1_000_000
    old_src = customers_csv(tmp_path / "old.csv", 1000, seed=2, bad_every=100)
    out = tmp_path / "out.csv"
    score_file(service, old_src, out)
    before = {p.name: sha(p) for p in (out, tmp_path / "out.errors.csv")}
    src = customers_csv(tmp_path / "in.csv", n, seed=3, bad_every=500)

    proc = subprocess.Popen([sys.executable, "-m", "assistant", "score", str(src), "-o", str(out), "--chunksize",
                             "5000"], cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = _Stream(proc.stderr)
    midway = stderr.wait_for(r"Scoring in\.csv: ([2-7]\d\d,\d{3}) rows read", 120)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert midway, f"never saw the run midway (exit {proc.returncode}): {stderr.text[-300:]!r}"
    assert proc.returncode == -signal.SIGKILL
    after = {p.name: sha(p) for p in (out, tmp_path / "out.errors.csv")}
    assert after == before                                       # the previous output, byte for byte
    assert len(pd.read_csv(out)) == 990
    partial = [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    assert partial                          # nothing can run on SIGKILL: the temporary files stay, for now
    # the next run to the same output succeeds and removes the orphans of the killed run
    summary = score_file(service, src, out)
    assert summary.rows_scored == n - n // 500 and len(pd.read_csv(out)) == summary.rows_scored
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]
    print(f"killed at {midway.group(1)} of {n:,} rows; temporary files left by the kill: {[p.name for p in partial]}")


# ---------------------------------------------------------------------------- the server


class Server:
    """``segment-assistant serve`` in a child process (the real command)."""

    def __init__(self, port: int, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "assistant", "serve", "--port", str(port)], cwd=ROOT,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.out = _Stream(self.proc.stdout)
        ready = self.out.wait_for(r"ready in [\d.]+ s at (http://\S+/) ", 90)
        if not ready:
            self.proc.kill()
            raise AssertionError(f"the server did not start: {self.out.text[-2000:]}")
        self.base = ready.group(1).rstrip("/")
        self.port = int(self.base.rsplit(":", 1)[1])

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        stop_process(self.proc)


def _batch_through_the_app(http: httpx.Client, content: bytes) -> list:
    up = http.post("/gradio_api/upload", files={"files": ("customers.csv", content, "text/csv")})
    assert up.status_code == 200, up.text
    r = http.post("/gradio_api/call/score_file", json={"data": [{"path": up.json()[0], "orig_name": "customers.csv",
                                                                  "meta": {"_type": "gradio.FileData"}}]})
    event, data = sse_result(http.get(f"/gradio_api/call/score_file/{r.json()['event_id']}").text)
    assert event == "complete", data
    return data


def test_a_server_killed_with_sigkill_serves_again_and_keeps_finished_batch_output(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = _env(TMPDIR=str(temp), GRADIO_TEMP_DIR=str(tmp_path / "gradio"))
    batch = customers_csv(tmp_path / "batch.csv", 5000, seed=4, bad_every=250).read_bytes()

    first = Server(0, env)
    try:
        with httpx.Client(base_url=first.base, timeout=60, trust_env=False) as http:
            health = http.get("/healthz").json()
            answer = http.post("/api/v1/segment", json=CUSTOMER).json()
            session = http.post("/api/v1/chat", json={"message": "she is 45 and earns 90k"}).json()["session_id"]
            data = _batch_through_the_app(http, batch)
            assert "**4,980** of 5,000 rows scored" in data[0]
            downloaded = http.get(f"/gradio_api/file={scored_file_path(data)}").content
    finally:
        first.kill9()
    assert first.proc.returncode == -signal.SIGKILL

    # the finished batch output is on disk, whole, after the kill
    scored = list((temp / "segment-assistant-batch").rglob("customers-scored.csv"))
    assert len(scored) == 1 and scored[0].read_bytes() == downloaded
    assert len(pd.read_csv(scored[0])) == 4980
    assert not list(temp.rglob("*.part"))

    # restarted on the same model and the same port: it serves again, with the same answers
    second = Server(first.port, env)
    try:
        with httpx.Client(base_url=second.base, timeout=60, trust_env=False) as http:
            assert http.get("/healthz").json() == health
            assert http.post("/api/v1/segment", json=CUSTOMER).json() == answer
            # the in-memory chat sessions died with the process: the old id starts a new conversation
            again = http.post("/api/v1/chat", json={"session_id": session, "message": "what do you have so far"}).json()
            assert again["session_id"] != session and all(v is None for v in again["profile"].values())
            assert "**4,980** of 5,000 rows scored" in _batch_through_the_app(http, batch)[0]
    finally:
        second.stop()
    assert second.proc.returncode == 0
    assert scored[0].exists()                     # a later run does not touch the earlier output


def test_progress_is_not_at_100_percent_before_the_end(service, tmp_path):
    src = customers_csv(tmp_path / "in.csv", 400_000, seed=5)
    seen: list[tuple[int, float]] = []
    score_file(service, src, tmp_path / "out.csv", progress=lambda rows, fraction: seen.append((rows, fraction)))
    early = [f for rows, f in seen if rows < 200_000]
    assert early and max(early) < 0.6, seen[:5]
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(abs(f - rows / 400_000) < 0.1 for rows, f in seen), seen     # tracks the rows handed out


def test_fields_are_the_seven_model_inputs():
    """The generated files above use exactly the model's fields (guards the helper)."""
    assert list(RANGES) == list(FIELD_NAMES)


def test_only_orphaned_temporary_files_are_removed(service, tmp_path):
    """A run removes the .part files of runs to the same output whose process is gone, never those of a
    live one (another run writing the same target) nor anyone else's files."""
    src = customers_csv(tmp_path / "in.csv", 100, seed=4)
    out = tmp_path / "out.csv"
    dead_pid = 2 ** 22 + 1                      # above Linux's pid_max: never a live process
    orphan = tmp_path / f".out.csv.{dead_pid}.abc123.part"
    live = tmp_path / f".out.csv.{os.getpid()}.def456.part"
    other = tmp_path / f".other.csv.{dead_pid}.abc123.part"
    for path in (orphan, live, other):
        path.write_text("half a file")
    score_file(service, src, out)
    assert not orphan.exists() and live.exists() and other.exists()
