#!/usr/bin/env python3
"""Compares the epoch records of two adaqp runs: loss and accuracies within a relative tolerance.

usage: compare_records.py REFERENCE.jsonl OTHER.jsonl [--rtol 1e-5] [--bytes N]
--bytes N also checks that every epoch of OTHER sent exactly N bytes.
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
    ap.add_argument("--bytes", type=int, default=None)
    args = ap.parse_args()
    ref, other = epochs(args.reference), epochs(args.other)
    if len(ref) != len(other) or not ref:
        print(f"FAIL: {len(ref)} reference epochs, {len(other)} epochs in {args.other}")
        return 1
    worst = 0.0
    for a, b in zip(ref, other):
        for key in ("loss", "train_acc", "val_acc", "test_acc"):
            denom = max(abs(a[key]), 1e-12)
            err = abs(a[key] - b[key]) / denom
            worst = max(worst, err)
            if err > args.rtol:
                print(f"FAIL: {args.other} epoch {b['epoch']} {key} {b[key]!r} vs reference {a[key]!r} "
                      f"(relative error {err:.3g} > {args.rtol:g})")
                return 1
        if args.bytes is not None and b["bytes_sent"] != args.bytes:
            print(f"FAIL: {args.other} epoch {b['epoch']} bytes_sent {b['bytes_sent']} != expected {args.bytes}")
            return 1
    print(f"ok: {args.other}: {len(ref)} epochs, worst relative error {worst:.3g}"
          + (f", {args.bytes} bytes per epoch" if args.bytes is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
