#!/usr/bin/env python3
"""Turns a sweep's results folder (adaqp sweep --out DIR) into PNG figures and one self-contained
HTML page (DIR/report/index.html, figures embedded). Reads DIR/results.csv and DIR/runs/*.jsonl;
every number shown is a field of docs/metrics.md.

Figures (each written only when the results hold its data):
  throughput      epochs per second (1 / median_epoch_s) vs exchange width, per dataset and link
  curves          training loss and test accuracy vs epoch and vs training wall time
  breakdown       median epoch time split into compute / communication / quantization /
                  all-reduce, measured and predicted side by side
  predicted       predicted vs measured epoch time, y = x and a +-10% band
  bits            histogram of widths per assignment round (adaptive runs)
  bytes           bytes on the wire per layer and direction (payload and metadata)
  strategies      peer strategies (stale pipelining, boundary sampling, fp16 / bf16) next to vanilla
                  and AdaQP: test accuracy vs speedup over vanilla, measured and predicted; with a
                  table (mean over seeds)
  time_to_accuracy  per strategy, the training time to reach 99% of vanilla's best validation
                  accuracy, measured and predicted (the measured curve's epoch count times the
                  simulator's predicted epoch; docs/metrics.md: time to accuracy), with a table
  paired          every strategy's test accuracy difference to vanilla, paired by seed, against its
                  speedup, with 95% intervals (DIR/paired.csv, experiments/paired.hpp); with the
                  table of every measure and the verdict on a 0.3-point claim

usage: report.py --strategy-axes AXIS,AXIS,... DIR (adaqp report runs it so)
"""
import base64
import csv
import html
import io
import json
import math
import os
import sys
import textwrap
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

WIDTHS = ["1", "2", "4", "8", "16", "32"]


def read_runs(folder):
    runs = {}
    runs_dir = os.path.join(folder, "runs")
    for name in sorted(os.listdir(runs_dir)) if os.path.isdir(runs_dir) else []:
        if not name.endswith(".jsonl"):
            continue
        stem = name[: -len(".jsonl")]
        rid, executor = stem.rsplit(".", 1)
        recs = [json.loads(line) for line in open(os.path.join(runs_dir, name)) if line.strip()]
        run = next((r for r in recs if r["type"] == "run"), {})
        runs[(rid, executor)] = {
            "run": run,
            "point": run.get("sweep_point", {}),
            "epochs": [r for r in recs if r["type"] == "epoch"],
            "summary": next((r for r in recs if r["type"] == "summary"), {}),
        }
    return runs


def label(point):
    peers = ""
    if point.get("stale") == "true":
        m = point.get("stale_momentum", "0")
        peers = "+stale" + ("" if m in ("0", "") else f"-m{m}")
        if point.get("stale_bound", "none") != "none":
            peers += f"-bound{point['stale_bound']}"
    if point.get("boundary_rate", "1") not in ("1", ""):
        peers += f"+bns-{point['boundary_rate']}"
    if point.get("allreduce") == "after":
        peers += "+allreduce-after"
    return f"{point.get('mode', '?')}-{point.get('bits', '?')}{peers}"


def median(values):
    v = sorted(values)
    if not v:
        return float("nan")
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def finish_axes(ax, xlabel, ylabel, title, legend_size=7):
    """Labels, title, grid and legend of one panel (the report's figures share this look)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(textwrap.fill(title, 70), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size)


def context_panels(rows, key):
    """One panel per distinct key(row), side by side: (figure, [(axes, rows of that key)]), or
    (None, []) without rows."""
    keys = sorted({key(r) for r in rows})
    if not keys:
        return None, []
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4.2), squeeze=False)
    return fig, [(ax, [r for r in rows if key(r) == k]) for ax, k in zip(axes[0], keys)]


def figure_png(fig):
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def throughput(runs):
    groups = defaultdict(lambda: defaultdict(list))  # (dataset, link, parts) -> mode -> [(bits, eps)]
    for (rid, ex), r in runs.items():
        p, s = r["point"], r["summary"]
        if ex != "engine" or not s.get("median_epoch_s") or p.get("bits") not in WIDTHS:
            continue
        if label(p) != f"{p.get('mode')}-{p.get('bits')}":
            continue  # peer strategies have their own figure
        key = (p.get("dataset"), p.get("link"), p.get("parts"))
        groups[key][p.get("mode")].append((int(p["bits"]), 1.0 / s["median_epoch_s"]))
    if not groups:
        return None
    n = len(groups)
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 3.8), squeeze=False)
    for ax, (key, modes) in zip(axes[0], sorted(groups.items())):
        for mode, pts in sorted(modes.items()):
            by_bits = defaultdict(list)
            for b, eps in pts:
                by_bits[b].append(eps)
            xs = sorted(by_bits)
            ax.plot(xs, [sum(by_bits[x]) / len(by_bits[x]) for x in xs], marker="o", label=mode)
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 2, 4, 8, 16, 32])
        ax.set_xticklabels(["1", "2", "4", "8", "16", "32"])
        ax.set_xlabel("exchange width (bits)")
        ax.set_ylabel("throughput (epochs / s)")
        ax.set_title(f"{key[0]}, P = {key[2]}, link {key[1]}")
        ax.grid(alpha=0.3)
        ax.legend(title="mode")
    fig.suptitle("Throughput vs exchange width (mean over seeds)")
    return fig


def curves(runs):
    by_dataset = defaultdict(list)
    for (rid, ex), r in runs.items():
        if ex == "engine" and r["epochs"]:
            by_dataset[r["point"].get("dataset")].append(r)
    if not by_dataset:
        return None
    n = len(by_dataset)
    fig, axes = plt.subplots(n, 3, figsize=(15, 3.6 * n), squeeze=False)
    for row, (dataset, rs) in enumerate(sorted(by_dataset.items())):
        ax_loss, ax_acc, ax_time = axes[row]
        for r in sorted(rs, key=lambda r: (label(r["point"]), r["point"].get("seed", ""))):
            ep = r["epochs"]
            name = f"{label(r['point'])} s{r['point'].get('seed', '?')} {r['point'].get('link', '')}"
            xs = [e["epoch"] for e in ep]
            ax_loss.plot(xs, [e["loss"] for e in ep], label=name, lw=1)
            evald = [e for e in ep if e.get("test_acc") is not None]
            ax_acc.plot([e["epoch"] for e in evald], [100 * e["test_acc"] for e in evald], lw=1, label=name)
            wall, t = [], 0.0
            for e in ep:
                t += e["epoch_s"]
                if e.get("test_acc") is not None:
                    wall.append((t, 100 * e["test_acc"]))
            ax_time.plot([w for w, _ in wall], [a for _, a in wall], lw=1, label=name)
        ax_loss.set(title=f"{dataset}: training loss", xlabel="epoch", ylabel="loss (nats)")
        ax_acc.set(title=f"{dataset}: test accuracy", xlabel="epoch", ylabel="test accuracy (%)")
        ax_time.set(title=f"{dataset}: test accuracy vs training time", xlabel="training wall time (s)",
                    ylabel="test accuracy (%)")
        for ax in (ax_loss, ax_acc, ax_time):
            ax.grid(alpha=0.3)
        ax_time.legend(fontsize=7, loc="lower right")
    return fig


def breakdown(runs):
    bars = []
    for (rid, ex), r in sorted(runs.items()):
        if ex == "engine" and r["epochs"]:
            ep = r["epochs"]
            parts = [median(e[k] for e in ep) for k in ("compute_s", "comm_s", "quant_s", "reduce_s")]
        elif ex == "simulator" and r["summary"].get("predicted_epoch_s") is not None:
            s = r["summary"]
            parts = [s[k] for k in ("predicted_compute_s", "predicted_comm_s", "predicted_quant_s",
                                    "predicted_reduce_s")]
        else:
            continue
        p = r["point"]
        bars.append((f"{p.get('dataset', '')[:12]} {label(p)} P{p.get('parts')} {p.get('link')} s{p.get('seed')}"
                     f" [{'pred' if ex == 'simulator' else 'meas'}]", parts))
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(bars) + 2), 4.5))
    bottom = [0.0] * len(bars)
    for i, (name, color) in enumerate(zip(("compute", "communication wait", "quantization", "all-reduce"),
                                          ("tab:blue", "tab:orange", "tab:green", "tab:red"))):
        vals = [1e3 * b[1][i] for b in bars]
        ax.bar(range(len(bars)), vals, bottom=bottom, color=color, label=name)
        bottom = [x + y for x, y in zip(bottom, vals)]
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([b[0] for b in bars], rotation=75, ha="right", fontsize=7)
    ax.set_ylabel("median epoch time (ms)")
    ax.set_title("Epoch time breakdown: measured (meas) and predicted (pred)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return fig


def predicted(runs):
    pts = []
    for (rid, ex), r in runs.items():
        if ex != "engine":
            continue
        sim = runs.get((rid, "simulator"))
        if not sim or sim["summary"].get("predicted_epoch_s") is None or not r["summary"].get("median_epoch_s"):
            continue
        pts.append((1e3 * r["summary"]["median_epoch_s"], 1e3 * sim["summary"]["predicted_epoch_s"], r["point"]))
    if not pts:
        return None, []
    fig, ax = plt.subplots(figsize=(5.5, 5))
    lo = min(min(a, b) for a, b, _ in pts) * 0.8
    hi = max(max(a, b) for a, b, _ in pts) * 1.2
    xs = [lo, hi]
    ax.plot(xs, xs, "k-", lw=1, label="y = x")
    ax.fill_between(xs, [0.9 * x for x in xs], [1.1 * x for x in xs], color="gray", alpha=0.2, label="±10%")
    for mode in sorted({p.get("mode") for _, _, p in pts}):
        sel = [(a, b) for a, b, p in pts if p.get("mode") == mode]
        ax.scatter([a for a, _ in sel], [b for _, b in sel], label=mode, s=25)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(xlabel="measured median epoch time (ms)", ylabel="predicted epoch time (ms)",
           title="Simulator: predicted vs measured")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return fig, pts


def bits_histogram(runs):
    rounds = []
    for (rid, ex), r in sorted(runs.items()):
        for e in r["epochs"]:
            a = e.get("assignment")
            if a and a.get("rows_at_bits"):
                rounds.append((f"{rid[:28]} e{e['epoch']}", a["rows_at_bits"]))
    if not rounds:
        return None
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(rounds) + 2), 4))
    widths = [w for w in ("1", "2", "4", "8") if any(r[1].get(w) for r in rounds)] or ["2", "4", "8"]
    x = list(range(len(rounds)))
    bar = 0.8 / len(widths)
    for i, w in enumerate(widths):
        ax.bar([v + (i - (len(widths) - 1) / 2) * bar for v in x], [r[1].get(w, 0) for r in rounds], width=bar,
               label=f"{w} bits")
    ax.set_xticks(x)
    ax.set_xticklabels([r[0] for r in rounds], rotation=75, ha="right", fontsize=7)
    ax.set_ylabel("message rows")
    ax.set_title("Widths chosen per assignment round (after that epoch)")
    ax.legend()
    return fig


def assigner_label(p):
    """Adaptive widths: the assigner's settings that differ from the defaults (manifest axes)."""
    parts = [f"{k} {p[k]}" for k, d in (("lambda", "0.5"), ("group_size", "100"), ("assign_period", "50"),
                                        ("assign_time", "range"), ("widths", "2,4,8")) if p.get(k, d) != d]
    return "adaqp-adaptive" + (f" ({', '.join(parts)})" if parts else "")


def widths_by_link_rows(runs):
    """Adaptive engine runs per (dataset, P, link, link model, assigner settings): the share of message
    rows at each width over every assignment round of every seed, bits per row, bytes per epoch
    (mean over the epochs of a run, median over seeds) and the median epoch."""
    groups = defaultdict(list)
    for (rid, ex), r in runs.items():
        p = r["point"]
        if ex != "engine" or p.get("bits") != "adaptive" or not r["epochs"]:
            continue
        groups[(p.get("dataset"), p.get("parts"), p.get("link"), p.get("link_model", "probe"), assigner_label(p))].append(r)
    out = []
    for key, rs in sorted(groups.items()):
        rows = defaultdict(int)
        for r in rs:
            for e in r["epochs"]:
                for w, n in ((e.get("assignment") or {}).get("rows_at_bits") or {}).items():
                    rows[w] += n
        total = sum(rows.values())
        mb = median([sum(e.get("bytes_sent", 0) for e in r["epochs"]) / len(r["epochs"]) / 1e6 for r in rs])
        ms = median([1e3 * r["summary"]["median_epoch_s"] for r in rs if r["summary"].get("median_epoch_s")])
        out.append({"dataset": key[0], "parts": key[1], "link": key[2], "link_model": key[3], "strategy": key[4],
                    "seeds": len(rs), "share": {w: n / total for w, n in rows.items()} if total else {},
                    "bits_per_row": sum(int(w) * n for w, n in rows.items()) / total if total else float("nan"),
                    "mb": mb, "ms": ms})
    return out


def widths_by_link_table(rows):
    if not rows:
        return ""
    cols = ["dataset", "P", "link", "link model", "strategy", "seeds", "rows at 1 / 2 / 4 / 8 bits (%)",
            "bits per row", "MB / epoch", "median epoch (ms)"]
    table = [[r["dataset"], r["parts"], r["link"], r["link_model"], r["strategy"], str(r["seeds"]),
              " / ".join(f(100 * r["share"].get(w, 0.0), ".0f") for w in ("1", "2", "4", "8")),
              f(r["bits_per_row"], ".2f"), f(r["mb"], ".2f"), f(r["ms"], ".1f")] for r in rows]
    return ("<h2>Adaptive widths per link</h2><p>Message rows at each width over every assignment round and "
            "seed (the first period, at 8 bits, is not a round); bytes per epoch: the mean over a run's epochs, "
            "median over seeds. link model probe: the assigner measured the link; ALPHA_US:GBPS: it was given "
            "that link.</p>" + html_table(cols, table))


def bytes_figure(runs):
    rows = []
    for (rid, ex), r in sorted(runs.items()):
        if ex != "engine" or not r["epochs"] or not r["epochs"][-1].get("bytes_by_layer"):
            continue
        rows.append((f"{label(r['point'])} P{r['point'].get('parts')}", r["epochs"][-1]["bytes_by_layer"],
                     r["point"].get("dataset")))
    seen, uniq = set(), []
    for name, b, d in rows:  # one bar group per (dataset, mode-bits, P)
        if (name, d) not in seen:
            seen.add((name, d))
            uniq.append((f"{d[:12]} {name}", b))
    if not uniq:
        return None
    keys = sorted({(x["layer"], x["dir"]) for _, b in uniq for x in b})
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(uniq) * len(keys) / 3 + 3), 4.5))
    n = len(keys)
    w = 0.8 / max(n, 1)
    for i, (layer, d) in enumerate(keys):
        pay = [next((x["payload"] for x in b if x["layer"] == layer and x["dir"] == d), 0) / 1e6 for _, b in uniq]
        meta = [next((x["meta"] for x in b if x["layer"] == layer and x["dir"] == d), 0) / 1e6 for _, b in uniq]
        pos = [j + (i - (n - 1) / 2) * w for j in range(len(uniq))]
        bars = ax.bar(pos, pay, width=w, label=f"layer {layer} {d}")
        ax.bar(pos, meta, width=w, bottom=pay, color=bars.patches[0].get_facecolor(), alpha=0.4, hatch="//")
    ax.set_xticks(range(len(uniq)))
    ax.set_xticklabels([u[0] for u in uniq], rotation=60, ha="right", fontsize=7)
    ax.margins(y=0.12)
    ax.set_ylabel("MB per epoch, all ranks (hatched: metadata)")
    ax.set_title("Bytes on the wire per layer and direction")
    ax.legend(fontsize=7, ncol=2)
    return fig


def f(v, fmt):
    """v formatted, or empty for NaN."""
    return "" if v != v else format(v, fmt)


def html_table(cols, rows):
    """A table of header `cols` and rows of cells (escaped)."""
    out = ["<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>"]
    for cells in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def strategy_label(r):
    """Strategy (mode + peer strategy, summary field `strategy`) and width when not fp32."""
    p, s = r["point"], r["summary"]
    name = s.get("strategy") or p.get("mode", "?")
    bits = p.get("bits", "32")
    return name if bits in ("32", "") else f"{name}-{bits}"


def has_peers(runs):
    return any(r["point"].get("stale") == "true" or r["point"].get("boundary_rate", "1") not in ("1", "")
               or r["point"].get("bits") in ("fp16", "16", "bf16") for r in runs.values())


def strategy_rows(runs):
    """Per (dataset, parts, link) and strategy: seeds, measured / predicted epoch, bytes, accuracy."""
    groups = defaultdict(lambda: defaultdict(lambda: {"engine": {}, "simulator": {}}))
    for (rid, ex), r in runs.items():
        p, s = r["point"], r["summary"]
        if not s:
            continue
        key = (p.get("dataset"), p.get("parts"), p.get("link"))
        groups[key][strategy_label(r)][ex][p.get("seed")] = s
    out = []
    for key, strategies in sorted(groups.items()):
        base = strategies.get("vanilla", {}).get("engine", {})
        base_ms = median([1e3 * s["median_epoch_s"] for s in base.values()]) if base else float("nan")
        for name, ex in sorted(strategies.items(), key=lambda kv: (kv[0] != "vanilla", kv[0])):
            eng, sim = ex["engine"], ex["simulator"]
            accs = {seed: 100 * s["test_acc_at_best_val"] for seed, s in eng.items()}
            ms = median([1e3 * s["median_epoch_s"] for s in eng.values()]) if eng else float("nan")
            pred = median([1e3 * s["predicted_epoch_s"] for s in sim.values()]) if sim else float("nan")
            mean = sum(accs.values()) / len(accs) if accs else float("nan")
            std = (math.sqrt(sum((a - mean) ** 2 for a in accs.values()) / (len(accs) - 1)) if len(accs) > 1 else 0.0)
            mb = next((s.get("bytes_sent") for s in list(eng.values()) + list(sim.values()) if s.get("bytes_sent")), None)
            out.append({"dataset": key[0], "parts": key[1], "link": key[2], "strategy": name, "seeds": len(accs),
                        "ms": ms, "predicted_ms": pred, "speedup": base_ms / ms if ms == ms else float("nan"),
                        "predicted_speedup": base_ms / pred if pred == pred else float("nan"),
                        "mb": mb / 1e6 if mb else float("nan"), "acc": mean, "acc_std": std})
    return out


def strategies_figure(runs):
    if not has_peers(runs):
        return None
    rows = [r for r in strategy_rows(runs) if r["seeds"] > 0]
    keys = sorted({(r["dataset"], r["parts"], r["link"]) for r in rows})
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for i, r in enumerate(x for x in rows if (x["dataset"], x["parts"], x["link"]) == key):
            color = f"C{i % 10}"
            ax.errorbar(r["speedup"], r["acc"], yerr=r["acc_std"], fmt="o", color=color, capsize=3,
                        label=f"{r['strategy']} ({r['seeds']} seed{'s' if r['seeds'] > 1 else ''})")
            if r["predicted_speedup"] == r["predicted_speedup"]:
                ax.plot(r["predicted_speedup"], r["acc"], marker="o", mfc="none", color=color, ls="none")
        ax.axvline(1.0, color="gray", lw=0.8)
        finish_axes(ax, "speedup over vanilla (filled: measured, hollow: predicted)",
                    "test accuracy at best validation (%)", f"{key[0]}, P = {key[1]}, link {key[2]}")
    fig.suptitle("Strategies: accuracy vs throughput (mean +- std over seeds)")
    return fig


def strategies_table(runs):
    if not has_peers(runs):
        return ""

    cols = ["dataset", "P", "link", "strategy", "seeds", "median epoch (ms)", "predicted (ms)", "speedup",
            "predicted speedup", "MB / epoch", "test acc (%)"]
    table = []
    for r in strategy_rows(runs):
        cells = [r["dataset"], r["parts"], r["link"], r["strategy"], str(r["seeds"]), f(r["ms"], ".1f"),
                 f(r["predicted_ms"], ".1f"), f(r["speedup"], ".2f") + "x", f(r["predicted_speedup"], ".2f") + "x",
                 f(r["mb"], ".2f"), (f(r["acc"], ".2f") + " +- " + f(r["acc_std"], ".2f")) if r["seeds"] else ""]
        table.append(cells)
    return ("<h2>Strategies</h2><p>Accuracy differences to vanilla, paired by seed, are in the paired "
            "table below.</p>" + html_table(cols, table))


MEASURES = {"test_acc_at_best_val": "test acc at best validation", "final_test_acc": "final test acc",
            "tail_test_acc": "tail test acc (mean of the last 5 evaluations)"}
VERDICTS = {"within": "decided: loses at most 0.3 points",
            "beyond": "decided: loses more than 0.3 points",
            "undecided": "undecided: the 95% interval is too wide (or straddles -0.3) to decide 0.3 points",
            "n<2": "one seed: no interval"}


def read_paired(folder):
    """DIR/paired.csv (written by adaqp sweep / report: experiments/paired.hpp), numbers as floats."""
    path = os.path.join(folder, "paired.csv")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in ("n", "mean_points", "se_points", "ci_low_points", "ci_high_points", "speedup"):
            r[k] = float(r[k]) if r.get(k) not in ("", None) else float("nan")
    return rows


def context_title(r):
    link = r.get("link", "?")
    if link == "none" and r.get("link_model", "probe") != "probe":
        link = f"none (shared memory; widths assigned for the link model {r['link_model']})"
    parts = [r.get("dataset", "?")] + ([r["model"].upper()] if r.get("model") else []) + \
        [f"P = {r.get('parts', '?')}", f"link {link}"]
    if r.get("split"):
        parts.append(f"split {r['split']}")
    return ", ".join(parts)


def context_key(r):
    return tuple(sorted((k, v) for k, v in r.items() if k not in (
        "strategy", "baseline", "measure", "n", "mean_points", "se_points", "ci_low_points", "ci_high_points",
        "verdict_0.3", "speedup", "speedup_link", "speedup_seeds", "seeds")))


def speedup_source(r):
    """Where a paired row's speedup was measured: its own runs, or the emulated link of its link model."""
    if r.get("speedup_link"):
        return f"over the emulated {r['speedup_link']} link, seeds {r.get('speedup_seeds', '')}"
    return "same runs"


def paired_figure(rows):
    fig, panels = context_panels([r for r in rows if r["measure"] == "test_acc_at_best_val"], context_key)
    if fig is None:
        return None
    for ax, sub in panels:
        for i, r in enumerate(sub):
            ci = r["ci_high_points"] - r["mean_points"]
            yerr = [[r["mean_points"] - r["ci_low_points"]], [ci]] if ci == ci else None
            ax.errorbar(r["speedup"], r["mean_points"], yerr=yerr, fmt="o", color=f"C{i % 10}", capsize=3,
                        label=f"{r['strategy']} (n = {int(r['n'])})"
                        + (f", speedup at {r['speedup_link']}" if r.get("speedup_link") else ""))
        ax.axhline(0.0, color="gray", lw=0.8)
        ax.axhline(-0.3, color="red", lw=0.8, ls="--", label="-0.3 points")
        ax.axvline(1.0, color="gray", lw=0.8)
        finish_axes(ax, "speedup over vanilla (measured: the same runs, or the emulated link named)", "test accuracy - vanilla's (points)",
                    context_title(sub[0]))
    fig.suptitle("Accuracy difference to vanilla, paired by seed (mean, 95% interval) against speedup")
    return fig


def paired_table(rows):
    if not rows:
        return ""

    cols = ["context", "strategy", "measure", "n", "difference (points)", "SE", "95% interval", "verdict on 0.3 points",
            "speedup", "speedup measured", "seeds"]
    table = []
    for r in rows:
        interval = f"[{f(r['ci_low_points'], '+.2f')}, {f(r['ci_high_points'], '+.2f')}]" if r["n"] >= 2 else ""
        cells = [context_title(r), r["strategy"], MEASURES.get(r["measure"], r["measure"]), str(int(r["n"])),
                 f(r["mean_points"], "+.2f"), f(r["se_points"], ".2f"), interval,
                 VERDICTS.get(r["verdict_0.3"], r["verdict_0.3"]), f(r["speedup"], ".2f") + "x", speedup_source(r),
                 r["seeds"]]
        table.append(cells)
    return ("<h2>Paired differences to vanilla</h2><p>Per seed: strategy minus vanilla, same context "
            "(docs/metrics.md: paired differences). A 0.3-point claim is decided only when the whole 95% "
            "interval lies on one side of -0.3. Rows of a shared-memory context with a link model have the "
            "numerics of that link but not its time: their speedup comes from the sweep's runs over the emulated "
            "link of that rate when it has them (column 'speedup measured').</p>" + html_table(cols, table))


# Axes that make a strategy (the rest, but the seed, is its context): experiments/paired.hpp
# strategy_axes(), given by `adaqp report` as --strategy-axes (main() sets it).
STRATEGY_AXES = set()
TARGET_FRACTION = 0.99


def point_context(p):
    return tuple(sorted((k, v) for k, v in p.items() if k not in STRATEGY_AXES and k not in ("seed", "executor")))


# Axes that change where a run happens but not its numerics (uniform widths): a measured curve of one
# host joins the simulator's epoch of another.
HOST_AXES = {"link", "profile", "topology"}


def numerics_key(p):
    return tuple(sorted((k, v) for k, v in p.items() if k not in HOST_AXES and k != "executor"))


def first_hit(r, target):
    """(epoch, training seconds up to it) of the first evaluated epoch with val_acc >= target, or None."""
    t = 0.0
    for e in r["epochs"]:
        t += e["epoch_s"]
        if e.get("val_acc") is not None and e["val_acc"] >= target:
            return e["epoch"], t
    return None


def time_to_accuracy_rows(runs):
    """docs/metrics.md, time to accuracy: per context, target = 0.99 x the mean over seeds of vanilla's
    best val_acc; per engine run, E = the first evaluated epoch with val_acc >= target, measured =
    sum of epoch_s over epochs 1..E, predicted = E x predicted_epoch_s of the simulator run of the
    same point; per strategy the medians over the seeds that reached the target. A simulator run
    without an engine run of its point (a cluster profile, another link) takes E from the engine run
    with the same numerics (every axis but link, profile and topology): a predicted-only row."""
    engine_ctx = defaultdict(list)
    by_numerics = {}
    for (rid, ex), r in runs.items():
        if ex == "engine" and r["epochs"]:
            engine_ctx[point_context(r["point"])].append((rid, r))
            by_numerics[numerics_key(r["point"])] = r
    targets = {}
    for key, rs in engine_ctx.items():
        base = [r["summary"].get("best_val_acc") for _, r in rs
                if label(r["point"]) == "vanilla-32" and r["summary"].get("best_val_acc") is not None]
        if base:
            targets[key] = TARGET_FRACTION * sum(base) / len(base)
    # context -> [(engine run, simulator run or None)]
    pairs = defaultdict(list)
    for key, rs in engine_ctx.items():
        for rid, r in rs:
            pairs[key].append((r, runs.get((rid, "simulator"))))
    predicted_only = set()
    for (rid, ex), r in runs.items():
        if ex == "simulator" and (rid, "engine") not in runs and r["summary"].get("predicted_epoch_s"):
            eng = by_numerics.get(numerics_key(r["point"]))
            if eng is not None:
                key = point_context(r["point"])
                pairs[key].append((eng, r))
                predicted_only.add(key)
                targets.setdefault(key, targets.get(point_context(eng["point"])))
    out = []
    for key, rs in sorted(pairs.items()):
        target = targets.get(key)
        if target is None:
            continue
        by = defaultdict(lambda: {"meas": [], "pred": [], "epochs": [], "runs": 0, "curves": []})
        for eng, sim in rs:
            b = by[strategy_label(eng)]
            b["runs"] += 1
            pred_epoch = sim["summary"].get("predicted_epoch_s") if sim else None
            if pred_epoch:
                b["curves"].append([(e["epoch"] * pred_epoch, e["val_acc"]) for e in eng["epochs"]
                                    if e.get("val_acc") is not None])
            hit = first_hit(eng, target)
            if hit is None:
                continue
            b["epochs"].append(hit[0])
            if key not in predicted_only:
                b["meas"].append(hit[1])
            if pred_epoch:
                b["pred"].append(hit[0] * pred_epoch)
        p = dict(key)
        for name, b in sorted(by.items(), key=lambda kv: (kv[0] != "vanilla", kv[0])):
            out.append({"dataset": p.get("dataset"), "parts": p.get("parts"), "link": p.get("link"),
                        "profile": os.path.basename(p.get("profile", "")), "predicted_only": key in predicted_only,
                        "context": key, "strategy": name, "target": 100 * target, "reached": len(b["epochs"]),
                        "runs": b["runs"], "epochs": median(b["epochs"]),
                        "measured_s": median(b["meas"]) if b["meas"] else float("nan"),
                        "predicted_s": median(b["pred"]) if b["pred"] else float("nan"), "curves": b["curves"]})
    return out


def predicted_curves_figure(rows):
    """Predicted-only contexts: validation accuracy against predicted training time, per strategy
    (the measured curve on the predicted clock; mean over seeds at each evaluated epoch)."""
    fig, panels = context_panels([r for r in rows if r["predicted_only"] and r["curves"]], lambda r: r["context"])
    if fig is None:
        return None
    for ax, sub in panels:
        for i, r in enumerate(sub):
            n = min(len(c) for c in r["curves"])
            xs = [sum(c[j][0] for c in r["curves"]) / len(r["curves"]) for j in range(n)]
            ys = [100 * sum(c[j][1] for c in r["curves"]) / len(r["curves"]) for j in range(n)]
            ax.plot(xs, ys, color=f"C{i % 10}", label=f"{r['strategy']} ({len(r['curves'])} seeds)")
        ax.axhline(sub[0]["target"], color="gray", lw=0.8, ls="--", label="target")
        finish_axes(ax, "predicted training time (s)", "validation accuracy (%)",
                    f"{sub[0]['dataset']}, P = {sub[0]['parts']}, {sub[0]['profile']}, link {sub[0]['link']}")
    fig.suptitle("Predicted convergence (measured curves on the simulator's clock)")
    return fig


def time_to_accuracy_figure(rows):
    fig, panels = context_panels([r for r in rows if r["reached"] > 0], lambda r: r["context"])
    if fig is None:
        return None
    for ax, sub in panels:
        xs = range(len(sub))
        ax.bar([x - 0.2 for x in xs], [r["measured_s"] for r in sub], width=0.4, label="measured")
        ax.bar([x + 0.2 for x in xs], [r["predicted_s"] for r in sub], width=0.4, label="predicted")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([r["strategy"] for r in sub], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("training time to target (s, median over seeds)")
        ax.set_title(f"{sub[0]['dataset']}, P = {sub[0]['parts']}, {sub[0]['profile']}, link {sub[0]['link']}"
                     f"{' (predicted only)' if sub[0]['predicted_only'] else ''}: target {sub[0]['target']:.1f}% val",
                     fontsize=10)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    fig.suptitle(f"Time to {100 * TARGET_FRACTION:.0f}% of vanilla's best validation accuracy")
    return fig


def time_to_accuracy_table(rows):
    if not rows:
        return ""

    cols = ["dataset", "P", "profile", "link", "strategy", "target val acc (%)", "seeds reaching it",
            "epochs (median)", "measured (s)", "predicted (s)", "error"]
    table = []
    for r in rows:
        err = (r["predicted_s"] - r["measured_s"]) / r["measured_s"] * 100 if r["reached"] else float("nan")
        cells = [r["dataset"], r["parts"], r["profile"] + (" (predicted only)" if r["predicted_only"] else ""),
                 r["link"], r["strategy"], f(r["target"], ".2f"),
                 f"{r['reached']} of {r['runs']}", f(r["epochs"], ".0f"), f(r["measured_s"], ".2f"),
                 f(r["predicted_s"], ".2f"), (f(err, "+.1f") + "%") if err == err else ""]
        table.append(cells)
    return ("<h2>Time to accuracy</h2><p>Training time (evaluation excluded) until validation accuracy first "
            f"reaches {100 * TARGET_FRACTION:.0f}% of vanilla's best (mean over its seeds); predicted: the same "
            "epoch count times the simulator's predicted epoch (docs/metrics.md). Predicted-only rows (a profile "
            "or link the engine did not run on) take the epoch count of the engine run with the same numerics.</p>" + html_table(cols, table))


def summary_table(folder):
    path = os.path.join(folder, "results.csv")
    if not os.path.exists(path):
        return "<p>No results.csv.</p>"
    with open(path) as f:
        rows = list(csv.DictReader(f))
    cols = ["id", "executor", "dataset", "parts", "mode", "bits", "strategy", "link", "seed", "epochs", "median_epoch_s",
            "predicted_epoch_s", "test_acc_at_best_val", "bytes_sent"]
    units = {"median_epoch_s": "median epoch (ms)", "predicted_epoch_s": "predicted epoch (ms)",
             "test_acc_at_best_val": "test acc at best val (%)", "bytes_sent": "MB sent / epoch"}

    def cell(c, v):
        if v in ("", None):
            return ""
        try:
            float(v)
        except ValueError:
            return html.escape(v)
        if c in ("median_epoch_s", "predicted_epoch_s"):
            return f"{1e3 * float(v):.2f}"
        if c == "test_acc_at_best_val":
            return f"{100 * float(v):.2f}"
        if c == "bytes_sent":
            return f"{float(v) / 1e6:.3f}"
        return html.escape(v)

    out = ["<table><tr>" + "".join(f"<th>{html.escape(units.get(c, c))}</th>" for c in cols) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{cell(c, r.get(c, ''))}</td>" for c in cols) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def main():
    global STRATEGY_AXES
    if len(sys.argv) != 4 or sys.argv[1] != "--strategy-axes" or not sys.argv[2]:
        sys.exit("usage: report.py --strategy-axes AXIS,AXIS,... DIR (run it through adaqp report)")
    STRATEGY_AXES = set(sys.argv[2].split(","))
    folder = sys.argv[3]
    if not os.path.isdir(os.path.join(folder, "runs")):
        sys.exit(f"report: {folder}: not a sweep results folder (no runs/)")
    runs = read_runs(folder)
    out_dir = os.path.join(folder, "report")
    os.makedirs(out_dir, exist_ok=True)
    prov = {}
    if os.path.exists(os.path.join(folder, "sweep.json")):
        prov = json.load(open(os.path.join(folder, "sweep.json")))
    figures = []
    pred_fig, pairs = predicted(runs)
    paired = read_paired(folder)
    tta = time_to_accuracy_rows(runs)
    for name, title, fig in (("throughput", "Throughput vs exchange width", throughput(runs)),
                             ("curves", "Loss and accuracy", curves(runs)),
                             ("breakdown", "Epoch time breakdown", breakdown(runs)),
                             ("predicted", "Predicted vs measured", pred_fig),
                             ("bits", "Bit widths per assignment round", bits_histogram(runs)),
                             ("bytes", "Bytes on the wire per layer and direction", bytes_figure(runs)),
                             ("strategies", "Strategies: accuracy vs throughput", strategies_figure(runs)),
                             ("time_to_accuracy", "Time to accuracy", time_to_accuracy_figure(tta)),
                             ("predicted_curves", "Predicted convergence", predicted_curves_figure(tta)),
                             ("paired", "Accuracy difference to vanilla against speedup", paired_figure(paired))):
        if fig is None:
            continue
        png = figure_png(fig)
        with open(os.path.join(out_dir, name + ".png") + ".tmp", "wb") as f:
            f.write(png)
        os.replace(os.path.join(out_dir, name + ".png") + ".tmp", os.path.join(out_dir, name + ".png"))
        figures.append((name, title, base64.b64encode(png).decode()))
    errs = [abs(b - a) / a * 100 for a, b, _ in pairs]
    err_line = (f"<p>Simulator over {len(errs)} runs: median |error| {sorted(errs)[len(errs) // 2]:.1f}%, "
                f"max {max(errs):.1f}%.</p>" if errs else "")
    binaries = {r["run"].get("build", {}).get("binary_fnv1a") for r in runs.values() if r["run"]}
    binaries.discard(None)
    binaries.discard("")
    if len(binaries) > 1:
        err_line += (f"<p><b>Warning: the runs come from {len(binaries)} different adaqp binaries "
                     f"(build.binary_fnv1a {', '.join(sorted(binaries))}): the binary changed during the sweep, "
                     "and runs of different builds may not be comparable.</b></p>")
    body = [f"<h1>adaqp report: {html.escape(prov.get('manifest_name', os.path.basename(folder)))}</h1>",
            f"<p>manifest {html.escape(str(prov.get('manifest', '?')))} (hash {html.escape(str(prov.get('manifest_hash', '?')))}), "
            f"commit {html.escape(str(prov.get('git_commit', '?')))}, host {html.escape(str(prov.get('host', '?')))}, "
            f"started {html.escape(str(prov.get('started_utc', '?')))}; {len(runs)} runs.</p>", err_line]
    for name, title, data in figures:
        body.append(f'<h2>{html.escape(title)}</h2><img id="{name}" alt="{html.escape(title)}" '
                    f'src="data:image/png;base64,{data}">')
    body.append(strategies_table(runs))
    body.append(widths_by_link_table(widths_by_link_rows(runs)))
    body.append(time_to_accuracy_table(tta))
    body.append(paired_table(paired))
    body.append("<h2>Summary</h2>" + summary_table(folder))
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>adaqp report</title><style>"
            "body{font-family:sans-serif;margin:2em;max-width:1400px}img{max-width:100%;border:1px solid #ddd}"
            "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}"
            "</style></head><body>" + "\n".join(body) +
            # For scripts/check_report.sh: how many figures the browser decoded.
            "<script>window.addEventListener('load',function(){var i=Array.prototype.slice.call(document.images);"
            "document.body.setAttribute('data-figures',i.length);document.body.setAttribute('data-figures-loaded',"
            "i.filter(function(x){return x.complete&&x.naturalWidth>0;}).length);});</script>"
            "</body></html>\n")
    index = os.path.join(out_dir, "index.html")
    with open(index + ".tmp", "w") as f:
        f.write(page)
    os.replace(index + ".tmp", index)
    print(f"report: {len(figures)} figures, {index}")


if __name__ == "__main__":
    main()
