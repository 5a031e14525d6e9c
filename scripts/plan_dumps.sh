#!/usr/bin/env bash
# Dumps the JSON plans of every strategy in experiments/peers.yaml (both datasets, P = 2 and 3, every
# rank, training and evaluation) into OUTDIR, one file per plan, and prints one sha256 line per file.
# Used to prove a refactoring leaves the scheduler's plans unchanged: run before and after, diff.
#   scripts/plan_dumps.sh ADAQP OUTDIR
set -euo pipefail
adaqp=$1 out=$2
mkdir -p "$out"
strategies=(
  "vanilla:--mode vanilla"
  "fp16:--mode quant --bits fp16"
  "bf16:--mode quant --bits bf16"
  "adaqp8:--mode adaqp --bits 8"
  "adaqp4:--mode adaqp --bits 4"
  "overlap:--mode overlap"
  "pipegcn:--mode vanilla --stale"
  "pipegcn-m0.9:--mode vanilla --stale --stale-momentum 0.9"
  "bns-0.1:--mode vanilla --boundary-rate 0.1"
  "sage-adaqp4:--model sage --mode adaqp --bits 4"
)
for dataset in amazon-computers coauthor-physics; do
  for parts in 2 3; do
    for s in "${strategies[@]}"; do
      name=${s%%:*} flags=${s#*:}
      for ((rank = 0; rank < parts; rank++)); do
        for kind in train eval; do
          extra=()
          [ "$kind" = eval ] && extra=(--eval)
          f="$out/$dataset-p$parts-$name-r$rank-$kind.json"
          # shellcheck disable=SC2086
          "$adaqp" plan --dataset "$dataset" --parts "$parts" --rank "$rank" --layers 3 --hidden 256 $flags \
            "${extra[@]}" --dump json >"$f"
        done
      done
    done
  done
done
(cd "$out" && sha256sum -- *.json)
