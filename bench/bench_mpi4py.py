#!/usr/bin/env python3
"""Python collectives benchmark: mpi4py against numpush's Python API.

The loop has the shape of bench/coll_loop.h (shared/BENCHMARKS.md, OSU's
method): per point, warm-up calls, then a timed loop where each iteration
times one call and a barrier separates iterations; the average over
iterations, averaged over ranks, and the maximum over ranks.

Collectives (--colls, default bcast) and what "bytes" means for each:
  bcast      the root's object                     (every rank receives bytes)
  scatter    the root's object, split by rows      (each rank receives bytes/R)
  gather     the gathered result at the root       (each rank sends bytes/R)
  allreduce  each rank's ndarray, SUM              (every rank gets bytes back)
The object (--object): "array", a float64 ndarray of bytes/8 elements; or
"frame", a float64 pandas DataFrame of 8 columns and bytes/64 rows (a 1e6 x 8
frame is --sizes 64000000, 61 MiB).  allreduce always reduces an ndarray
(issue 7: allreduce(array)); with --object frame it is the frame's values as a
(rows, 8) ndarray.  For scatter and gather the row count is rounded down to a
multiple of the rank count, so every variant moves the same bytes; the CSV's
bytes column holds the bytes actually moved.

Variants (the "system" column; "<c>" is the collective, "<C>" its uppercase
name; with --object frame every system name ends in "-frame"):
  --api mpi4py   mpi4py-pickle    comm.<c>(obj)                  (pickle)
                 mpi4py-pkl5      mpi4py.util.pkl5 Intracomm.<c>  (pickle 5,
                                  out-of-band buffers; pkl5 has no allreduce of
                                  its own, so there is no pkl5 allreduce row)
                 mpi4py-<C>       comm.<C>(ndarray, ...)         (buffers, in place)
  --api numpush  numpush-py-<c>   numpush.COMM_WORLD.<c>(obj)
                 numpush-py-<C>   numpush.COMM_WORLD.<C>(ndarray, ...)
(for bcast these are the historical names numpush-py-bcast, numpush-py-Bcast,
mpi4py-Bcast).  --variants picks a subset: lower,upper for numpush;
pickle,pkl5,upper for mpi4py (uppercase collective names such as Bcast are
accepted for upper).

What is inside the timer, per collective:
  bcast      the call; the uppercase variants broadcast a plain ndarray of the
             same bytes (the frame's values as a C-ordered (rows, 8) array).
  scatter    the call; for mpi4py, which wants one item per rank, also the
             root's split of the frame by rows (iloc views, as numpush does
             inside its scatter).  Uppercase: Scatter of the (rows, 8) array.
  gather     numpush: gather(part, root=0, concat=True), which returns the
             concatenated frame (or array) at the root.  mpi4py (pickle, pkl5):
             gather(part, root=0) and then pd.concat (np.concatenate for
             arrays) at the root, INSIDE the timer, so both sides deliver the
             same object.  Uppercase: Gather into a (rows, 8) array.
  allreduce  allreduce(arr, op=SUM) / Allreduce(arr, out, op=SUM).
Building the objects and refilling them (--vary) are outside the timer.

The numpush variant is written against the mpi4py-like API of DESIGN.md; when
`import numpush` fails it prints why on stderr and exits 0 (skipped).

Run under the matching launcher, for example
  mpirun.openmpi -n 2 python bench/bench_mpi4py.py --api mpi4py --header
  numpush-run -n 2 python bench/bench_mpi4py.py --api numpush
  numpush-run -n 2 python bench/bench_mpi4py.py --api numpush \\
      --colls bcast,scatter,gather,allreduce --object frame --sizes 64000000
Output on rank 0, one CSV line per point:
  system,collective,ranks,bytes,avg_us,max_us,iters,mode
"""
import argparse
import sys
import time

DEFAULT_SIZES = "8,64,512,4K,16K,64K,256K,1M,4M,16M,64M"
COLLS = ("bcast", "scatter", "gather", "allreduce")
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
    return int(float(t) * mult)


def options(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--api", choices=("mpi4py", "numpush"), default="mpi4py")
    p.add_argument("--colls", default="bcast",
                   help="comma-separated, of %s (default bcast)" % ",".join(COLLS))
    p.add_argument("--variants", default=None,
                   help="comma-separated: pickle,pkl5,upper for mpi4py; lower,upper for numpush")
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
    o.colls = [c.strip() for c in o.colls.split(",") if c.strip()]
    for c in o.colls:
        if c not in COLLS:
            p.error("unknown collective %r (have %s)" % (c, ", ".join(COLLS)))
    return o


# ------------------------------------------------------------------ variants

class Api:
    """The communicator objects and ops one --api works with."""

    def __init__(self, o):
        self.name = o.api
        if o.api == "mpi4py":
            from mpi4py import MPI
            self.comm = MPI.COMM_WORLD
            self.SUM = MPI.SUM
            self._pkl5 = None
        else:
            try:
                import numpush
                self.comm = numpush.COMM_WORLD
                self.SUM = numpush.SUM
            except Exception as e:  # the bindings are not there yet, or not built
                print("bench_mpi4py: numpush Python API not available (%s: %s); skipped"
                      % (type(e).__name__, e), file=sys.stderr)
                sys.exit(0)

    def pkl5(self):
        if self._pkl5 is None:
            from mpi4py.util import pkl5
            self._pkl5 = pkl5.Intracomm(self.comm)
        return self._pkl5


def wanted_kinds(o, coll):
    """[(kind, system name)] for one collective: kind is pickle, pkl5 or
    lower (object methods) or upper (buffer methods)."""
    upper_name = coll[0].upper() + coll[1:]
    if o.api == "mpi4py":
        default = "pickle,pkl5,upper"
    else:
        default = "lower,upper"
    out = []
    for w in (o.variants or default).split(","):
        w = w.strip()
        if not w:
            continue
        if w[0].isupper() and w.lower() in COLLS + ("upper",):
            w = "upper"
        elif o.api == "numpush" and w in COLLS + ("lower",):
            w = "lower"
        if o.api == "mpi4py" and w not in ("pickle", "pkl5", "upper"):
            sys.exit("bench_mpi4py: unknown mpi4py variant %r (pickle, pkl5, upper)" % w)
        if o.api == "numpush" and w not in ("lower", "upper"):
            sys.exit("bench_mpi4py: unknown numpush variant %r (lower, upper)" % w)
        if w == "pkl5" and coll == "allreduce":
            continue  # pkl5.Intracomm has no allreduce: it would be the pickle one again
        if o.api == "mpi4py":
            name = {"pickle": "mpi4py-pickle", "pkl5": "mpi4py-pkl5",
                    "upper": "mpi4py-" + upper_name}[w]
        else:
            name = "numpush-py-" + (upper_name if w == "upper" else coll)
        if o.object == "frame":
            name += "-frame"
        if (w, name) not in out:
            out.append((w, name))
    return out


# ------------------------------------------------------------------ payloads

def base_value(gen):
    return float(gen % 251 + 1)


def rank_value(gen, r):
    """What rank r's part holds in generation gen (exact in float64)."""
    return base_value(gen) + 256.0 * r


class Case:
    """One (collective, variant, size) point: the objects every rank holds,
    how to refill them (outside the timer), the timed call, and the check of
    what it returned."""

    def __init__(self, api, o, coll, kind, nbytes):
        import numpy as np
        self.np = np
        self.api, self.o, self.coll, self.kind = api, o, coll, kind
        comm = api.comm
        self.rank, self.size = comm.rank, comm.size
        self.frame = o.object == "frame"
        self.width = 8 if self.frame else 1
        lead = max(1, nbytes // (8 * self.width))          # rows (frame) or elements (array)
        if coll in ("scatter", "gather"):
            lead = max(self.size, lead - lead % self.size)  # equal parts for every variant
        self.lead = lead
        self.shape = (lead, 8) if self.frame else (lead,)
        self.nbytes = lead * self.width * 8
        bounds = [0]
        for r in range(self.size):
            bounds.append(bounds[-1] + lead // self.size + (r < lead % self.size))
        self.bounds = bounds
        if self.frame:
            import pandas as pd
            self.pd = pd
            self.columns = ["c%d" % i for i in range(8)]
        self.obj_comm = api.pkl5() if kind == "pkl5" else comm
        getattr(self, "setup_" + coll)()

    # -- helpers

    def make_obj(self, rows, first_row=0):
        """A fresh object of `rows` rows: an ndarray, or for frames a
        DataFrame (its one float64 block C-ordered, as pandas builds it)."""
        np = self.np
        if self.frame and self.kind != "upper":
            a = np.zeros((rows, 8))
            return self.pd.DataFrame(a, columns=self.columns,
                                     index=self.pd.RangeIndex(first_row, first_row + rows))
        return np.zeros((rows, 8) if self.frame else (rows,))

    @staticmethod
    def set_rows(obj, lo, hi, v):
        if hasattr(obj, "iloc"):
            obj.iloc[lo:hi, :] = v
        else:
            obj[lo:hi] = v

    def corners(self, got, lo=0, hi=None):
        """The first and last element of rows lo..hi of got (and its shape)."""
        hi = len(got) if hi is None else hi
        if hasattr(got, "iat"):
            return got.shape, float(got.iat[lo, 0]), float(got.iat[hi - 1, got.shape[1] - 1])
        flat = got.reshape(len(got), -1)
        return got.shape, float(flat[lo, 0]), float(flat[hi - 1, -1])

    # -- bcast: root's object to every rank

    def setup_bcast(self):
        self.obj = self.make_obj(self.lead) if (self.rank == 0 or self.kind == "upper") else None
        c, api = self.obj_comm, self.api
        if self.kind == "upper":
            obj = self.obj
            self.call = lambda: (c.Bcast(obj, root=0), obj)[1]
        else:
            self.call = lambda: c.bcast(self.obj if self.rank == 0 else None, root=0)

    def fill_bcast(self, gen):
        if self.rank == 0:
            self.set_rows(self.obj, 0, self.lead, base_value(gen))

    def ok_bcast(self, got, gen):
        v = base_value(gen)
        return got is not None and self.corners(got) == (self.shape, v, v)

    # -- scatter: the root's object split by rows, rank r gets part r

    def setup_scatter(self):
        c, n, b = self.obj_comm, self.size, self.bounds
        if self.kind == "upper":
            self.obj = self.make_obj(self.lead) if self.rank == 0 else None
            recv = self.make_obj(self.lead // n)
            self.call = lambda: (c.Scatter(self.obj, recv, root=0), recv)[1]
            return
        self.obj = self.make_obj(self.lead) if self.rank == 0 else None
        if self.api.name == "numpush":
            self.call = lambda: c.scatter(self.obj, root=0)
        else:
            # mpi4py scatters a sequence of one item per rank: the root's split
            # (views, as numpy's array_split and numpush's scatter make) is
            # part of the call.
            def split():
                if self.rank != 0:
                    return None
                if hasattr(self.obj, "iloc"):
                    return [self.obj.iloc[b[r]:b[r + 1]] for r in range(n)]
                return [self.obj[b[r]:b[r + 1]] for r in range(n)]
            self.call = lambda: c.scatter(split(), root=0)

    def fill_scatter(self, gen):
        if self.rank == 0:
            for r in range(self.size):
                self.set_rows(self.obj, self.bounds[r], self.bounds[r + 1], rank_value(gen, r))

    def ok_scatter(self, got, gen):
        v = rank_value(gen, self.rank)
        rows = self.bounds[self.rank + 1] - self.bounds[self.rank]
        shape = (rows, 8) if self.frame else (rows,)
        if got is None or self.corners(got) != (shape, v, v):
            return False
        if hasattr(got, "index"):  # the index comes along
            return got.index[0] == self.bounds[self.rank]
        return True

    # -- gather: every rank's part, one concatenated object at the root

    def setup_gather(self):
        c, n, b, r = self.obj_comm, self.size, self.bounds, self.rank
        self.part = self.make_obj(b[r + 1] - b[r], b[r])
        if self.kind == "upper":
            recv = self.make_obj(self.lead) if r == 0 else None
            part = self.part
            self.call = lambda: (c.Gather(part, recv, root=0), recv)[1]
        elif self.api.name == "numpush":
            self.call = lambda: c.gather(self.part, root=0, concat=True)
        else:
            # mpi4py returns a list at the root; the concatenation that gives
            # the same result as numpush's concat=True is timed with the call.
            if self.frame:
                concat = self.pd.concat
            else:
                concat = self.np.concatenate

            def call():
                parts = c.gather(self.part, root=0)
                return concat(parts) if parts is not None else None
            self.call = call

    def fill_gather(self, gen):
        self.set_rows(self.part, 0, len(self.part), rank_value(gen, self.rank))

    def ok_gather(self, got, gen):
        if self.rank != 0:
            return got is None
        if got is None or got.shape != self.shape:
            return False
        for r in range(self.size):
            v = rank_value(gen, r)
            if self.corners(got, self.bounds[r], self.bounds[r + 1])[1:] != (v, v):
                return False
        return True

    # -- allreduce: every rank's ndarray, elementwise SUM at every rank

    def setup_allreduce(self):
        np, c, op = self.np, self.obj_comm, self.api.SUM
        self.arr = np.zeros(self.shape)  # always an ndarray (issue 7: allreduce(array))
        if self.kind == "upper":
            out = np.empty(self.shape)
            self.call = lambda: (c.Allreduce(self.arr, out, op=op), out)[1]
        else:
            self.call = lambda: c.allreduce(self.arr, op=op)

    def fill_allreduce(self, gen):
        self.arr.fill(rank_value(gen, self.rank))

    def ok_allreduce(self, got, gen):
        want = sum(rank_value(gen, r) for r in range(self.size))
        return got is not None and self.corners(got) == (self.shape, want, want)

    # -- dispatch

    def fill(self, gen):
        getattr(self, "fill_" + self.coll)(gen)

    def ok(self, got, gen):
        try:
            return bool(getattr(self, "ok_" + self.coll)(got, gen))
        except Exception as e:  # noqa: BLE001  a wrong shape or type is wrong data
            print("bench_mpi4py: rank %d: %s check: %s: %s"
                  % (self.rank, self.coll, type(e).__name__, e), file=sys.stderr)
            return False


# ------------------------------------------------------------------ the loop

def point(api, o, coll, kind, nbytes, seq):
    """One (collective, variant, size) point.
    Returns (avg_us, max_us, iters, bad, seq, bytes)."""
    comm = api.comm
    rank, size = comm.rank, comm.size
    case = Case(api, o, coll, kind, nbytes)
    bad = False

    # The objects' content; refilled (outside the timer) only with --vary.
    seq += 1
    case.fill(seq)
    comm.Barrier()
    t = time.perf_counter()
    got = case.call()
    first = time.perf_counter() - t
    comm.Barrier()
    bad |= not case.ok(got, seq)
    got = None

    # Every rank must take the same decisions: rank 0's timings decide.
    warm = o.warmup_large if case.nbytes > LARGE else o.warmup
    if o.budget > 0 and first > 0:
        warm = max(1, min(warm, int(0.2 * o.budget / first)))
    warm = comm.bcast(warm, root=0)
    w0 = time.perf_counter()
    for _ in range(warm):
        if o.vary:
            seq += 1
            case.fill(seq)
        got = case.call()
        bad |= o.vary and not case.ok(got, seq)
        got = None
        comm.Barrier()
    per_iter = (time.perf_counter() - w0) / warm if warm else first
    iters = o.iters_large if case.nbytes > LARGE else o.iters
    if o.budget > 0 and per_iter > 0:
        fit = o.budget / per_iter
        if fit < iters:
            iters = max(min(o.min_iters, iters), int(fit))
    iters = comm.bcast(iters, root=0)

    # Timed loop: only the call is inside the timer.
    total = 0.0
    for i in range(iters):
        if o.vary:
            seq += 1
            case.fill(seq)
        t = time.perf_counter()
        got = case.call()
        total += time.perf_counter() - t
        if o.vary or i == iters - 1:
            bad |= not case.ok(got, seq)
        got = None  # the result goes before the next call, as in a real loop
        comm.Barrier()
    mine = total / iters
    all_ = comm.gather((mine, bool(bad)), root=0)
    if rank != 0:
        return None, None, iters, False, seq, case.nbytes
    avg = sum(a for a, _ in all_) / size * 1e6
    mx = max(a for a, _ in all_) * 1e6
    return avg, mx, iters, any(b for _, b in all_), seq, case.nbytes


def main(argv=None):
    o = options(sys.argv[1:] if argv is None else argv)
    api = Api(o)
    comm = api.comm
    mode = "vary" if o.vary else "fixed"
    if comm.rank == 0 and o.header:
        print("system,collective,ranks,bytes,avg_us,max_us,iters,mode", flush=True)
    failures = 0
    seq = 0
    for coll in o.colls:
        for kind, name in wanted_kinds(o, coll):
            for nbytes in o.sizes:
                avg, mx, iters, bad, seq, moved = point(api, o, coll, kind, nbytes, seq)
                if comm.rank != 0:
                    continue
                if bad:
                    failures += 1
                    print("%s: %s %d B with %d ranks delivered wrong data; point dropped"
                          % (name, coll, moved, comm.size), file=sys.stderr, flush=True)
                else:
                    print("%s,%s,%d,%d,%.3f,%.3f,%d,%s"
                          % (name, coll, comm.size, moved, avg, mx, iters, mode), flush=True)
    return 3 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
