#!/usr/bin/env python3
"""Compares the epoch records of two adaqp runs: loss and accuracies within a relative tolerance.

usage: compare_records.py REFERENCE.jsonl OTHER.jsonl [--rtol 1e-5] [--keys loss,...]
                          [--bytes N] [--meta N] [--final-acc-tol X]
--keys: the epoch fields compared with --rtol (default loss and the three accuracies).
--bytes / --meta N: every epoch of OTHER sent exactly N bytes / N metadata bytes.
--final-acc-tol X: the summaries' test_acc_at_best_val differ by at most X.
Prints one line; exits 1 on a mismatch.
"""
import argparse
import json
import sys


def epochs(path):
    with open(path) as f:
        return [r for r in map(json.loads, f) if r["type"] == "epoch"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("reference")
    ap.add_argument("other")
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--keys", default="loss,train_acc,val_acc,test_acc")
    ap.add_argument("--bytes", type=int, default=None)
    ap.add_argument("--meta", type=int, default=None)
    ap.add_argument("--final-acc-tol", type=float, default=None)
    args = ap.parse_args()
    ref, other = epochs(args.reference), epochs(args.other)
    if len(ref) != len(other) or not ref:
        print(f"FAIL: {len(ref)} reference epochs, {len(other)} epochs in {args.other}")
        return 1
    worst = 0.0
    for a, b in zip(ref, other):
        for key in args.keys.split(","):
            denom = max(abs(a[key]), 1e-12)
            err = abs(a[key] - b[key]) / denom
            worst = max(worst, err)
            if err > args.rtol:
                print(f"FAIL: {args.other} epoch {b['epoch']} {key} {b[key]!r} vs reference {a[key]!r} "
                      f"(relative error {err:.3g} > {args.rtol:g})")
                return 1
        for field, want in (("bytes_sent", args.bytes), ("bytes_meta", args.meta)):
            if want is not None and b[field] != want:
                print(f"FAIL: {args.other} epoch {b['epoch']} {field} {b[field]} != expected {want}")
                return 1
    if args.final_acc_tol is not None:
        summary = lambda path: [r for r in map(json.loads, open(path)) if r["type"] == "summary"][0]
        a, b = summary(args.reference)["test_acc_at_best_val"], summary(args.other)["test_acc_at_best_val"]
        if abs(a - b) > args.final_acc_tol:
            print(f"FAIL: {args.other} test accuracy {b:.4f} vs reference {a:.4f} (tolerance {args.final_acc_tol})")
            return 1
    print(f"ok: {args.other}: {len(ref)} epochs, worst relative error {worst:.3g}"
          + (f", {args.bytes} bytes per epoch" if args.bytes is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
