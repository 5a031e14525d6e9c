#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test (ctest labels format,
# unit, cli, sweep, mpi, accuracy; cuda where a GPU is), then the unit, cli and MPI tests again under
# ASan + UBSan (scripts/sanitize.sh; ADAQP_SANITIZE_TESTS=0 skips that part). Extra arguments go to
# the first ctest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/build.sh"
(cd "$root/build" && ctest --output-on-failure -j"$(nproc)" "$@")
if [ "${ADAQP_SANITIZE_TESTS:-1}" != 0 ]; then
  bash "$root/scripts/sanitize.sh"
fi
