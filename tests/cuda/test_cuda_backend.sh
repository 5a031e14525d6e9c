#!/usr/bin/env bash
# The GPU backend against the CPU reference, end to end (ctest `cuda_backend`, label cuda):
# `adaqp train --backend cuda` and `--backend cpu` on the same settings, per-epoch records compared
# by tests/mpi/compare_records.py.
#  1. one rank: GCN on Cora (sparse first-layer features, transform-first) and GraphSAGE on an SBM
#     graph (dense features, aggregate-first first layer), 20 epochs with dropout;
#  2. two ranks sharing the one GPU, messages through pinned host memory and MPI: vanilla,
#     overlap, adaqp at 8 bits, fp16, stale pipelining with momentum, boundary sampling;
#  3. NCCL: one rank with --transport nccl; two ranks: on one GPU auto falls back to MPI and nccl
#     is refused with one line, on two or more GPUs nccl against the CPU.
# Tolerances (named): the GPU sums GEMM / SpMM / column sums in another order than the CPU
# (relative 1e-6 per operation, tests/cuda kernels) and Adam amplifies that over epochs, so
# FP32_RTOL = 1e-3 on the loss of every epoch; quantized messages round stochastically with the
# CPU's random stream, but an input that differs in its last bit may round to the neighbouring
# level, so QUANT_RTOL = 2e-2; test accuracy at best validation within ACC_TOL = 0.01 (the final
# accuracies of two runs of the same computation).
# Without a device the program says so and exits 77 (ctest: skipped); every other error fails.
set -u
adaqp=$1
here=$(cd "$(dirname "$0")" && pwd)
compare=$here/../mpi/compare_records.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
FP32_RTOL=1e-3
QUANT_RTOL=2e-2
ACC_TOL=0.01

if ! "$adaqp" train --dataset cora --epochs 1 --quiet --backend cuda >"$tmp/probe" 2>&1; then
  # Only a machine without a device skips; "not built into this program", an unusable device or
  # any other error is a failure.
  if grep -q -- "--backend cuda: no device" "$tmp/probe"; then
    echo "skipped: $(grep -- '--backend cuda: no device' "$tmp/probe" | head -1)"
    exit 77
  fi
  cat "$tmp/probe"
  exit 1
fi

pass=0
fail=0
check() {  # check NAME COMMAND...
  local name=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then
    pass=$((pass + 1))
    echo "ok: $name: $(tail -1 "$tmp/out")"
  else
    fail=$((fail + 1))
    echo "FAIL: $name"
    tail -5 "$tmp/out"
  fi
}
run() {  # run NP OUT ARGS...
  local np=$1 out=$2
  shift 2
  if [ "$np" -eq 1 ]; then
    "$adaqp" train "$@" --epochs 20 --quiet --threads 1 --metrics "$out"
  else
    timeout 300 mpirun --oversubscribe -np "$np" "$adaqp" train "$@" --epochs 20 --quiet --threads 1 --metrics "$out"
  fi
}
pair() {  # pair NAME NP RTOL ARGS...: the same run on both backends, compared
  local name=$1 np=$2 rtol=$3
  shift 3
  check "$name cpu" run "$np" "$tmp/$name.cpu.jsonl" "$@" --backend cpu
  check "$name cuda" run "$np" "$tmp/$name.cuda.jsonl" "$@" --backend cuda
  check "$name cuda = cpu" python3 "$compare" "$tmp/$name.cpu.jsonl" "$tmp/$name.cuda.jsonl" --rtol "$rtol" \
    --keys loss --final-acc-tol "$ACC_TOL"
}

cora="--dataset cora --model gcn --layers 2 --hidden 16 --dropout 0.5"
sbm="--dataset sbm:nodes=3000,classes=4,degree=12,seed=7,features=24 --model sage --layers 3 --hidden 32 --dropout 0.5"
pair cora-1 1 $FP32_RTOL $cora
pair sbm-1 1 $FP32_RTOL $sbm
pair cora-2-vanilla 2 $FP32_RTOL $cora --mode vanilla
pair sbm-2-overlap 2 $FP32_RTOL $sbm --mode overlap
pair cora-2-adaqp8 2 $QUANT_RTOL $cora --mode adaqp --bits 8
pair sbm-2-fp16 2 $QUANT_RTOL $sbm --mode quant --bits fp16
pair cora-2-stale 2 $FP32_RTOL $cora --mode vanilla --stale --stale-momentum 0.5
pair cora-2-bns 2 $FP32_RTOL $cora --mode vanilla --boundary-rate 0.5
# NCCL (engine/cuda/nccl.hpp): one rank exercises the communicator and its all-reduce; two ranks
# on one GPU must fall back (auto) or refuse (nccl) with one line, since NCCL needs a GPU per rank.
transport_of() { head -1 "$1" | python3 -c 'import json, sys; print(json.loads(sys.stdin.readline())["backend"]["transport"])'; }
check "cora-1 nccl" run 1 "$tmp/cora-1.nccl.jsonl" $cora --backend cuda --transport nccl
check "cora-1 nccl = cpu" python3 "$compare" "$tmp/cora-1.cpu.jsonl" "$tmp/cora-1.nccl.jsonl" --rtol "$FP32_RTOL" \
  --keys loss --final-acc-tol "$ACC_TOL"
check "cora-1 nccl in the run record" grep -q '"transport":"nccl ' "$tmp/cora-1.nccl.jsonl"
check "cora-2 auto picks mpi on one GPU" test "$(transport_of "$tmp/cora-2-vanilla.cuda.jsonl")" = \
  "mpi, staged through pinned host memory"
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
if [ "${gpus:-0}" -ge 2 ]; then
  pair cora-2-nccl-ref 2 $FP32_RTOL $cora --mode vanilla
  check "cora-2 nccl" run 2 "$tmp/cora-2.nccl.jsonl" $cora --mode vanilla --backend cuda --transport nccl
  check "cora-2 nccl = cpu" python3 "$compare" "$tmp/cora-2-nccl-ref.cpu.jsonl" "$tmp/cora-2.nccl.jsonl" \
    --rtol "$FP32_RTOL" --keys loss --final-acc-tol "$ACC_TOL"
else
  nccl_refused() {  # adaqp exits non-zero and says why in one line
    if timeout 300 mpirun --oversubscribe -np 2 "$adaqp" train $cora --epochs 1 --quiet --backend cuda \
      --transport nccl >"$tmp/refused.log" 2>&1; then
      echo "ran although two ranks share one GPU"
      return 1
    fi
    grep -q -- "--transport nccl: ranks 0 and 1 share one GPU" "$tmp/refused.log" || { cat "$tmp/refused.log"; return 1; }
  }
  check "cora-2 nccl refused on one GPU" nccl_refused
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
