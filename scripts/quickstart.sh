#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, trains a 2-layer GCN on Cora with
# 2 MPI ranks (overlap strategy) and prints its accuracy (records in results/quickstart/).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/build.sh"
mkdir -p "$root/results/quickstart"
if [ "$(id -u)" -eq 0 ]; then  # Open MPI refuses root unless told it is intended
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
mpirun -np 2 "$root/build/adaqp" train --dataset cora --model gcn --layers 2 --hidden 64 --epochs 200 \
  --mode overlap --quiet --metrics "$root/results/quickstart/cora_gcn_2ranks.jsonl"
