#!/usr/bin/env bash
# Checkpoints survive faults: a 2-rank run killed with SIGKILL mid-way and resumed with --resume gives
# exactly the per-epoch losses, accuracies and bytes of an uninterrupted run (vanilla; adaptive widths,
# whose assignment and link costs are restored; stale pipelining with smoothing, whose stores are, and
# a cosine learning rate, which follows the restored step).
# A checkpoint of another configuration, rank count or a corrupt file is refused with one line.
#   tests/mpi/test_checkpoint.sh ADAQP
set -uo pipefail
adaqp=$1
tmp=$(mktemp -d)
trap 'pkill -9 -f "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok: $1"; }
bad() { fail=$((fail + 1)); echo "FAIL: $1"; [ -f "$tmp/out" ] && tail -5 "$tmp/out"; }

base=(--dataset amazon-computers --layers 3 --hidden 128 --epochs 24 --threads 1 --eval-every 2 --quiet)
cases=(
  "vanilla:--mode vanilla"
  "adaptive:--mode adaqp --bits adaptive --assign-period 4 --link-model 50:0.25"
  "stale:--mode vanilla --stale --stale-momentum 0.5 --lr-schedule cosine"
)
for c in "${cases[@]}"; do
  name=${c%%:*} flags=${c#*:}
  # shellcheck disable=SC2086
  if ! timeout 300 mpirun --oversubscribe -np 2 "$adaqp" train "${base[@]}" $flags --metrics "$tmp/$name.full.jsonl" \
    >"$tmp/out" 2>&1; then
    bad "$name: uninterrupted run"
    continue
  fi
  ck=$tmp/$name.ck
  # shellcheck disable=SC2086
  mpirun --oversubscribe -np 2 "$adaqp" train "${base[@]}" $flags --checkpoint "$ck" --checkpoint-every 3 \
    --metrics "$tmp/$name.killed.jsonl" >"$tmp/out" 2>&1 &
  launcher=$!
  killed_at=""
  for _ in $(seq 1 600); do  # until a checkpoint of epoch >= 9 is complete, then SIGKILL every process
    if [ -f "$ck/latest" ] && [ "$(sed 's/epoch-0*//' "$ck/latest")" -ge 9 ] 2>/dev/null; then
      killed_at=$(cat "$ck/latest")
      pkill -9 -f "$ck"
      kill -9 "$launcher" 2>/dev/null
      break
    fi
    sleep 0.05
  done
  wait "$launcher" 2>/dev/null
  if [ -z "$killed_at" ] || [ -f "$tmp/$name.killed.jsonl" ]; then
    bad "$name: the run was not killed mid-way (latest: ${killed_at:-none})"
    continue
  fi
  # shellcheck disable=SC2086
  if ! timeout 300 mpirun --oversubscribe -np 2 "$adaqp" train "${base[@]}" $flags --checkpoint "$ck" \
    --checkpoint-every 3 --resume --metrics "$tmp/$name.resumed.jsonl" >"$tmp/out" 2>&1; then
    bad "$name: resume"
    continue
  fi
  if python3 - "$tmp/$name.full.jsonl" "$tmp/$name.resumed.jsonl" >"$tmp/out" 2>&1 <<'PY'; then
import json, sys
def epochs(path):
    return [r for r in map(json.loads, open(path)) if r["type"] == "epoch"]
a, b = epochs(sys.argv[1]), epochs(sys.argv[2])
assert len(a) == len(b) == 24, (len(a), len(b))
for x, y in zip(a, b):
    for k in ("epoch", "loss", "train_acc", "val_acc", "test_acc", "bytes_sent", "bytes_meta"):
        assert x[k] == y[k], (x["epoch"], k, x[k], y[k])
print("identical")
PY
    ok "$name: killed after $killed_at, resumed: 24 epochs identical to the uninterrupted run"
  else
    bad "$name: resumed run differs"
  fi
done

# Refusals: another configuration, another rank count, a corrupt file.
expect_refusal() {  # NAME PATTERN COMMAND...
  local name=$1 pattern=$2
  shift 2
  if timeout 60 "$@" >"$tmp/out" 2>&1; then
    bad "$name: accepted"
  elif grep -q -- "$pattern" "$tmp/out"; then
    ok "$name"
  else
    bad "$name: no '$pattern'"
    grep "adaqp: " "$tmp/out" | head -3
  fi
}
ck=$tmp/vanilla.ck
expect_refusal "other configuration refused" "written by another run or configuration ('lr': 0.01 there, 0.02 here)" \
  mpirun --oversubscribe -np 2 "$adaqp" train "${base[@]}" --lr 0.02 --checkpoint "$ck" --resume
expect_refusal "other rank count refused" "written by a run of 2 ranks, this one has 1" \
  "$adaqp" train "${base[@]}" --checkpoint "$ck" --resume
# Flip every bit of one byte in the middle of each rank's file (every rank then refuses its own, so
# the line does not depend on which rank's abort reaches the terminal first).
for f in "$ck/$(cat "$ck/latest")"/rank-*.ckpt; do
  python3 -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 0xFF; open(p, "wb").write(b)' "$f"
done
expect_refusal "corrupt checkpoint refused" ".ckpt: corrupt (CRC mismatch)" \
  mpirun --oversubscribe -np 2 "$adaqp" train "${base[@]}" --checkpoint "$ck" --resume
expect_refusal "--resume without a checkpoint refused" "no checkpoint" \
  "$adaqp" train "${base[@]}" --checkpoint "$tmp/none" --resume
# A checkpoint file that cannot be written (its temporary's name taken by a folder): one line
# naming the option and the file, no half-written checkpoint left as the latest.
mkdir -p "$tmp/blocked.ck/epoch-00000003/rank-0.ckpt.tmp"
expect_refusal "unwritable checkpoint refused" "--checkpoint: $tmp/blocked.ck/epoch-00000003/rank-0.ckpt: cannot write" \
  "$adaqp" train "${base[@]}" --checkpoint "$tmp/blocked.ck" --checkpoint-every 3
if [ -e "$tmp/blocked.ck/latest" ]; then bad "unwritable checkpoint: 'latest' written"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
