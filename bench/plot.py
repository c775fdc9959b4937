#!/usr/bin/env python3
"""Plots of bench/run's results (matplotlib, Agg backend: no display needed).

  python bench/plot.py bench/results/latest [--out DIR]

Writes into DIR (default: <results>/plots):
  <collective>-<ranks>ranks-<mode>.png  latency and bandwidth against size,
      log-log, one line per system, the copy limit dashed (one PNG per
      collective x ranks; the Python bcast variants get bcast-py-...);
  barrier-<mode>.png                    barrier latency per system and ranks;
  summary.png                           one panel per collective, every
      system and rank count (solid 2 ranks, dashed 4...), copy limit in grey.
Bandwidth is the size column (bytes per rank's block, see coll_loop.h) over
the latency, in GB/s (10^9 bytes per second).
"""
import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perfdata as pd  # noqa: E402

COLORS = {"numpush": "#d62728", "openmpi": "#1f77b4", "mpich": "#2ca02c",
          "numpush-py-bcast": "#d62728", "numpush-py-Bcast": "#ff7f0e",
          "mpi4py-pickle": "#9467bd", "mpi4py-pkl5": "#1f77b4", "mpi4py-Bcast": "#2ca02c"}
STYLES = ["-", "--", ":", "-."]


def size_label(x, _pos=None):
    n = int(round(x))
    if n >= 1 << 20:
        return "%gM" % (n / (1 << 20))
    if n >= 1 << 10:
        return "%gK" % (n / (1 << 10))
    return "%d" % n


def series(rows, system, coll, ranks, mode):
    pts = sorted((r["bytes"], r["avg_us"]) for r in rows if r["system"] == system and
                 r["collective"] == coll and r["ranks"] == ranks and r["mode"] == mode
                 and r["bytes"] > 0)
    return [p[0] for p in pts], [p[1] for p in pts]


def copy_series(memcpy, coll, ranks, sizes):
    xs, ys = [], []
    for b in sorted(sizes):
        v = pd.copy_limit_us(memcpy, coll, ranks, b)
        if v is not None:
            xs.append(b)
            ys.append(v)
    return xs, ys


def style_axes(ax, ylabel, sizes=None):
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    if sizes:
        ticks = sorted(sizes)
        if len(ticks) > 8:  # every other size, so the labels stay apart
            ticks = ticks[::2]
        ax.set_xticks(ticks)
        ax.minorticks_off()
    ax.xaxis.set_major_formatter(FuncFormatter(size_label))
    ax.set_xlabel("bytes per rank's block")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)


def one_plot(rows, memcpy, coll, ranks, mode, systems, path, title):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    sizes = set()
    for s in systems:
        xs, ys = series(rows, s, coll, ranks, mode)
        if not xs:
            continue
        sizes.update(xs)
        c = COLORS.get(s)
        ax1.plot(xs, ys, "o-", color=c, label=pd.label(s), ms=3.5)
        ax2.plot(xs, [b / y / 1e3 for b, y in zip(xs, ys)], "o-", color=c, label=pd.label(s),
                 ms=3.5)
    cx, cy = copy_series(memcpy, coll, ranks, sizes)
    if cx:
        f = pd.copy_factor(coll, ranks)
        lab = "copy limit (%s memcpy)" % ("%g x" % f if f != 1 else "1")
        ax1.plot(cx, cy, "k--", lw=1.2, label=lab)
        ax2.plot(cx, [b / y / 1e3 for b, y in zip(cx, cy)], "k--", lw=1.2, label=lab)
    style_axes(ax1, "latency (us, lower is better)", sizes)
    style_axes(ax2, "bandwidth (GB/s, higher is better)", sizes)
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def barrier_plot(rows, mode, path):
    pts = sorted(((r["ranks"], r["system"]), r["avg_us"]) for r in rows
                 if r["collective"] == "barrier" and r["mode"] == mode)
    if not pts:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    labels = ["%s\n%d ranks" % (pd.label(s), n) for (n, s), _ in pts]
    ax.bar(range(len(pts)), [v for _, v in pts],
           color=[COLORS.get(s, "grey") for (_, s), _ in pts])
    ax.set_xticks(range(len(pts)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("latency (us)")
    ax.set_title("barrier (%s)" % mode)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def summary_plot(rows, memcpy, mode, path):
    colls = [c for c in pd.COLL_ORDER if c != "barrier" and any(
        r["collective"] == c and r["mode"] == mode and not pd.is_python(r["system"])
        for r in rows)]
    has_py = any(pd.is_python(r["system"]) and r["mode"] == mode for r in rows)
    panels = [(c, False) for c in colls] + ([("bcast", True)] if has_py else [])
    if not panels:
        return False
    ncol = min(4, len(panels))
    nrow = (len(panels) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.6 * nrow), squeeze=False)
    all_ranks = sorted({r["ranks"] for r in rows if r["system"] not in ("memcpy", "iperf3")})
    for i, (coll, py) in enumerate(panels):
        ax = axes[i // ncol][i % ncol]
        systems = pd.ordered({r["system"] for r in rows if r["collective"] == coll and
                              r["mode"] == mode and pd.is_python(r["system"]) == py and
                              r["system"] not in ("memcpy", "iperf3")}, pd.PY_ORDER if py else pd.C_ORDER)
        sizes = set()
        for j, n in enumerate(all_ranks):
            ls = STYLES[j % len(STYLES)]
            for s in systems:
                xs, ys = series(rows, s, coll, n, mode)
                if xs:
                    sizes.update(xs)
                    ax.plot(xs, ys, ls, color=COLORS.get(s), lw=1.3,
                            label="%s, %d ranks" % (pd.label(s), n))
            cx, cy = copy_series(memcpy, coll, n, sizes)
            if cx:
                ax.plot(cx, cy, ls, color="grey", lw=1, label="copy limit, %d ranks" % n)
        style_axes(ax, "latency (us)", sizes)
        ax.set_title("%s%s" % (coll, " (Python)" if py else ""))
        ax.legend(fontsize=6)
    for k in range(len(panels), nrow * ncol):
        axes[k // ncol][k % ncol].axis("off")
    fig.suptitle("numpush and its peers, %s data: latency against size (log-log)" % mode)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_all(rows, out):
    os.makedirs(out, exist_ok=True)
    # Across hosts the limit is the link, not memcpy: draw none.
    memcpy = {} if any(pd.is_net(r["system"]) for r in rows) else pd.memcpy_table(rows)
    written = []
    modes = sorted({r["mode"] for r in rows if r["system"] not in ("memcpy", "iperf3")})
    for (coll, ranks, mode), systems in pd.groups(rows):
        if coll == "barrier":
            continue
        for py in (False, True):
            syss = pd.ordered({s for s in systems if pd.is_python(s) == py},
                              pd.PY_ORDER if py else pd.C_ORDER)
            if not syss:
                continue
            name = "%s%s-%dranks-%s.png" % (coll, "-py" if py else "", ranks, mode)
            title = "%s%s, %d ranks, %s data" % (coll, " (Python)" if py else "", ranks, mode)
            one_plot(rows, memcpy, coll, ranks, mode, syss, os.path.join(out, name), title)
            written.append(name)
    for mode in modes:
        if barrier_plot(rows, mode, os.path.join(out, "barrier-%s.png" % mode)):
            written.append("barrier-%s.png" % mode)
    # The summary shows fixed data when there is any, else the first mode.
    main_mode = "fixed" if "fixed" in modes else (modes[0] if modes else None)
    if main_mode and summary_plot(rows, memcpy, main_mode, os.path.join(out, "summary.png")):
        written.append("summary.png")
    return written


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", help="results.csv or the directory holding it")
    ap.add_argument("--out", default=None, help="directory for the PNGs (default <results>/plots)")
    o = ap.parse_args()
    rows = pd.load(o.results)
    if not rows:
        sys.exit("plot: no rows in %s" % o.results)
    base = o.results if os.path.isdir(o.results) else os.path.dirname(o.results)
    out = o.out or os.path.join(base, "plots")
    written = plot_all(rows, out)
    print("plot: %d PNGs in %s" % (len(written), out))


if __name__ == "__main__":
    main()
