#!/usr/bin/env bash
# The unit, cli and MPI tests under AddressSanitizer + UndefinedBehaviorSanitizer: configures
# build-asan/ (once; CUDA off, -O1 -g1), builds, runs ctest -L "unit|cli|mpi" there. Any
# sanitizer report fails the test that printed it. LeakSanitizer reports from Open MPI's own
# allocations at exit are suppressed by library (tests/sanitizer/lsan.supp); leak detection stays on.
# Extra arguments go to ctest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
out=$root/build-asan
if [ ! -f "$out/CMakeCache.txt" ]; then
  # -O1 -g1: line numbers in reports, half the compile time of -O2 -g (this build runs in CI).
  cmake -S "$root" -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DADAQP_SANITIZE=ON -DADAQP_CUDA=OFF
fi
cmake --build "$out" -j"$(nproc)" --target adaqp adaqp_unit_tests adaqp_mpi_peer_tests
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0:fast_unwind_on_malloc=0
export LSAN_OPTIONS=suppressions=$root/tests/sanitizer/lsan.supp:print_suppressions=0:fast_unwind_on_malloc=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd "$out"
ctest --output-on-failure -L "unit|cli|mpi" "$@"
