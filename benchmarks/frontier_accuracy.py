#!/usr/bin/env python3
"""Predicted vs measured epoch time over the interleaved rounds of benchmarks/frontier_accuracy.sh:
every run (OUT/rROUND/DATASET/RATE/STRATEGY.jsonl) is predicted with the calibration made just
before its block (OUT/cal/NN.yaml, NN in OUT/rROUND/DATASET/calibration) and the one made next
(campaigns before 2026-12-07: OUT/profile-before.yaml and OUT/profile-after.yaml, around all the
rounds) (simulator_accuracy.simulate_command: `simulate --like RUN`, the run's own settings, adaptive widths from its
last assignment), and, where the run has its host-speed probes (RUN.probe-before.yaml and, unless
its block was resumed after it, RUN.probe-after.yaml), with the calibration before its block
rescaled to each probe (`simulate --probe`; the mean of the predictions: "before + probes"); per
point, the median measured epoch over rounds (each run's epoch time as `adaqp simulate --compare` defines it, docs/metrics.md) against the median
prediction. One Markdown table, then median and maximum |error| and how many points are within
--bound (the simulator's stated error) for each profile; then the same for each run against its
own prediction, round by round.

usage: frontier_accuracy.py --adaqp build/adaqp [--bound 7.7] OUT
"""
import argparse
import glob
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from simulator_accuracy import measured, predict  # noqa: E402


def calibrations(out, block):
    """{"before": profile, "after": profile} of the runs of one block (OUT/rROUND/DATASET), where
    they exist."""
    found = {}
    index = os.path.join(block, "calibration")
    if os.path.exists(index):
        n = int(open(index).read().strip(), 10)
        for p, k in (("before", n), ("after", n + 1)):
            path = os.path.join(out, "cal", f"{k:02d}.yaml")
            if os.path.exists(path):
                found[p] = path
    else:  # the earlier layout: one calibration before all rounds, one after
        for p in ("before", "after"):
            path = os.path.join(out, f"profile-{p}.yaml")
            if os.path.exists(path):
                found[p] = path
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--adaqp", required=True)
    ap.add_argument("--bound", type=float, default=7.7, help="stated error, percent")
    ap.add_argument("out")
    a = ap.parse_args()
    profiles = ["before", "after", "before + probes"]
    points = {}  # (dataset, rate, strategy) -> list of (measured s, {profile: predicted s})
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(glob.glob(os.path.join(a.out, "r*", "*", "*", "*.jsonl"))):
            if path.endswith(".trace.jsonl"):
                continue
            rate_dir = os.path.dirname(path)
            key = (os.path.basename(os.path.dirname(rate_dir)), os.path.basename(rate_dir),
                   os.path.basename(path)[:-len(".jsonl")])
            _, m = measured(path)
            cal = calibrations(a.out, os.path.dirname(rate_dir))
            pred = {p: predict(a.adaqp, path, cal[p], key[1], tmp) for p in profiles if p in cal}
            probes = [path[:-len(".jsonl")] + f".probe-{w}.yaml" for w in ("before", "after")]
            probes = [p for p in probes if os.path.exists(p)]
            if "before" in cal and probes and probes[0].endswith("before.yaml"):
                pred["before + probes"] = statistics.mean(predict(a.adaqp, path, cal["before"], key[1], tmp, p)
                                                          for p in probes)
            rnd = os.path.basename(os.path.dirname(os.path.dirname(rate_dir)))  # rROUND
            points.setdefault(key, []).append((m["epoch_s"], pred, rnd))
    if not points:
        sys.exit(f"{a.out}: no runs (OUT/rROUND/DATASET/RATE/STRATEGY.jsonl)")
    # A column for each way every run was predicted.
    profiles = [p for p in profiles if all(p in r[1] for runs in points.values() for r in runs)]
    if not profiles:
        sys.exit(f"{a.out}: no calibration for some runs (run frontier_accuracy.sh to the end)")
    label = {"before": "before its block", "after": "after its block", "before + probes": "before, probed at the run"}
    head = " | ".join(f"predicted ({label[p]}) | error" for p in profiles)
    print(f"| dataset | link | strategy | rounds | measured ms (each round) | median | {head} |")
    print("|---|---|---|---|---|---|" + "---|---|" * len(profiles))
    errors = {p: [] for p in profiles}
    for (d, rate, strategy), runs in sorted(points.items()):
        meas = [r[0] for r in runs]
        mm = statistics.median(meas)
        cells = []
        for p in profiles:
            pm = statistics.median(r[1][p] for r in runs)
            e = 100 * (pm - mm) / mm
            errors[p].append(e)
            cells.append(f"{1e3 * pm:.1f} | {e:+.1f}%")
        each = " / ".join(f"{1e3 * x:.1f}" for x in meas)
        print(f"| {d} | {rate} | {strategy} | {len(runs)} | {each} | {1e3 * mm:.1f} | {' | '.join(cells)} |")
    print()
    for p in profiles:
        e = [abs(x) for x in errors[p]]
        inside = sum(x <= a.bound for x in e)
        print(f"calibrated {label[p]}: {len(e)} points, median |error| {statistics.median(e):.1f}%, max {max(e):.1f}%, "
              f"{inside} of {len(e)} within {a.bound:g}%")
    # Each run against its own prediction, by round: how far one run strays from what its block's
    # calibrations predict (the run-to-run variation that the medians over rounds smooth).
    print()
    rounds = sorted({r[2] for runs in points.values() for r in runs}, key=lambda x: int(x[1:]))
    for p in profiles:
        for rnd in rounds:
            e = [100 * (r[1][p] - r[0]) / r[0] for runs in points.values() for r in runs if r[2] == rnd]
            inside = sum(abs(x) <= a.bound for x in e)
            print(f"{rnd}, each run calibrated {label[p]}: {len(e)} runs, median |error| "
                  f"{statistics.median(abs(x) for x in e):.1f}%, mean error {statistics.mean(e):+.1f}%, "
                  f"{inside} of {len(e)} within {a.bound:g}%")


if __name__ == "__main__":
    main()
