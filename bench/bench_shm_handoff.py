"""Time to hand a large DataFrame to multiprocessing Pool workers, and the
cost of an uncontended numpush.shm lock.

Hand-off = one round in which every worker receives the frame and has it
ready to use (arrays mapped or unpickled), measured as the wall time of
pool.map over one task per worker, minus the same round with an empty
argument (the Pool's own overhead).  Three ways:
  shared   numpush.shm.SharedDataFrame (a handle is pickled)
  pickle   the DataFrame itself, pickled to every worker
  mp.shm   multiprocessing.shared_memory by hand: one SharedMemory block,
           columns copied in, (name, layout) sent, arrays rebuilt by workers

    python bench/bench_shm_handoff.py [--gib 1] [--workers 2,4] [--reps 5]
"""
import argparse
import multiprocessing as mp
import time
from multiprocessing import shared_memory

import numpy as np
import pandas as pd

from numpush.shm import SharedArray, SharedDataFrame


def ready_shared(sdf):
    f = sdf.frame
    return len(f)


def ready_frame(df):
    return len(df)


def ready_mpshm(spec):
    name, nrows, cols = spec
    seg = shared_memory.SharedMemory(name=name)
    arrays = {c: np.ndarray((nrows,), np.dtype(dt), buffer=seg.buf, offset=off)
              for c, off, dt in cols}
    n = len(pd.DataFrame(arrays, copy=False))
    del arrays
    seg.close()
    return n


def empty(_):
    return 0


def rounds(pool, fn, arg, workers, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        pool.map(fn, [arg] * workers, chunksize=1)
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_lock(n=200_000):
    arr = SharedArray((1,), "i8")
    span = arr.lock(rows=0, write=True)
    best = {}
    for label, fn in (("span.acquire+release", lambda: (span.acquire(), span.release())),
                      ("with span", None), ("with arr.lock(...)", None)):
        t0 = time.perf_counter()
        if label == "with span":
            for _ in range(n):
                with span:
                    pass
        elif label == "with arr.lock(...)":
            for _ in range(n):
                with arr.lock(rows=0, write=True):
                    pass
        else:
            for _ in range(n):
                span.acquire()
                span.release()
        best[label] = (time.perf_counter() - t0) / n
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, nargs="+", default=[0.0625, 1.0])
    ap.add_argument("--workers", default="2,4")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    for gib in args.gib:
        ncols = 16
        nrows = int(gib * 2**30 / 8 / ncols)
        df = pd.DataFrame({f"c{j}": np.full(nrows, float(j)) for j in range(ncols)})
        sdf = SharedDataFrame.from_frame(df)
        seg = shared_memory.SharedMemory(create=True, size=nrows * 8 * ncols)
        cols = []
        for j, c in enumerate(df.columns):
            np.ndarray((nrows,), "f8", buffer=seg.buf, offset=j * nrows * 8)[:] = df[c]
            cols.append((c, j * nrows * 8, "f8"))
        spec = (seg.name, nrows, cols)
        for workers in [int(w) for w in args.workers.split(",")]:
            with mp.get_context("fork").Pool(workers) as pool:
                pool.map(empty, range(workers))
                base = rounds(pool, empty, None, workers, args.reps)
                res = {}
                res["shared"] = rounds(pool, ready_shared, sdf, workers, args.reps)
                res["mp.shm"] = rounds(pool, ready_mpshm, spec, workers, args.reps)
                res["pickle"] = rounds(pool, ready_frame, df, workers, max(1, args.reps // 2))
            line = ", ".join(f"{k} {max(v - base, 0) * 1e3:8.2f} ms" for k, v in res.items())
            print(f"{gib:7.4f} GiB to {workers} workers: {line}   (pool round {base * 1e3:.2f} ms "
                  f"subtracted)", flush=True)
        seg.close()
        seg.unlink()
        sdf.close()
        del df
    for label, t in bench_lock().items():
        print(f"uncontended lock+unlock, {label}: {t * 1e9:.0f} ns")


if __name__ == "__main__":
    main()
