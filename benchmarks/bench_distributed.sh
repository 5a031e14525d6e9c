#!/usr/bin/env bash
# Distributed training step on this machine: GCN 3 x 256 on Amazon Computers (default), single
# process vs P = 2 ranks (1 thread per rank) with the vanilla and overlap strategies.
# Prints one table: median epoch time and its breakdown (ms), bytes sent per epoch, accuracy.
# usage: benchmarks/bench_distributed.sh [BUILD_DIR] [EPOCHS] [DATASET]
set -euo pipefail
build=${1:-build}
epochs=${2:-30}
dataset=${3:-amazon-computers}
adaqp="$build/adaqp"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
common=(train --dataset "$dataset" --model gcn --layers 3 --hidden 256 --epochs "$epochs" --quiet)
"$adaqp" "${common[@]}" --threads 1 --metrics "$tmp/single-1t.jsonl" >/dev/null
"$adaqp" "${common[@]}" --threads 2 --metrics "$tmp/single-2t.jsonl" >/dev/null
for mode in vanilla overlap; do
  mpirun -np 2 "$adaqp" "${common[@]}" --threads 1 --mode "$mode" --metrics "$tmp/p2-$mode.jsonl" >/dev/null
done
python3 - "$tmp" "$dataset" "$epochs" <<'PY'
import json, statistics, sys
tmp, dataset, epochs = sys.argv[1:4]
rows = [("1 process, 1 thread", "single-1t"), ("1 process, 2 threads", "single-2t"),
        ("P=2 vanilla, 1 thread/rank", "p2-vanilla"), ("P=2 overlap, 1 thread/rank", "p2-overlap")]
print(f"GCN 3 x 256 on {dataset}, {epochs} epochs; medians over epochs (times in ms, max over ranks)")
print(f"{'configuration':<28} {'epoch':>8} {'compute':>8} {'comm':>8} {'reduce':>8} {'MB sent':>8} {'test acc':>8}")
for name, key in rows:
    recs = [json.loads(l) for l in open(f"{tmp}/{key}.jsonl")]
    ep = [r for r in recs if r["type"] == "epoch"]
    summ = [r for r in recs if r["type"] == "summary"][0]
    med = lambda k: 1e3 * statistics.median(r[k] for r in ep)
    print(f"{name:<28} {med('epoch_s'):8.1f} {med('compute_s'):8.1f} {med('comm_s'):8.1f} {med('reduce_s'):8.1f} "
          f"{ep[-1]['bytes_sent'] / 1e6:8.2f} {100 * summ['test_acc_at_best_val']:7.2f}%")
PY
