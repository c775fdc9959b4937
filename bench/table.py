#!/usr/bin/env python3
"""Print bench/run's results as tables: one per (collective, ranks, mode),
a row per size, each system's latency, the copy limit, and the first system's
ratio to each other one.

  python3 bench/table.py bench/results/latest [--mode fixed]

Latency is avg_us: the average over iterations, averaged over ranks, in
microseconds.  ratio = numpush / peer: below 1 numpush is faster.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perfdata as pd  # noqa: E402


def tables(rows, mode=None, out=sys.stdout):
    idx = pd.index(rows)
    memcpy = pd.memcpy_table(rows)
    for (coll, ranks, m), systems in pd.groups(rows):
        if mode and m != mode:
            continue
        for family in (pd.C_ORDER, pd.PY_ORDER):
            py = family is pd.PY_ORDER
            syss = pd.ordered({s for s in systems if pd.is_python(s) == py}, family)
            if not syss:
                continue
            primary = syss[0] if syss[0] in ("numpush", "numpush-py-bcast") else None
            peers = [s for s in syss if s != primary] if primary else []
            sizes = sorted({r["bytes"] for r in rows if r["collective"] == coll and
                            r["ranks"] == ranks and r["mode"] == m and r["system"] in syss})
            has_copy = pd.copy_factor(coll, ranks) is not None and bool(memcpy)
            head = ["bytes"] + [pd.label(s) for s in syss]
            if has_copy:
                head.append("copy limit")
            if primary:
                head += ["%s/%s" % (pd.label(primary).split()[0], pd.label(p)) for p in peers]
                if has_copy:
                    head.append("/copy")
            body = []
            for b in sizes:
                lat = {s: idx.get((s, coll, ranks, b, m)) for s in syss}
                lat = {s: (r["avg_us"] if r else None) for s, r in lat.items()}
                line = [pd.fmt_bytes(b)] + [pd.fmt_us(lat[s]) for s in syss]
                lim = pd.copy_limit_us(memcpy, coll, ranks, b) if has_copy else None
                if has_copy:
                    line.append(pd.fmt_us(lim))
                if primary:
                    line += [pd.fmt_ratio(lat[primary], lat[p]) for p in peers]
                    if has_copy:
                        line.append(pd.fmt_ratio(lat[primary], lim))
                body.append(line)
            widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
            title = "%s, %d ranks, %s data%s: latency in us (avg over iterations and ranks)" % (
                coll, ranks, m, " (Python)" if py else "")
            if primary:
                title += "; ratio = %s / peer, below 1 is faster" % pd.label(primary)
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
