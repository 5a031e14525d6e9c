#!/usr/bin/env python3
"""Tables of a link campaign (benchmarks/link_campaign.sh OUT): per dataset, one row per
mode/bits and one column group per link rate with the median epoch time (ms), the speedup over
vanilla at the same rate (throughput = 1 / median epoch time, docs/metrics.md), MB sent per
epoch and the test accuracy at best validation, and vanilla's communication share (median over
epochs of 1 - (compute_s + quant_s) / epoch_s: the part of the epoch spent waiting on halo
messages or in the all-reduce; in brackets the all-reduce's reduce_s / epoch_s); then the seeds table (mean, standard deviation,
difference to vanilla paired by seed) for every (dataset, rate) that has several seeds.

usage: benchmarks/campaign_table.py OUT
"""
import json
import os
import statistics
import sys

RATE_ORDER = ["100mbit", "250mbit", "1gbit", "10gbit", "none"]
ROW_ORDER = ["vanilla-32", "overlap-32", "quant-8", "quant-4", "quant-2", "quant-adaptive",
             "adaqp-8", "adaqp-4", "adaqp-2", "adaqp-adaptive"]


def load(path):
    with open(path) as f:
        recs = [json.loads(line) for line in f]
    epochs = [r for r in recs if r["type"] == "epoch"]
    summary = next(r for r in recs if r["type"] == "summary")
    med = lambda k: statistics.median(e[k] for e in epochs)
    return {"epoch_s": summary["median_epoch_s"], "comm_s": med("comm_s"), "compute_s": med("compute_s"),
            "reduce_s": med("reduce_s"),
            "comm_share": statistics.median(1 - (e["compute_s"] + e["quant_s"]) / e["epoch_s"] for e in epochs),
            "reduce_share": statistics.median(e["reduce_s"] / e["epoch_s"] for e in epochs),
            "bytes": statistics.median(e["bytes_sent"] for e in epochs), "acc": summary["test_acc_at_best_val"],
            "epochs": summary["epochs"]}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    root = sys.argv[1]
    runs = {}  # (dataset, rate, row) -> {seed: result}
    for dataset in sorted(os.listdir(root)):
        if not os.path.isdir(os.path.join(root, dataset)):
            continue
        for rate in os.listdir(os.path.join(root, dataset)):
            folder = os.path.join(root, dataset, rate)
            for name in os.listdir(folder):
                if not name.endswith(".jsonl"):
                    continue
                row, seed = name[: -len(".jsonl")].rsplit("-s", 1)
                runs.setdefault((dataset, rate, row), {})[int(seed)] = load(os.path.join(folder, name))
    for dataset in sorted({k[0] for k in runs}):
        rates = [r for r in RATE_ORDER if any(k[:2] == (dataset, r) for k in runs)]
        print(f"\n### {dataset}: P = 2, GCN 3 x 256, seed 0 (median epoch ms / speedup over vanilla / MB per epoch / test acc %)\n")
        print("| mode-bits | " + " | ".join(rates) + " |")
        print("|---|" + "---|" * len(rates))
        for row in ROW_ORDER:
            cells = []
            for rate in rates:
                r = runs.get((dataset, rate, row), {}).get(0)
                v = runs.get((dataset, rate, "vanilla-32"), {}).get(0)
                if r is None:
                    cells.append("—")
                    continue
                speed = f"{v['epoch_s'] / r['epoch_s']:.2f}x" if v else "?"
                cells.append(f"{1e3 * r['epoch_s']:.0f} / {speed} / {r['bytes'] / 1e6:.1f} / {100 * r['acc']:.2f}")
            if any(c != "—" for c in cells):
                print(f"| {row} | " + " | ".join(cells) + " |")
        shares = []
        for rate in rates:
            v = runs.get((dataset, rate, "vanilla-32"), {}).get(0)
            shares.append(f"{100 * v['comm_share']:.0f}% ({100 * v['reduce_share']:.0f}%)" if v else "—")
        print("| vanilla's communication share (of it all-reduce) | " + " | ".join(shares) + " |")
    multi = sorted({k[:2] for k, seeds in runs.items() if len(seeds) > 1})
    for dataset, rate in multi:
        print(f"\n### {dataset} at {rate}: seeds (test acc at best validation, %)\n")
        print("| mode-bits | seeds | per seed | mean | std | mean diff to vanilla (paired) | median epoch ms | speedup |")
        print("|---|---|---|---|---|---|---|---|")
        van = runs.get((dataset, rate, "vanilla-32"), {})
        for row in ROW_ORDER:
            seeds = runs.get((dataset, rate, row), {})
            if len(seeds) < 2:
                continue
            accs = [100 * seeds[s]["acc"] for s in sorted(seeds)]
            paired = [100 * (seeds[s]["acc"] - van[s]["acc"]) for s in sorted(seeds) if s in van]
            times = [seeds[s]["epoch_s"] for s in sorted(seeds)]
            vt = [van[s]["epoch_s"] for s in sorted(seeds) if s in van]
            speed = statistics.mean(vt) / statistics.mean(times) if vt else float("nan")
            print(f"| {row} | {len(seeds)} | {', '.join(f'{a:.2f}' for a in accs)} | {statistics.mean(accs):.2f} | "
                  f"{statistics.stdev(accs):.2f} | {statistics.mean(paired):+.2f} | "
                  f"{1e3 * statistics.mean(times):.0f} | {speed:.2f}x |")


if __name__ == "__main__":
    main()
