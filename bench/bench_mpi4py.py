#!/usr/bin/env python3
"""Python broadcast benchmark: mpi4py against numpush's Python API.

The loop has the shape of bench/coll_loop.h (shared/BENCHMARKS.md, OSU's
method): per size, warm-up calls, then a timed loop where each iteration times
one call and a barrier separates iterations; the average over iterations,
averaged over ranks, and the maximum over ranks.  Sizes are bytes of the
broadcast array (a uint8 ndarray; with --object frame, a float64 DataFrame of
8 columns and bytes/64 rows).

Variants (the "system" column):
  --api mpi4py   mpi4py-pickle  comm.bcast(obj)                  (pickle)
                 mpi4py-pkl5    mpi4py.util.pkl5 Intracomm.bcast (pickle 5,
                                out-of-band buffers)
                 mpi4py-Bcast   comm.Bcast(ndarray)              (buffer, in place)
  --api numpush  numpush-py-bcast  numpush.COMM_WORLD.bcast(obj)
                 numpush-py-Bcast  numpush.COMM_WORLD.Bcast(ndarray)
The numpush variant is written against the mpi4py-like API of DESIGN.md; when
`import numpush` fails it prints why on stderr and exits 0 (skipped).

Run under the matching launcher, for example
  mpirun.openmpi -n 2 python bench/bench_mpi4py.py --api mpi4py --header
  numpush-run -n 2 python bench/bench_mpi4py.py --api numpush
Output on rank 0, one CSV line per point:
  system,collective,ranks,bytes,avg_us,max_us,iters,mode
"""
import argparse
import sys
import time

DEFAULT_SIZES = "8,64,512,4K,16K,64K,256K,1M,4M,16M,64M"
LARGE = 8192


def parse_size(text):
    t = text.strip()
    mult = 1
    for suffix, m in (("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30),
                      ("KB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30),
                      ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30),
                      ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30)):
        if t.endswith(suffix):
            t, mult = t[: -len(suffix)], m
            break
    return int(t) * mult


def options(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--api", choices=("mpi4py", "numpush"), default="mpi4py")
    p.add_argument("--variants", default=None,
                   help="comma-separated: pickle,pkl5,Bcast for mpi4py; bcast,Bcast for numpush")
    p.add_argument("-s", "--sizes", default=DEFAULT_SIZES)
    p.add_argument("-i", "--iters", type=int, default=1000, help="timed iterations up to 8 KiB")
    p.add_argument("-I", "--iters-large", type=int, default=100, help="timed iterations above 8 KiB")
    p.add_argument("--min-iters", type=int, default=5)
    p.add_argument("-w", "--warmup", type=int, default=100)
    p.add_argument("-W", "--warmup-large", type=int, default=10)
    p.add_argument("-b", "--budget", type=float, default=0.5, help="seconds per point (0: no limit)")
    p.add_argument("--vary", action="store_true", help="new content before every iteration")
    p.add_argument("--object", choices=("array", "frame"), default="array")
    p.add_argument("--header", action="store_true")
    o = p.parse_args(argv)
    o.sizes = [max(8, parse_size(s)) for s in o.sizes.split(",") if s]
    return o


class Variant:
    """One way of broadcasting: how to build the root's object, how to call."""

    def __init__(self, name, call, in_place):
        self.name = name
        self.call = call          # call(obj_or_None, buf) -> received object
        self.in_place = in_place  # uppercase: every rank passes its own buffer


def make_variants(o):
    if o.api == "mpi4py":
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
        wanted = (o.variants or "pickle,pkl5,Bcast").split(",")
        vs = []
        for w in wanted:
            if w == "pickle":
                vs.append(Variant("mpi4py-pickle", lambda obj, buf: comm.bcast(obj, root=0), False))
            elif w == "pkl5":
                from mpi4py.util import pkl5
                pcomm = pkl5.Intracomm(comm)
                vs.append(Variant("mpi4py-pkl5", lambda obj, buf: pcomm.bcast(obj, root=0), False))
            elif w == "Bcast":
                vs.append(Variant("mpi4py-Bcast", lambda obj, buf: comm.Bcast(buf, root=0), True))
            else:
                sys.exit("bench_mpi4py: unknown mpi4py variant %r" % w)
        return comm, vs
    try:
        import numpush
        comm = numpush.COMM_WORLD
    except Exception as e:  # the bindings are not there yet, or not built
        print("bench_mpi4py: numpush Python API not available (%s: %s); skipped"
              % (type(e).__name__, e), file=sys.stderr)
        sys.exit(0)
    wanted = (o.variants or "bcast,Bcast").split(",")
    vs = []
    for w in wanted:
        if w == "bcast":
            vs.append(Variant("numpush-py-bcast", lambda obj, buf: comm.bcast(obj, root=0), False))
        elif w == "Bcast":
            vs.append(Variant("numpush-py-Bcast", lambda obj, buf: comm.Bcast(buf, root=0), True))
        else:
            sys.exit("bench_mpi4py: unknown numpush variant %r" % w)
    return comm, vs


def make_payload(o, nbytes):
    """The root's object and a check of what a rank received, for one size."""
    import numpy as np
    if o.object == "frame":
        import pandas as pd
        rows = max(1, nbytes // 64)
        frame = pd.DataFrame(np.zeros((rows, 8)), columns=["c%d" % i for i in range(8)])

        def fill(gen):
            frame.iloc[:, :] = float(gen % 251 + 1)
            return frame

        def ok(got, gen):
            v = float(gen % 251 + 1)
            return got.shape == frame.shape and got.iat[0, 0] == v and got.iat[rows - 1, 7] == v
        return fill, ok
    arr = np.zeros(nbytes, dtype=np.uint8)

    def fill(gen):
        arr.fill(gen % 251 + 1)
        return arr

    def ok(got, gen):
        v = gen % 251 + 1
        return len(got) == nbytes and got[0] == v and got[-1] == v and got[nbytes // 2] == v
    return fill, ok


def point(comm, v, o, nbytes, seq):
    """One (variant, size) point.  Returns (avg_us, max_us, iters, bad, seq)."""
    import numpy as np
    rank, size = comm.rank, comm.size
    fill, ok = make_payload(o, nbytes)
    # Uppercase variants receive into a buffer of their own on every rank.
    recv = np.zeros(nbytes, dtype=np.uint8) if v.in_place else None
    bad = False

    # The root's object; refilled (outside the timer) only with --vary.
    root_obj = fill(seq + 1) if rank == 0 else None

    def one_call():
        buf = (root_obj if rank == 0 else recv) if v.in_place else None
        got = v.call(root_obj, buf)
        return buf if v.in_place else got

    seq += 1
    comm.Barrier()
    t = time.perf_counter()
    got = one_call()
    first = time.perf_counter() - t
    comm.Barrier()
    bad |= not ok(got, seq)

    # Every rank must take the same decisions: rank 0's timings decide.
    warm = o.warmup_large if nbytes > LARGE else o.warmup
    if o.budget > 0 and first > 0:
        warm = max(1, min(warm, int(0.2 * o.budget / first)))
    warm = comm.bcast(warm, root=0)
    w0 = time.perf_counter()
    for _ in range(warm):
        if o.vary:
            seq += 1
            if rank == 0:
                root_obj = fill(seq)
        got = one_call()
        bad |= o.vary and not ok(got, seq)
        comm.Barrier()
    per_iter = (time.perf_counter() - w0) / warm if warm else first
    iters = o.iters_large if nbytes > LARGE else o.iters
    if o.budget > 0 and per_iter > 0:
        fit = o.budget / per_iter
        if fit < iters:
            iters = max(min(o.min_iters, iters), int(fit))
    iters = comm.bcast(iters, root=0)

    # Timed loop: only the call is inside the timer.
    total = 0.0
    for _ in range(iters):
        if o.vary:
            seq += 1
            if rank == 0:
                root_obj = fill(seq)
        buf = (root_obj if rank == 0 else recv) if v.in_place else None
        t = time.perf_counter()
        got = v.call(root_obj, buf)
        total += time.perf_counter() - t
        if v.in_place:
            got = buf
        bad |= o.vary and not ok(got, seq)
        comm.Barrier()
    bad |= not ok(got, seq)
    mine = total / iters
    all_ = comm.gather((mine, bool(bad)), root=0)
    if rank != 0:
        return None, None, iters, False, seq
    avg = sum(a for a, _ in all_) / size * 1e6
    mx = max(a for a, _ in all_) * 1e6
    return avg, mx, iters, any(b for _, b in all_), seq


def main(argv=None):
    o = options(sys.argv[1:] if argv is None else argv)
    comm, variants = make_variants(o)
    mode = "vary" if o.vary else "fixed"
    if comm.rank == 0 and o.header:
        print("system,collective,ranks,bytes,avg_us,max_us,iters,mode", flush=True)
    failures = 0
    seq = 0
    for v in variants:
        for nbytes in o.sizes:
            avg, mx, iters, bad, seq = point(comm, v, o, nbytes, seq)
            if comm.rank != 0:
                continue
            if bad:
                failures += 1
                print("%s: bcast %d B with %d ranks delivered wrong data; point dropped"
                      % (v.name, nbytes, comm.size), file=sys.stderr, flush=True)
            else:
                print("%s,bcast,%d,%d,%.3f,%.3f,%d,%s"
                      % (v.name, comm.size, nbytes, avg, mx, iters, mode), flush=True)
    return 3 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
