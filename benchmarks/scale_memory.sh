#!/usr/bin/env bash
# Per-rank memory and start-up against the single process, from partition folders (issue: scale
# out). For P = 1, 2, 4: `adaqp partition --out` (load, partition and write seconds, peak memory),
# then `mpirun -np P adaqp train --partitions` for a few epochs (GCN 3 layers), and a table of every
# rank's peak resident memory next to the goal (1/P + the rank's halo share) x the single-process
# peak + 300 MB, with halo share = the rank's halo rows / all nodes. Also P = 2 from --dataset (every
# rank loads the whole graph) for comparison. A benchmark: minutes and GBs, never run by CI.
# usage: benchmarks/scale_memory.sh [GRAPH] [HIDDEN] [EPOCHS]   (default rmat:scale=20,degree=10 128 3)
set -euo pipefail
graph=${1:-rmat:scale=20,degree=10}
hidden=${2:-128}
epochs=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
adaqp=${ADAQP:-$here/../build/adaqp}
work=${WORK:-$(mktemp -d)}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
model=(--model gcn --layers 3 --hidden "$hidden" --epochs "$epochs" --eval-every "$epochs" --quiet)
for P in 1 2 4; do
  [ -d "$work/parts-$P" ] || "$adaqp" partition --dataset "$graph" --parts "$P" --out "$work/parts-$P" --json \
    >"$work/partition-$P.json"
  mpirun --oversubscribe -np "$P" "$adaqp" train --partitions "$work/parts-$P" "${model[@]}" \
    --metrics "$work/train-$P.jsonl" >/dev/null
done
mpirun --oversubscribe -np 2 "$adaqp" train --dataset "$graph" "${model[@]}" --metrics "$work/dataset-2.jsonl" >/dev/null
python3 - "$work" "$graph" "$hidden" <<'PY'
import json, sys
work, graph, hidden = sys.argv[1], sys.argv[2], sys.argv[3]
def summary(path):
    recs = [json.loads(l) for l in open(path)]
    return recs[-1]
gb = lambda b: b / 2**30
single = summary(f"{work}/train-1.jsonl")["peak_rss_bytes"]
print(f"{graph}, GCN 3 x {hidden}: single-process peak {gb(single):.2f} GiB (from a 1-part folder)")
print("| P | partition: load / partition / write s, peak GiB | rank | inner | halo share | train load_s | median epoch s | peak GiB | goal GiB | within |")
print("|---|---|---|---|---|---|---|---|---|---|")
for P in (1, 2, 4):
    part = json.load(open(f"{work}/partition-{P}.json"))
    meta = json.load(open(f"{work}/parts-{P}/meta.json"))
    s = summary(f"{work}/train-{P}.jsonl")
    n = meta["dataset"]["nodes"]
    for r, peak in enumerate(s["peak_rss_bytes_by_rank"]):
        sh = meta["shapes"][r]
        halo = sum(sh["halo_rows"]) / n
        goal = (1 / P + halo) * single + 300 * 2**20
        print(f"| {P} | {part['load_s']:.1f} / {part['partition_s']:.1f} / {part['write_s']:.1f}, {gb(part['peak_rss_bytes']):.2f} "
              f"| {r} | {sh['num_central'] + sh['num_marginal']} | {halo:.3f} | {s['load_s']:.2f} | {s['median_epoch_s']:.2f} "
              f"| {gb(peak):.2f} | {gb(goal):.2f} | {'yes' if peak <= goal else 'NO'} |")
d = summary(f"{work}/dataset-2.jsonl")
print(f"P = 2 from --dataset (every rank loads the graph): peak per rank "
      f"{', '.join(f'{gb(b):.2f}' for b in d['peak_rss_bytes_by_rank'])} GiB, load {d['load_s']:.1f} s, "
      f"partition {d['partition_s']:.1f} s, median epoch {d['median_epoch_s']:.2f} s")
PY
echo "folders and records in $work"
