#!/usr/bin/env python3
"""Per task kind: measured seconds (adaqp train --trace) next to predicted (adaqp simulate
--trace) for rank 0's training plan, summed over tasks of each kind, with the error in %.
Posting send / receive tasks is not compute and is left out.

usage: trace_compare.py MEASURED.jsonl PREDICTED.jsonl
"""
import json
import sys
from collections import defaultdict


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    meas = [json.loads(line) for line in open(sys.argv[1])]
    pred = {r["id"]: r for r in (json.loads(line) for line in open(sys.argv[2]))}
    by = defaultdict(lambda: [0.0, 0.0, 0])
    for m in meas:
        p = pred.get(m["id"])
        if p is None or p["kind"] != m["kind"] or m["kind"] in ("send", "recv"):
            continue
        key = m["kind"] + (f"{m['bits']}" if m["kind"] in ("pack", "unpack") else "")
        by[key][0] += m["mean_s"]
        by[key][1] += p["predicted_s"]
        by[key][2] += 1
    print(f"{'kind':<18} {'tasks':>5} {'measured ms':>12} {'predicted ms':>13} {'error':>8}")
    tm = tp = 0.0
    for k, (m, p, n) in sorted(by.items(), key=lambda kv: -kv[1][0]):
        tm += m
        tp += p
        err = f"{100 * (p - m) / m:+.1f}%" if m > 0 else "-"
        print(f"{k:<18} {n:>5} {1e3 * m:>12.3f} {1e3 * p:>13.3f} {err:>8}")
    print(f"{'total':<18} {'':>5} {1e3 * tm:>12.3f} {1e3 * tp:>13.3f} {100 * (tp - tm) / tm:+7.1f}%")


if __name__ == "__main__":
    main()
