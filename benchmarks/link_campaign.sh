#!/usr/bin/env bash
# The link-bound campaign of the AdaQP issue: P = 2 ranks (1 thread each), GCN 3 x 256, every
# (dataset, link rate, mode/bits row, seed) run through benchmarks/link_emulation.sh. One JSON
# Lines record file per run: OUT/DATASET/RATE/MODE-BITS-sSEED.jsonl. Finished runs are skipped,
# so a killed campaign resumes where it stopped. benchmarks/campaign_table.py prints the table,
# benchmarks/simulator_accuracy.py the predicted epoch next to the measured one.
# With CLUSTER=NxG the runs go through benchmarks/cluster_emulation.sh N G RATE instead (N hosts of
# G ranks, each host's NIC at RATE), into OUT/DATASET/nodesNxG-RATE/.
# usage: benchmarks/link_campaign.sh OUT [BUILD_DIR]
# environment (space-separated lists): DATASETS, RATES, ROWS (MODE:BITS), SEEDS, EPOCHS, EVAL_EVERY,
#   EXTRA (more train flags); NP (ranks, default 2) or CLUSTER (NxG)
set -euo pipefail
out=${1:?usage: $0 OUT [BUILD_DIR]}
build=${2:-build}
here=$(cd "$(dirname "$0")" && pwd)
datasets=${DATASETS:-amazon-computers coauthor-physics}
rates=${RATES:-100mbit 250mbit 1gbit 10gbit none}
rows=${ROWS:-vanilla:32 overlap:32 quant:8 quant:4 quant:2 quant:adaptive adaqp:8 adaqp:4 adaqp:2 adaqp:adaptive}
seeds=${SEEDS:-0}
epochs=${EPOCHS:-200}
eval_every=${EVAL_EVERY:-20}
adaqp=$(cd "$build" && pwd)/adaqp
np=${NP:-2}
cluster=${CLUSTER:-}
if [ -n "$cluster" ] && ! [[ "$cluster" =~ ^[1-9][0-9]*x[1-9][0-9]*$ ]]; then
  echo "$0: CLUSTER must be NxG (hosts x ranks per host), got '$cluster'" >&2
  exit 2
fi
total=0
for d in $datasets; do for r in $rates; do for row in $rows; do for s in $seeds; do total=$((total + 1)); done; done; done; done
i=0
start=$(date +%s)
for d in $datasets; do
  for r in $rates; do
    folder="$out/$d/$r"
    launch=(bash "$here/link_emulation.sh" "$r" "$np")
    if [ -n "$cluster" ]; then
      folder="$out/$d/nodes$cluster-$r"
      launch=(bash "$here/cluster_emulation.sh" "${cluster%x*}" "${cluster#*x}" "$r")
    fi
    mkdir -p "$folder"
    for row in $rows; do
      mode=${row%%:*}
      bits=${row##*:}
      for s in $seeds; do
        i=$((i + 1))
        file="$folder/$mode-$bits-s$s.jsonl"
        if [ -s "$file" ]; then continue; fi
        echo "[$i/$total] $(date +%H:%M:%S) $d $r $mode $bits seed $s (elapsed $(( $(date +%s) - start )) s)"
        # shellcheck disable=SC2086
        "${launch[@]}" "$adaqp" train --dataset "$d" --model gcn --layers 3 --hidden 256 \
          --epochs "$epochs" --eval-every "$eval_every" --threads 1 --mode "$mode" --bits "$bits" --seed "$s" \
          ${EXTRA:-} --metrics "$file" --quiet >"${file%.jsonl}.out" 2>&1 ||
          { echo "run failed: see ${file%.jsonl}.out" >&2; tail -3 "${file%.jsonl}.out" >&2; }
      done
    done
  done
done
echo "campaign done in $(( $(date +%s) - start )) s: $out"
