#!/usr/bin/env bash
# Configures (once) and builds adaqp into build/ (Release). Extra arguments go to cmake configure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
if [ ! -f "$root/build/CMakeCache.txt" ] || [ $# -gt 0 ]; then
  cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release "$@"
fi
cmake --build "$root/build" -j"$(nproc)"
