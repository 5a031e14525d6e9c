#!/usr/bin/env bash
# Measured runs for the simulator's accuracy table without link emulation (plain mpirun, shared
# memory): P = 2 and 4 ranks, one thread each, GCN 3 x 256, vanilla / overlap / quant / adaqp at
# 32 / 8 / 4 / 2 bits. Writes OUT/DATASET/shm/P-MODE-BITS-s0.jsonl (skips finished runs).
# usage: benchmarks/simulator_runs.sh OUT [BUILD_DIR]   (env: DATASETS, PARTS, ROWS, EPOCHS)
set -euo pipefail
out=${1:?usage: $0 OUT [BUILD_DIR]}
build=${2:-build}
adaqp=$(cd "$build" && pwd)/adaqp
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for d in ${DATASETS:-amazon-computers coauthor-physics}; do
  mkdir -p "$out/$d/shm"
  for p in ${PARTS:-2 4}; do
    for row in ${ROWS:-vanilla:32 overlap:32 quant:8 quant:4 quant:2 adaqp:8 adaqp:4 adaqp:2}; do
      mode=${row%%:*}
      bits=${row##*:}
      file="$out/$d/shm/p$p-$mode-$bits-s0.jsonl"
      [ -s "$file" ] && continue
      echo "$(date +%H:%M:%S) $d P=$p $mode $bits"
      mpirun -np "$p" --oversubscribe "$adaqp" train --dataset "$d" --model gcn --layers 3 --hidden 256 \
        --epochs "${EPOCHS:-30}" --eval-every "${EPOCHS:-30}" --threads 1 --mode "$mode" --bits "$bits" \
        --metrics "$file" --quiet >/dev/null
    done
  done
done
