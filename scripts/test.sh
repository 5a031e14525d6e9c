#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test (unit, cli, accuracy).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/build.sh"
cd "$root/build"
ctest --output-on-failure -j"$(nproc)" "$@"
