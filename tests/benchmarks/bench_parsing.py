"""The chat parser on the labelled phrasing corpus (tests/data/phrasings.yaml): exact rate, wrongly filled
values, per-field precision and recall, and the time one message takes.

    .venv/bin/python tests/benchmarks/bench_parsing.py [--repeat 200]

A value is *wrong* when the parser fills a field the text does not mean, or fills it with another number;
*missed* when the text means it and the parser leaves it empty. Exact: every field as labelled. Timing is
printed, never asserted (the tests do not depend on timing).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "phrasings.yaml"
sys.path.insert(0, str(ROOT))

from assistant.conversation.parsing import parse_message  # noqa: E402
from assistant.core.fields import FIELD_NAMES  # noqa: E402

Case = tuple[str, str, dict[str, float], "str | None"]


def load_corpus(path: Path = CORPUS) -> list[Case]:
    """(kind, text, expected values, pending field) for every entry of the corpus."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    cases: list[Case] = []
    for kind, entries in data.items():
        for entry in entries:
            text, expected, *rest = entry
            cases.append((kind, text, dict(expected or {}), rest[0] if rest else None))
    return cases


def score(cases: list[Case]) -> dict[str, object]:
    exact, wrong, failures = 0, [], []
    tp = dict.fromkeys(FIELD_NAMES, 0)
    fp = dict.fromkeys(FIELD_NAMES, 0)
    fn = dict.fromkeys(FIELD_NAMES, 0)
    by_kind: dict[str, list[int]] = {}
    for kind, text, expected, pending in cases:
        got = parse_message(text, pending=pending).values
        ok = got.keys() == expected.keys() and all(math.isclose(got[k], expected[k]) for k in got)
        exact += ok
        by_kind.setdefault(kind, [0, 0])
        by_kind[kind][0] += ok
        by_kind[kind][1] += 1
        if not ok:
            failures.append((kind, text, pending, expected, got))
        for name in FIELD_NAMES:
            if name in got and (name not in expected or not math.isclose(got[name], expected[name])):
                fp[name] += 1
                wrong.append((text, pending, name, got[name], expected.get(name)))
            if name in expected:
                if name in got and math.isclose(got[name], expected[name]):
                    tp[name] += 1
                else:
                    fn[name] += 1
    return {"n": len(cases), "exact": exact, "wrong": wrong, "failures": failures, "tp": tp, "fp": fp, "fn": fn,
            "by_kind": by_kind}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=50, help="passes over the corpus for the timing")
    args = parser.parse_args(argv)
    cases = load_corpus()
    result = score(cases)
    n, exact = result["n"], result["exact"]
    print(f"corpus: {n} phrasings ({CORPUS.relative_to(ROOT)})")
    print(f"exact: {exact}/{n} = {exact / n:.1%}; wrongly filled values: {len(result['wrong'])}")
    print("\n| kind | phrasings | exact |\n|---|---:|---:|")
    for kind, (ok, total) in result["by_kind"].items():
        print(f"| {kind} | {total} | {ok / total:.0%} |")
    print("\n| field | precision | recall | filled right | filled wrong | missed |\n|---|---:|---:|---:|---:|---:|")
    for name in FIELD_NAMES:
        tp, fp, fn = result["tp"][name], result["fp"][name], result["fn"][name]
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        print(f"| `{name}` | {precision:.1%} | {recall:.1%} | {tp} | {fp} | {fn} |")
    for text, pending, name, value, meant in result["wrong"]:
        print(f"WRONG {name}={value} (meant {meant}) in {text!r} (pending {pending})")
    for kind, text, pending, expected, got in result["failures"]:
        print(f"MISS [{kind}] {text!r} pending={pending}: expected {expected}, got {got}")
    texts = [(text, pending) for _, text, _, pending in cases]
    for text, pending in texts:   # warm up
        parse_message(text, pending=pending)
    # each message's best of --repeat runs: the parser's own cost, without the scheduler's noise on a shared
    # machine (the mean of all runs is printed beside it)
    best = [math.inf] * len(texts)
    total = 0.0
    for _ in range(args.repeat):
        for i, (text, pending) in enumerate(texts):
            start = time.perf_counter()
            parse_message(text, pending=pending)
            took = time.perf_counter() - start
            total += took
            best[i] = min(best[i], took)
    times = sorted(best)
    print(f"\nparse time per message (best of {args.repeat} runs each, {len(times)} messages): median "
          f"{statistics.median(times) * 1e3:.3f} ms, p95 {times[int(0.95 * len(times))] * 1e3:.3f} ms, max "
          f"{times[-1] * 1e3:.3f} ms; mean of all {len(times) * args.repeat:,} runs {total / len(times) / args.repeat * 1e3:.3f} ms")
    canonical = ("38, makes $71k, spent 1.2k, buys online 5x, in store 7x, visits 6x a month, "
                 "last bought 2 weeks ago")
    runs = []
    for _ in range(200):
        start = time.perf_counter()
        parse_message(canonical)
        runs.append(time.perf_counter() - start)
    print(f"the README's seven-value message: best {min(runs) * 1e3:.3f} ms, median {statistics.median(runs) * 1e3:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
