#!/usr/bin/env python3
"""Predicted vs measured epoch time: runs `adaqp simulate` for every measured run of one or more
results folders laid out as benchmarks/link_campaign.sh writes them (DIR/DATASET/LINK/*.jsonl)
and prints one Markdown table with the relative error of the predicted epoch time, plus the
median and maximum absolute error. LINK folders: `shm` (plain mpirun: simulate --link none),
`none` (TCP over loopback without limit: --link lo), a rate such as `1gbit` (--link 1gbit), or
`nodesNxG-RATE` (benchmarks/cluster_emulation.sh N G RATE: --link RATE --topology nodes=NxG).
Runs with adaptive widths are priced with their last assignment (`simulate --width-mix RECORDS`).

usage: simulator_accuracy.py --adaqp build/adaqp --profile PROFILE [--links shm,1gbit,...] DIR...
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile


def measured(path):
    with open(path) as f:
        recs = [json.loads(line) for line in f]
    run = next(r for r in recs if r["type"] == "run")
    epochs = [r for r in recs if r["type"] == "epoch"]
    return run, {k: statistics.median(e[k] for e in epochs) for k in ("epoch_s", "compute_s", "comm_s", "quant_s")}


def simulate_command(adaqp, records, profile, link, out):
    """The `adaqp simulate` command predicting the run whose records are in `records` (`--like`: its
    settings, ranks and, with adaptive widths, its last assignment) over LINK (a folder name as
    described above), writing its records to `out`."""
    sim_link = {"shm": "none", "none": "lo"}.get(link, link)
    topology = []
    if link.startswith("nodes"):
        layout, sim_link = link[len("nodes"):].split("-", 1)
        topology = ["--topology", "nodes=" + layout]
    return [adaqp, "simulate", "--like", records, "--profile", profile, "--link", sim_link,
            "--metrics", out] + topology


def predict(adaqp, records, profile, link, tmp, probe=None):
    """Predicted epoch time (s) of the run whose records are in `records` (with `probe`: the
    profile rescaled to that host-speed probe, `simulate --probe`)."""
    out = os.path.join(tmp, "p.jsonl")
    cmd = simulate_command(adaqp, records, profile, link, out) + (["--probe", probe] if probe else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"simulate failed for {records}: {r.stderr.strip()}")
    with open(out) as f:
        return [json.loads(line) for line in f][-1]["predicted_epoch_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--adaqp", required=True)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--links", default="", help="only these LINK folders (comma-separated)")
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    keep = set(a.links.split(",")) if a.links else None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for root in a.dirs:
            for dataset in sorted(os.listdir(root)):
                if not os.path.isdir(os.path.join(root, dataset)):
                    continue
                for link in sorted(os.listdir(os.path.join(root, dataset))):
                    if keep is not None and link not in keep:
                        continue
                    folder = os.path.join(root, dataset, link)
                    for name in sorted(os.listdir(folder)):
                        if not name.endswith(".jsonl"):
                            continue
                        run, m = measured(os.path.join(folder, name))
                        s = run["settings"]
                        pred = predict(a.adaqp, os.path.join(folder, name), a.profile, link, tmp)
                        mode = s["mode"] + (" (all-reduce after)" if s.get("allreduce") == "after" else "")
                        rows.append((s["dataset"], run["ranks"], link, mode, s["bits"], m["epoch_s"], pred,
                                     100 * (pred - m["epoch_s"]) / m["epoch_s"]))
    if not rows:
        sys.exit("no measured runs found")
    print("| dataset | P | link | mode | bits | measured ms | predicted ms | error |")
    print("|---|---|---|---|---|---|---|---|")
    for d, p, link, mode, bits, meas, pred, err in rows:
        print(f"| {d} | {p} | {link} | {mode} | {bits} | {1e3 * meas:.1f} | {1e3 * pred:.1f} | {err:+.1f}% |")
    errs = [abs(r[-1]) for r in rows]
    print(f"\n{len(rows)} configurations: median |error| {statistics.median(errs):.1f}%, max {max(errs):.1f}%")


if __name__ == "__main__":
    main()
