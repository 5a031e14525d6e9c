#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, runs experiments/quickstart.yaml
# (two datasets, vanilla vs AdaQP, 2 MPI ranks over an emulated 1 Gbit/s link, engine and
# simulator) and writes its report. Without permission for link emulation it runs
# experiments/quickstart-nolink.yaml (plain mpirun) and says so.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/build.sh"
cd "$root"
manifest=experiments/quickstart.yaml
if ! unshare -n true 2>/dev/null || ! command -v tc >/dev/null 2>&1; then
  echo "quickstart: link emulation is not permitted here (needs root or CAP_NET_ADMIN and tc): running $manifest without it"
  manifest=experiments/quickstart-nolink.yaml
fi
name=$(sed -n 's/^name: //p' "$manifest")
out=results/$name
resume=()
[ -f "$out/sweep.json" ] && resume=(--resume)
build/adaqp sweep "$manifest" --out "$out" "${resume[@]}"
build/adaqp report "$out"
echo "quickstart: results in $out/results.csv, report in $out/report/index.html"
