"""Batch scoring against plain pandas + scikit-learn, every figure a ratio measured in this run.

    .venv/bin/python tests/benchmarks/bench_batch.py [--rows 1000000] [--big-rows 10000000] [--repeat 3]

1. In memory, ``--rows`` and ``--big-rows`` customers: rows/s of ``service.predict_indices`` (labels,
   what ``predict`` gives; target >= 3x) and of ``service.score_array`` (as batch scoring calls it;
   it also gives key/name/confidence as categoricals and the margin; target >= 1x)
   against ``service.pipeline.predict`` on the same array, both with one BLAS thread as batch
   scoring runs them; the labels must be identical.
2. Files, ``--rows`` customers end to end (read, validate, score, write):
   * seven-field CSV -> CSV (target >= 3x) against the plain script
     ``pd.read_csv -> pipeline.predict -> df.to_csv``;
   * raw marketing CSV (29 columns, tab) -> CSV against the same script plus the field derivation;
   * the same CSV against pyarrow's read + write of it alone (the I/O floor; target <= 1.3x);
   * Parquet -> Parquet against ``pd.read_parquet -> predict -> to_parquet`` (target >= 1.5x).
   The labels of both outputs must agree row for row (on the rows both score).
3. Peak memory while streaming a ``--big-rows`` seven-field CSV -> CSV, in a fresh subprocess
   (run first, while this process is still small): RSS sampled every 20 ms (psutil) and
   ``ru_maxrss``, minus the subprocess's RSS just before scoring (interpreter, libraries and
   model loaded). Target < 500 MB above that baseline.

Times are the best of ``--repeat`` runs (this machine may be shared; the best run is the least
disturbed one). The table is printed and written to tests/benchmarks/results/batch.md. Exit code
1 when labels disagree or a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
import sklearn  # noqa: E402

from assistant.batch.score import _one_blas_thread, _score, score_file  # noqa: E402
from assistant.core.fields import FIELD_NAMES, FIELDS  # noqa: E402
from assistant.model.data import clean_customers, derive_fields  # noqa: E402
from assistant.model.segmentation import SegmentationService  # noqa: E402
from assistant.model.synthetic import generate_customers, write_customers  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "batch.md"


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def feature_pool(seed: int = 0) -> np.ndarray:
    """Realistic customers: the seven fields of 200,000 cleaned synthetic customers."""
    return clean_customers(generate_customers(200_000, seed=seed)).features.to_numpy(dtype=np.float64)


def sample(pool: np.ndarray, n: int, seed: int) -> np.ndarray:
    return pool[np.random.default_rng(seed).integers(0, len(pool), n)]


def _fields_table(X: np.ndarray, first_id: int) -> pa.Table:
    columns = {"ID": pa.array(np.arange(first_id, first_id + len(X)))}
    for j, f in enumerate(FIELDS):
        col = X[:, j]
        columns[f.name] = pa.array(col.astype(np.int64) if f.integer or f.name == "income" else np.round(col, 2))
    return pa.table(columns)


def write_fields_csv(X: np.ndarray, path: Path) -> None:
    """A seven-field CSV as users' files look (whole numbers without decimals), written with pyarrow."""
    pacsv.write_csv(_fields_table(X, 1), path, write_options=pacsv.WriteOptions(quoting_style="none"))


def write_big_fields_csv(pool: np.ndarray, n: int, path: Path, seed: int, step: int = 1_000_000) -> None:
    """The same, ``step`` rows at a time (this process stays small, see measure_memory)."""
    rng = np.random.default_rng(seed)
    table = _fields_table(pool[:1], 1)
    with pacsv.CSVWriter(path, table.schema, write_options=pacsv.WriteOptions(quoting_style="none")) as writer:
        for start in range(0, n, step):
            rows = pool[rng.integers(0, len(pool), min(step, n - start))]
            writer.write_table(_fields_table(rows, start + 1))


# ---------------------------------------------------------------------------- the plain scripts


def plain_csv(service, src: Path, out: Path) -> None:
    keys = np.asarray(service.cluster_keys, dtype=object)
    df = pd.read_csv(src)
    df["segment_key"] = keys[service.pipeline.predict(df[list(FIELD_NAMES)])]
    df.to_csv(out, index=False)


def plain_raw_csv(service, src: Path, out: Path, year: int) -> None:
    keys = np.asarray(service.cluster_keys, dtype=object)
    df = pd.read_csv(src, sep="\t")
    features = pd.DataFrame(derive_fields(lambda c: df[c].astype(float), year))
    ok = features.notna().all(axis=1)
    df = df[ok].copy()
    df["segment_key"] = keys[service.pipeline.predict(features[ok])]
    df.to_csv(out, sep="\t", index=False)


def plain_parquet(service, src: Path, out: Path) -> None:
    keys = np.asarray(service.cluster_keys, dtype=object)
    df = pd.read_parquet(src)
    df["segment_key"] = keys[service.pipeline.predict(df[list(FIELD_NAMES)])]
    df.to_parquet(out, index=False)


# ---------------------------------------------------------------------------- memory (subprocess)

MEMORY_SCRIPT = r"""
import json, resource, sys, threading, time
sys.path.insert(0, {root!r})
import psutil
from assistant.batch.score import score_file
from assistant.segmentation import SegmentationService
service = SegmentationService.load()
proc = psutil.Process()
baseline = proc.memory_info().rss
ru_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
peak = baseline
stop = False
def sample():
    global peak
    while not stop:
        peak = max(peak, proc.memory_info().rss)
        time.sleep(0.02)
t = threading.Thread(target=sample, daemon=True)
t.start()
start = time.perf_counter()
summary = score_file(service, {src!r}, {out!r})
seconds = time.perf_counter() - start
stop = True
t.join()
print(json.dumps({{"baseline": baseline, "peak_sampled": peak, "ru_before": ru_before,
                   "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                   "rows": summary.rows_scored, "seconds": seconds}}))
"""


def measure_memory(src: Path, out: Path) -> dict:
    """Peak RSS above the baseline while scoring, in a fresh process. Linux carries ru_maxrss over
    fork and exec, so it counts only when scoring raised it above its value at the baseline."""
    code = MEMORY_SCRIPT.format(root=str(ROOT), src=str(src), out=str(out))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    mem = json.loads(done.stdout.strip().splitlines()[-1])
    peak = mem["peak_sampled"]
    if mem["ru_maxrss"] > mem["ru_before"]:
        peak = max(peak, mem["ru_maxrss"])
    mem["above"] = peak - mem["baseline"]
    return mem


# ---------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=10_000_000, help="0 skips the big runs")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="where the files go (default: a temp folder)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    service = SegmentationService.load()
    pipeline = service.pipeline
    rows: list[tuple[str, str, str, str, str]] = []   # (what, baseline, ours, ratio, target)
    failures: list[str] = []

    def check(ok: bool, what: str) -> str:
        if not ok:
            failures.append(what)
        return "yes" if ok else "NO"

    pool = feature_pool()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-batch-"))
    work.mkdir(parents=True, exist_ok=True)

    # 3. memory while streaming the big file (first, while this process is small)
    memory_row = None
    if args.big_rows:
        big_csv = work / "big.csv"
        write_big_fields_csv(pool, args.big_rows, big_csv, seed=4)
        mem = measure_memory(big_csv, work / "big_out.csv")
        above = mem["above"]
        size = big_csv.stat().st_size / 1e6
        memory_row = (f"peak memory streaming {args.big_rows:,} rows ({size:,.0f} MB CSV -> CSV in "
                      f"{mem['seconds']:.1f} s), above the {mem['baseline'] / 1e6:.0f} MB baseline",
                      "-", f"{above / 1e6:,.0f} MB", f"{above / 500e6:.2f} of limit", "< 500 MB")
        if above >= 500e6:
            failures.append(f"memory {above / 1e6:.0f} MB >= 500 MB")
        big_csv.unlink()
        (work / "big_out.csv").unlink(missing_ok=True)

    # 1. in memory
    for n in [args.rows] + ([args.big_rows] if args.big_rows else []):
        X = sample(pool, n, seed=1)
        base_labels = pipeline.predict(X)
        with _one_blas_thread():
            ours_labels = _score(service, X)["index"]
            same = np.array_equal(base_labels, ours_labels) and np.array_equal(base_labels, service.predict_indices(X))
        base = best_of(args.repeat, lambda X=X: pipeline.predict(X))
        with _one_blas_thread():
            score = best_of(args.repeat, lambda X=X: _score(service, X))
            indices = best_of(args.repeat, lambda X=X: service.predict_indices(X))
        ok = check(same, f"in-memory labels {n}")
        rows.append((f"in memory, {n:,} rows: predict_indices (labels only, like predict); same labels: {ok}",
                     f"{n / base:,.0f} rows/s", f"{n / indices:,.0f} rows/s", f"{base / indices:.1f}x", ">= 3x"))
        rows.append((f"in memory, {n:,} rows: score_array (labels, key and name as categoricals, confidence, "
                     f"margin); same labels: {ok}",
                     f"{n / base:,.0f} rows/s", f"{n / score:,.0f} rows/s", f"{base / score:.1f}x", ">= 1x"))
        if base / score < 1:
            failures.append(f"in-memory score_array {n:,}: {base / score:.1f}x < 1x")
        if base / indices < 3:
            failures.append(f"in-memory predict_indices {n:,}: {base / indices:.1f}x < 3x")
        del X

    # 2. files, end to end
    n = args.rows
    fields_csv = work / "fields.csv"
    write_fields_csv(sample(pool, n, seed=2), fields_csv)
    base = best_of(args.repeat, lambda: plain_csv(service, fields_csv, work / "plain.csv"))
    ours = best_of(args.repeat, lambda: score_file(service, fields_csv, work / "ours.csv"))
    a = pd.read_csv(work / "plain.csv", usecols=["ID", "segment_key"])
    b = pd.read_csv(work / "ours.csv", usecols=["ID", "segment_key"])
    ok = check(a.equals(b), "CSV labels")
    size = fields_csv.stat().st_size / 1e6
    rows.append((f"file, {n:,} rows, 7-field CSV ({size:.0f} MB) -> CSV; same labels: {ok}",
                 f"{base:.2f} s", f"{ours:.2f} s", f"{base / ours:.1f}x", ">= 3x"))
    if base / ours < 3:
        failures.append(f"CSV -> CSV: {base / ours:.1f}x < 3x")

    def io_floor() -> None:   # pyarrow's multi-threaded read and write of the same file: the I/O floor
        pacsv.write_csv(pacsv.read_csv(fields_csv), work / "floor.csv")

    floor = best_of(args.repeat, io_floor)
    rows.append((f"file, {n:,} rows, 7-field CSV -> CSV against the I/O floor (pyarrow read + write alone)",
                 f"{floor:.2f} s", f"{ours:.2f} s", f"{ours / floor:.2f}x of the floor", "<= 1.3x"))
    if ours / floor > 1.3:
        failures.append(f"CSV -> CSV: {ours / floor:.2f}x the pyarrow I/O floor > 1.3x")

    fields_parquet = work / "fields.parquet"
    pacsv.read_csv(fields_csv).to_pandas().to_parquet(fields_parquet, index=False)
    base = best_of(args.repeat, lambda: plain_parquet(service, fields_parquet, work / "plain.parquet"))
    ours = best_of(args.repeat, lambda: score_file(service, fields_parquet, work / "ours.parquet"))
    a = pd.read_parquet(work / "plain.parquet", columns=["ID", "segment_key"])
    b = pd.read_parquet(work / "ours.parquet", columns=["ID", "segment_key"])
    ok = check(a["segment_key"].astype(str).tolist() == b["segment_key"].astype(str).tolist(), "Parquet labels")
    rows.append((f"file, {n:,} rows, Parquet -> Parquet; same labels: {ok}",
                 f"{base:.2f} s", f"{ours:.2f} s", f"{base / ours:.1f}x", ">= 1.5x"))
    if base / ours < 1.5:
        failures.append(f"Parquet -> Parquet: {base / ours:.1f}x < 1.5x")

    raw_csv = work / "raw.csv"
    write_customers(generate_customers(n, seed=3), raw_csv)
    base = best_of(args.repeat, lambda: plain_raw_csv(service, raw_csv, work / "plain_raw.csv", 2014))
    ours = best_of(args.repeat, lambda: score_file(service, raw_csv, work / "ours_raw.csv"))
    a = pd.read_csv(work / "plain_raw.csv", sep="\t", usecols=["ID", "segment_key"]).set_index("ID")["segment_key"]
    b = pd.read_csv(work / "ours_raw.csv", usecols=["ID", "segment_key"]).set_index("ID")["segment_key"]
    shared = a.index.intersection(b.index)
    ok = check(len(shared) >= 0.98 * n and (a[shared] == b[shared]).all(), "raw CSV labels")
    size = raw_csv.stat().st_size / 1e6
    rows.append((f"file, {n:,} rows, raw marketing CSV (29 columns, {size:.0f} MB) -> CSV; same labels: {ok}",
                 f"{base:.2f} s", f"{ours:.2f} s", f"{base / ours:.1f}x", "(none)"))

    if memory_row is not None:
        rows.append(memory_row)
    header = (f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
              f"numpy {np.__version__}, pandas {pd.__version__}, pyarrow {pa.__version__}, "
              f"scikit-learn {sklearn.__version__}; load average {os.getloadavg()[0]:.1f}; "
              f"best of {args.repeat} runs")
    lines = [header, "", "| measurement | baseline (pandas + sklearn) | ours | ratio | target |",
             "|---|---:|---:|---:|---|"]
    lines += [f"| {what} | {b} | {o} | {r} | {t} |" for what, b, o, r, t in rows]
    if failures:
        lines += ["", "FAILED: " + "; ".join(failures)]
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("# Batch scoring benchmark\n\n`.venv/bin/python tests/benchmarks/bench_batch.py "
                       + " ".join(sys.argv[1:]) + "`\n\n" + text + "\n")
    if args.workdir is None:
        for path in work.iterdir():
            path.unlink()
        work.rmdir()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
