#!/usr/bin/env bash
# CLI contract: one error line on stderr, exit 2, no half-written metrics; happy paths produce output.
set -u
adaqp=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
pass=0

expect_error() {  # expect_error FRAGMENT ARGS...
  local fragment=$1
  shift
  "$adaqp" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  local lines
  lines=$(wc -l <"$tmp/err")
  if [ "$rc" -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -q -- "$fragment" "$tmp/err"; then
    echo "FAIL: adaqp $* -> rc=$rc, stderr ($lines lines): $(cat "$tmp/err")"
    fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
}

expect_ok() {  # expect_ok FRAGMENT ARGS...
  local fragment=$1
  shift
  if ! "$adaqp" "$@" >"$tmp/out" 2>"$tmp/err" || ! grep -q -- "$fragment" "$tmp/out"; then
    echo "FAIL: adaqp $* -> $(tail -3 "$tmp/out" "$tmp/err")"
    fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
}

expect_error "no-such" train --dataset no-such --epochs 1
expect_error "unknown model" train --dataset cora --model gat --epochs 1
expect_error "--dropout" train --dataset cora --dropout 1.5 --epochs 1 --metrics "$tmp/m.jsonl"
[ -e "$tmp/m.jsonl" ] || [ -e "$tmp/m.jsonl.tmp" ] && { echo "FAIL: half-written metrics left"; fail=$((fail + 1)); }
expect_error "--transport sideways: must be auto, mpi or nccl" train --dataset cora --epochs 1 --transport sideways
expect_error "--transport nccl: the cpu backend talks MPI only" train --dataset cora --epochs 1 --transport nccl
expect_error "--out is required" export --dataset cora
expect_error "$tmp/no-dir/x.npz: cannot write" export --dataset cora --out "$tmp/no-dir/x.npz"
expect_ok "2708 nodes, 5278 undirected edges, 1433 features, 7 classes" export --dataset cora --out "$tmp/cora.npz"
expect_ok "test accuracy" train --dataset "$tmp/cora.npz" --epochs 2
# Split protocols (graph/split.hpp): bad specs are one line; a good one is recorded.
expect_error "--lr-schedule 'linear': allowed constant, cosine" train --dataset cora --epochs 1 --lr-schedule linear
expect_error "--split 'random:0.7,0.4': fractions sum to 1.1" train --dataset cora --epochs 1 --split random:0.7,0.4
expect_error "--assign-time 'soon': range, compute or a number of seconds" train --dataset cora --epochs 1 --mode adaqp --bits adaptive --assign-time soon
expect_error "unknown form 'halves'" train --dataset cora --epochs 1 --split halves
expect_error "class 0 has" train --dataset cora --epochs 1 --split classes:200,300
expect_error "no split masks" train --dataset amazon-photo --epochs 1 --split file
expect_error "split index 3" export --dataset cora --out "$tmp/c3.npz" --split file:3
expect_ok "split random:0.6,0.2 (seed 4) (1624/541/543)" train --dataset cora --epochs 1 --split random:0.6,0.2 --split-seed 4
"$adaqp" train --dataset tolokers --epochs 1 --quiet --split file:7 --metrics "$tmp/split.jsonl" >/dev/null 2>&1
if head -1 "$tmp/split.jsonl" | grep -q '"split":"file:7"' && head -1 "$tmp/split.jsonl" | grep -q '"split_seed":0'; then
  pass=$((pass + 1))
else
  echo "FAIL: the run record lacks the split: $(head -c 300 "$tmp/split.jsonl")"
  fail=$((fail + 1))
fi
# The run record says what ran the plans and how ranks talk (found at run time).
"$adaqp" train --dataset cora --epochs 1 --quiet --metrics "$tmp/run.jsonl" >/dev/null 2>&1
if head -1 "$tmp/run.jsonl" | grep -q '"backend":{"name":"cpu","transport":"none"}' &&
   head -1 "$tmp/run.jsonl" | grep -q '"transport":"auto"'; then
  pass=$((pass + 1))
else
  echo "FAIL: run record lacks backend / transport: $(head -c 300 "$tmp/run.jsonl")"
  fail=$((fail + 1))
fi
expect_error "unknown partition method" partition --dataset cora --parts 2 --method spectral
expect_error "more parts than nodes" partition --dataset sbm:nodes=10,classes=2,degree=2 --parts 11
expect_error "unknown key 'size'" train --dataset sbm:size=10 --epochs 1
expect_error "mode 'vanilla' exchanges fp32" train --dataset cora --bits 8 --epochs 1
# Peer strategies: combinations that do not make sense, and values out of range.
expect_error "--stale with --mode adaqp" train --dataset cora --stale --mode adaqp --epochs 1 --metrics "$tmp/m.jsonl"
expect_error "--boundary-rate 1.5" train --dataset cora --boundary-rate 1.5 --epochs 1
expect_error "--stale with --boundary-rate" train --dataset cora --stale --boundary-rate 0.5 --epochs 1
expect_error "--stale-momentum needs --stale" train --dataset cora --stale-momentum 0.5 --epochs 1
expect_error "with --bits adaptive" train --dataset cora --mode quant --bits adaptive --boundary-rate 0.5 --epochs 1
expect_error "--bits 'bf17'" train --dataset cora --mode quant --bits bf17 --epochs 1
expect_error "--stale with --mode overlap" simulate --dataset cora --parts 2 --stale --mode overlap --profile profiles/this-machine.yaml
expect_error "--bits '3'" train --dataset cora --mode quant --bits 3 --epochs 1
expect_error "unknown mode" train --dataset cora --mode fast --epochs 1
expect_error "--link-model 'fast'" train --dataset cora --mode adaqp --bits adaptive --link-model fast --epochs 1
expect_ok "cora" datasets
expect_ok "8-bit exchanges" plan --dataset cora --parts 2 --mode adaqp --bits 8
expect_ok "edge cut" partition --dataset cora --parts 3
expect_ok '"comm_volume_rows"' partition --dataset cora --parts 2 --json
expect_ok "test accuracy" train --dataset cora --epochs 3 --metrics "$tmp/ok.jsonl"
[ "$(wc -l <"$tmp/ok.jsonl")" -eq 5 ] && pass=$((pass + 1)) || { echo "FAIL: expected 5 records"; fail=$((fail + 1)); }

# Simulator and calibration: a quick calibration makes a usable profile; bad values are named.
expect_ok "profile written" calibrate --quick --out "$tmp/p.yaml"
expect_ok "predicted ms" simulate --dataset cora --parts 1 --profile "$tmp/p.yaml" --mode adaqp --bits 4 \
  --metrics "$tmp/sim.jsonl"
grep -q '"predicted_epoch_s"' "$tmp/sim.jsonl" && pass=$((pass + 1)) || { echo "FAIL: no predicted_epoch_s"; fail=$((fail + 1)); }
expect_ok "events simulated" simulate --shape nodes=100000,edges=2000000 --parts 8 --profile profiles/v100-2x4-25gbit.yaml \
  --topology nodes=2x4
expect_error "no-such.yaml" simulate --dataset cora --profile "$tmp/no-such.yaml"
expect_error "--topology 'ring'" simulate --dataset cora --parts 2 --profile "$tmp/p.yaml" --topology ring
expect_error "--link 'fast'" simulate --dataset cora --parts 2 --profile "$tmp/p.yaml" --link fast
# --like takes a run's records: a missing file, a line that is not JSON, records without a run record
expect_error "$tmp/no-run.jsonl: cannot open the records (--like)" simulate --like "$tmp/no-run.jsonl" --profile "$tmp/p.yaml"
echo '{"type": "epoch", "epoch": 1}' >"$tmp/no-run.jsonl"
expect_error "$tmp/no-run.jsonl: no run record (--like takes" simulate --like "$tmp/no-run.jsonl" --profile "$tmp/p.yaml"
echo 'not json' >>"$tmp/no-run.jsonl"
expect_error "$tmp/no-run.jsonl: line 2 is not JSON (--like takes" simulate --like "$tmp/no-run.jsonl" --profile "$tmp/p.yaml"
"$adaqp" train --dataset cora --layers 2 --hidden 16 --epochs 2 --metrics "$tmp/like.jsonl" --quiet >/dev/null 2>&1
sed 's/"hidden":16/"hidden":"wide"/' "$tmp/like.jsonl" >"$tmp/like-bad.jsonl"
expect_error "$tmp/like-bad.jsonl: setting 'hidden' (\"wide\")" simulate --like "$tmp/like-bad.jsonl" --profile "$tmp/p.yaml"
# Every setting a run records has a simulate option or is one a prediction does not depend on: a
# fresh record is taken whole, an unknown setting is an error, and so is comparing against a profile
# for other threads (predicting the run elsewhere is not).
expect_ok "predicted ms" simulate --like "$tmp/like.jsonl" --profile "$tmp/p.yaml"
sed 's/"hidden":16/"hidden":16,"frobnicate":1/' "$tmp/like.jsonl" >"$tmp/like-bad.jsonl"
expect_error "$tmp/like-bad.jsonl: setting 'frobnicate' (1): simulate has no option" simulate --like \
  "$tmp/like-bad.jsonl" --profile "$tmp/p.yaml"
sed 's/"threads":0/"threads":2/' "$tmp/like.jsonl" >"$tmp/like-bad.jsonl"
expect_error "$tmp/like-bad.jsonl: the run used 2 thread(s) per rank; profile $tmp/p.yaml is calibrated for 1" \
  simulate --like "$tmp/like-bad.jsonl" --compare "$tmp/like-bad.jsonl" --profile "$tmp/p.yaml"
expect_ok "predicted ms" simulate --like "$tmp/like-bad.jsonl" --profile "$tmp/p.yaml"  # elsewhere: no compare
expect_error "no link class 'inter'" simulate --dataset cora --parts 2 --profile "$tmp/p.yaml"
expect_error "give them with --width-mix" simulate --dataset cora --parts 2 --profile "$tmp/p.yaml" --mode adaqp --bits adaptive
expect_error "--width-mix goes with --bits adaptive" simulate --dataset cora --parts 2 --profile "$tmp/p.yaml" --mode adaqp \
  --bits 4 --width-mix 2:1
expect_error "--width-mix '2:0.5,3:0.5': item '3:0.5' is not a quantized width" simulate --dataset cora --parts 2 \
  --profile "$tmp/p.yaml" --mode adaqp --bits adaptive --width-mix 2:0.5,3:0.5
expect_error "--width-mix '$tmp/none.jsonl': no such records file" simulate --dataset cora --parts 2 \
  --profile "$tmp/p.yaml" --mode adaqp --bits adaptive --width-mix "$tmp/none.jsonl"
expect_error "$tmp/sim.jsonl: no epoch record with an assignment" simulate --dataset cora --parts 2 \
  --profile "$tmp/p.yaml" --mode adaqp --bits adaptive --width-mix "$tmp/sim.jsonl"
expect_error "unknown key 'colour'" simulate --shape nodes=10,edges=20,colour=1 --parts 2 --profile profiles/v100-2x4-25gbit.yaml
expect_error "--links-only" calibrate --out "$tmp/q.yaml" --links-only
# Co-running partner processes (--corun): the partners run every benchmark's call while it is
# timed (they report their calls), the profile records the count; bad counts and specs are named.
expect_ok "co-run: 1 partner process(es) made" calibrate --quick --corun 2 --out "$tmp/c.yaml"
calls=$(sed -n 's/.*co-run: 1 partner process(es) made \([0-9]*\) calls.*/\1/p' "$tmp/out")
grep -q '^corun: 2$' "$tmp/c.yaml" && [ "${calls:-0}" -gt 0 ] && pass=$((pass + 1)) ||
  { echo "FAIL: co-run profile or partner calls (${calls:-none})"; fail=$((fail + 1)); }
pgrep -f -- "--corun-partner" >/dev/null && { echo "FAIL: a co-run partner outlived calibrate"; fail=$((fail + 1)); }
# Host-speed probe (calibrate --probe-of, simulate --probe): the profile's probe benchmarks timed
# again; a probe whose every time is twice the profile's doubles a one-rank (compute only) epoch.
expect_ok "probe written to" calibrate --probe-of "$tmp/c.yaml" --out "$tmp/probe.yaml"
grep -q '^corun: 2$' "$tmp/probe.yaml" && grep -q 'calib/spmm/' "$tmp/probe.yaml" && pass=$((pass + 1)) ||
  { echo "FAIL: probe file: $(head -c 300 "$tmp/probe.yaml")"; fail=$((fail + 1)); }
expect_ok "host-speed probe $tmp/probe.yaml: " simulate --dataset cora --parts 1 --profile "$tmp/c.yaml" \
  --probe "$tmp/probe.yaml"
awk '/^probe:/{p=1; print "version: 1"; next} p && /^  /{sub(/^  /,""); if ($1 ~ /^calib\//) print "  " $1 " " $2 * 2; else print; next} p{p=0}' \
  "$tmp/c.yaml" >"$tmp/slow.yaml"
epoch_of() { "$adaqp" simulate --dataset cora --parts 1 --profile "$tmp/c.yaml" "$@" | awk '$1 == "epoch_s" {print $2}'; }
plain=$(epoch_of)
slow=$(epoch_of --probe "$tmp/slow.yaml")
awk -v a="${plain:-0}" -v b="${slow:-0}" 'BEGIN {exit !(a > 0 && b > 1.99 * a && b < 2.01 * a)}' && pass=$((pass + 1)) ||
  { echo "FAIL: a probe twice as slow gave epoch ${slow:-none} ms against ${plain:-none} ms"; fail=$((fail + 1)); }
expect_error "has no probe benchmarks" calibrate --probe-of profiles/v100-2x4-25gbit.yaml --out "$tmp/q.yaml"
expect_error "corun 2; the profile's on the quick grid, 1 thread(s), corun 1" simulate --dataset cora --parts 1 \
  --profile "$tmp/p.yaml" --probe "$tmp/probe.yaml"
[ -e "$tmp/q.yaml" ] && { echo "FAIL: a probe was written from a profile without probe benchmarks"; fail=$((fail + 1)); }
expect_error "--corun 999 with --threads 1: needs 999 cores" calibrate --out "$tmp/q.yaml" --corun 999
expect_error "--corun 0: must be >= 1" calibrate --out "$tmp/q.yaml" --corun 0
expect_error "--corun-partner 'x': expected FD,SLOT" calibrate --out - --corun-partner x
expect_error "calibrate --backend tpu: allowed cpu, cuda" calibrate --out "$tmp/q.yaml" --backend tpu
# GPU calibration: without a device (or without the CUDA backend) one line says why, no profile.
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  expect_error "calibration backend 'cuda': " calibrate --quick --out "$tmp/gpu.yaml" --backend cuda
  [ -e "$tmp/gpu.yaml" ] && { echo "FAIL: a profile was written without a device"; fail=$((fail + 1)); }
fi
printf 'version: 1\nmachine: m\nbackend: cpu\ndate: d\nsource: s\nthreads: 1\npost_s: 0\nspeed: 3\n' >"$tmp/bad.yaml"
expect_error "unknown key 'speed'" simulate --dataset cora --profile "$tmp/bad.yaml"

# Sweep manifests: one clear line for a bad one.
printf 'name: t\ndataset: cora\ncolour: red\n' >"$tmp/bad-manifest.yaml"
expect_error "unknown key 'colour'" sweep "$tmp/bad-manifest.yaml" --dry-run
printf 'name: t\ndataset: [cora, no-such]\n' >"$tmp/bad-manifest.yaml"
expect_error "value 'no-such'" sweep "$tmp/bad-manifest.yaml" --dry-run
printf 'name: t\ndataset: cora\nseed: []\n' >"$tmp/bad-manifest.yaml"
expect_error "key 'seed': empty list" sweep "$tmp/bad-manifest.yaml" --dry-run
printf 'name: t\ndataset: cora\nepochs: many\n' >"$tmp/bad-manifest.yaml"
expect_error "key 'epochs': value 'many'" sweep "$tmp/bad-manifest.yaml" --dry-run
expect_ok "72 points" sweep experiments/paper/modes-gcn.yaml --dry-run

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
