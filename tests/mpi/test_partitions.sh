#!/usr/bin/env bash
# Partition folders under real mpirun (ctest label `mpi`):
#  1. round trip: training from `--partitions DIR` gives exactly (rtol 0) the per-epoch losses and
#     accuracies of training from `--dataset` with the same partition: P = 2 and 3, GCN on Cora
#     (sparse features, its own split) and GraphSAGE on an SBM graph (random split), vanilla and
#     4-bit adaqp; `simulate --partitions` predicts what `simulate --dataset` predicts;
#  2. partitioning over MPI (R = 2, 3 processes): the single-host folder member by member for the
#     same owners; PT-Scotch's folder trains; Scotch strategy flags and strings, bad ones refused;
#  3. bad folders (wrong P, missing part, truncated part, another graph's part): one line on every
#     rank, exit non-zero, within 30 s; `partition --out` never overwrites a folder.
set -u
adaqp=$1
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
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
train() {  # train NP OUT ARGS...
  local np=$1 out=$2
  shift 2
  timeout 300 mpirun --oversubscribe -np "$np" "$adaqp" train "$@" --epochs 15 --quiet --threads 1 --metrics "$out"
}

declare -A data model
data[cora]="--dataset cora"
model[cora]="--model gcn --layers 2 --hidden 16 --dropout 0.5"
data[sbm]="--dataset sbm:nodes=3000,classes=4,degree=12,seed=7,features=24 --split random:0.6,0.2 --split-seed 5"
model[sbm]="--model sage --layers 3 --hidden 32 --dropout 0.5"
for d in cora sbm; do
  for P in 2 3; do
    dir="$tmp/$d.$P"
    check "$d P=$P partition --out" "$adaqp" partition ${data[$d]} --parts "$P" --out "$dir"
    for strategy in "--mode vanilla" "--mode adaqp --bits 4"; do
      tag="$d.$P.${strategy// /}"
      check "$tag from --dataset" train "$P" "$tmp/$tag.d.jsonl" ${data[$d]} ${model[$d]} $strategy
      check "$tag from --partitions" train "$P" "$tmp/$tag.p.jsonl" --partitions "$dir" ${model[$d]} $strategy
      check "$tag exact round trip" python3 "$here/compare_records.py" --rtol 0 \
        --keys loss,train_acc,val_acc,test_acc,bytes_sent "$tmp/$tag.d.jsonl" "$tmp/$tag.p.jsonl"
    done
  done
done
check "run record names the folder and its edge imbalance" python3 - "$tmp/sbm.2.--modevanilla.p.jsonl" "$tmp/sbm.2" <<'PY'
import json, sys
run = [json.loads(l) for l in open(sys.argv[1])][0]
meta = json.load(open(sys.argv[2] + "/meta.json"))
p = run["partition"]
assert run["settings"]["partitions"] == sys.argv[2] and p["folder"] == sys.argv[2], p
assert p["id"] == meta["id"] and abs(p["edge_imbalance"] - meta["stats"]["edge_imbalance"]) < 1e-12, (p, meta["stats"])
assert run["settings"]["split"] == "random:0.6,0.2" and run["settings"]["split_seed"] == 5, run["settings"]
summary = [json.loads(l) for l in open(sys.argv[1])][-1]
assert summary["peak_rss_bytes"] > 10**7 and summary["load_s"] > 0 and summary["partition_s"] == 0, summary
print(f"ok: id {p['id']}, edge imbalance {p['edge_imbalance']:.3f}, peak {summary['peak_rss_bytes'] / 1e6:.0f} MB")
PY
sim() {  # the predicted lines of simulate
  "$adaqp" simulate "$@" --parts 2 --profile "$repo/profiles/this-machine.yaml" --link 1gbit --mode adaqp --bits 4 |
    grep -E "^(epoch_s|compute_s|comm_s|bytes)" | sed 's/ simulated in [0-9.]* s//'  # drop the simulator's own wall time
}
sim --dataset cora >"$tmp/sim.d" 2>&1
sim --partitions "$tmp/cora.2" >"$tmp/sim.p" 2>&1
check "simulate --partitions predicts as --dataset" bash -c "grep -q '^epoch_s' '$tmp/sim.d' && grep -q '^bytes' '$tmp/sim.d' &&
  diff '$tmp/sim.d' '$tmp/sim.p' && echo same predictions: \$(head -1 '$tmp/sim.d')"

# Partitioning over MPI: R processes, each holding a block of the graph (generated block by block
# for sbm, read by slices from npz files: layout A (cora) and B (amazon-computers), deflated), write exactly the single-host folder for the same
# owners (the seeded random method; only the id differs); PT-Scotch's folder trains, and cuts far
# fewer edges than random.
same_parts() {  # same_parts DIR_A DIR_B P: every member of every part equal but the id
  python3 - "$@" <<'PY'
import json, sys, zipfile
a, b, parts = sys.argv[1], sys.argv[2], int(sys.argv[3])
for p in range(parts):
    za, zb = zipfile.ZipFile(f"{a}/part-{p}.npz"), zipfile.ZipFile(f"{b}/part-{p}.npz")
    names = sorted(za.namelist())
    assert names == sorted(zb.namelist()), (names, zb.namelist())
    for n in names:
        if n != "partition_id.npy":
            assert za.read(n) == zb.read(n), f"part {p}: member {n} differs"
ma, mb = json.load(open(f"{a}/meta.json")), json.load(open(f"{b}/meta.json"))
assert [k for k in ma if ma[k] != mb[k]] == ["id"], [k for k in ma if ma[k] != mb[k]]
print(f"ok: {parts} parts equal member by member ({len(names)} members each)")
PY
}
S="sbm:nodes=3000,classes=4,degree=12,seed=7,features=24,tail=2"
for RP in "2 3" "3 2"; do
  set -- $RP
  R=$1 P=$2
  check "random, $P parts: one process" "$adaqp" partition --dataset "$S" --parts "$P" --method random --seed 4 \
    --split random:0.6,0.2 --split-seed 5 --out "$tmp/single.$R.$P"
  check "random, $P parts: $R processes" mpirun --oversubscribe -np "$R" "$adaqp" partition --dataset "$S" --parts "$P" \
    --method random --seed 4 --split random:0.6,0.2 --split-seed 5 --out "$tmp/dist.$R.$P"
  check "random, $P parts: $R processes write the single-host folder" same_parts "$tmp/single.$R.$P" "$tmp/dist.$R.$P" "$P"
done
for R in 2 3; do
  check "cora (edge slices of the file) over $R processes" mpirun --oversubscribe -np $R "$adaqp" partition \
    --dataset cora --parts 2 --method random --out "$tmp/cora.dist.$R"
done
check "cora one process, random" "$adaqp" partition --dataset cora --parts 2 --method random --out "$tmp/cora.single"
check "cora over 2 processes writes the single-host folder" same_parts "$tmp/cora.single" "$tmp/cora.dist.2" 2
check "cora over 3 processes writes the single-host folder" same_parts "$tmp/cora.single" "$tmp/cora.dist.3" 2
check "amazon-computers (row slices of the CSR file) over 2 processes" mpirun --oversubscribe -np 2 "$adaqp" \
  partition --dataset amazon-computers --parts 3 --method random --split random:0.6,0.2 --out "$tmp/comp.dist"
check "amazon-computers one process, random" "$adaqp" partition --dataset amazon-computers --parts 3 \
  --method random --split random:0.6,0.2 --out "$tmp/comp.single"
check "amazon-computers over 2 processes writes the single-host folder" same_parts "$tmp/comp.single" "$tmp/comp.dist" 3
check "ptscotch over 2 processes" mpirun --oversubscribe -np 2 "$adaqp" partition --dataset "$S" --parts 2 \
  --method ptscotch --split random:0.6,0.2 --split-seed 5 --out "$tmp/pts"
check "ptscotch cuts far fewer edges than random" python3 - "$tmp/pts/meta.json" "$tmp/dist.3.2/meta.json" <<'PY'
import json, sys
pts, rnd = (json.load(open(p))["stats"] for p in sys.argv[1:])
assert pts["edge_cut"] < 0.6 * rnd["edge_cut"] and pts["node_imbalance"] <= 1.05, (pts, rnd)
print(f"ok: cut {pts['edge_cut']} (random {rnd['edge_cut']}), imbalance nodes {pts['node_imbalance']:.3f}")
PY
check "ptscotch folder trains" train 2 "$tmp/pts.jsonl" --partitions "$tmp/pts" --model gcn --layers 2 --hidden 16
check "ptscotch with Scotch's flags balance,scalability" mpirun --oversubscribe -np 2 "$adaqp" partition --dataset "$S" \
  --parts 2 --method ptscotch --strategy balance,scalability --out "$tmp/pts-scal"
check "ptscotch balance,scalability: cut and exact balance" python3 - "$tmp/pts-scal/meta.json" "$tmp/dist.3.2/meta.json" <<'PY'
import json, sys
pts, rnd = (json.load(open(p))["stats"] for p in sys.argv[1:])
assert pts["edge_cut"] < 0.6 * rnd["edge_cut"] and pts["node_imbalance"] <= 1.001, (pts, rnd)
print(f"ok: cut {pts['edge_cut']} (random {rnd['edge_cut']}), imbalance nodes {pts['node_imbalance']:.4f}")
PY
bad_strategy() {  # STRATEGY PATTERN: partitioning refuses it, the line once per process, no folder
  ! mpirun --oversubscribe -np 2 "$adaqp" partition --dataset "$S" --parts 2 --method ptscotch --strategy "$1" \
    --out "$tmp/pts-bad" >"$tmp/bad-strategy.out" 2>&1 &&
    [ "$(grep -c -e "adaqp: error: process 0: $2" "$tmp/bad-strategy.out")" -eq 2 ] && [ ! -e "$tmp/pts-bad" ] &&
    ! ls -d "$tmp"/pts-bad.tmp-* 2>/dev/null && head -1 "$tmp/bad-strategy.out"
}
check "an unknown Scotch flag: one line naming it, nothing written" bad_strategy speed,fast \
  "--strategy 'speed,fast': 'fast' is not a PT-Scotch strategy flag"
check "a strategy string Scotch warns about: its message, nothing written" bad_strategy "r{sep=m{vert=100,asc=b{bnd=d}}}" \
  "--strategy 'r{sep=m{vert=100,asc=b{bnd=d}}}': Scotch rejected the strategy string (stratParserParse: strategy parameter"
check "a strategy string that leaves a part empty" bad_strategy "r{sep=z}" "ptscotch: part 1 of 2 is empty"

expect_every_rank() {  # NAME NP PATTERN ARGS...: exit non-zero within 30 s, the line once per rank
  local name=$1 np=$2 pattern=$3
  shift 3
  local t0 rc lines
  t0=$(date +%s)
  timeout 60 mpirun --oversubscribe -np "$np" "$adaqp" train "$@" --epochs 2 --quiet >"$tmp/bad.out" 2>&1
  rc=$?
  lines=$(grep -c -- "adaqp: error: .*$pattern" "$tmp/bad.out")
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$lines" -eq "$np" ] && [ $(($(date +%s) - t0)) -lt 30 ]; then
    pass=$((pass + 1))
    echo "ok: $name: $(grep -m1 "adaqp: error" "$tmp/bad.out") (x$lines, rc $rc)"
  else
    fail=$((fail + 1))
    echo "FAIL: $name: rc=$rc, $lines of $np ranks printed the line"
    tail -5 "$tmp/bad.out"
  fi
}
expect_every_rank "folder of 2 parts on 3 ranks" 3 "partitioned into 2 parts, but 3 rank(s) run" --partitions "$tmp/cora.2"
cp -r "$tmp/cora.2" "$tmp/missing" && rm "$tmp/missing/part-1.npz"
expect_every_rank "missing part" 2 "rank 1: .*missing/part-1.npz: part 1 is missing" --partitions "$tmp/missing"
cp -r "$tmp/cora.2" "$tmp/truncated" && truncate -s 100000 "$tmp/truncated/part-0.npz"
expect_every_rank "truncated part" 2 "rank 0: .*truncated/part-0.npz: .*truncated" --partitions "$tmp/truncated"
"$adaqp" partition --dataset citeseer --parts 2 --out "$tmp/citeseer.2" >/dev/null
cp -r "$tmp/cora.2" "$tmp/foreign" && cp "$tmp/citeseer.2/part-0.npz" "$tmp/foreign/part-0.npz"
expect_every_rank "another graph's part" 2 "foreign/part-0.npz: belongs to another partitioning" --partitions "$tmp/foreign"
before=$(cat "$tmp/cora.2/meta.json" | md5sum)
check "partition --out refuses an existing folder" bash -c "! '$adaqp' partition --dataset cora --parts 2 --out '$tmp/cora.2' 2>&1 |
  grep 'exists; remove it' && exit 1; [ \"\$(md5sum < '$tmp/cora.2/meta.json')\" = '$before' ] && echo untouched"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
