#!/usr/bin/env python3
"""The table, fitted exponents and figure of a benchmarks/scale.sh folder.

usage: scale_table.py OUT   (reads OUT/n*-p*/; writes OUT/scale.md, OUT/scale.svg, OUT/scale.png and the
                             page OUT/report/index.html; `adaqp report OUT` runs this)

Per point (graph size, P): single-host METIS partitioning (load, partition, write s, peak),
PT-Scotch's partitioning seconds and cut (or that it ran past its timeout), the training run's
start-up (load_s), the largest rank's peak resident memory and arena, the median epoch of vanilla
and adaqp 4-bit with the simulator's prediction next to it, and bytes per epoch. Exponents: the
slope b of log(cost) = a + b log(directed edges), least squares over the sizes measured, per P
(b = 1: linear in the graph). Needs matplotlib for the figure (Debian's python3-matplotlib).
"""
import base64
import glob
import html
import json
import math
import os
import re
import statistics
import sys

GIB = 2**30


def records(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def summary(path):
    s = [r for r in records(path) if r.get("type") == "summary"]
    return s[-1] if s else None


def load_point(d):
    m = re.search(r"n(\d+)-p(\d+)$", d)
    p = {"nodes_spec": int(m.group(1)), "P": int(m.group(2))}
    part = json.load(open(f"{d}/partition.json")) if os.path.exists(f"{d}/partition.json") else None
    if not part:
        return None
    p.update(edges=part["directed_edges"], nodes=part["nodes"], metis_s=part["partition_s"], gen_s=part["load_s"],
             write_s=part.get("write_s"), part_peak=part["peak_rss_bytes"], cut=part["edge_cut"],
             edge_imbalance=part["edge_imbalance"])
    # PT-Scotch runs: ptscotch.json (the strategy scale.sh ran, PTS_STRATEGY) and, if kept, an earlier
    # run with Scotch's default strategy (ptscotch-default.json); files without "strategy" ran the default.
    for key, name in (("pts", "ptscotch.json"), ("pts_default", "ptscotch-default.json")):
        if os.path.exists(f"{d}/{name}"):
            r = json.load(open(f"{d}/{name}"))
            p[key] = {"strategy": r.get("strategy", "default"), "s": r.get("partition_s"), "cut": r.get("edge_cut"),
                      "timed_out": r.get("timed_out"), "wall_s": r.get("wall_ms", 0) / 1e3}
    for mode in ("vanilla", "adaqp"):
        s = summary(f"{d}/train-{mode}.jsonl")
        if s:
            epochs = [r for r in records(f"{d}/train-{mode}.jsonl") if r.get("type") == "epoch"]
            p[mode] = {"epoch_s": s["median_epoch_s"], "load_s": s["load_s"], "peak": max(s["peak_rss_bytes_by_rank"]),
                       "arena": s.get("arena_bytes", 0),
                       "bytes": statistics.median(r["bytes_sent"] for r in epochs) if epochs else 0}
        sim = summary(f"{d}/sim-{mode}.jsonl")
        if sim:
            p.setdefault(mode, {})
            p[mode].update(pred_s=sim["predicted_epoch_s"], pred_arena=sim.get("arena_bytes", 0),
                           pred_bytes=sim["bytes_sent"])
    return p


def fit_exponent(points, cost):
    xs, ys = [], []
    for p in points:
        v = cost(p)
        if v is not None and v > 0:
            xs.append(math.log(p["edges"]))
            ys.append(math.log(v))
    if len(xs) < 2:
        return None, len(xs)
    mx, my = statistics.mean(xs), statistics.mean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx, len(xs)


def main():
    out = sys.argv[1]
    points = [p for p in (load_point(d) for d in sorted(glob.glob(f"{out}/n*-p*"))) if p]
    points.sort(key=lambda p: (p["edges"], p["P"]))
    if not points:
        print(f"scale_table: no measured point in {out}", file=sys.stderr)
        return 1
    g = lambda p, mode, key: p.get(mode, {}).get(key)
    fmt = lambda v, spec: "-" if v is None else format(v, spec)

    def err(p, mode):
        m, s = g(p, mode, "epoch_s"), g(p, mode, "pred_s")
        return "-" if m is None or s is None else f"{100 * (s - m) / m:+.1f}%"

    def pts_run(p, key):
        r = p.get(key)
        if r is None:
            return None
        if r["s"] is not None:
            return f"{r['s']:.1f} ({r['strategy']}, cut {r['cut'] / max(p['cut'], 1):.2f}x)"
        if r["timed_out"]:
            return f"> {r['wall_s']:.0f} ({r['strategy']}, timeout)"
        return f"failed after {r['wall_s']:.0f}"

    def pts(p):
        runs = [t for t in (pts_run(p, "pts"), pts_run(p, "pts_default")) if t]
        return "; ".join(runs) if runs else "-"

    lines = ["| directed edges | P | METIS s (peak GiB) | PT-Scotch s | train load_s | peak GiB (arena, predicted) | "
             "vanilla epoch s (predicted, error) | adaqp-4 epoch s (predicted, error) | MB/epoch vanilla / adaqp |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        v, a = p.get("vanilla", {}), p.get("adaqp", {})
        peak = v.get("peak") or a.get("peak")
        lines.append(
            f"| {p['edges']:,} | {p['P']} | {p['metis_s']:.1f} ({p['part_peak'] / GIB:.2f}) | {pts(p)} | "
            f"{fmt(v.get('load_s'), '.2f')} | {fmt(peak and peak / GIB, '.2f')} "
            f"({fmt(v.get('arena') and v['arena'] / GIB, '.2f')}, {fmt(v.get('pred_arena') and v['pred_arena'] / GIB, '.2f')}) | "
            f"{fmt(v.get('epoch_s'), '.2f')} ({fmt(v.get('pred_s'), '.2f')}, {err(p, 'vanilla')}) | "
            f"{fmt(a.get('epoch_s'), '.2f')} ({fmt(a.get('pred_s'), '.2f')}, {err(p, 'adaqp')}) | "
            f"{fmt(v.get('bytes') and v['bytes'] / 1e6, '.1f')} / {fmt(a.get('bytes') and a['bytes'] / 1e6, '.1f')} |")
    costs = {
        "METIS partition s": lambda p: p["metis_s"],
        "graph generation s": lambda p: p["gen_s"],
        "PT-Scotch s": lambda p: p.get("pts", {}).get("s"),
        "train load_s": lambda p: g(p, "vanilla", "load_s"),
        "peak resident bytes": lambda p: g(p, "vanilla", "peak") or g(p, "adaqp", "peak"),
        "vanilla epoch s": lambda p: g(p, "vanilla", "epoch_s"),
        "adaqp-4 epoch s": lambda p: g(p, "adaqp", "epoch_s"),
        "bytes per epoch (vanilla)": lambda p: g(p, "vanilla", "bytes"),
    }
    parts = sorted({p["P"] for p in points})
    lines += ["", "Fitted exponent b of cost ~ edges^b (n = sizes measured):", "",
              "| cost | " + " | ".join(f"P = {P}" for P in parts) + " |", "|---|" + "---|" * len(parts)]
    for name, cost in costs.items():
        cells = []
        for P in parts:
            b, n = fit_exponent([p for p in points if p["P"] == P], cost)
            cells.append("-" if b is None else f"{b:.2f} (n = {n})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    with open(f"{out}/scale.md", "w") as f:
        f.write(text + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("scale_table: no matplotlib, no figure (use /usr/bin/python3)", file=sys.stderr)
        return 0
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
    panels = [("METIS partition s", costs["METIS partition s"]), ("train load_s", costs["train load_s"]),
              ("peak resident GiB", lambda p: (costs["peak resident bytes"](p) or 0) / GIB or None),
              ("vanilla epoch s", costs["vanilla epoch s"]), ("adaqp-4 epoch s", costs["adaqp-4 epoch s"]),
              ("MB per epoch (vanilla)", lambda p: (costs["bytes per epoch (vanilla)"](p) or 0) / 1e6 or None)]
    for ax, (name, cost) in zip(axes.flat, panels):
        for P in parts:
            sel = [(p["edges"], cost(p)) for p in points if p["P"] == P and cost(p)]
            if sel:
                ax.plot(*zip(*sel), marker="o", label=f"P = {P} measured")
        if "epoch" in name:
            mode = "vanilla" if name.startswith("vanilla") else "adaqp"
            for P in parts:
                sel = [(p["edges"], g(p, mode, "pred_s")) for p in points if p["P"] == P and g(p, mode, "pred_s")]
                if sel:
                    ax.plot(*zip(*sel), linestyle="--", marker="x", label=f"P = {P} predicted")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("directed edges")
        ax.set_title(name)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Cost against graph size (benchmarks/scale.sh)")
    fig.tight_layout()
    fig.savefig(f"{out}/scale.svg")
    fig.savefig(f"{out}/scale.png", dpi=110)
    print(f"figure: {out}/scale.svg, {out}/scale.png")
    write_page(out, lines)
    return 0


def markdown_to_html(lines):
    """The table lines of scale.md as HTML tables and paragraphs."""
    body, rows = [], []

    def flush():
        if rows:
            head, *rest = rows
            body.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr>" +
                        "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rest) +
                        "</table>")
            rows.clear()

    for line in lines:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(set(c) <= {"-"} for c in cells):
                rows.append(cells)
        else:
            flush()
            if line.strip():
                body.append(f"<p>{html.escape(line)}</p>")
    flush()
    return body


def write_page(out, lines):
    os.makedirs(f"{out}/report", exist_ok=True)
    data = base64.b64encode(open(f"{out}/scale.png", "rb").read()).decode()
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>adaqp scale report</title><style>"
            "body{font-family:sans-serif;margin:2em;max-width:1400px}img{max-width:100%;border:1px solid #ddd}"
            "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}</style>"
            "</head><body><h1>adaqp report: cost against graph size</h1>"
            f"<p>{html.escape(os.path.abspath(out))} (benchmarks/scale.sh)</p>"
            f'<h2>Cost against size</h2><img id="scale" alt="cost against size" src="data:image/png;base64,{data}">' +
            "\n".join(markdown_to_html(lines)) +
            # For scripts/check_report.sh: how many figures the browser decoded.
            "<script>window.addEventListener('load',function(){var i=Array.prototype.slice.call(document.images);"
            "document.body.setAttribute('data-figures',i.length);document.body.setAttribute('data-figures-loaded',"
            "i.filter(function(x){return x.complete&&x.naturalWidth>0;}).length);});</script></body></html>\n")
    with open(f"{out}/report/index.html.tmp", "w") as f:
        f.write(page)
    os.replace(f"{out}/report/index.html.tmp", f"{out}/report/index.html")
    print(f"report: 1 figure, {out}/report/index.html")


if __name__ == "__main__":
    sys.exit(main())
