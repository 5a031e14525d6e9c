#!/usr/bin/env bash
# Calibrates the profile of this machine in one go (the simulator's predictions are only as good
# as it is: on this kind of VM the memory-bound kernels were measured 2x slower on one day than
# on another, so recalibrate before comparing predictions with runs):
#   compute cost classes (1 thread per rank, CORUN processes at once: default one per core, as
#   the runs here put a rank on every core, where they share its caches and memory bandwidth); the
#   link between 2 ranks over shared memory (`inter`); TCP over loopback (`lo`) and the emulated
#   links (`lo-RATE`) of benchmarks/link_emulation.sh; the emulated cluster of
#   benchmarks/cluster_emulation.sh 2 2 1gbit (`nodes2x2-1gbit`).
# Emulated classes are skipped, with a line, where no network namespace can be made.
# usage: scripts/calibrate_this_machine.sh [PROFILE] [BUILD_DIR]   (default profiles/this-machine.yaml, build)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
profile=${1:-$here/profiles/this-machine.yaml}
adaqp=${2:-$here/build}/adaqp
if [ ! -x "$adaqp" ]; then
  echo "$0: $adaqp not found (build first: scripts/build.sh)" >&2
  exit 2
fi
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
"$adaqp" calibrate --out "$profile" --threads 1 --corun "${CORUN:-$(nproc)}"
mpirun -np 2 "$adaqp" calibrate --out "$profile" --links-only --link-class inter
emulated() {  # emulated LAUNCHER... : run calibrate --links-only under it, or say why not
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -eq 77 ]; then
    echo "skipped (no network namespace here): ${*: -1}"
  elif [ "$rc" -ne 0 ]; then
    exit "$rc"
  fi
}
emulated bash "$here/benchmarks/link_emulation.sh" none 2 "$adaqp" calibrate --out "$profile" --links-only --link-class lo
for rate in 100mbit 250mbit 1gbit 10gbit; do
  emulated bash "$here/benchmarks/link_emulation.sh" "$rate" 2 "$adaqp" calibrate --out "$profile" --links-only \
    --link-class "lo-$rate"
done
emulated bash "$here/benchmarks/cluster_emulation.sh" 2 2 1gbit "$adaqp" calibrate --out "$profile" --links-only \
  --link-class nodes2x2-1gbit
echo "calibrated: $profile"
