"""Single-customer latency of the service against scikit-learn, measured in one run.

    .venv/bin/python tests/benchmarks/bench_service.py [--customers 20000]

Baseline: ``service.pipeline.predict`` on a one-row DataFrame (what a naive server would do per
request). Measured: ``service.label`` (bare label) and ``service.assign`` (the full
SegmentResult), each over the same many distinct customers. Targets: ratio <= 0.01 for the
label, <= 0.05 for the full result. The table is printed and written to
tests/benchmarks/results/service.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import sklearn  # noqa: E402

from assistant.core.fields import FIELD_NAMES, FIELDS  # noqa: E402
from assistant.core.schemas import CustomerProfile  # noqa: E402
from assistant.model.segmentation import SegmentationService  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "service.md"


def per_call(fn, items, repeat: int = 3) -> float:
    """Median over ``repeat`` passes of the mean seconds per call."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for item in items:
            fn(item)
        runs.append((time.perf_counter() - start) / len(items))
    return statistics.median(runs)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20000)
    args = parser.parse_args()
    service = SegmentationService.load()
    rng = np.random.default_rng(0)
    card = service.card["overall"]
    values = np.column_stack([
        rng.uniform(card["min"][n], card["max"][n], args.customers).round() if f.integer
        else rng.uniform(card["min"][n], card["max"][n], args.customers)
        for n, f in zip(FIELD_NAMES, FIELDS)
    ])
    profiles = [CustomerProfile(**dict(zip(FIELD_NAMES, row))) for row in values]
    frames = [pd.DataFrame([p.as_dict()], columns=list(FIELD_NAMES)) for p in profiles[:2000]]
    pipeline = service.pipeline

    # the sklearn pipeline was fitted on a numpy array; a DataFrame works the same (no feature names check)
    base = per_call(lambda df: pipeline.predict(df), frames)
    label = per_call(service.label, profiles)
    full = per_call(service.assign, profiles)
    agree = all(service.label(p) == service.cluster_keys[pipeline.predict(f)[0]] for p, f in zip(profiles, frames))

    rows = [
        ("sklearn Pipeline.predict, 1-row DataFrame (baseline)", base, 1.0, ""),
        ("service.label (bare label)", label, label / base, "<= 0.01"),
        ("service.assign (full SegmentResult)", full, full / base, "<= 0.05"),
    ]
    lines = [f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
             f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, pandas {pd.__version__}; "
             f"load average {os.getloadavg()[0]:.1f}",
             f"{args.customers} distinct customers (baseline on {len(frames)}); labels agree with sklearn: {agree}", "",
             f"| {'path':<55} | {'per call':>10} | {'ratio':>7} | target  |",
             f"|{'-' * 57}|{'-' * 12}|{'-' * 9}|---------|"]
    for name, seconds, ratio, target in rows:
        lines.append(f"| {name:<55} | {seconds * 1e6:>7.1f} us | {ratio:>7.4f} | {target:<7} |")
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("# Single-customer service benchmark\n\n`.venv/bin/python tests/benchmarks/bench_service.py "
                       + " ".join(sys.argv[1:]) + "`\n\n" + text + "\n")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
