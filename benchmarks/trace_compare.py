#!/usr/bin/env python3
"""Per rank and task kind: measured seconds (adaqp train --trace) next to predicted (adaqp
simulate --trace) for every rank's training plan, summed over tasks of each kind, with the error
in %. Posting send / receive tasks is not compute and is left out.

usage: trace_compare.py MEASURED.jsonl PREDICTED.jsonl
"""
import json
import sys
from collections import defaultdict


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    meas = [json.loads(line) for line in open(sys.argv[1])]
    pred = {(r.get("rank", 0), r["id"]): r for r in (json.loads(line) for line in open(sys.argv[2]))}
    by = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0, 0]))  # rank -> kind -> sums
    for m in meas:
        p = pred.get((m.get("rank", 0), m["id"]))
        if p is None or p["kind"] != m["kind"] or m["kind"] in ("send", "recv"):
            continue
        key = m["kind"] + (f"{m['bits']}" if m["kind"] in ("pack", "unpack") else "")
        row = by[m.get("rank", 0)][key]
        row[0] += m["mean_s"]
        row[1] += p["predicted_s"]
        row[2] += 1
    print(f"{'rank':>4} {'kind':<18} {'tasks':>5} {'measured ms':>12} {'predicted ms':>13} {'error':>8}")
    for rank in sorted(by):
        tm = tp = 0.0
        for k, (m, p, n) in sorted(by[rank].items(), key=lambda kv: -kv[1][0]):
            tm += m
            tp += p
            err = f"{100 * (p - m) / m:+.1f}%" if m > 0 else "-"
            print(f"{rank:>4} {k:<18} {n:>5} {1e3 * m:>12.3f} {1e3 * p:>13.3f} {err:>8}")
        err = f"{100 * (tp - tm) / tm:+.1f}%" if tm > 0 else "-"
        print(f"{rank:>4} {'total':<18} {'':>5} {1e3 * tm:>12.3f} {1e3 * tp:>13.3f} {err:>8}")


if __name__ == "__main__":
    main()
