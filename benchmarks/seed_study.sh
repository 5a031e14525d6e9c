#!/usr/bin/env bash
# Accuracy of strategies over many seeds, P = 2 ranks (1 thread each) over shared memory, GCN 3 x 256,
# 200 epochs, evaluation every 5 (as experiments/peers.yaml). Accuracy of every uniform-width
# strategy is independent of the transport (the same plans compute the same numbers), so these
# runs add seeds to a link-bound sweep at a fraction of its time; adaptive widths depend on the
# link costs, so give them the sweep's link with --link-model (250 Mbit/s: 0:0.25).
# One record file per run: OUT/DATASET/NAME-sSEED.jsonl (finished runs are skipped);
# benchmarks/seed_table.py OUT [SWEEP/runs] prints the table.
# usage: benchmarks/seed_study.sh OUT DATASET "SEEDS" NAME=FLAGS... [BUILD_DIR via $BUILD, epochs via $EPOCHS]
#   FLAGS: train flags separated by commas, e.g. pipegcn=--stale  bns=--boundary-rate,0.1
#          fp16=--mode,quant,--bits,fp16  adaqp=--mode,adaqp,--bits,adaptive,--link-model,0:0.25
set -euo pipefail
out=${1:?usage: $0 OUT DATASET SEEDS NAME=FLAGS...}
dataset=${2:?dataset}
seeds=${3:?seeds}
shift 3
adaqp=$(cd "${BUILD:-build}" && pwd)/adaqp
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$out/$dataset"
for s in $seeds; do
  for row in "$@"; do
    name=${row%%=*}
    IFS=, read -r -a flags <<<"${row#*=}"
    file="$out/$dataset/$name-s$s.jsonl"
    if [ -s "$file" ]; then continue; fi
    echo "$(date +%H:%M:%S) $dataset $name seed $s"
    timeout 1800 mpirun --oversubscribe -np 2 "$adaqp" train --dataset "$dataset" --model gcn --layers 3 --hidden 256 \
      --epochs "${EPOCHS:-200}" --eval-every 5 --threads 1 --seed "$s" "${flags[@]}" --metrics "$file" --quiet \
      >"${file%.jsonl}.out" 2>&1 || { echo "run failed: see ${file%.jsonl}.out" >&2; tail -3 "${file%.jsonl}.out" >&2; }
  done
done
