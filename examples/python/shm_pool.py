"""A 1e7-row DataFrame built once, worked on by a multiprocessing Pool.

Shared: the frame's numeric columns live in one shared segment
(numpush.shm.SharedDataFrame); each task receives a handle of a few hundred
bytes, computes its block of rows and writes the result straight into a
shared column, under that block's write lock.

Copy per worker (the plain way): each task receives the frame pickled (here
the whole frame, as a Pool with a closure over the frame does), computes its
block and sends the result back to be stitched together.

    python examples/python/shm_pool.py [rows] [workers]
"""
import multiprocessing as mp
import os
import sys
import time

import numpy as np
import pandas as pd

from numpush.shm import SharedDataFrame


def compute(x, y):
    return np.sqrt(x * x + y * y) * np.sin(x)


def shared_task(sdf, a, b):
    with sdf.lock(rows=slice(a, b), write=True):
        sdf["out"][a:b] = compute(sdf["x"][a:b], sdf["y"][a:b])
    return b - a


def copy_task(df, a, b):
    return compute(df["x"].to_numpy()[a:b], df["y"].to_numpy()[a:b])


def main():
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 10_000_000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else min(4, os.cpu_count() or 1)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.random(n), "y": rng.random(n), "out": np.zeros(n)})
    blocks = [(a, min(a + n // (4 * workers), n)) for a in range(0, n, n // (4 * workers))]
    print(f"{n:,} rows, {df.memory_usage().sum() / 2**20:.0f} MiB, {workers} workers, "
          f"{len(blocks)} blocks")

    with mp.get_context("fork").Pool(workers) as pool:
        t0 = time.perf_counter()
        sdf = SharedDataFrame.from_frame(df, block_rows=blocks[0][1])
        t1 = time.perf_counter()
        assert sum(pool.starmap(shared_task, [(sdf, a, b) for a, b in blocks])) == n
        t_shared = time.perf_counter() - t1
        print(f"shared:          {t_shared:7.3f} s (+ {t1 - t0:.3f} s to copy the frame in once)")

        t0 = time.perf_counter()
        parts = pool.starmap(copy_task, [(df, a, b) for a, b in blocks])
        out = np.concatenate(parts)
        t_copy = time.perf_counter() - t0
        print(f"copy per worker: {t_copy:7.3f} s")

    assert np.array_equal(out, sdf["out"]), "the two ways disagree"
    print(f"speed-up of the shared frame: {t_copy / t_shared:.1f}x")
    sdf.close()


if __name__ == "__main__":
    main()
