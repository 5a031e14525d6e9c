#!/usr/bin/env bash
# The simulator's accuracy on the frontier strategies (experiments/frontier.yaml), measured the way
# this VM's drift demands: a calibration, then ROUNDS interleaved rounds of every (rate, strategy)
# point over the emulated link (each round runs every point once, so a slow spell of the host
# touches every point alike), then a second calibration. Every run writes its records and its
# every-rank task trace. benchmarks/frontier_accuracy.py then predicts each run with both profiles
# and prints, per point, the median measured and predicted epoch and the error.
#   OUT/profile-before.yaml, OUT/profile-after.yaml   the two calibrations
#   OUT/rROUND/DATASET/RATE/STRATEGY.jsonl            records (.trace.jsonl: the task trace)
# Finished runs are skipped, so a killed campaign resumes where it stopped.
# The strategies are frontier.yaml's rows as train flags (STRATEGY_FLAGS below; keep them in step).
# usage: benchmarks/frontier_accuracy.sh OUT [BUILD_DIR]
# environment: DATASETS (default amazon-computers), RATES (250mbit 1gbit), ROUNDS (3), EPOCHS (30;
#   the adaptive strategies run twice as many, so that widths are re-assigned after the 8-bit
#   first period: --assign-period 20), STRATEGIES (all of STRATEGY_FLAGS)
set -euo pipefail
out=${1:?usage: $0 OUT [BUILD_DIR]}
build=${2:-build}
here=$(cd "$(dirname "$0")" && pwd)
adaqp=$(cd "$build" && pwd)/adaqp
datasets=${DATASETS:-amazon-computers}
rates=${RATES:-250mbit 1gbit}
rounds=${ROUNDS:-3}
epochs=${EPOCHS:-30}
declare -A STRATEGY_FLAGS=(
  [vanilla]="--mode vanilla"
  [vanilla-after]="--mode vanilla --allreduce after"
  [pipegcn]="--mode vanilla --stale"
  [stale-1bit-bound10]="--mode quant --bits 1 --stale --stale-bound 10"
  [stale-adaptive]="--mode quant --bits adaptive --widths 1,2,4,8 --stale --assign-period 20 --link-model 50:0.25"
  [adaqp-adaptive]="--mode adaqp --bits adaptive --assign-period 20 --link-model 50:0.25"
)
strategies=${STRATEGIES:-vanilla vanilla-after pipegcn stale-1bit-bound10 stale-adaptive adaqp-adaptive}
for s in $strategies; do
  if [ -z "${STRATEGY_FLAGS[$s]:-}" ]; then
    echo "$0: unknown strategy '$s' (known: ${!STRATEGY_FLAGS[*]})" >&2
    exit 2
  fi
done
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then
  echo "$0: ROUNDS must be a positive integer, got '$rounds'" >&2
  exit 2
fi
mkdir -p "$out"
calibrate() {
  if [ -s "$out/$1" ]; then return; fi
  echo "$(date +%H:%M:%S) calibrating: $out/$1"
  bash "$here/../scripts/calibrate_this_machine.sh" "$out/$1.tmp" "$build" >"$out/$1.log" 2>&1 ||
    { echo "$0: calibration failed: see $out/$1.log" >&2; exit 1; }
  mv "$out/$1.tmp" "$out/$1"
}
calibrate profile-before.yaml
start=$(date +%s)
for round in $(seq 1 "$rounds"); do
  for d in $datasets; do
    for r in $rates; do
      folder="$out/r$round/$d/$r"
      mkdir -p "$folder"
      for s in $strategies; do
        file="$folder/$s.jsonl"
        if [ -s "$file" ]; then continue; fi
        n=$epochs
        case $s in *adaptive*) n=$((2 * epochs)) ;; esac
        echo "$(date +%H:%M:%S) round $round $d $r $s ($n epochs; elapsed $(($(date +%s) - start)) s)"
        # shellcheck disable=SC2086
        bash "$here/link_emulation.sh" "$r" 2 "$adaqp" train --dataset "$d" --model gcn --layers 3 --hidden 256 \
          --split random:0.6,0.2 --split-seed 0 --seed 0 --epochs "$n" --eval-every 5 --threads 1 --quiet \
          ${STRATEGY_FLAGS[$s]} --metrics "$file.tmp" --trace "${file%.jsonl}.trace.jsonl" >"${file%.jsonl}.out" 2>&1 ||
          { echo "$0: run failed: see ${file%.jsonl}.out" >&2; tail -3 "${file%.jsonl}.out" >&2; exit 1; }
        mv "$file.tmp" "$file"
      done
    done
  done
done
calibrate profile-after.yaml
echo "done in $(($(date +%s) - start)) s: python3 $here/frontier_accuracy.py --adaqp $adaqp $out"
