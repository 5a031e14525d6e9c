#!/usr/bin/env bash
# adaqp's CUDA backend against plain PyTorch (benchmarks/torch_gcn.py) on one GPU: full-graph GCN,
# 3 layers x 256, dropout 0.5, Adam lr 0.01, on the same graphs (each exported once with
# `adaqp export`, then read by both). Prints a table of median epoch times (training step only;
# docs/metrics.md), then where adaqp's epoch goes (per task kind, device ms per epoch from its
# --trace, OUT/NAME.trace.jsonl), and writes every record under OUT.
#
# usage: benchmarks/torch_compare.sh OUT [DATASET...]
#   default datasets: coauthor-physics (largest shipped by nodes and features), tolokers (largest
#   shipped by edges) and a 1M-node SBM with 24M undirected (48M directed) edges.
#   ADAQP: the adaqp binary (default: adaqp on PATH, else build/adaqp); PYTHON: an interpreter
#   with torch (default python3); EPOCHS (50) timed after WARMUP (5).
set -euo pipefail
out=${1:?usage: $0 OUT [DATASET...]}
shift
datasets=("$@")
[ ${#datasets[@]} -gt 0 ] || datasets=(coauthor-physics tolokers "sbm:nodes=1000000,classes=16,degree=48,seed=1")
adaqp=${ADAQP:-$(command -v adaqp || echo build/adaqp)}
python=${PYTHON:-python3}
# PyTorch finds its own CUDA libraries; libraries put on the path for adaqp (scripts/gpu_run.sh)
# must not replace the ones its interpreter was built with.
py() { env -u LD_LIBRARY_PATH "$python" "$@"; }
epochs=${EPOCHS:-50}
warmup=${WARMUP:-5}
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$adaqp" ] || { echo "torch_compare.sh: error: adaqp binary not found ($adaqp): set ADAQP" >&2; exit 2; }
py -c "import torch, numpy" 2>/dev/null || { echo "torch_compare.sh: error: $python has no torch or numpy" >&2; exit 2; }
mkdir -p "$out"
for spec in "${datasets[@]}"; do
  name=$(printf '%s' "$spec" | tr -c 'A-Za-z0-9_.-' '_')
  npz="$out/$name.npz"
  echo "== $spec"
  [ -s "$npz" ] || "$adaqp" export --dataset "$spec" --out "$npz"
  "$adaqp" train --backend cuda --dataset "$npz" --model gcn --layers 3 --hidden 256 --dropout 0.5 --lr 0.01 \
    --weight-decay 0 --epochs $((epochs + warmup)) --eval-every $((epochs + warmup)) --quiet \
    --metrics "$out/$name.adaqp.jsonl" --trace "$out/$name.trace.jsonl"
  py "$here/torch_gcn.py" "$npz" --epochs "$epochs" --warmup "$warmup" >"$out/$name.torch.json"
  py "$here/torch_gcn.py" "$npz" --epochs "$epochs" --warmup "$warmup" --sparse-features \
    >"$out/$name.torch-sparse.json"
done
py - "$out" "${datasets[@]}" <<'EOF'
import json, re, sys
out, specs = sys.argv[1], sys.argv[2:]
print("| dataset | nodes | directed edges | features | adaqp cuda ms | pytorch ms (dense X) | pytorch ms (CSR X) | speedup vs faster pytorch |")
print("|---|---|---|---|---|---|---|---|")
for spec in specs:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", spec)
    recs = [json.loads(l) for l in open(f"{out}/{name}.adaqp.jsonl")]
    run = next(r for r in recs if r["type"] == "run")
    summ = next(r for r in recs if r["type"] == "summary")
    dense = json.load(open(f"{out}/{name}.torch.json"))
    sparse = json.load(open(f"{out}/{name}.torch-sparse.json"))
    a = summ["median_epoch_s"] * 1e3
    best = min(dense["median_epoch_s"], sparse["median_epoch_s"]) * 1e3
    print(f"| {spec} | {dense['nodes']} | {dense['directed_edges']} | {dense['features']} | {a:.2f} | "
          f"{dense['median_epoch_s']*1e3:.2f} | {sparse['median_epoch_s']*1e3:.2f} | {best / a:.2f}x |")
print()
print("adaqp cuda, device ms per epoch by task kind (--trace means):")
kinds = {}
for spec in specs:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", spec)
    for line in open(f"{out}/{name}.trace.jsonl"):
        t = json.loads(line)
        if t.get("type") == "task":
            kinds.setdefault(t["kind"], {})[spec] = kinds.get(t["kind"], {}).get(spec, 0.0) + t["mean_s"] * 1e3
print("| kind | " + " | ".join(specs) + " |")
print("|---|" + "---|" * len(specs))
for kind in sorted(kinds, key=lambda k: -sum(kinds[k].values())):
    print(f"| {kind} | " + " | ".join(f"{kinds[kind].get(s, 0.0):.2f}" for s in specs) + " |")
EOF
