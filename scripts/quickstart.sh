#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, trains a 2-layer GCN on Cora and
# prints its accuracy (records in results/quickstart/cora_gcn.jsonl).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/build.sh"
mkdir -p "$root/results/quickstart"
"$root/build/adaqp" train --dataset cora --model gcn --layers 2 --hidden 64 --epochs 200 --quiet \
  --metrics "$root/results/quickstart/cora_gcn.jsonl"
