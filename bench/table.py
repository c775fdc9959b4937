#!/usr/bin/env python3
"""Print bench/run's results as tables: one per (collective, ranks, mode),
a row per size, each system's latency, the copy limit, and the first system's
ratio to each other one.

  python3 bench/table.py bench/results/latest [--mode fixed]

Latency is avg_us: the average over iterations, averaged over ranks, in
microseconds.  ratio = numpush / peer: below 1 numpush is faster.

The Python rows (bench/bench_mpi4py.py) get tables of their own: ndarrays,
and the DataFrame set (systems ending in "-frame"), whose first ratio
columns are the goals of issue 7: bcast(df) / numpush Bcast of the same
bytes and bcast(df) / mpi4py pkl5 bcast.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perfdata as pd  # noqa: E402


def py_kind(system):
    """(frame?, order, short label) of a Python system of bench_mpi4py.py:
    numpush-py-<c> (object method), numpush-py-<C> (buffer method),
    mpi4py-pickle, mpi4py-pkl5, mpi4py-<C>; "-frame" ends the names of the
    DataFrame set."""
    frame = system.endswith("-frame")
    base = system[: -len("-frame")] if frame else system
    if base.startswith("numpush-py-"):
        meth = base[len("numpush-py-"):]
        return frame, (0 if meth[:1].islower() else 1), "numpush " + meth
    if base in ("mpi4py-pickle", "mpi4py-pkl5"):
        return frame, (2 if base.endswith("pickle") else 3), None
    return frame, 4, "mpi4py " + base[len("mpi4py-"):]


def py_label(system, coll):
    frame, order, short = py_kind(system)
    if short is None:
        short = "mpi4py %s (pickle)" % coll if order == 2 else "mpi4py pkl5 %s" % coll
    return short


def py_tag(system):
    """A short name for a ratio column's header."""
    frame, order, short = py_kind(system)
    if order == 2:
        return "pickle"
    if order == 3:
        return "pkl5"
    return short.split()[-1] if order in (0, 1) else short.replace(" ", "-")


def py_copy_limit(memcpy, coll, ranks, nbytes):
    """bench_mpi4py.py's bytes are the whole object for scatter and gather
    (each rank takes in bytes/R, the root bytes*(R-1)/R); for bcast and
    allreduce they are what every rank holds, as for the C rows.  Sizes
    missing from the memcpy run are scaled from the nearest larger one."""
    f = {"scatter": 1.0 / ranks, "gather": (ranks - 1.0) / ranks}.get(coll)
    if f is None:
        f = pd.copy_factor(coll, ranks)
    if f is None or not memcpy:
        return None
    if nbytes in memcpy:
        return memcpy[nbytes] * f
    bigger = [b for b in memcpy if b >= nbytes]
    if not bigger:
        return None
    b = min(bigger)
    return memcpy[b] * nbytes / b * f


def fmt_bytes(n):
    """As perfdata's, but sizes that are not whole MiB above 1 MiB (the 1e6 x
    8 float64 frame is 64000000 B) in MiB with one decimal."""
    if n >= 1 << 20 and n % (1 << 20):
        return "%.1f MiB" % (n / float(1 << 20))
    s = pd.fmt_bytes(n)
    if s.endswith(" B") and n >= 1 << 10:
        s = "%.1f KiB" % (n / float(1 << 10))
    return s


def tables(rows, mode=None, out=sys.stdout):
    idx = pd.index(rows)
    memcpy = pd.memcpy_table(rows)
    link = pd.link_us_per_mib(rows)
    n = pd.rounds(rows)
    nrounds = ", median of %d rounds" % n if n > 1 else ""
    for (coll, ranks, m), systems in pd.groups(rows):
        if mode and m != mode:
            continue
        families = [("C", pd.ordered({s for s in systems if not pd.is_python(s)}, pd.C_ORDER))]
        for frame in (False, True):
            syss = sorted((s for s in systems if pd.is_python(s) and py_kind(s)[0] == frame),
                          key=lambda s: (py_kind(s)[1], s))
            families.append(("frame" if frame else "py", syss))
        for family, syss in families:
            if not syss:
                continue
            py = family != "C"
            label = (lambda s: py_label(s, coll)) if py else pd.label
            if py:
                primary = syss[0] if py_kind(syss[0])[1] == 0 else None
            else:
                primary = syss[0] if syss[0].startswith("numpush") else None
            peers = [s for s in syss if s != primary] if primary else []
            sizes = sorted({r["bytes"] for r in rows if r["collective"] == coll and
                            r["ranks"] == ranks and r["mode"] == m and r["system"] in syss})
            net = not py and any(pd.is_net(s) for s in syss)
            if py:
                limit = lambda b: py_copy_limit(memcpy, coll, ranks, b)  # noqa: E731
            elif net:
                limit = lambda b: pd.link_limit_us(link, coll, b)  # noqa: E731
            else:
                limit = lambda b: pd.copy_limit_us(memcpy, coll, ranks, b)  # noqa: E731
            if net:
                has_copy = pd.link_limit_us(link, coll, 1) is not None
            else:
                has_copy = pd.copy_factor(coll, ranks) is not None and bool(memcpy)
            head = ["bytes"] + [label(s) for s in syss]
            if has_copy:
                head.append("link limit" if net else "copy limit")
            if primary:
                if py:
                    head += ["%s/%s" % (coll, py_tag(p)) for p in peers]
                else:
                    head += ["%s/%s" % (label(primary).split()[0], label(p)) for p in peers]
                if has_copy:
                    head.append("/link" if net else "/copy")
            body = []
            for b in sizes:
                lat = {s: idx.get((s, coll, ranks, b, m)) for s in syss}
                lat = {s: (r["avg_us"] if r else None) for s, r in lat.items()}
                line = [fmt_bytes(b)] + [pd.fmt_us(lat[s]) for s in syss]
                lim = limit(b) if has_copy else None
                if has_copy:
                    line.append(pd.fmt_us(lim))
                if primary:
                    line += [pd.fmt_ratio(lat[primary], lat[p]) for p in peers]
                    if has_copy:
                        line.append(pd.fmt_ratio(lat[primary], lim))
                body.append(line)
            widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
            what = {"C": "", "py": " (Python)",
                    "frame": " (Python, DataFrame; uppercase methods: an ndarray of the "
                             "same bytes)"}[family]
            title = "%s, %d ranks, %s data%s: latency in us (avg over iterations and ranks%s)" % (
                coll, ranks, m, what, nrounds)
            if primary:
                title += "; ratio = %s / peer, below 1 is faster" % label(primary)
            print(title, file=out)
            print("  ".join(h.rjust(w) for h, w in zip(head, widths)), file=out)
            for line in body:
                print("  ".join(c.rjust(w) for c, w in zip(line, widths)), file=out)
            print(file=out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", help="results.csv or the directory holding it")
    ap.add_argument("--mode", choices=("fixed", "vary"), default=None)
    o = ap.parse_args()
    rows = pd.load(o.results)
    if not rows:
        sys.exit("table: no rows in %s" % o.results)
    tables(rows, o.mode)


if __name__ == "__main__":
    main()
