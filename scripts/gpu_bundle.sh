#!/usr/bin/env bash
# Packs what the GPU machine lacks into one file to carry there (device tool: carry
# gpu-bundle.tar.xz). The machine has the CUDA driver, toolkit and Python wheels but no Debian
# packages. The bundle holds this build's GPU programs (adaqp, the cuda tests, bench_cuda),
# every shared library they need except the C runtime and CUDA's own, and Open MPI's runtime
# (mpirun, orted, plugins, help files), relocated there with OPAL_PREFIX. On the device,
# scripts/gpu_run.sh COMMAND... unpacks it once and runs COMMAND with its paths.
# usage: scripts/gpu_bundle.sh [BUILD_DIR]   (writes gpu-bundle.tar.xz at the repository root)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
out=$root/gpu-bundle
tarball=$root/gpu-bundle.tar.xz
for f in "$build/adaqp" "$build/tests/adaqp_cuda_tests" "$build/bench_cuda"; do
  [ -x "$f" ] || { echo "gpu_bundle: $f missing: build with the CUDA toolkit first (scripts/build.sh)" >&2; exit 1; }
done
rm -rf "$out" "$tarball.tmp"
mkdir -p "$out/bin" "$out/lib" "$out/usr/bin" "$out/usr/lib/x86_64-linux-gnu" "$out/usr/share"
cp "$build/adaqp" "$build/tests/adaqp_cuda_tests" "$build/bench_cuda" "$out/bin/"
mpi=$(readlink -f "$(command -v orterun)")
cp "$mpi" "$(command -v orted)" "$out/usr/bin/"
ln -s "$(basename "$mpi")" "$out/usr/bin/mpirun"
for d in openmpi pmix2; do cp -rL "/usr/lib/x86_64-linux-gnu/$d" "$out/usr/lib/x86_64-linux-gnu/"; done
for d in openmpi pmix; do [ -d "/usr/share/$d" ] && cp -r "/usr/share/$d" "$out/usr/share/"; done
rm -rf "$out/usr/lib/x86_64-linux-gnu/openmpi/include" "$out/usr/lib/x86_64-linux-gnu/pmix2/include"
# Libraries: every dependency of the programs and plugins, less the C runtime (the device's
# own, newer) and CUDA's libraries (the device's toolkit and wheels match its driver).
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libpthread|libdl\.|librt\.|libcuda|libcudart|libcublas|libcusparse|libnvJitLink|libnccl)'
find "$out/bin" "$out/usr/bin" "$out/usr/lib" -type f \( -perm -u+x -o -name '*.so*' \) | while read -r elf; do
  ldd "$elf" 2>/dev/null | awk '$3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  if [[ $name =~ $skip ]]; then continue; fi
  [ -e "$out/lib/$name" ] || cp -L "$path" "$out/lib/$name"
done
tar -C "$root" -cJf "$tarball.tmp" gpu-bundle
mv "$tarball.tmp" "$tarball"
echo "gpu_bundle: $tarball ($(du -h "$tarball" | cut -f1); unpacked $(du -sh "$out" | cut -f1)): carry it, then run scripts/gpu_run.sh COMMAND"
