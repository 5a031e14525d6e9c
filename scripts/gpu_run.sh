#!/usr/bin/env bash
# On the GPU machine: unpacks gpu-bundle.tar.xz (scripts/gpu_bundle.sh, carried) once, then runs
# COMMAND with the bundle's programs on PATH (adaqp, adaqp_cuda_tests, bench_cuda, mpirun),
# its libraries, CUDA's libraries (toolkit, else the Python wheels under site-packages/nvidia),
# Open MPI relocated to the bundle and the repository's datasets. (Checked on the CPU machine with
# the system Open MPI and libraries hidden in a mount namespace; PMIx still prints a harmless
# "help-pcompress.txt: No such file" notice: its help-file path is not relocated.)
# usage: scripts/gpu_run.sh COMMAND [ARGS...]
#   e.g. scripts/gpu_run.sh adaqp_cuda_tests
#        scripts/gpu_run.sh bash tests/cuda/test_cuda_backend.sh gpu-bundle/bin/adaqp
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
b=$root/gpu-bundle
[ -d "$b" ] || tar -C "$root" -xJf "$root/gpu-bundle.tar.xz"
cuda=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [ -d "$d" ] && cuda="$cuda:$d"; done
wheels=$(python3 -c 'import glob, site; print(":".join(d for p in site.getsitepackages() for d in sorted(glob.glob(p + "/nvidia/*/lib"))))' 2>/dev/null || true)
export LD_LIBRARY_PATH="$b/lib:$b/usr/lib/x86_64-linux-gnu/openmpi/lib$cuda${wheels:+:$wheels}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$b/bin:$b/usr/bin:$PATH"
export OPAL_PREFIX="$b/usr" PMIX_PREFIX="$b/usr/lib/x86_64-linux-gnu/pmix2" ADAQP_DATA_DIR="$root/datasets"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
exec "$@"
