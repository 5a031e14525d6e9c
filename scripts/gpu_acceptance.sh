#!/usr/bin/env bash
# The GPU checks of the CUDA backend in one call on the GPU machine (device time is scarce: one
# prepared run, every step under its own time limit, about 9 minutes at most in all). Build the
# bundle here first (`scripts/gpu_bundle.sh build`), carry gpu-bundle.tar.xz, then run
#   scripts/gpu_acceptance.sh "$OUT" [STEP...]
# (default steps: cuda_tests bench_cuda cuda_backend torch_compare, 540 s of limits; a device call
# runs 600 s at most, so give `calibrate` its own call or in place of another step).
# Steps (each logged to OUT/STEP.log; OUT/summary.txt has one line per step with its exit status
# and seconds):
#   nvidia-smi       the device, driver and clocks
#   cuda_tests       every kernel and codec against the CPU reference (adaqp_cuda_tests)
#   bench_cuda       codec, SpMM and GEMM GB/s against the measured device copy bandwidth (bench_cuda,
#                    JSON in OUT/bench_cuda.json)
#   cuda_backend     `--backend cuda` against `--backend cpu`: 1 rank, and 2 ranks sharing the GPU
#                    through MPI staging (tests/cuda/test_cuda_backend.sh)
#   torch_compare    epoch time against plain PyTorch on the same graphs
#                    (benchmarks/torch_compare.sh, records in OUT/torch)
#   calibrate        `adaqp calibrate --backend cuda --quick`: the GPU profile for the simulator
#                    (OUT/gpu-profile.yaml)
# A step that fails does not stop the next one (a failed cuda_tests makes the later steps pin
# cuSPARSE for SpMM, ADAQP_CUDA_SPMM=cusparse, and says so in the summary).
set -u
out=${1:?usage: $0 OUT [STEP...]}
shift
steps=${*:-cuda_tests bench_cuda cuda_backend torch_compare}
for s in $steps; do
  case $s in
    cuda_tests | bench_cuda | cuda_backend | torch_compare | calibrate) ;;
    *) echo "gpu_acceptance: unknown step '$s' (cuda_tests, bench_cuda, cuda_backend, torch_compare, calibrate)" >&2; exit 2 ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
: >"$out/summary.txt"
step() {
  local name=$1 limit=$2
  shift 2
  case " $steps " in *" $name "*) ;; *) return 0 ;; esac
  local t0=$SECONDS
  timeout "$limit" "$root/scripts/gpu_run.sh" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc after $((SECONDS - t0)) s (limit $limit s)" | tee -a "$out/summary.txt"
  tail -5 "$out/$name.log"
  return $rc
}
cd "$root"
nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || echo "nvidia-smi failed" >>"$out/summary.txt"
# The row-group SpMM is the newest kernel: when the kernel tests fail, the later steps pin
# cuSPARSE (ADAQP_CUDA_SPMM) so that they still measure something trustworthy.
if ! step cuda_tests 75 adaqp_cuda_tests && [ -z "${ADAQP_CUDA_SPMM:-}" ]; then
  case " $steps " in *" cuda_tests "*)
    export ADAQP_CUDA_SPMM=cusparse
    echo "cuda_tests failed: the later steps run with ADAQP_CUDA_SPMM=cusparse" | tee -a "$out/summary.txt" ;;
  esac
fi
step bench_cuda 75 bench_cuda --benchmark_min_time=0.05 --benchmark_out="$out/bench_cuda.json" \
  --benchmark_out_format=json
step cuda_backend 150 bash tests/cuda/test_cuda_backend.sh gpu-bundle/bin/adaqp
step torch_compare 240 bash benchmarks/torch_compare.sh "$out/torch"
step calibrate 120 adaqp calibrate --backend cuda --quick --out "$out/gpu-profile.yaml" --machine "$(
  nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || echo gpu)"
cat "$out/summary.txt"
