#!/usr/bin/env python3
"""Regenerate the README's Performance section from a bench/run results dir.

  python3 bench/report.py bench/results/latest --readme README.md

Replaces everything between the lines `<!-- perf:begin -->` and
`<!-- perf:end -->` of the README (both must be there; nothing else is
touched) with: the machine (from the run's meta.json: lscpu, nproc, memory),
the command, the date, a compact table (latency of each system, the copy limit,
numpush's ratio to each peer) and the summary plot, copied to docs/perf/
beside the README.  Every figure comes from the CSV; nothing is typed by hand.
A run across namespace hosts (bench/run --hosts) goes to its own block,
`<!-- perf-net:begin -->` ... `<!-- perf-net:end -->`, with a table per
transport against Open MPI over tcp and the iperf3 link limit.
"""
import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perfdata as pd  # noqa: E402

BEGIN = "<!-- perf:begin -->"
END = "<!-- perf:end -->"
# A run across namespace hosts (bench/run --hosts) fills a block of its own.
NET_BEGIN = "<!-- perf-net:begin -->"
NET_END = "<!-- perf-net:end -->"
NET_SIZES = "8,4096,65536,262144,1048576,4194304,16777216,67108864"
DEFAULT_COLLS = "bcast,scatter,gather,allreduce,reduce,allgather,alltoall"
DEFAULT_SIZES = "8,65536,1048576,67108864"


def md_table(head, body):
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in body]
    return out


def c_table(rows, mode, colls, sizes):
    idx = pd.index(rows)
    memcpy = pd.memcpy_table(rows)
    present = {r["system"] for r in rows if not pd.is_python(r["system"]) and r["system"] not in ("memcpy", "iperf3")}
    systems = pd.ordered(present, pd.C_ORDER)
    peers = [s for s in systems if s != "numpush"]
    head = ["collective", "ranks", "size"] + [pd.label(s) for s in systems] + ["copy limit"]
    if "numpush" in systems:
        head += ["numpush / %s" % pd.label(p) for p in peers] + ["numpush / copy"]
    ranks_all = sorted({r["ranks"] for r in rows if r["system"] in present})
    body = []
    for c in colls:
        for n in ranks_all:
            for b in sizes:
                lat = {s: idx.get((s, c, n, b, mode)) for s in systems}
                lat = {s: (r["avg_us"] if r else None) for s, r in lat.items()}
                if all(v is None for v in lat.values()):
                    continue
                lim = pd.copy_limit_us(memcpy, c, n, b)
                line = [c, str(n), pd.fmt_bytes(b)] + [pd.fmt_us(lat[s]) for s in systems]
                line.append(pd.fmt_us(lim))
                if "numpush" in systems:
                    line += [pd.fmt_ratio(lat["numpush"], lat[p]) for p in peers]
                    line.append(pd.fmt_ratio(lat["numpush"], lim))
                body.append(line)
    return md_table(head, body) if body else []


def net_table(rows, mode, colls, sizes):
    """bench/run --hosts: each numpush transport and Open MPI over tcp; the
    first transport's ratio to Open MPI and to the link limit (iperf3, for
    bcast), and every other transport's ratio to the first."""
    idx = pd.index(rows)
    link = pd.link_us_per_mib(rows)
    present = {r["system"] for r in rows if pd.is_net(r["system"])}
    systems = pd.ordered(present, pd.C_ORDER)
    ours = [s for s in systems if s.startswith("numpush")]
    if not ours:
        return []
    first, others = ours[0], ours[1:]
    peers = [s for s in systems if not s.startswith("numpush")]
    short = lambda s: s[len("numpush-net-"):] if s.startswith("numpush-net-") else s  # noqa: E731
    head = ["collective", "ranks", "size"] + [short(s) for s in systems] + ["link limit"]
    head += ["%s / %s" % (short(first), short(p)) for p in peers]
    head += ["%s / %s" % (short(o), short(first)) for o in others]
    head.append("%s / link" % short(first))
    body = []
    for c in colls:
        for n in sorted({r["ranks"] for r in rows if r["system"] in present}):
            for b in sizes:
                lat = {s: idx.get((s, c, n, b, mode)) for s in systems}
                lat = {s: (r["avg_us"] if r else None) for s, r in lat.items()}
                if all(v is None for v in lat.values()):
                    continue
                lim = pd.link_limit_us(link, c, b)
                line = [c, str(n), pd.fmt_bytes(b)] + [pd.fmt_us(lat[s]) for s in systems]
                line.append(pd.fmt_us(lim))
                line += [pd.fmt_ratio(lat[first], lat[p]) for p in peers]
                line += [pd.fmt_ratio(lat[o], lat[first]) for o in others]
                line.append(pd.fmt_ratio(lat[first], lim))
                body.append(line)
    return md_table(head, body) if body else []


# What each Python table times (bench/bench_mpi4py.py, --object array).
PY_WHAT = {
    "bcast": "bcast of a float64 ndarray of the given size",
    "scatter": "scatter of a float64 ndarray of the given size, split by rows (each rank "
               "gets size / ranks)",
    "gather": "gather of float64 ndarrays into one of the given size at the root (numpush: "
              "gather(concat=True); mpi4py: gather, then np.concatenate at the root, inside "
              "the timer)",
    "allreduce": "allreduce (SUM) of a float64 ndarray of the given size",
}


def py_systems(coll):
    """The Python systems of one collective in table order, with labels:
    numpush's object and buffer methods, then mpi4py's pickle, pkl5 and
    buffer methods (bench_mpi4py.py's names; bcast keeps its historical
    ones, which are the same pattern)."""
    upper = coll[0].upper() + coll[1:]
    return [("numpush-py-" + coll, "numpush " + coll), ("numpush-py-" + upper, "numpush " + upper),
            ("mpi4py-pickle", "mpi4py %s (pickle)" % coll), ("mpi4py-pkl5", "mpi4py pkl5 " + coll),
            ("mpi4py-" + upper, "mpi4py " + upper)]


def py_tables(rows, mode, sizes):
    """One table per Python collective in the run: latency of numpush's and
    mpi4py's variants at each (ranks, size)."""
    idx = pd.index(rows)
    out = []
    for coll in pd.COLL_ORDER:
        mine = [r for r in rows if pd.is_python(r["system"]) and r["collective"] == coll]
        if not mine:
            continue
        present = {r["system"] for r in mine}
        systems = [(s, lab) for s, lab in py_systems(coll) if s in present]
        head = ["ranks", "size"] + [lab for _, lab in systems]
        body = []
        for n in sorted({r["ranks"] for r in mine}):
            # scatter and gather move a whole number of rows per rank: the
            # bytes measured are the first at or above the size asked for.
            have = sorted({r["bytes"] for r in mine if r["ranks"] == n})
            asked = sorted(sizes)
            for k, want in enumerate(asked):
                below = asked[k + 1] if k + 1 < len(asked) else float("inf")
                b = next((h for h in have if want <= h < below), None)
                vals = [idx.get((s, coll, n, b, mode)) for s, _ in systems]
                if b is None or all(v is None for v in vals):
                    continue
                body.append([str(n), pd.fmt_bytes(b)] + [pd.fmt_us(v["avg_us"] if v else None)
                                                         for v in vals])
        if body:
            out += ["", "Python, %s:" % PY_WHAT.get(coll, coll), ""] + md_table(head, body)
    return out


def section(rows, meta, mode, colls, sizes, plot_rel, net=False):
    lines = [NET_BEGIN if net else BEGIN, "",
             "Generated by `bench/report.py` from the results of one `bench/run`; do not edit "
             "by hand.", ""]
    lines.append("- Machine: %s" % meta.get("machine", "unknown"))
    lines.append("- Command: `%s`" % meta.get("command", "bench/run"))
    lines.append("- Date: %s" % meta.get("date", "unknown"))
    if meta.get("commit"):
        lines.append("- Commit: `%s`" % meta["commit"])
    if meta.get("load_before"):
        lines.append("- Load average before the run: %s" % meta["load_before"])
    n = pd.rounds(rows)
    if n > 1:
        lines.append("- Rounds: %d, the systems interleaved within each; every figure is the "
                     "median of its %d rounds" % (n, n))
    if net:
        lines += ["",
                  "Latency in microseconds (OSU's method, %s data), ranks spread evenly over "
                  "network-namespace hosts joined by veth pairs through a bridge, all on this "
                  "machine's cores; one column per numpush transport, then Open MPI over tcp "
                  "(`--mca pml ob1 --mca btl tcp,self`).  The link limit is the time of the "
                  "broadcast's bytes at the iperf3 bandwidth between two of the hosts, "
                  "measured before and after the run.  A ratio below 1 means the left one is "
                  "faster." % mode, ""]
    else:
        lines += ["",
                  "Latency in microseconds: the time of one call, averaged over iterations and "
                  "over ranks (OSU's method, shared/BENCHMARKS.md); %s data.  The copy limit is "
                  "the memcpy time of the bytes the busiest rank must take in, measured in the "
                  "same run.  A ratio below 1 means numpush is faster." % mode, ""]
    if plot_rel:
        lines += ["![numpush and its peers: latency against size](%s)" % plot_rel, ""]
    if net:
        lines += net_table(rows, mode, colls, sizes)
        lines += ["", NET_END]
        return "\n".join(lines)
    lines += c_table(rows, mode, colls, sizes)
    lines += py_tables(rows, mode, sizes)
    lines += ["", END]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", help="a bench/run results directory (results.csv, meta.json)")
    ap.add_argument("--readme", required=True, help="the README to update in place")
    ap.add_argument("--docs", default=None,
                    help="where the summary plot goes (default: docs/perf beside the README)")
    ap.add_argument("--mode", default="fixed", choices=("fixed", "vary"))
    ap.add_argument("--colls", default=DEFAULT_COLLS)
    ap.add_argument("--sizes", default=None,
                    help="bytes, comma-separated (default %s; across hosts %s)" %
                    (DEFAULT_SIZES, NET_SIZES))
    ap.add_argument("--stdout", action="store_true", help="print the section, change nothing")
    o = ap.parse_args()

    rows = pd.load(o.results)
    if not rows:
        sys.exit("report: no rows in %s" % o.results)
    meta = {}
    meta_path = os.path.join(o.results, "meta.json")
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
    modes = {r["mode"] for r in rows if r["system"] not in ("memcpy", "iperf3")}
    mode = o.mode if o.mode in modes else sorted(modes)[0]

    net = any(pd.is_net(r["system"]) for r in rows)
    begin, end = (NET_BEGIN, NET_END) if net else (BEGIN, END)
    plot_name = "summary-net.png" if net else "summary.png"
    readme_dir = os.path.dirname(os.path.abspath(o.readme))
    docs = o.docs or os.path.join(readme_dir, "docs", "perf")
    summary = os.path.join(o.results, "plots", "summary.png")
    if not os.path.exists(summary):
        try:
            import plot
            plot.plot_all(rows, os.path.join(o.results, "plots"))
        except ImportError as e:
            print("report: no summary plot (%s); the section will have none" % e, file=sys.stderr)
    plot_rel = None
    if os.path.exists(summary):
        if not o.stdout:
            os.makedirs(docs, exist_ok=True)
            shutil.copyfile(summary, os.path.join(docs, plot_name))
        plot_rel = os.path.relpath(os.path.join(docs, plot_name), readme_dir)

    colls = [c for c in o.colls.split(",") if c]
    sizes = [int(s) for s in (o.sizes or (NET_SIZES if net else DEFAULT_SIZES)).split(",") if s]
    text = section(rows, meta, mode, colls, sizes, plot_rel, net)
    if o.stdout:
        print(text)
        return
    with open(o.readme) as f:
        readme = f.read()
    b, e = readme.find(begin), readme.find(end)
    if b < 0 or e < b:
        sys.exit("report: %s has no '%s' ... '%s' block; add those two lines where the "
                 "Performance section goes" % (o.readme, begin, end))
    new = readme[:b] + text + readme[e + len(end):]
    with open(o.readme, "w") as f:
        f.write(new)
    print("report: updated %s (plot in %s)" % (o.readme, docs if plot_rel else "none"))


if __name__ == "__main__":
    main()
