"""Shared reading of bench/run's results.csv for table.py, plot.py, report.py.

Only the standard library, so the table prints even where matplotlib is not
installed.  Columns: system,collective,ranks,bytes,avg_us,max_us,iters,mode.

The copy limit (shared/BENCHMARKS.md): within a node a collective cannot beat
the memcpy time of the bytes one rank must take in, measured in the same run
(bench_memcpy, page-aligned source and destination).  Per collective, in
multiples of one memcpy of `bytes`, with R ranks:
  bcast, scatter                1       each receiver copies its block once
  gather, allgather, alltoall   R - 1   the busiest rank takes in R-1 blocks
  allreduce, reduce             (R+1)/2 read R inputs, write one result once,
                                        where one memcpy reads one and writes one
  barrier                       none
The ranks copy in parallel on separate cores, so this is a floor for the
busiest rank, not for the sum of all copies.

Across namespace hosts (bench/run --hosts) the limit is the link instead:
iperf3 between two hosts, measured before and after the run (rows of system
iperf3, collective link, avg_us = microseconds per MiB).  A broadcast must
carry its bytes over at least one link once, so its link limit is bytes at
the mean iperf3 bandwidth; other collectives get none.
"""
import csv
import os

C_ORDER = ["numpush", "openmpi", "mpich",
           # bench/run --hosts: numpush per transport (--fabrics), then Open MPI over tcp
           "numpush-net", "numpush-net-tcp", "numpush-net-tcp-system", "numpush-net-zmq", "numpush-net-ofi-rxm",
           "numpush-net-ofi-net", "numpush-net-ofi-sockets", "openmpi-tcp"]
PY_ORDER = ["numpush-py-bcast", "numpush-py-Bcast", "mpi4py-pickle", "mpi4py-pkl5", "mpi4py-Bcast"]
COLL_ORDER = ["barrier", "bcast", "scatter", "gather", "allreduce", "reduce", "allgather",
              "alltoall"]
LABELS = {"numpush": "numpush", "openmpi": "Open MPI", "mpich": "MPICH",
          "numpush-py-bcast": "numpush bcast", "numpush-py-Bcast": "numpush Bcast",
          "mpi4py-pickle": "mpi4py bcast (pickle)", "mpi4py-pkl5": "mpi4py pkl5 bcast",
          "mpi4py-Bcast": "mpi4py Bcast", "copy": "copy limit"}


def label(system):
    return LABELS.get(system, system)


def is_python(system):
    return system.startswith("mpi4py") or system.startswith("numpush-py")


def load(path):
    """Rows of a results.csv (or of the results.csv in a directory), one per
    (system, collective, ranks, bytes, mode).  A point measured in several
    rounds (bench/run --repeat) becomes one row whose avg_us and max_us are
    the medians of its rounds, with "rounds" saying how many there were and
    "low"/"high" the fastest and slowest round's avg_us."""
    if os.path.isdir(path):
        path = os.path.join(path, "results.csv")
    seen = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            try:
                row = {"system": r["system"], "collective": r["collective"],
                       "ranks": int(r["ranks"]), "bytes": int(r["bytes"]),
                       "avg_us": float(r["avg_us"]), "max_us": float(r["max_us"]),
                       "iters": int(r["iters"]), "mode": r["mode"]}
            except (KeyError, ValueError, TypeError):
                continue  # a header repeated, or a line cut by a timeout
            key = (row["system"], row["collective"], row["ranks"], row["bytes"], row["mode"])
            seen.setdefault(key, []).append(row)
    rows = []
    for rounds in seen.values():
        row = dict(rounds[0])
        avgs = [x["avg_us"] for x in rounds]
        row["avg_us"] = median(avgs)
        row["max_us"] = median([x["max_us"] for x in rounds])
        row["iters"] = sum(x["iters"] for x in rounds)
        row["rounds"] = len(rounds)
        row["low"], row["high"] = min(avgs), max(avgs)
        rows.append(row)
    return rows


def median(values):
    v = sorted(values)
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2.0


def rounds(rows):
    """How many rounds the numpush and peer points were measured in (the
    most common count; 1 for a run without --repeat)."""
    counts = {}
    for r in rows:
        if r["system"] not in ("memcpy", "iperf3"):
            counts[r["rounds"]] = counts.get(r["rounds"], 0) + 1
    return max(counts, key=counts.get) if counts else 1


def copy_factor(coll, ranks):
    if coll in ("bcast", "scatter"):
        return 1.0
    if coll in ("gather", "allgather", "alltoall"):
        return float(max(ranks - 1, 1))
    if coll in ("allreduce", "reduce"):
        return (ranks + 1) / 2.0
    return None


def memcpy_table(rows, mode="aligned"):
    """bytes -> microseconds of one memcpy."""
    return {r["bytes"]: r["avg_us"] for r in rows
            if r["system"] == "memcpy" and r["mode"] == mode}


def copy_limit_us(memcpy, coll, ranks, nbytes):
    f = copy_factor(coll, ranks)
    if f is None or nbytes not in memcpy:
        return None
    return memcpy[nbytes] * f


def is_net(system):
    """A system measured across namespace hosts."""
    return system.startswith("numpush-net") or system.endswith("-tcp")


def link_us_per_mib(rows):
    """Mean iperf3 time of one MiB over the hosts' link, or None."""
    v = [r["avg_us"] for r in rows if r["system"] == "iperf3"]
    return sum(v) / len(v) if v else None


def link_limit_us(us_per_mib, coll, nbytes):
    if us_per_mib is None or coll != "bcast":
        return None
    return us_per_mib * nbytes / float(1 << 20)


def index(rows):
    """(system, collective, ranks, bytes, mode) -> row; the last one wins."""
    return {(r["system"], r["collective"], r["ranks"], r["bytes"], r["mode"]): r for r in rows}


def ordered(systems, order):
    known = [s for s in order if s in systems]
    return known + sorted(s for s in systems if s not in order)


def groups(rows):
    """The (collective, ranks, mode) groups present, in a stable order, and
    for each its C systems and Python systems."""
    out = {}
    for r in rows:
        if r["system"] in ("memcpy", "iperf3"):
            continue
        key = (r["collective"], r["ranks"], r["mode"])
        out.setdefault(key, set()).add(r["system"])
    def rank_key(k):
        c = k[0]
        return (COLL_ORDER.index(c) if c in COLL_ORDER else 99, c, k[1], k[2])
    return [(k, out[k]) for k in sorted(out, key=rank_key)]


def fmt_us(v):
    if v is None:
        return "-"
    if v < 0.1:
        return "%.3f" % v
    if v < 10:
        return "%.2f" % v
    if v < 1000:
        return "%.1f" % v
    return "%.0f" % v


def fmt_bytes(n):
    if n == 0:
        return "0"
    for unit, m in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= m and n % m == 0:
            return "%d %s" % (n // m, unit)
    return "%d B" % n


def fmt_ratio(a, b):
    if a is None or b is None or b <= 0:
        return "-"
    r = a / b
    return "%.2f" % r if r < 100 else "%.0f" % r
