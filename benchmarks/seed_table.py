#!/usr/bin/env python3
"""Accuracy over seeds, per dataset and strategy, from any adaqp train record files (a sweep's
runs/ folder, benchmarks/seed_study.sh output, ...): one row per (dataset, strategy, bits) with the
number of seeds, test accuracy at best validation (mean and sample standard deviation, %), and
the difference to vanilla-32 paired by seed (mean and its standard error: the standard deviation
of the per-seed differences over sqrt(n); only seeds both have). A run repeated on the same seed
(e.g. once link-bound, once not) counts once: the accuracy of these strategies does not depend on
the transport, and the first file read is kept.

--measure picks the accuracy: best (test accuracy at best validation, the default), final (at the
last evaluation) or tail (mean of the last 5 evaluations): docs/metrics.md. Records written before
the summary had final_test_acc / tail_test_acc get them from their epoch records, by the same rule
as engine::summarize.

usage: benchmarks/seed_table.py [--measure best|final|tail] FILE_OR_FOLDER...
"""
import json
import math
import os
import statistics
import sys


def files(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, _, names in os.walk(p):
                for n in sorted(names):
                    if n.endswith(".jsonl") and not n.endswith(".simulator.jsonl"):
                        yield os.path.join(root, n)
        else:
            yield p


MEASURES = {"best": ("test_acc_at_best_val", "test accuracy at best validation"),
            "final": ("final_test_acc", "test accuracy at the last evaluation"),
            "tail": ("tail_test_acc", "mean test accuracy of the last 5 evaluations")}
TAIL_EVALUATIONS = 5  # engine::kTailEvaluations


def load(path, measure):
    run = summary = None
    tests = []  # test_acc of evaluated epochs, in order
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if r["type"] == "run":
                run = r
            elif r["type"] == "summary":
                summary = r
            elif r["type"] == "epoch" and r.get("test_acc") is not None:
                tests.append(r["test_acc"])
    if not run or not summary or summary.get("epochs", 0) == 0:
        return None
    s = run["settings"]
    key = MEASURES[measure][0]
    if key in summary:
        value = summary[key]
    elif measure == "final":
        value = tests[-1]
    else:
        tail = tests[-TAIL_EVALUATIONS:]
        value = sum(tail) / len(tail)
    return (run["dataset"]["name"], summary.get("strategy", s["mode"]), str(summary["bits"]), int(s["seed"]),
            100.0 * value)


def main():
    args = sys.argv[1:]
    measure = "best"
    if args[:1] == ["--measure"] and len(args) >= 2:
        measure, args = args[1], args[2:]
    if not args or measure not in MEASURES:
        sys.exit(__doc__.strip().splitlines()[-1])
    acc = {}  # (dataset, strategy, bits) -> {seed: acc}
    for path in files(args):
        r = load(path, measure)
        if r:
            acc.setdefault(r[:3], {}).setdefault(r[3], r[4])
    for dataset in sorted({k[0] for k in acc}):
        print(f"\n### {dataset}: {MEASURES[measure][1]} over seeds (%)\n")
        print("| strategy | bits | seeds | mean | std | diff to vanilla-32 (paired) | ± SE |")
        print("|---|---|---|---|---|---|---|")
        base = acc.get((dataset, "vanilla", "32"), {})
        for key in sorted(k for k in acc if k[0] == dataset):
            runs = acc[key]
            vals = list(runs.values())
            sd = statistics.stdev(vals) if len(vals) > 1 else float("nan")
            diffs = [runs[s] - base[s] for s in runs if s in base]
            if diffs and key[1:] != ("vanilla", "32"):
                se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
                d, e = f"{statistics.mean(diffs):+.2f} (n={len(diffs)})", f"{se:.2f}"
            else:
                d, e = "—", "—"
            print(f"| {key[1]} | {key[2]} | {len(vals)} | {statistics.mean(vals):.2f} | {sd:.2f} | {d} | {e} |")


if __name__ == "__main__":
    main()
