"""Round trips of arrays, Series and DataFrames through the object methods
(numpush only: these use numpush's extensions such as concat=True)."""
import numpy as np
import numpy.testing as npt
import pandas as pd
import pandas.testing as pdt
import pytest

import numpush
from numpush import codec

DTYPES = ["i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16",
          "?", "M8[ns]", "M8[us]", "m8[s]", "U7", "S5", ">i4", ">f8"]


def make(dt, shape, seed=0):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dt)
    n = int(np.prod(shape))
    if dt.kind == "b":
        a = rng.integers(0, 2, n).astype(dt)
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, n, dtype=dt.newbyteorder("=")).astype(dt)
    elif dt.kind in "fc":
        a = (rng.standard_normal(n) * 1e3).astype(dt)
        if dt.kind == "c":
            a = a + 1j * rng.standard_normal(n).astype(dt)
        if n:
            a[0] = np.nan
    elif dt.kind in "mM":
        a = rng.integers(0, 10**9, n).astype("i8").view(dt)
        if n:
            a[-1] = np.datetime64("NaT") if dt.kind == "M" else np.timedelta64("NaT")
    elif dt.kind == "U":
        a = np.array([f"s{i}é" for i in range(n)], dtype=dt)
    else:
        a = np.array([f"b{i}".encode() for i in range(n)], dtype=dt)
    return a.reshape(shape)


def same_array(a, b):
    assert type(a) is type(b)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert a.shape == b.shape
    npt.assert_array_equal(a, b)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 0), (5, 3)])
def test_bcast_array(comm, dt, shape):
    src = make(dt, shape, seed=1)
    got = comm.bcast(src if comm.rank == 0 else None, root=0)
    same_array(got, src)
    if comm.rank != 0 and src.nbytes:
        assert got.flags.writeable
        assert got.__array_interface__["data"][0] % 64 == 0 or got.size == 0


def test_bcast_fortran_and_sliced(comm):
    f = np.asfortranarray(make("f8", (40, 7)))
    got = comm.bcast(f, root=comm.size - 1)
    same_array(got, f)
    assert got.flags.f_contiguous
    s = make("i4", (50, 9))[::3, 1::2]
    got = comm.bcast(s, root=0)
    same_array(got, s)
    # The root gets its own object back (no copy); receivers get it compact.
    assert got is s if comm.rank == 0 else got.flags.c_contiguous


def index_kinds():
    n = 6
    return {
        "range": pd.RangeIndex(10, 10 + 2 * n, 2, name="r"),
        "int": pd.Index([5, 3, 9, 1, 0, -4], dtype="int64", name="i"),
        "uint": pd.Index(np.arange(n, dtype="u4")),
        "float": pd.Index(np.linspace(0, 1, n)),
        "string": pd.Index([f"row{i}" for i in range(n)], name="s"),
        "datetime": pd.date_range("2024-01-01", periods=n, freq="h", name="t"),
        "datetime_tz": pd.date_range("2024-03-30", periods=n, freq="D", tz="Europe/Paris"),
        "multi": pd.MultiIndex.from_arrays(
            [["a", "a", "b", "b", "c", "c"], [1, 2, 1, 2, 1, 2]], names=["k1", "k2"]),
        "multi_dt": pd.MultiIndex.from_product(
            [pd.date_range("2020", periods=2, tz="UTC"), ["x", "y", "z"]]),
    }


def mixed_frame(index):
    n = len(index)
    rng = np.random.default_rng(3)
    df = pd.DataFrame({
        "f8": rng.standard_normal(n),
        "f4": rng.standard_normal(n).astype("f4"),
        "i8": np.arange(n, dtype="i8"),
        "i2": np.arange(n, dtype="i2"),
        "u1": np.arange(n, dtype="u1"),
        "b": np.arange(n) % 2 == 0,
        "c16": np.arange(n) * (1 + 2j),
        "t": pd.date_range("2021-05-01", periods=n, freq="min"),
        "tz": pd.date_range("2021-05-01", periods=n, freq="D", tz="America/New_York"),
        "td": pd.to_timedelta(np.arange(n), unit="s"),
        "str": [f"v{i}" for i in range(n)],
        "obj": [{"k": i} if i % 2 else (i, "x") for i in range(n)],
        "cat": pd.Categorical([["lo", "hi"][i % 2] for i in range(n)]),
        "catnum": pd.Categorical([i % 3 for i in range(n)], ordered=True),
        "Int64": pd.array([None if i == 1 else i for i in range(n)], dtype="Int64"),
        "f8b": rng.standard_normal(n),
    }, index=index)
    if n:
        df.loc[df.index[0], "f8"] = np.nan
        df.loc[df.index[-1], "t"] = pd.NaT
        df.loc[df.index[-1], "tz"] = pd.NaT
        df.loc[df.index[0], "str"] = None
    return df


@pytest.mark.parametrize("kind", list(index_kinds()))
def test_bcast_frame_index_kinds(comm, kind):
    df = mixed_frame(index_kinds()[kind])
    got = comm.bcast(df if comm.rank == 0 else None, root=0)
    pdt.assert_frame_equal(got, df, check_index_type=True, check_column_type=True,
                           check_freq=True)
    s = df["f8"]
    pdt.assert_series_equal(comm.bcast(s, root=0), s, check_index_type=True)


def test_frame_numeric_blocks_not_pickled():
    df = pd.DataFrame(np.arange(40.0).reshape(10, 4), columns=list("abcd"))
    meta, bufs = codec.encode(df)
    assert [b.nbytes for b in bufs] == [320]
    assert not any(isinstance(x, dict) and x.get("k") == "pk" for x in meta["bl"])
    got = codec.decode(meta, [codec.alloc(b.nbytes) for b in bufs])
    assert got.shape == df.shape
    # The received block is a view of the received buffer: no copy.
    recv = [codec.alloc(320)]
    recv[0][:] = bufs[0]
    got = codec.decode(meta, recv)
    pdt.assert_frame_equal(got, df)
    assert np.shares_memory(got._mgr.blocks[0].values, recv[0])


def test_frame_column_labels(comm):
    df = pd.DataFrame(np.ones((3, 3)), columns=pd.MultiIndex.from_tuples(
        [("a", 1), ("a", 2), ("b", 1)]))
    pdt.assert_frame_equal(comm.bcast(df), df)
    df = pd.DataFrame(np.ones((3, 3)), columns=[0, 1.5, "x"])
    pdt.assert_frame_equal(comm.bcast(df), df)
    df = pd.DataFrame(np.ones((2, 2)), columns=["d", "d"])
    pdt.assert_frame_equal(comm.bcast(df), df)
    df = pd.DataFrame({("t", 1): [1, 2]}, index=pd.Index([1, 2], name=("n", 2)))
    pdt.assert_frame_equal(comm.bcast(df), df)


def test_empty_frames(comm):
    for df in (pd.DataFrame(), pd.DataFrame({"a": []}, dtype="f8"),
               pd.DataFrame(index=pd.RangeIndex(3))):
        pdt.assert_frame_equal(comm.bcast(df), df)


def test_python_objects(comm):
    obj = {"a": [1, 2.5, "x"], "b": (None, b"raw"), "arr": np.arange(5),
           "big": np.arange(100000), "nested": {"df": pd.DataFrame({"x": [1]})}}
    got = comm.bcast(obj if comm.rank == 0 else None)
    assert got["a"] == obj["a"] and got["b"] == obj["b"]
    npt.assert_array_equal(got["big"], obj["big"])
    pdt.assert_frame_equal(got["nested"]["df"], obj["nested"]["df"])
    assert comm.bcast(None) is None
    assert comm.bcast(7, root=comm.size - 1) == 7
    big = "x" * 100000
    assert comm.bcast(big) == big


def test_object_arrays(comm):
    a = np.array([1, "two", None, 3.5], dtype=object)
    got = comm.bcast(a)
    assert got.dtype == object and list(got) == list(a)
    rec = np.array([(1, 2.0)], dtype=[("x", "i4"), ("y", "f8")])
    same_array(comm.bcast(rec), rec)


def test_scatter_array(comm):
    a = make("f8", (11, 3))
    got = comm.scatter(a if comm.rank == 0 else None, root=0)
    same_array(got, np.array_split(a, comm.size)[comm.rank])
    a = make("i8", (comm.size - 1,))  # some ranks get empty parts
    got = comm.scatter(a, root=0)
    same_array(got, np.array_split(a, comm.size)[comm.rank])


def test_scatter_frame(comm):
    df = mixed_frame(index_kinds()["string"])
    df = pd.concat([df] * 3)
    got = comm.scatter(df if comm.rank == 0 else None, root=0)
    bounds = np.cumsum([0] + [len(p) for p in np.array_split(np.arange(len(df)), comm.size)])
    pdt.assert_frame_equal(got, df.iloc[bounds[comm.rank]:bounds[comm.rank + 1]])
    s = df["f8"]
    got = comm.scatter(s, root=comm.size - 1)
    pdt.assert_series_equal(got, s.iloc[bounds[comm.rank]:bounds[comm.rank + 1]])


def test_scatter_list(comm):
    items = [{"rank": i, "data": np.full(i + 1, i)} for i in range(comm.size)]
    got = comm.scatter(items if comm.rank == 0 else None, root=0)
    assert got["rank"] == comm.rank
    npt.assert_array_equal(got["data"], np.full(comm.rank + 1, comm.rank))


def test_gather_concat(comm):
    part = make("f4", (comm.rank + 2, 4), seed=comm.rank)
    got = comm.gather(part, root=0)
    every = [make("f4", (r + 2, 4), seed=r) for r in range(comm.size)]
    if comm.rank == 0:
        assert isinstance(got, list)
        for g, e in zip(got, every):
            same_array(g, e)
    else:
        assert got is None
    got = comm.gather(part, root=comm.size - 1, concat=True)
    if comm.rank == comm.size - 1:
        same_array(got, np.concatenate(every))
    got = comm.allgather(part, concat=True)
    same_array(got, np.concatenate(every))


def test_gather_frames(comm):
    df = mixed_frame(pd.RangeIndex(comm.rank * 10, comm.rank * 10 + comm.rank + 1))
    every = [mixed_frame(pd.RangeIndex(r * 10, r * 10 + r + 1)) for r in range(comm.size)]
    got = comm.gather(df, root=0, concat=True)
    if comm.rank == 0:
        pdt.assert_frame_equal(got, pd.concat(every))
    got = comm.allgather(df)
    for g, e in zip(got, every):
        pdt.assert_frame_equal(g, e)


def test_allreduce_array(comm):
    a = np.arange(12, dtype="f8").reshape(3, 4) + comm.rank
    want = sum(np.arange(12, dtype="f8").reshape(3, 4) + r for r in range(comm.size))
    same_array(comm.allreduce(a, op=numpush.SUM), want)
    same_array(comm.allreduce(np.asfortranarray(a)), want)
    got = comm.reduce(a, op=numpush.MAX, root=0)
    if comm.rank == 0:
        same_array(got, a - comm.rank + comm.size - 1)
    else:
        assert got is None
    i = np.array(comm.rank + 1, dtype="i8")
    same_array(comm.allreduce(i, op=numpush.PROD),
               np.array(np.prod(np.arange(1, comm.size + 1)), dtype="i8"))


def test_allreduce_frame(comm):
    df = pd.DataFrame({"x": np.arange(5.0) * (comm.rank + 1), "n": np.arange(5) + comm.rank,
                       "y": np.ones(5, dtype="f4")}, index=list("abcde"))
    got = comm.allreduce(df)
    k = comm.size
    want = pd.DataFrame({"x": np.arange(5.0) * (k * (k + 1) // 2),
                         "n": np.arange(5) * k + k * (k - 1) // 2,
                         "y": np.full(5, k, dtype="f4")}, index=list("abcde"))
    pdt.assert_frame_equal(got, want)
    s = comm.allreduce(df["x"], op=numpush.MIN)
    pdt.assert_series_equal(s, pd.Series(np.arange(5.0), index=list("abcde"), name="x"))


def test_allreduce_objects(comm):
    assert comm.allreduce(comm.rank) == comm.size * (comm.size - 1) // 2
    assert comm.allreduce([comm.rank]) == list(range(comm.size))
    assert comm.allreduce(comm.rank, op=numpush.MAX) == comm.size - 1
    assert comm.allreduce(comm.rank, op=lambda a, b: a * 10 + b) == int(
        "".join(str(r) for r in range(comm.size)))


def test_alltoall(comm):
    send = [(comm.rank, j, np.full(j + 1, comm.rank)) for j in range(comm.size)]
    got = comm.alltoall(send)
    for i, (src, dst, arr) in enumerate(got):
        assert (src, dst) == (i, comm.rank)
        npt.assert_array_equal(arr, np.full(comm.rank + 1, i))


def test_split_dup(comm):
    sub = comm.Split(color=comm.rank % 2, key=-comm.rank)
    assert sub.size == len(range(comm.rank % 2, comm.size, 2))
    got = sub.allgather(comm.rank)
    assert got == sorted(range(comm.rank % 2, comm.size, 2), reverse=True)
    dup = comm.Dup()
    assert dup.Get_size() == comm.size and dup.Get_rank() == comm.rank
    assert dup.bcast("x") == "x"
    dup.Free()
    sub.Free()
