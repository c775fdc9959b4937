"""numpush.shm: shared arrays and frames with multiprocessing pools (fork and
spawn), robust locks, and segment lifetime (nothing left behind after a
normal exit, an exception, or SIGKILL of the creator).

These tests run in one process (they start their own workers); under
numpush-run with several ranks, every rank runs them independently."""
import contextlib
import gc
import multiprocessing as mp
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import numpy.testing as npt
import pandas as pd
import pandas.testing as pdt
import pytest

from numpush import shm
from numpush.shm import LockOwnerDied, SharedArray, SharedDataFrame

METHODS = [m for m in ("fork", "spawn") if m in mp.get_all_start_methods()]


@contextlib.contextmanager
def _pool(method, n):
    """A pool that ends by letting its workers finish (close, join), not by
    Pool.__exit__'s terminate: one run in twelve with both cores busy hung
    in terminate's join of a worker it had just sent SIGTERM."""
    pool = mp.get_context(method).Pool(n)
    try:
        yield pool
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def _memfds(label):
    """This process's descriptors on numpush memfds whose name has label."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if label in os.readlink(f"/proc/self/fd/{fd}"):
                out.append(fd)
        except OSError:
            pass
    return out


def _maps_with(label):
    """Processes (pid list) that map a memfd whose name contains label."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/maps") as f:
                if label in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def _dev_shm():
    """numpush's names in /dev/shm (other programs come and go there)."""
    try:
        return {n for n in os.listdir("/dev/shm") if n.startswith(("nps", "npw", "numpush"))}
    except OSError:  # pragma: no cover
        return set()


# ------------------------------------------------------------ workers (module level for spawn)

def _fill_block(arr, i, rows):
    arr[i * rows:(i + 1) * rows] = i + 1
    return os.getpid()


def _sum_all(arr):
    return float(arr.sum())


def _frame_block(sdf, a, b):
    x = sdf["x"]
    out = sdf["out"]
    with sdf.lock(rows=slice(a, b), write=True):
        out[a:b] = x[a:b] * 2 + sdf["i"][a:b]
    return b - a


def _frame_check(sdf):
    f = sdf.frame
    return float((f["out"] - (f["x"] * 2 + f["i"])).abs().sum())


def _increment(counter, n):
    for _ in range(n):
        with counter.lock(rows=0, write=True):
            v = counter[0]
            time.sleep(0)   # let a broken lock show itself
            counter[0] = v + 1
    return n


def _read_together(flags, k, n):
    """Hold a read lock and wait inside until n readers are in at once."""
    with flags.lock(rows=0, write=False):
        flags[1 + k] = 1
        deadline = time.time() + 20
        while flags[1:1 + n].sum() < n and time.time() < deadline:
            time.sleep(0.001)
        return int(flags[1:1 + n].sum())


def _hold_write_forever(arr):
    span = arr.lock(rows=0, write=True)
    span.acquire()
    arr[0] = -1            # a half-done update
    arr[1] = 1             # tell the parent we hold it
    while True:
        time.sleep(1)


def _lock_once(arr):
    try:
        with arr.lock(rows=0, write=True, timeout=20):
            return "ok"
    except LockOwnerDied:
        return "died"


# ------------------------------------------------------------ sharing

@pytest.mark.parametrize("method", METHODS)
def test_array_workers_see_each_others_writes(method):
    rows, blocks = 1000, 4
    arr = SharedArray((rows * blocks, 3), "f8")
    with _pool(method, 2) as pool:
        pids = pool.starmap(_fill_block, [(arr, i, rows) for i in range(blocks)])
        sums = pool.map(_sum_all, [arr] * 4)
    assert all(p != os.getpid() for p in pids)
    want = sum((i + 1) * rows * 3 for i in range(blocks))
    assert sums == [want] * 4
    assert arr.sum() == want


@pytest.mark.parametrize("method", METHODS)
def test_frame_workers_write_shared_column(method):
    n = 20000
    df = pd.DataFrame({"x": np.arange(n, dtype="f8"), "i": np.arange(n, dtype="i8"),
                       "out": np.zeros(n), "s": [str(k % 7) for k in range(n)]},
                      index=pd.RangeIndex(10, 10 + n))
    sdf = SharedDataFrame.from_frame(df, block_rows=1000)
    assert sdf.shared_columns == ["x", "i", "out"]
    bounds = [(a, min(a + 3000, n)) for a in range(0, n, 3000)]
    with _pool(method, 2) as pool:
        assert sum(pool.starmap(_frame_block, [(sdf, a, b) for a, b in bounds])) == n
        assert pool.map(_frame_check, [sdf, sdf]) == [0.0, 0.0]
    want = df.assign(out=df["x"] * 2 + df["i"])
    pdt.assert_frame_equal(sdf.frame, want)


def test_pickle_is_a_handle_not_the_data():
    arr = SharedArray.from_array(np.arange(1_000_000, dtype="f8"))
    blob = pickle.dumps(arr)
    assert len(blob) < 1000
    again = pickle.loads(blob)
    assert np.shares_memory(again, arr) or again.ctypes.data != arr.ctypes.data
    again[5] = -1
    assert arr[5] == -1
    view = arr[10:20]
    assert pickle.loads(pickle.dumps(view))[0] == 10
    private = arr + 1   # new memory: pickles as an ordinary array
    assert type(private) is np.ndarray
    sdf = SharedDataFrame.from_frame(pd.DataFrame({"a": np.arange(100_000.0)},
                                                  index=np.arange(100_000) * 2))
    blob = pickle.dumps(sdf)
    assert len(blob) < 2000
    pdt.assert_frame_equal(pickle.loads(blob).frame, sdf.frame)


def test_from_array_keeps_values_and_order():
    a = np.asfortranarray(np.arange(12, dtype="i4").reshape(3, 4))
    s = SharedArray.from_array(a)
    npt.assert_array_equal(s, a)
    assert s.dtype == a.dtype and s.flags.f_contiguous
    e = SharedArray((0,), "f8")
    assert e.size == 0 and pickle.loads(pickle.dumps(e)).size == 0


def test_frame_index_and_dtypes_round_trip():
    df = pd.DataFrame({"t": pd.date_range("2024", periods=5, freq="h"),
                       "b": [True, False, True, False, True],
                       "c": np.arange(5, dtype="c16"),
                       "o": [{"k": 1}, None, "x", 2, 3.0]},
                      index=pd.Index([5, 3, 1, 2, 4], name="key"))
    sdf = SharedDataFrame.from_frame(df)
    assert sdf.shared_columns == ["t", "b", "c"]
    pdt.assert_frame_equal(pickle.loads(pickle.dumps(sdf)).frame, df)
    pdt.assert_frame_equal(sdf.to_frame(), df)


# ------------------------------------------------------------ locks

@pytest.mark.parametrize("method", METHODS)
def test_lock_excludes_writers(method):
    counter = SharedArray((1,), "i8")
    with _pool(method, 3) as pool:
        assert sum(pool.starmap(_increment, [(counter, 300)] * 3)) == 900
    assert counter[0] == 900


def test_lock_admits_readers_together():
    flags = SharedArray((4,), "i8")
    with _pool("fork", 3) as pool:
        seen = pool.starmap(_read_together, [(flags, k, 3) for k in range(3)])
    assert seen == [3, 3, 3]


def test_lock_timeout_and_misuse():
    arr = SharedArray((10,), "f8", block_rows=5)
    with arr.lock(rows=slice(0, 5), write=True):
        # Another block is free; the same block is not (same thread: misuse).
        with arr.lock(rows=slice(5, 10), write=True):
            pass
        with pytest.raises(shm.Error):
            arr.lock(rows=2, write=True, timeout=0).acquire()
    ctx = mp.get_context("fork")
    with arr.lock(rows=1, write=True):
        with ctx.Pool(1) as pool:
            r = pool.apply(_try_lock, (arr,))
    assert r == "timeout"
    with pytest.raises(ValueError):
        arr.lock(rows=slice(0, 10, 2))
    with pytest.raises(IndexError):
        arr.lock(rows=10)


def _try_lock(arr):
    try:
        with arr.lock(rows=0, write=False, timeout=0.05):
            return "got"
    except TimeoutError:
        return "timeout"


@pytest.mark.parametrize("method", METHODS)
def test_sigkilled_writer_does_not_wedge_others(method):
    arr = SharedArray((2,), "i8", block_rows=2)
    ctx = mp.get_context(method)
    victim = ctx.Process(target=_hold_write_forever, args=(arr,))
    victim.start()
    try:
        deadline = time.time() + 30
        while arr[1] != 1 and time.time() < deadline:
            time.sleep(0.01)
        assert arr[1] == 1
        with ctx.Pool(3) as pool:
            pending = pool.map_async(_lock_once, [arr] * 3)
            time.sleep(0.2)               # let them block on the lock
            t0 = time.time()
            os.kill(victim.pid, signal.SIGKILL)
            results = pending.get(timeout=30)
            took = time.time() - t0
    finally:
        victim.kill()
        victim.join()
    assert sorted(results) == ["died", "ok", "ok"]
    assert took < 10
    assert _lock_once(arr) == "ok"        # reported once only
    assert arr[0] == -1


# ------------------------------------------------------------ lifetime

def test_no_leak_in_process_after_close():
    label = f"numpush-{os.getpid()}-"
    gc.collect()
    assert _memfds(label) == []
    shm_before = _dev_shm()
    arr = SharedArray((1000,), "f8")
    sdf = SharedDataFrame.from_frame(pd.DataFrame({"a": np.arange(1000.0)}))
    with _pool("fork", 2) as pool:
        pool.map(_sum_all, [arr, arr])
    with _pool("spawn", 1) as pool:
        pool.map(_frame_check_simple, [sdf])
    assert _maps_with(label) == [os.getpid()]
    assert len(_memfds(label)) >= 2   # ours (mmap holds a duplicate of each)
    arr.close()
    sdf.close()
    del arr, sdf
    gc.collect()
    assert _memfds(label) == []
    assert os.getpid() not in _maps_with(label)
    assert _dev_shm() <= shm_before


def _frame_check_simple(sdf):
    return float(sdf["a"].sum())


_CREATOR = textwrap.dedent("""
    import os, sys, time, subprocess, pickle
    import numpy as np, pandas as pd
    from numpush.shm import SharedDataFrame
    sdf = SharedDataFrame.from_frame(pd.DataFrame({"a": np.arange(100000.0)}))
    # A separate process attaches (spawn-like) and reports the sum.
    child = subprocess.run([sys.executable, "-c",
        "import pickle,sys; s=pickle.loads(sys.stdin.buffer.read()); print(s['a'].sum())"],
        input=pickle.dumps(sdf), capture_output=True, check=True)
    assert float(child.stdout) == 4999950000.0, child.stdout
    print("ready", flush=True)
    sys.stdin.readline()   # the parent has looked at our mappings
    mode = sys.argv[1]
    if mode == "raise":
        raise RuntimeError("creator fails on purpose")
    if mode == "kill":
        time.sleep(600)
""")


@pytest.mark.parametrize("mode", ["exit", "raise", "kill"])
def test_nothing_left_after_creator_ends(mode):
    shm_before = _dev_shm()
    p = subprocess.Popen([sys.executable, "-c", _CREATOR, mode], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        label = f"numpush-{p.pid}-"
        # The creator waits for this line before it ends: under load it
        # could otherwise be gone before its mappings were looked at.
        assert p.pid in _maps_with(label)
        p.stdin.write("go\n")
        p.stdin.close()
        if mode == "kill":
            p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    p.stdout.close()
    p.stderr.close()
    assert p.returncode == {"exit": 0, "raise": 1, "kill": -signal.SIGKILL}[mode]
    assert _maps_with(label) == []
    assert _dev_shm() <= shm_before


def test_attach_after_creator_gone_is_a_clear_error():
    code = ("import pickle,sys,numpy as np; from numpush.shm import SharedArray;"
            "sys.stdout.buffer.write(pickle.dumps(SharedArray.from_array(np.ones(3))))")
    blob = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    with pytest.raises(shm.Error) as info:
        pickle.loads(blob)
    assert info.value.name == "ERR_PEER"


# ------------------------------------------------------------ communicators

def test_shared_array_over_a_communicator():
    import numpush
    comm = numpush.COMM_WORLD
    arr = shm.shared_array(comm, (comm.size, 4), "i8")
    arr[comm.rank] = comm.rank + 1
    comm.Barrier()
    npt.assert_array_equal(arr[:, 0], np.arange(1, comm.size + 1))
    with arr.lock(rows=comm.rank, write=True):
        arr[comm.rank, 1] = 7
    comm.Barrier()
    assert (arr[:, 1] == 7).all()
