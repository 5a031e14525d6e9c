#!/usr/bin/env python3
"""Full-graph GCN training in plain PyTorch on one GPU: the baseline adaqp's CUDA backend is
compared with (benchmarks/torch_compare.sh). It trains the model adaqp trains, on the graph adaqp
trains on (an .npz written by `adaqp export`, layout A):

  operator  A_hat = D^-1/2 (A + I) D^-1/2 with D the degree without the self-loop (adaqp's GCN
            normalisation), a CSR tensor; products through torch.sparse.mm (cuSPARSE), the
            backward product through torch.sparse.mm with the transposed operator;
  layer     dropout on the input, then A_hat (X W) when out <= in (transform first), else
            (A_hat X) W; bias; ReLU except after the last layer (adaqp's order);
  loss      softmax cross-entropy, mean over the training nodes; Adam.

One epoch = forward, backward and optimizer step (no evaluation), timed with CUDA events around
the whole step; `median_epoch_s` is the median over the timed epochs after `--warmup` untimed
ones, the definition of adaqp's median_epoch_s (docs/metrics.md). Prints one JSON object.

usage: torch_gcn.py FILE.npz [--layers 3] [--hidden 256] [--epochs 50] [--warmup 5]
                    [--dropout 0.5] [--lr 0.01] [--weight-decay 0] [--sparse-features] [--seed 0]
"""
import argparse
import json
import statistics
import sys
import time

import numpy as np


def load(path):
    z = np.load(path)
    for m in ("node_features", "node_labels", "edges", "train_masks"):
        if m not in z.files:
            sys.exit(f"torch_gcn.py: error: {path}: member '{m}' missing (write the file with `adaqp export`)")
    x = z["node_features"].astype(np.float32, copy=False)
    labels = z["node_labels"].astype(np.int64)
    edges = z["edges"].astype(np.int64)
    train = z["train_masks"][0].astype(bool)
    return x, labels, edges, train


def gcn_operator(edges, n):
    """CSR arrays (crow, col, val) of D^-1/2 (A + I) D^-1/2, rows sorted by column."""
    src = np.concatenate([edges[:, 0], edges[:, 1]])
    dst = np.concatenate([edges[:, 1], edges[:, 0]])
    deg = np.bincount(src, minlength=n).astype(np.float64)
    loops = np.arange(n, dtype=np.int64)
    rows = np.concatenate([dst, loops])
    cols = np.concatenate([src, loops])
    val = 1.0 / np.sqrt((deg[rows] + 1.0) * (deg[cols] + 1.0))
    order = np.lexsort((cols, rows))
    rows, cols, val = rows[order], cols[order], val[order]
    crow = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=crow[1:])
    return crow, cols, val.astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("npz")
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--sparse-features", action="store_true",
                    help="first layer multiplies CSR features (torch.sparse.mm) instead of dense ones")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.epochs < 1 or a.warmup < 0 or a.layers < 1:
        sys.exit("torch_gcn.py: error: --epochs and --layers must be >= 1, --warmup >= 0")
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        sys.exit("torch_gcn.py: error: PyTorch is not installed for " + sys.executable)
    if not torch.cuda.is_available():
        sys.exit("torch_gcn.py: error: torch sees no CUDA device")
    torch.manual_seed(a.seed)
    dev = torch.device("cuda")

    t_load = time.perf_counter()
    x_np, labels_np, edges_np, train_np = load(a.npz)
    n, f = x_np.shape
    classes = int(labels_np.max()) + 1
    crow, col, val = gcn_operator(edges_np, n)
    A = torch.sparse_csr_tensor(torch.from_numpy(crow), torch.from_numpy(col), torch.from_numpy(val),
                                size=(n, n)).to(dev)
    # The operator is symmetric; the transpose is kept separately all the same (general code).
    At = A.to_sparse_coo().t().coalesce().to_sparse_csr()

    class SpMM(torch.autograd.Function):
        @staticmethod
        def forward(ctx, dense):
            return torch.sparse.mm(A, dense)

        @staticmethod
        def backward(ctx, grad):
            return torch.sparse.mm(At, grad)

    x = torch.from_numpy(x_np).to(dev)
    if a.sparse_features:
        # CSR of X and of X^T; perm[k] = position in X's values of the k-th value of X^T, so one
        # dropout of X's values serves both products.
        r, c = np.nonzero(x_np)  # row-major: CSR order
        perm_np = np.lexsort((r, c))
        x_crow = torch.from_numpy(np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n))])).to(dev)
        xt_crow = torch.from_numpy(np.concatenate([[0], np.cumsum(np.bincount(c, minlength=f))])).to(dev)
        x_col = torch.from_numpy(c.astype(np.int64)).to(dev)
        xt_col = torch.from_numpy(r[perm_np].astype(np.int64)).to(dev)
        x_val = torch.from_numpy(x_np[r, c]).to(dev)
        perm = torch.from_numpy(perm_np).to(dev)
        del x
    labels = torch.from_numpy(labels_np).to(dev)
    train = torch.from_numpy(np.nonzero(train_np)[0]).to(dev)  # indices: no host sync per epoch
    dims = [f] + [a.hidden] * (a.layers - 1) + [classes]
    weights, biases = [], []
    for i in range(a.layers):
        w = torch.empty(dims[i], dims[i + 1], device=dev)
        torch.nn.init.xavier_uniform_(w)
        weights.append(w.requires_grad_())
        biases.append(torch.zeros(dims[i + 1], device=dev, requires_grad=True))
    opt = torch.optim.Adam(weights + biases, lr=a.lr, weight_decay=a.weight_decay)
    torch.cuda.synchronize()
    load_s = time.perf_counter() - t_load

    class SparseFeatureTimesW(torch.autograd.Function):
        @staticmethod
        def forward(ctx, vals, w):
            ctx.save_for_backward(vals)
            return torch.sparse.mm(torch.sparse_csr_tensor(x_crow, x_col, vals, size=(n, f)), w)

        @staticmethod
        def backward(ctx, grad):
            (vals,) = ctx.saved_tensors
            xt_d = torch.sparse_csr_tensor(xt_crow, xt_col, vals[perm], size=(f, n))
            return None, torch.sparse.mm(xt_d, grad)

    def forward():
        h = None
        for i in range(a.layers):
            if i == 0 and a.sparse_features:
                vals = F.dropout(x_val, a.dropout, training=True)
                z = SpMM.apply(SparseFeatureTimesW.apply(vals, weights[0]))
            else:
                inp = F.dropout(x if i == 0 else h, a.dropout, training=True)
                if dims[i + 1] <= dims[i]:
                    z = SpMM.apply(inp @ weights[i])
                else:
                    z = SpMM.apply(inp) @ weights[i]
            z = z + biases[i]
            h = torch.relu(z) if i + 1 < a.layers else z
        return h

    n_train = int(train_np.sum())
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times, loss_value = [], float("nan")
    for epoch in range(a.warmup + a.epochs):
        start.record()
        opt.zero_grad(set_to_none=False)
        logits = forward()
        loss = F.cross_entropy(logits[train], labels[train], reduction="sum") / n_train
        loss.backward()
        opt.step()
        end.record()
        end.synchronize()
        if epoch >= a.warmup:
            times.append(start.elapsed_time(end) / 1e3)
        loss_value = float(loss)
    print(json.dumps({
        "framework": "pytorch", "torch_version": torch.__version__, "device": torch.cuda.get_device_name(),
        "dataset": a.npz, "nodes": n, "directed_edges": int(2 * len(edges_np)), "features": f,
        "classes": classes, "layers": a.layers, "hidden": a.hidden, "sparse_features": a.sparse_features,
        "epochs_timed": a.epochs, "warmup": a.warmup, "median_epoch_s": statistics.median(times),
        "min_epoch_s": min(times), "final_loss": loss_value, "setup_s": load_s,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30}))


if __name__ == "__main__":
    main()
