#!/usr/bin/env bash
# How the costs grow with the graph (issue: scale out). For each graph size (nodes of the
# products-sim family: the same SBM shape, degree 51, 100 features, 47 classes, so directed edges
# grow with the nodes: 20,408 nodes ~ 1M edges ... 2,449,029 ~ 124M) and each P:
#   1. `adaqp partition --method metis-edges --out` (one process): load / partition / write s, peak;
#   2. P > 1 and PTSCOTCH=1: `mpirun -np P adaqp partition --method ptscotch --strategy PTS_STRATEGY
#      --out` (under a timeout; a run past it is recorded as such), then its folder is removed (disk);
#   3. `adaqp train --partitions` for vanilla and adaqp 4-bit (P = 1: vanilla), GCN 3 x HIDDEN, EPOCHS epochs (P > 1
#      over the emulated RATE link, benchmarks/link_emulation.sh; P = 1 one process): load_s, every
#      rank's peak, median epoch, bytes per epoch, arena_bytes;
#   4. `adaqp simulate --partitions` of the same point on PROFILE (and --link RATE): the prediction.
# Then benchmarks/scale_table.py OUT prints the table, the fitted exponents and draws the figure.
# A benchmark (hours at the largest size, up to ~20 GB), never run by CI. Points already measured
# (their files exist) are skipped, so a stopped campaign resumes.
# usage: benchmarks/scale.sh OUT [NODES...]   (default nodes: 20408 204082 1224515 2449029)
# env: PARTS ("1 2 4"), HIDDEN (64), EPOCHS (5: the median leaves out the first, warm-up epoch), RATE (250mbit), PTSCOTCH (1), PTS_TIMEOUT (1800 s),
#      PTS_STRATEGY (scalability: Scotch's default strategy does not finish products-sim past 10M edges),
#      ADAQP (build/adaqp), PROFILE (profiles/this-machine.yaml), MODES ("vanilla adaqp"),
#      TRAIN (1; 0: partition and simulate only, for a point that cannot run here: the table shows the
#      prediction and no measurement), KEEP_PARTS (0; 1: keep the METIS folders), KEEP_PTS (0; 1: keep
#      the PT-Scotch folders as parts-pts).
set -uo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 OUT [NODES...]" >&2
  exit 2
fi
out=$1
shift
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(20408 204082 1224515 2449029)
here=$(cd "$(dirname "$0")" && pwd)
adaqp=${ADAQP:-$here/../build/adaqp}
profile=${PROFILE:-$here/../profiles/this-machine.yaml}
parts_list=${PARTS:-1 2 4}
hidden=${HIDDEN:-64}
epochs=${EPOCHS:-5}
rate=${RATE:-250mbit}
modes=${MODES:-vanilla adaqp}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$out"
spec() { echo "sbm:nodes=$1,classes=47,degree=51,tail=2,intra=0.4,features=100,noise=10,seed=1"; }
bits_of() { [ "$1" = adaqp ] && echo 4 || echo 32; }
log() { echo "[$(date +%H:%M:%S)] $*"; }

for n in "${sizes[@]}"; do
  for P in $parts_list; do
    d="$out/n$n-p$P"
    mkdir -p "$d"
    echo "$(spec "$n")" >"$d/dataset"
    if [ ! -s "$d/partition.json" ]; then
      log "n=$n P=$P: partition (metis-edges)"
      "$adaqp" partition --dataset "$(spec "$n")" --parts "$P" --method metis-edges --out "$d/parts" --json \
        >"$d/partition.json.part" 2>"$d/partition.err" && mv "$d/partition.json.part" "$d/partition.json" ||
        { log "partition failed: $(tail -1 "$d/partition.err")"; continue; }
    fi
    if [ "$P" -gt 1 ] && [ "${PTSCOTCH:-1}" = 1 ] && [ ! -s "$d/ptscotch.json" ]; then
      log "n=$n P=$P: partition (PT-Scotch over $P processes)"
      start=$(date +%s%N)
      # Yielding ranks: more processes than cores otherwise spin against each other (a 20k-node graph
      # at P = 4 on 2 cores ran 6.5 minutes without finishing; P = 2 takes a second).
      timeout "${PTS_TIMEOUT:-1800}" mpirun --oversubscribe --mca mpi_yield_when_idle 1 -np "$P" "$adaqp" partition \
        --dataset "$(spec "$n")" \
        --parts "$P" --method ptscotch --strategy "${PTS_STRATEGY:-scalability}" --out "$d/parts-pts" --json >"$d/ptscotch.json.part" 2>"$d/ptscotch.err"
      rc=$?
      wall=$(((($(date +%s%N) - start) / 1000000)))
      if [ $rc -eq 0 ]; then
        mv "$d/ptscotch.json.part" "$d/ptscotch.json"
      else
        echo "{\"timed_out\": $([ $rc -eq 124 ] && echo true || echo false), \"rc\": $rc, \"wall_ms\": $wall}" \
          >"$d/ptscotch.json"
      fi
      [ "${KEEP_PTS:-0}" = 1 ] || rm -rf "$d/parts-pts"
    fi
    for mode in $modes; do
      [ "$P" -eq 1 ] && [ "$mode" != vanilla ] && continue  # one process sends nothing
      bits=$(bits_of "$mode")
      run=(train --partitions "$d/parts" --model gcn --layers 3 --hidden "$hidden" --epochs "$epochs"
        --eval-every "$epochs" --mode "$mode" --bits "$bits" --quiet)
      if [ "${TRAIN:-1}" = 1 ] && [ ! -s "$d/train-$mode.jsonl" ]; then
        log "n=$n P=$P: train $mode"
        if [ "$P" -eq 1 ]; then
          "$adaqp" "${run[@]}" --metrics "$d/train-$mode.jsonl" >"$d/train-$mode.log" 2>&1
        else
          bash "$here/link_emulation.sh" "$rate" "$P" "$adaqp" "${run[@]}" --metrics "$d/train-$mode.jsonl" \
            >"$d/train-$mode.log" 2>&1
        fi || log "train $mode failed: $(tail -1 "$d/train-$mode.log")"
      fi
      if [ ! -s "$d/sim-$mode.jsonl" ]; then
        link=(--link "$rate")
        [ "$P" -eq 1 ] && link=()
        "$adaqp" simulate --partitions "$d/parts" --parts "$P" --model gcn --layers 3 --hidden "$hidden" \
          --mode "$mode" --bits "$bits" --profile "$profile" "${link[@]}" --metrics "$d/sim-$mode.jsonl" \
          >"$d/sim-$mode.log" 2>&1 || log "simulate $mode failed: $(tail -1 "$d/sim-$mode.log")"
      fi
    done
  done
  # The largest folders are GBs: keep only what the table reads.
  [ "${KEEP_PARTS:-0}" = 1 ] || rm -rf "$out"/n"$n"-p*/parts
done
"${PYTHON:-/usr/bin/python3}" "$here/scale_table.py" "$out"
