#!/usr/bin/env bash
# The simulator's accuracy on the frontier strategies (experiments/frontier.yaml), measured the way
# this VM's drift demands: ROUNDS interleaved rounds of every (dataset, rate, strategy) point over
# the emulated link (each round runs every point once, so a slow spell of the host touches every
# point alike; even rounds run a rate's strategies in the reverse order, so that no strategy always
# runs at the same place in a block, e.g. always last before the next calibration), with a calibration (scripts/calibrate_this_machine.sh) right before each dataset's
# block of runs in each round and one after the last. Every run writes its records and its
# every-rank task trace. Right before each run, a host-speed probe (`adaqp calibrate --probe-of`,
# ~25 s: the block's calibration's probe benchmarks timed again), which is also the previous run's
# "after" probe; one more after a block's last run.
# benchmarks/frontier_accuracy.py then predicts each run with the calibration made just before its
# block and the one made just after, each as calibrated and rescaled to the run's probes
# (`simulate --probe`), and prints, per point, the median measured and predicted epoch and the
# error.
#   OUT/cal/NN.yaml                                   the calibrations, in the order they were made
#   OUT/rROUND/DATASET/calibration                    the NN of the calibration made before that block
#   OUT/rROUND/DATASET/RATE/STRATEGY.jsonl            records (.trace.jsonl: the task trace)
#   OUT/rROUND/DATASET/RATE/STRATEGY.probe-{before,after}.yaml   the host-speed probes around it
#   (a resumed block's runs before the restart lack the after one)
#   (PROBES=0: none; the analysis then shows the calibrations as they are)
# Finished runs are skipped, so a killed campaign resumes where it stopped (a block begun keeps its
# calibration).
# The strategies are frontier.yaml's rows as train flags (STRATEGY_FLAGS below; keep them in step).
# usage: benchmarks/frontier_accuracy.sh OUT [BUILD_DIR]
# environment: DATASETS (default amazon-computers), RATES (250mbit 1gbit), ROUNDS (3), EPOCHS (30;
#   the adaptive strategies run twice as many, so that widths are re-assigned after the 8-bit
#   first period: --assign-period 20), STRATEGIES (all of STRATEGY_FLAGS), CORUN (as
#   scripts/calibrate_this_machine.sh), PROBES (1; 0: no host-speed probes)
set -euo pipefail
out=${1:?usage: $0 OUT [BUILD_DIR]}
build=${2:-build}
here=$(cd "$(dirname "$0")" && pwd)
adaqp=$(cd "$build" && pwd)/adaqp
datasets=${DATASETS:-amazon-computers}
rates=${RATES:-250mbit 1gbit}
rounds=${ROUNDS:-3}
epochs=${EPOCHS:-30}
probes=${PROBES:-1}
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
if [ -z "${datasets// /}" ] || [ -z "${rates// /}" ]; then
  echo "$0: DATASETS and RATES must name at least one dataset and one rate" >&2
  exit 2
fi
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then
  echo "$0: ROUNDS must be a positive integer, got '$rounds'" >&2
  exit 2
fi
mkdir -p "$out/cal"
# Makes the next calibration OUT/cal/NN.yaml and prints NN.
calibrate() {
  local n
  n=$(printf '%02d' "$(find "$out/cal" -name '*.yaml' | wc -l)")
  echo "$(date +%H:%M:%S) calibrating: $out/cal/$n.yaml" >&2
  bash "$here/../scripts/calibrate_this_machine.sh" "$out/cal/$n.yaml.tmp" "$build" >"$out/cal/$n.log" 2>&1 ||
    { echo "$0: calibration failed: see $out/cal/$n.log" >&2; exit 1; }
  mv "$out/cal/$n.yaml.tmp" "$out/cal/$n.yaml"
  echo "$n"
}
# probe CALIBRATION FILE: times CALIBRATION's probe benchmarks now into FILE (log: FILE.log).
probe() {
  [ "$probes" = 1 ] || return 0
  "$adaqp" calibrate --probe-of "$1" --out "$2" >"$2.log" 2>&1 || { echo "$0: probe failed: see $2.log" >&2; exit 1; }
}
start=$(date +%s)
for round in $(seq 1 "$rounds"); do
  for d in $datasets; do
    block="$out/r$round/$d"
    mkdir -p "$block"
    todo=0
    for r in $rates; do
      for s in $strategies; do [ -s "$block/$r/$s.jsonl" ] || todo=1; done
    done
    if [ "$todo" -eq 0 ]; then continue; fi
    if [ ! -s "$block/calibration" ]; then
      n=$(calibrate)
      echo "$n" >"$block/calibration"
    fi
    previous=""  # the block's last run made by this invocation
    for r in $rates; do
      folder="$block/$r"
      mkdir -p "$folder"
      order=$strategies
      if [ $((round % 2)) -eq 0 ]; then order=$(echo "$strategies" | tr ' ' '\n' | tac | tr '\n' ' '); fi
      for s in $order; do
        file="$folder/$s.jsonl"
        if [ -s "$file" ]; then continue; fi
        n=$epochs
        case $s in *adaptive*) n=$((2 * epochs)) ;; esac
        echo "$(date +%H:%M:%S) round $round $d $r $s ($n epochs; elapsed $(($(date +%s) - start)) s)"
        probe "$out/cal/$(cat "$block/calibration").yaml" "${file%.jsonl}.probe-before.yaml"
        if [ -n "$previous" ] && [ "$probes" = 1 ]; then cp "${file%.jsonl}.probe-before.yaml" "$previous.probe-after.yaml"; fi
        # shellcheck disable=SC2086
        bash "$here/link_emulation.sh" "$r" 2 "$adaqp" train --dataset "$d" --model gcn --layers 3 --hidden 256 \
          --split random:0.6,0.2 --split-seed 0 --seed 0 --epochs "$n" --eval-every 5 --threads 1 --quiet \
          ${STRATEGY_FLAGS[$s]} --metrics "$file.tmp" --trace "${file%.jsonl}.trace.jsonl" >"${file%.jsonl}.out" 2>&1 ||
          { echo "$0: run failed: see ${file%.jsonl}.out" >&2; tail -3 "${file%.jsonl}.out" >&2; exit 1; }
        mv "$file.tmp" "$file"
        previous=${file%.jsonl}
      done
    done
    if [ -n "$previous" ]; then probe "$out/cal/$(cat "$block/calibration").yaml" "$previous.probe-after.yaml"; fi
  done
done
# The calibration after the last block (its runs' "after"), unless one was made since it began.
last=$(cat "$out"/r*/*/calibration | sort | tail -1)
if [ $((10#$last + 1)) -ge "$(find "$out/cal" -name '*.yaml' | wc -l)" ]; then calibrate >/dev/null; fi
echo "done in $(($(date +%s) - start)) s: python3 $here/frontier_accuracy.py --adaqp $adaqp $out"
