#!/usr/bin/env bash
# Sweeps: a tiny manifest runs end to end (engine and simulator), a sweep killed mid-way resumes
# and ends with every point exactly once, and a second manifest cannot reuse the folder.
set -u
adaqp=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() {  # check MESSAGE CONDITION...
  local msg=$1
  shift
  if "$@"; then :; else echo "FAIL: $msg"; fail=$((fail + 1)); fi
}
cat >"$tmp/tiny.yaml" <<'YAML'
name: tiny
executor: both
dataset: cora
mode: [vanilla, adaqp]
bits: [32, 4]
exclude:
  - {mode: adaqp, bits: 32}
seed: [0, 1, 2]
epochs: 4
parts: 2
threads: 1
YAML
# 6 points (vanilla-32 and adaqp-4, 3 seeds), engine + simulator each: 12 runs.
"$adaqp" sweep "$tmp/tiny.yaml" --dry-run >"$tmp/dry" 2>&1
check "dry run lists 12 runs" grep -q "6 points, 12 runs" "$tmp/dry"
check "dry run writes nothing" test ! -e results/tiny -a ! -e "$tmp/out"
# The split axes reach the engine's command: --split as given, --split-seed following the seed.
cat >"$tmp/split.yaml" <<'YAML'
name: split
dataset: cora
split: random:0.6,0.2
split_seed: seed
seed: [0, 3]
epochs: 2
YAML
"$adaqp" sweep "$tmp/split.yaml" --dry-run >"$tmp/dry-split" 2>&1
check "split axis in the command" grep -q -- "--split 'random:0.6,0.2' --split-seed '3'" "$tmp/dry-split"
check "split seed 0 stays implicit" test "$(grep -c -- '--split-seed' "$tmp/dry-split")" -eq 1
check "plain points keep their commands" test "$(grep -c -- '--split' "$tmp/dry")" -eq 0
sed 's/^name: .*/name: lr/' "$tmp/split.yaml" >"$tmp/lr.yaml"
echo "lr_schedule: [constant, cosine]" >>"$tmp/lr.yaml"
"$adaqp" sweep "$tmp/lr.yaml" --dry-run >"$tmp/dry-lr" 2>&1
check "lr_schedule cosine in its points' commands only" test "$(grep -c -- "--lr-schedule 'cosine'" "$tmp/dry-lr")" -eq 2
check "constant lr_schedule stays implicit" test "$(grep -c -- '--lr-schedule' "$tmp/dry-lr")" -eq 2

# Kill the sweep once its third run is published, then resume.
"$adaqp" sweep "$tmp/tiny.yaml" --out "$tmp/out" >"$tmp/first" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  n=$(ls "$tmp/out/runs" 2>/dev/null | grep -c '\.jsonl$')
  [ "$n" -ge 3 ] && break
  sleep 0.1
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pkill -9 -f "$tmp/out/runs" 2>/dev/null
before=$(ls "$tmp/out/runs" | grep -c '\.jsonl$')
check "killed mid-way ($before of 12 finished)" test "$before" -ge 3 -a "$before" -lt 12
"$adaqp" sweep "$tmp/tiny.yaml" --out "$tmp/out" >"$tmp/again" 2>&1
check "resuming needs --resume" grep -q "pass --resume" "$tmp/again"
"$adaqp" sweep "$tmp/tiny.yaml" --out "$tmp/out" --resume --jobs 2 >"$tmp/resume" 2>&1
check "resume exits 0" test $? -eq 0
check "resume skipped the finished runs" grep -q "$before already finished" "$tmp/resume"
after=$(ls "$tmp/out/runs" | grep -c '\.jsonl$')
check "every run exactly once ($after files)" test "$after" -eq 12
rows=$(($(wc -l <"$tmp/out/results.csv") - 1))
check "results.csv has 12 rows ($rows)" test "$rows" -eq 12
ids=$(tail -n +2 "$tmp/out/results.csv" | cut -d, -f1,2 | sort | uniq -d | wc -l)
check "no duplicate rows" test "$ids" -eq 0
check "no partial files left" test -z "$(ls "$tmp/out/runs" | grep -v '\.jsonl$')"
check "engine rows carry accuracy" grep -q ",engine,.*,0\.[0-9]" "$tmp/out/results.csv"
check "simulator rows carry predictions" grep -q "simulator" "$tmp/out/results.csv"
check "provenance" grep -q '"manifest_hash"' "$tmp/out/sweep.json"
check "per-epoch progress lines" grep -q "epoch    4" "$tmp/resume" "$tmp/first"

# The report: figures and one HTML page.
"$adaqp" report "$tmp/out" >"$tmp/report" 2>&1
check "report exits 0" test $? -eq 0
for fig in throughput curves breakdown predicted bytes; do
  check "report has figure $fig" grep -q "<img id=\"$fig\"" "$tmp/out/report/index.html"
  check "report wrote $fig.png" test -s "$tmp/out/report/$fig.png"
done
# Paired differences to vanilla (experiments/paired.hpp): 3 seeds of adaqp-4 against vanilla.
check "paired.csv pairs adaqp-4 with vanilla over 3 seeds" grep -q "adaqp-4,vanilla,test_acc_at_best_val,3," "$tmp/out/paired.csv"
check "paired.csv has the tail measure" grep -q "adaqp-4,vanilla,tail_test_acc,3," "$tmp/out/paired.csv"
check "report has the paired figure" grep -q '<img id="paired"' "$tmp/out/report/index.html"
check "report has the paired table" grep -q "Paired differences to vanilla" "$tmp/out/report/index.html"
check "report has the time-to-accuracy table" grep -q "<h2>Time to accuracy</h2>" "$tmp/out/report/index.html"
check "run records carry the binary's hash" grep -q '"binary_fnv1a":"[0-9a-f]\{16\}"' "$tmp/out/runs/"*.engine.jsonl
check "one binary: no warning" test "$(grep -c "different adaqp binaries" "$tmp/out/report/index.html")" -eq 0
one=$(ls "$tmp/out/runs/"*.engine.jsonl | head -1)
sed -i 's/"binary_fnv1a":"[0-9a-f]*"/"binary_fnv1a":"00000000deadbeef"/' "$one"
"$adaqp" report "$tmp/out" >/dev/null 2>&1
check "a rebuilt binary mid-sweep is flagged" grep -q "different adaqp binaries" "$tmp/out/report/index.html"
"$adaqp" report "$tmp" >"$tmp/report-bad" 2>&1
check "report of a non-results folder fails clearly" grep -q "not a sweep results folder" "$tmp/report-bad"

# Adaptive widths: the assign_time axis reaches the engine (range, the default, stays implicit), the
# report shows the widths chosen per link, and the simulator prices each adaptive point with the
# widths its engine run chose (--width-mix RECORDS).
cat >"$tmp/adaptive.yaml" <<'YAML'
name: tiny-adaptive
executor: both
dataset: cora
mode: [vanilla, adaqp]
bits: [32, adaptive]
assign_time: [range, compute]
exclude:
  - {mode: adaqp, bits: 32}
  - {mode: vanilla, assign_time: compute}
link_model: "50:0.25"
assign_period: 2
epochs: 4
parts: 2
threads: 1
YAML
"$adaqp" sweep "$tmp/adaptive.yaml" --dry-run >"$tmp/adaptive.dry" 2>&1
check "assign_time compute reaches the engine" \
  test "$(grep -c -- " train .*--assign-time' 'compute'" "$tmp/adaptive.dry")" -eq 1
check "assign_time range stays implicit" test "$(grep -c -- " train .*--assign-time" "$tmp/adaptive.dry")" -eq 1
check "adaptive points simulated with their engine run's widths" \
  test "$(grep -c -- "simulate.*--width-mix '[^']*adaqp-adaptive[^']*\.engine\.jsonl'" "$tmp/adaptive.dry")" -eq 2
"$adaqp" sweep "$tmp/adaptive.yaml" --out "$tmp/adaptive" >"$tmp/adaptive.out" 2>&1
check "adaptive sweep exits 0" test $? -eq 0
check "adaptive points have predictions" test "$(grep -c "adaqp-adaptive.*,simulator," "$tmp/adaptive/results.csv")" -eq 2
"$adaqp" report "$tmp/adaptive" >"$tmp/adaptive.report" 2>&1
check "report has the widths per link" grep -q "<h2>Adaptive widths per link</h2>" "$tmp/adaptive/report/index.html"
check "both assigners are rows" grep -q "<td>adaqp-adaptive (assign_period 2, assign_time compute)</td>" "$tmp/adaptive/report/index.html"
check "paired.csv names the assigner's time" grep -q "time compute" "$tmp/adaptive/paired.csv"

# Peer strategies: a small peers sweep (vanilla, stale pipelining, boundary sampling, bf16) gets the
# strategies figure and table, with one row per strategy.
cat >"$tmp/peers.yaml" <<'YAML'
name: tiny-peers
executor: both
dataset: cora
mode: [vanilla, quant]
bits: [32, bf16]
stale: [false, true]
boundary_rate: [1, 0.5]
exclude:
  - {mode: quant, bits: "32"}
  - {mode: quant, stale: "true"}
  - {mode: quant, boundary_rate: "0.5"}
epochs: 3
parts: 2
threads: 1
YAML
"$adaqp" sweep "$tmp/peers.yaml" --out "$tmp/peers" >"$tmp/peers.out" 2>&1
check "peers sweep exits 0" test $? -eq 0
"$adaqp" report "$tmp/peers" >"$tmp/peers.report" 2>&1
check "peers report has the strategies figure" grep -q '<img id="strategies"' "$tmp/peers/report/index.html"
for s in vanilla pipegcn bns-0.5 quant-bf16; do
  check "strategies table row $s" grep -q "<td>$s</td>" "$tmp/peers/report/index.html"
done
check "strategy column in results.csv" grep -q ",pipegcn," "$tmp/peers/results.csv"
# Time to accuracy compares each strategy with vanilla of its own context: the strategy axes
# (experiments/paired.hpp, handed to report.py by adaqp report) must not split them apart.
check "time to accuracy: pipegcn and bns-0.5 in vanilla's context" python3 -c '
import sys
page = open(sys.argv[1]).read()
section = page.split("<h2>Time to accuracy</h2>")[-1].split("<h2>")[0]  # the table
assert all(f"<td>{s}</td>" in section for s in ("vanilla", "pipegcn", "bns-0.5")), section[:2000]' \
  "$tmp/peers/report/index.html"
# A manifest that only adds points (stale smoothing) resumes the folder and runs just those.
sed 's/^stale: \[false, true\]$/stale: [false, true]\nstale_momentum: [0, 0.5]/; s/^exclude:$/exclude:\n  - {stale: "false", stale_momentum: "0.5"}/' \
  "$tmp/peers.yaml" >"$tmp/peers-more.yaml"
"$adaqp" sweep "$tmp/peers-more.yaml" --out "$tmp/peers" --resume >"$tmp/peers-more.out" 2>&1
check "an extended manifest resumes" grep -q "2 runs finished now, 8 already finished, 0 failed" "$tmp/peers-more.out"
check "sweep.json says what it extends" grep -q '"extends"' "$tmp/peers/sweep.json"
check "the new strategy is in results.csv" grep -q ",pipegcn-m0.5," "$tmp/peers/results.csv"
"$adaqp" sweep "$tmp/peers-more.yaml" --out "$tmp/peers" >"$tmp/peers-more2.out" 2>&1
check "without --resume it is refused" grep -q "already holds this sweep" "$tmp/peers-more2.out"

# Another manifest cannot write into this folder.
sed 's/epochs: 4/epochs: 5/' "$tmp/tiny.yaml" >"$tmp/other.yaml"
"$adaqp" sweep "$tmp/other.yaml" --out "$tmp/out" --resume >"$tmp/other" 2>&1
check "another manifest is refused" grep -q "another manifest" "$tmp/other"

# The scale benchmark end to end at two tiny sizes of the products-sim family, one process (no
# link, no PT-Scotch): partition, train, simulate, then `adaqp report` draws cost against size
# and fits exponents from both sizes.
here=$(cd "$(dirname "$0")" && pwd)
PARTS=1 EPOCHS=2 ADAQP="$adaqp" bash "$here/../../benchmarks/scale.sh" "$tmp/scale" 1000 3000 >"$tmp/scale.out" 2>&1
"$adaqp" report "$tmp/scale" >"$tmp/scale.report" 2>&1
check "scale: a row per size" test "$(grep -c '^| [0-9,]* | 1 |' "$tmp/scale/scale.md")" -eq 2
check "scale: exponents from two sizes" grep -q "vanilla epoch s | [-0-9.]* (n = 2)" "$tmp/scale/scale.md"
check "scale: adaqp report writes the page" grep -q "report: 1 figure" "$tmp/scale.report"
check "scale: the page has the figure" grep -q 'img id="scale"' "$tmp/scale/report/index.html"
"$adaqp" report "$tmp/scale/n1000-p1" >"$tmp/neither" 2>&1
check "report refuses a folder that is neither, with one line" test $? -ne 0 -a "$(grep -c 'nor a' "$tmp/neither")" -eq 1

[ "$fail" -eq 0 ] && echo "sweep tests passed"
[ "$fail" -eq 0 ]
