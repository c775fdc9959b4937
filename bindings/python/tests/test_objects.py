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


def spy_collectives(monkeypatch, names):
    """Record, in the returned list, every call of numpush's C extension
    whose name is in names (the collectives a Python call makes)."""
    from numpush import comm as comm_mod
    calls = []
    core = comm_mod._core

    class Spy:
        def __getattr__(self, name):
            f = getattr(core, name)
            if name in names:
                return lambda *args: (calls.append(name), f(*args))[1]
            return f

    monkeypatch.setattr(comm_mod, "_core", Spy())
    return calls


def small_objects(q):
    """Objects of rank q that fit a header slot."""
    return [make("f8", (3,), seed=q), q, {"q": q, "l": [q] * 3}, make("i2", (0, 2)),
            np.asfortranarray(make("u4", (2, 3), seed=q)), None, f"r{q}\u00e9"]


def same_small_objects(got, want):
    for g, w in zip(got, want, strict=True):
        if isinstance(w, np.ndarray):
            same_array(g, w)
            assert g.flags.f_contiguous == w.flags.f_contiguous
        else:
            assert g == w


def test_scatter_small_objects_one_collective(comm, monkeypatch):
    # Small pieces ride in the header slots that scatter sends first: one
    # collective in all.  A large piece for some rank sends the rest the
    # general way; the small ones still come from their slots.
    calls = spy_collectives(monkeypatch, ("scatter", "scatter_list", "bcast", "scatterv",
                                          "allgather"))
    r, p = comm.rank, comm.size
    for root in range(p):
        del calls[:]
        got = comm.scatter([small_objects(q) for q in range(p)] if r == root else None,
                           root=root)
        assert calls == ["scatter"]
        same_small_objects(got, small_objects(r))
    # An array split by rows, small enough for the slots.
    a = make("i4", (2 * p + 1, 3), seed=4)
    del calls[:]
    got = comm.scatter(a if r == 0 else None, root=0)
    assert calls == ["scatter"]
    same_array(got, np.array_split(a, p)[r])
    # Mixed: the last rank's piece is too large for its slot.
    big = make("f8", (5000,), seed=9)
    items = [big if q == p - 1 else make("i8", (2,), seed=q) for q in range(p)]
    got = comm.scatter(items if r == 0 else None, root=0)
    same_array(got, big if r == p - 1 else make("i8", (2,), seed=r))


def same_values(a, b):
    """Equal arrays whose dtypes may differ in byte order only: a join of
    '>u4' blocks is '>u4' when numpush moves the bytes, native when
    np.concatenate builds it."""
    assert type(a) is type(b) and a.shape == b.shape
    assert a.dtype.newbyteorder("=") == b.dtype.newbyteorder("="), (a.dtype, b.dtype)
    npt.assert_array_equal(a, b)


def test_gather_plain_arrays_without_envelopes(comm, monkeypatch):
    # Plain arrays, some too large for their slots: the slots describe them
    # and their bytes follow in one collective, no envelope exchanged.
    calls = spy_collectives(monkeypatch, ("allgather", "gather_list", "bcast", "gatherv",
                                          "gather", "allreduce"))
    r, p = comm.rank, comm.size
    for dt in ("f8", "i2", "c16", ">u4", "?"):
        for root in (0, p - 1):
            # Equal blocks: one np_gather of bytes into the joined result.
            del calls[:]
            got = comm.gather(make(dt, (400, 3), seed=r), root=root, concat=True)
            assert calls == ["allgather", "gather"]
            if r == root:
                want = np.concatenate([make(dt, (400, 3), seed=q) for q in range(p)])
                same_values(got, want)
            else:
                assert got is None
            # Unequal rows, some small enough for the slot: one gatherv.
            del calls[:]
            mine = make(dt, (1 + 400 * (r % 2), 3), seed=r)
            got = comm.gather(mine, root=root, concat=True)
            assert calls == (["allgather", "gatherv"] if p > 1 else ["allgather"])
            if r == root:
                want = [make(dt, (1 + 400 * (q % 2), 3), seed=q) for q in range(p)]
                same_values(got, np.concatenate(want))
    # Not joinable by bytes (Fortran order, or concat=False): the large ones'
    # bytes come straight into fresh arrays, each with its order.
    for concat in (False, True):
        del calls[:]
        mine = np.asfortranarray(make("f4", (40, 30), seed=r)) if r % 2 else make("f4", (40, 30),
                                                                                  seed=r)
        got = comm.gather(mine, root=0, concat=concat)
        joined = concat and p == 1  # one C-ordered block joins by its bytes
        assert calls == ["allgather", "gather" if joined else "gather_list"]
        if r == 0:
            want = [make("f4", (40, 30), seed=q) for q in range(p)]
            if concat:
                same_array(got, np.concatenate(want))
            else:
                for q in range(p):
                    same_array(got[q], want[q])
                    assert got[q].flags.f_contiguous == bool(q % 2)


def test_scatter_plain_arrays_without_envelopes(comm, monkeypatch):
    # An array split by rows into pieces too large for their slots: the
    # slots describe them and their bytes follow in one scatterv straight
    # from the root's array, no envelope exchanged.
    calls = spy_collectives(monkeypatch, ("scatter", "scatter_list", "bcast", "scatterv",
                                          "allgather"))
    r, p = comm.rank, comm.size
    for dt in ("f8", "i2", "c16", ">u4", "?"):
        for shape in ((400 * p + 1, 3), (1200 * p - 1,)):
            a = make(dt, shape, seed=len(shape))
            del calls[:]
            got = comm.scatter(a if r == p - 1 else None, root=p - 1)
            assert calls == ["scatter", "scatter_list"]
            same_array(got, np.array_split(a, p)[r])
            assert got.flags.c_contiguous
    # Rows of a Fortran-ordered array are not contiguous (unless one rank
    # takes them all): envelopes, then the pieces' buffers.
    a = np.asfortranarray(make("f4", (100 * p, 30), seed=2))
    del calls[:]
    got = comm.scatter(a if r == 0 else None, root=0)
    assert calls[:2] == ["scatter", "scatter_list"] and (len(calls) > 2) == (p > 1)
    same_array(got, np.array_split(a, p)[r])


def test_allgather_plain_arrays_without_envelopes(comm, monkeypatch):
    # Plain arrays of one byte size, too large for their slots, joined: one
    # allgather of slots, one of the bytes.  Otherwise each large array's
    # bytes in a broadcast from its rank, still no envelope.
    calls = spy_collectives(monkeypatch, ("allgather", "gather_list", "bcast", "gatherv",
                                          "gather"))
    r, p = comm.rank, comm.size
    for dt in ("f8", ">i4", "?"):
        del calls[:]
        got = comm.allgather(make(dt, (400, 3), seed=r), concat=True)
        assert calls == ["allgather", "allgather"]
        same_values(got, np.concatenate([make(dt, (400, 3), seed=q) for q in range(p)]))
        # Fortran order with the same bytes: one array per rank, each in
        # its order, then joined.
        mine = make(dt, (400, 3), seed=r)
        mine = np.asfortranarray(mine) if r % 2 else mine
        del calls[:]
        got = comm.allgather(mine, concat=True)
        assert calls == ["allgather", "allgather"]
        same_values(got, np.concatenate([make(dt, (400, 3), seed=q) for q in range(p)]))
        # Not joined: one broadcast per rank into fresh arrays in each order.
        del calls[:]
        got = comm.allgather(mine)
        assert calls == ["allgather"] + ["bcast"] * p
        assert got[r] is mine
        for q in range(p):
            same_array(got[q], make(dt, (400, 3), seed=q))
            assert got[q].flags.f_contiguous == bool(q % 2)
    # Several sizes, a small one and a pickled object among them.
    objs = [make("f8", (300 + q,), seed=q) if q % 3 == 0 else
            make("i2", (2,), seed=q) if q % 3 == 1 else {"q": q} for q in range(p)]
    del calls[:]
    got = comm.allgather(objs[r])
    large = sum(1 for q in range(p) if q % 3 == 0)
    assert calls.count("bcast") == large and "gather_list" not in calls
    for q in range(p):
        if isinstance(objs[q], np.ndarray):
            same_array(got[q], objs[q])
        else:
            assert got[q] == objs[q]


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


# ------------------------------------------------ row-by-row blocks and concat gathers

def numeric_frame(n, first=0, index=None, seed=0):
    """A frame of several numeric dtype blocks (float64, int32, bool,
    datetime64, float32)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "a": rng.standard_normal(n),
        "i": np.arange(first, first + n, dtype="i4"),
        "b": np.arange(first, first + n) % 3 == 0,
        "t": pd.to_datetime(np.arange(first, first + n), unit="s"),
        "c": rng.standard_normal(n),
        "f": rng.standard_normal(n).astype("f4"),
    }, index=pd.RangeIndex(first, first + n) if index is None else index)
    if n:
        df.iloc[0, 0] = np.nan
    return df


def bounds_of(n, size):
    return np.cumsum([0] + [len(p) for p in np.array_split(np.arange(n), size)])


def test_codec_rows_without_copy():
    big = pd.DataFrame(np.arange(8 * 20000.0).reshape(8, 20000).T.copy(),
                       columns=[f"c{j}" for j in range(8)])
    part = big.iloc[5000:15000]
    blk = part._mgr.blocks[0].values
    assert not blk.flags.c_contiguous  # a row slice of the (8, N) block
    meta, bufs, joins = codec.encode_wire(part)
    assert joins == [[0, 8]] and len(bufs) == 8
    for j, b in enumerate(bufs):  # the rows themselves, no copy
        assert np.shares_memory(b, blk[j])
    recv = codec.alloc_wire([b.nbytes for b in bufs], joins)
    for r, b in zip(recv, bufs):
        r[:] = b
    got = codec.decode(meta, recv)
    pdt.assert_frame_equal(got, part)
    v = got._mgr.blocks[0].values
    assert v.shape == (8, 10000) and v.flags.c_contiguous
    assert np.shares_memory(v, recv.whole[0])
    # Buffers allocated one by one still decode (the rows are joined).
    plain = [codec.alloc(b.nbytes) for b in bufs]
    for r, b in zip(plain, bufs):
        r[:] = b
    pdt.assert_frame_equal(codec.decode(meta, plain), part)
    # Small rows are copied once instead.
    meta, bufs, joins = codec.encode_wire(big.iloc[3:40])
    assert joins == [] and len(bufs) == 1
    # rows=True: every block row by row, after the index's buffers.
    df = numeric_frame(50, index=pd.Index(np.arange(50) * 2))
    meta, bufs, joins = codec.encode_wire(df, rows=True)
    assert len(bufs) == 1 + df.shape[1] and joins[0][0] == 1
    recv = codec.alloc_wire([b.nbytes for b in bufs], joins)
    for r, b in zip(recv, bufs):
        r[:] = b
    pdt.assert_frame_equal(codec.decode(meta, recv), df)


@pytest.mark.parametrize("n", [0, 1, 3, 40001])
def test_scatter_frame_rows(comm, n):
    df = numeric_frame(n)
    df["s"] = [f"x{i}" for i in range(n)]  # an object-ish column rides along
    got = comm.scatter(df if comm.rank == 0 else None, root=0)
    b = bounds_of(n, comm.size)
    want = df.iloc[b[comm.rank]:b[comm.rank + 1]]
    pdt.assert_frame_equal(got, want, check_index_type=True)
    if comm.rank != 0 and len(want) * 8 >= codec.SPLIT_ROW_BYTES:
        blocks = [blk.values for blk in got._mgr.blocks
                  if isinstance(blk.values, np.ndarray) and blk.values.dtype == "f8"]
        assert len(blocks) == 1 and blocks[0].shape == (2, len(want))
        assert blocks[0].flags.c_contiguous
    # Non-contiguous rows (every other row) and an F-ordered block.
    f = pd.DataFrame(np.arange(6.0 * n).reshape(n, 6), columns=list("abcdef"), copy=False)
    assert f._mgr.blocks[0].values.flags.f_contiguous or n <= 1
    for src in (f, f.iloc[::2], df.iloc[::-1]):
        got = comm.scatter(src, root=comm.size - 1)
        b = bounds_of(len(src), comm.size)
        pdt.assert_frame_equal(got, src.iloc[b[comm.rank]:b[comm.rank + 1]])


def check_gather_concat(comm, part, every, root=0):
    got = comm.gather(part, root=root, concat=True)
    if comm.rank == root:
        if isinstance(part, np.ndarray):
            same_array(got, np.concatenate([np.atleast_1d(e) for e in every]))
        else:
            pdt.assert_frame_equal(got, pd.concat(every), check_index_type=True,
                                   check_column_type=True, check_freq=True)
    else:
        assert got is None
    return got


@pytest.mark.parametrize("kind", ["range", "int", "string", "datetime", "datetime_tz", "multi"])
def test_gather_concat_frames(comm, kind):
    def part(r):
        n = (r * 7 + 3) % 11 + (5000 if r % 2 else 0)
        first = sum((q * 7 + 3) % 11 + (5000 if q % 2 else 0) for q in range(r))
        ix = {
            "range": pd.RangeIndex(first, first + n, name="r"),
            "int": pd.Index(np.arange(n, dtype="i8") * 3 - r, name="i"),
            "string": pd.Index([f"r{r}-{i}" for i in range(n)], name="s"),
            "datetime": pd.date_range("2024-01-01", periods=n, freq="h", name="t") +
            pd.Timedelta(days=r),
            "datetime_tz": pd.date_range("2024-03-30", periods=n, freq="D", tz="Europe/Paris"),
            "multi": pd.MultiIndex.from_arrays([np.full(n, r), np.arange(n)], names=["k", "j"]),
        }[kind]
        return numeric_frame(n, first, index=ix, seed=r)
    every = [part(r) for r in range(comm.size)]
    me = every[comm.rank]
    assert codec.concat_layout(me) is not None
    got = check_gather_concat(comm, me, every, root=comm.size - 1)
    if comm.rank == comm.size - 1:
        for blk in got._mgr.blocks:  # one block per dtype, each one C-ordered piece
            assert blk.values.ndim == 2
    # Consecutive RangeIndex parts give a RangeIndex, as pandas.concat does.
    if kind == "range" and comm.rank == comm.size - 1:
        assert isinstance(got.index, pd.RangeIndex)


def test_gather_concat_frame_layouts(comm):
    r = comm.rank
    # Non-contiguous numeric blocks: F-ordered, a strided row slice, and a
    # slice of a bigger frame.
    a = np.arange(40.0 * 5).reshape(40, 5) + 1000 * r
    f = pd.DataFrame(a, columns=list("vwxyz"), copy=False)
    every = [pd.DataFrame(np.arange(40.0 * 5).reshape(40, 5) + 1000 * q, columns=list("vwxyz"))
             for q in range(comm.size)]
    check_gather_concat(comm, f, every)
    check_gather_concat(comm, f.iloc[1::3], [e.iloc[1::3] for e in every])
    big = numeric_frame(30000, seed=5)
    b = bounds_of(len(big), comm.size)
    parts = [big.iloc[b[q]:b[q + 1]] for q in range(comm.size)]
    got = check_gather_concat(comm, parts[r], parts)
    if r == 0:
        pdt.assert_frame_equal(got, big)
    # Empty parts when there are fewer rows than ranks.
    small = numeric_frame(max(comm.size - 1, 1))
    b = bounds_of(len(small), comm.size)
    parts = [small.iloc[b[q]:b[q + 1]] for q in range(comm.size)]
    check_gather_concat(comm, parts[r], parts)
    # Every part empty.
    parts = [numeric_frame(0) for _ in range(comm.size)]
    check_gather_concat(comm, parts[r], parts)
    # Duplicate and MultiIndex column labels.
    parts = [pd.DataFrame(np.full((3, 3), float(q)), columns=["d", "d", "e"])
             for q in range(comm.size)]
    check_gather_concat(comm, parts[r], parts)
    cols = pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["x", "y"])
    parts = [pd.DataFrame(np.full((2, 3), q, dtype="i8"), columns=cols) for q in range(comm.size)]
    check_gather_concat(comm, parts[r], parts)


def test_gather_concat_zero_d(comm):
    # 0-d arrays join as one row each, next to 1-d parts of the same dtype.
    r, p = comm.rank, comm.size
    mine = np.array(r * 1.5) if r % 2 == 0 else np.array([r * 1.5, -r])
    got = comm.gather(mine, root=0, concat=True)
    if r == 0:
        want = [[q * 1.5] if q % 2 == 0 else [q * 1.5, -q] for q in range(p)]
        same_array(got, np.array([v for w in want for v in w]))
    got = comm.allgather(np.array(r, dtype="i4"), concat=True)
    same_array(got, np.arange(p, dtype="i4"))


def test_gather_concat_fallbacks(comm):
    r = comm.rank
    # Object and extension columns: the general path.
    every = [mixed_frame(pd.RangeIndex(q * 10, q * 10 + q + 1)) for q in range(comm.size)]
    assert codec.concat_layout(every[r]) is None
    check_gather_concat(comm, every[r], every)
    # Ranks whose frames differ (dtypes, block layout, columns): pandas.concat.
    def odd(q):
        df = numeric_frame(4, seed=q)
        if q % 2:
            df["a"] = df["a"].astype("f4")
            df["new"] = np.arange(4.0)
        return df
    every = [odd(q) for q in range(comm.size)]
    check_gather_concat(comm, every[r], every)
    cons = [numeric_frame(6, seed=q) for q in range(comm.size)]
    if r % 2:  # same columns and dtypes, blocks not consolidated
        cons[r] = cons[r].copy()
        cons[r]["a"] = cons[r]["a"] + 0
    check_gather_concat(comm, cons[r], [numeric_frame(6, seed=q) for q in range(comm.size)])
    # Many columns and few rows.
    every = [pd.DataFrame(np.full((2, 100), float(q))) for q in range(comm.size)]
    assert codec.concat_layout(every[r]) is None
    check_gather_concat(comm, every[r], every)
    # concat=False still gives the list.
    got = comm.gather(numeric_frame(3, seed=r), root=0)
    if r == 0:
        for q, g in enumerate(got):
            pdt.assert_frame_equal(g, numeric_frame(3, seed=q))


def test_gather_concat_arrays(comm):
    r, k = comm.rank, comm.size
    for dt in ("f8", "i2", "?", "M8[ns]", ">i4", "c16", "S5"):
        every = [make(dt, ((q * 5) % 7, 3), seed=q) for q in range(k)]
        # np.concatenate gives native byte order: such arrays take the general path.
        assert (codec.concat_layout(every[r]) is None) == (dt == ">i4")
        check_gather_concat(comm, every[r], every)
    every = [make("i8", (q % 2,), seed=q) for q in range(k)]  # some parts empty
    check_gather_concat(comm, every[r], every, root=k - 1)
    every = [np.array(q * 1.5) for q in range(k)]  # 0-d arrays
    check_gather_concat(comm, every[r], every)
    base = [make("f4", (12, 8), seed=q) for q in range(k)]
    every = [b[::2, 1::3] for b in base]  # sliced: made contiguous once
    check_gather_concat(comm, every[r], every)
    every = [np.asfortranarray(b) for b in base]  # F-ordered: np.concatenate
    assert codec.concat_layout(every[r]) is None
    got = check_gather_concat(comm, every[r], every)
    if r == 0:
        assert got.flags.f_contiguous == np.concatenate(every).flags.f_contiguous
    # Dtypes or shapes that differ across ranks: np.concatenate promotes.
    every = [make("f8" if q % 2 else "i4", (3, 2), seed=q) for q in range(k)]
    check_gather_concat(comm, every[r], every)
    every = [make("f8", (3, 2 + (q % 2)), seed=q) for q in range(k)]
    if k > 1:
        with pytest.raises(ValueError):
            comm.gather(every[r], root=0, concat=True) if r == 0 else (
                comm.gather(every[r], root=0, concat=True), np.concatenate(every))
    big = [make("f8", (20001 + q, 4), seed=q) for q in range(k)]
    got = check_gather_concat(comm, big[r], big)
    if r == 0:
        assert got.flags.c_contiguous and got.__array_interface__["data"][0] % 64 == 0


# ---------------------------------------------------------------- bcast's small path

class _Counting:
    """Forwards to the core and counts its bcast calls."""

    def __init__(self, core):
        self._c = core
        self.bcasts = 0

    def __getattr__(self, name):
        return getattr(self._c, name)

    def bcast(self, *args):
        self.bcasts += 1
        return self._c.bcast(*args)


@pytest.fixture
def counting(monkeypatch):
    from numpush import comm as comm_mod
    c = _Counting(comm_mod._core)
    monkeypatch.setattr(comm_mod, "_core", c)
    return c


def _bcast_counted(comm, counting, obj, root=0):
    before = counting.bcasts
    got = comm.bcast(obj if comm.rank == root else None, root=root)
    return got, counting.bcasts - before


def test_bcast_small_one_collective(comm, counting):
    objs = [None, 0, 3.5, "é", b"", [], {"a": [1, (2, "x"), {3: None}], "b": {1, 2}},
            np.arange(3), np.float64(2.5), make("f8", (4, 3)), make("M8[ns]", (5,)),
            np.asfortranarray(make("i4", (6, 5))), make("U7", (3,)),
            {"arr": np.arange(10), "nested": [np.ones(3), {"x": np.zeros((2, 2))}]},
            pd.Series([1.0, 2.0], index=["a", "b"], name="s"),
            pd.DataFrame({"x": [1, 2, 3], "y": [0.5, 1.5, 2.5], "s": ["a", "b", None]},
                         index=pd.date_range("2024-01-01", periods=3, tz="UTC"))]
    for obj in objs:
        for root in range(comm.size):
            got, n = _bcast_counted(comm, counting, obj, root)
            assert n == 1, (type(obj), n)
            if comm.rank == root:
                assert got is obj
            elif isinstance(obj, np.ndarray):
                same_array(got, obj)
                assert got.flags.writeable
                assert got.__array_interface__["data"][0] % 64 == 0 or got.size == 0
                assert got.flags.f_contiguous == obj.flags.f_contiguous
            elif isinstance(obj, pd.DataFrame):
                pdt.assert_frame_equal(got, obj)
            elif isinstance(obj, pd.Series):
                pdt.assert_series_equal(got, obj)
            elif isinstance(obj, dict) and "arr" in obj:
                npt.assert_array_equal(got["arr"], obj["arr"])
                npt.assert_array_equal(got["nested"][0], obj["nested"][0])
                npt.assert_array_equal(got["nested"][1]["x"], obj["nested"][1]["x"])
            else:
                assert type(got) is type(obj) and got == obj


def test_bcast_small_threshold_pickle(comm, counting):
    import pickle
    from numpush import comm as comm_mod
    room = comm_mod._SMALL - comm_mod._SMALL_HDR
    base = len(pickle.dumps(b"", protocol=5))
    # bytes of length L pickle to about base + L (+ a longer length field)
    fits = next(L for L in range(room, 0, -1) if len(pickle.dumps(b"x" * L, protocol=5)) <= room)
    for L, calls in [(fits, 1), (fits + 1, None), (room + 1000, None), (base, 1)]:
        obj = bytes(range(256)) * (L // 256) + b"y" * (L % 256)
        got, n = _bcast_counted(comm, counting, obj)
        assert got == obj
        if calls is not None:
            assert n == calls, (L, n)
        else:
            assert n >= 2, (L, n)


def test_bcast_small_threshold_array(comm, counting):
    from numpush import comm as comm_mod
    room = comm_mod._SMALL - comm_mod._SMALL_HDR
    seen = set()
    for nbytes in range(room - 256, room + 129, 8):
        a = (np.arange(nbytes // 8, dtype=np.int64) * 7 + 1)
        got, n = _bcast_counted(comm, counting, a)
        same_array(got, a)
        if comm.rank:
            assert got.__array_interface__["data"][0] % 64 == 0
        seen.add(n)
        if nbytes > room:
            assert n >= 2
    assert seen == {1, 2}


def test_bcast_small_and_large_frames(comm, counting):
    for rows in (3, 100, 50_000):
        df = pd.DataFrame({"a": np.arange(rows, dtype="i8"), "b": np.linspace(0, 1, rows),
                           "c": pd.Categorical(np.arange(rows) % 3),
                           "d": np.arange(rows) % 2 == 0})
        got, n = _bcast_counted(comm, counting, df, root=comm.size - 1)
        pdt.assert_frame_equal(got, df)
        assert (n == 1) == (rows * 8 * 3 < 8_000)
        a = make("f8", (rows, 2))
        got, n = _bcast_counted(comm, counting, a)
        same_array(got, a)
        assert (n == 1) == (a.nbytes < 8_000)
        if rows == 50_000 and comm.rank:
            # large arrays still arrive in their own (aligned, pooled) buffer
            assert got.__array_interface__["data"][0] % 64 == 0


def test_bcast_small_large_envelope(comm, counting):
    # Many small pieces: the envelope alone is larger than the fixed buffer.
    obj = pd.DataFrame({f"c{i}": [i] for i in range(2000)})
    got, n = _bcast_counted(comm, counting, obj)
    pdt.assert_frame_equal(got, obj)
    assert n >= 2


def test_bcast_small_errors(comm, counting):
    import threading
    with pytest.raises(numpush.Error) as ei:
        comm.bcast(threading.Lock() if comm.rank == 0 else None, root=0)
    assert ei.value.name == "ERR_ARG"
    with pytest.raises(numpush.Error) as ei:
        comm.bcast(1, root=comm.size)
    assert ei.value.name == "ERR_ROOT"
    # the communicator still works
    assert comm.bcast("ok" if comm.rank == 0 else None) == "ok"


def test_bcast_small_plain_arrays_skip_the_codec(comm, monkeypatch):
    # A contiguous array of a plain numeric dtype travels as dtype, shape and
    # bytes (in the fixed buffer when they fit), without the generic wire
    # form.
    calls = []
    generic = codec.encode_wire

    def counted(*args, **kwargs):
        calls.append(1)
        return generic(*args, **kwargs)

    monkeypatch.setattr(codec, "encode_wire", counted)
    plain = [make("f8", (5,)), make("f8", ()), make("i2", (0, 3)), make(">i4", (4,)),
             make("c8", (3, 2)), make("?", (5,)), make("f2", (2, 2)), make("u8", (1000,)),
             np.asfortranarray(make("i4", (6, 5))),
             # too large for the fixed buffer: the bytes follow in a bcast of their own
             make("f8", (3000,)), np.asfortranarray(make("c16", (300, 20))),
             make("i1", (40_000, 3))]
    for a in plain:
        got = comm.bcast(a if comm.rank == 0 else None, root=0)
        same_array(got, a)
        if comm.rank:
            assert got.flags.writeable
            assert got.__array_interface__["data"][0] % 64 == 0 or got.size == 0
            assert got.flags.f_contiguous == a.flags.f_contiguous
            assert got.flags.c_contiguous == a.flags.c_contiguous
    assert calls == []
    # Everything else still takes the generic form.
    for a in (make("M8[ns]", (3,)), make("U7", (2,)), make("i4", (50, 9))[::3, 1::2]):
        got = comm.bcast(a if comm.rank == 0 else None, root=0)
        same_array(got, a)
    assert (len(calls) == 3) if comm.rank == 0 else calls == []


def check_block_fast_paths(comm, dt, op, calls):
    """Scatter, Gather, Allgather, Alltoall and Reduce of plain arrays, every
    root, each rank's blocks distinct: the values that arrive, and no call
    of the general path (calls).  Non-roots pass None where mpi4py lets
    them; the buffers of every rank are 2-D, so the block is whole rows."""
    p, r = comm.size, comm.rank
    every = [make(dt, (2, 3), seed=10 + q) for q in range(p)]
    block = every[r]
    for root in range(p):
        recv = np.zeros_like(block)
        comm.Scatter(np.concatenate(every) if r == root else None, recv, root=root)
        same_array(recv, block)
        out = np.zeros((2 * p, 3), dtype=block.dtype) if r == root else None
        comm.Gather(block, out, root=root)
        if r == root:
            same_array(out, np.concatenate(every))
        res = np.zeros_like(block) if r == root else None
        comm.Reduce(every[0], res, op=op, root=root)
        if r == root:
            # SUM in numpush's order, rank 0 first; MAX and LOR of equal inputs.
            want = every[0]
            for _ in range(p - 1 if op is numpush.SUM else 0):
                want = want + every[0]
            same_array(res, want)
    got = np.zeros((2 * p, 3), dtype=block.dtype)
    comm.Allgather(block, got)
    same_array(got, np.concatenate(every))
    # Alltoall: block q of rank r's sendbuf is every[(r + q) % p]'s row 0.
    send = np.stack([every[(r + q) % p][0] for q in range(p)])
    got = np.zeros_like(send)
    comm.Alltoall(send, got)
    same_array(got, np.stack([every[(q + r) % p][0] for q in range(p)]))
    # Send and Recv around the ring, with the status filled in.
    if p > 1:
        got = np.zeros_like(block)
        status = numpush.Status()
        if r % 2 == 0:
            comm.Send(block, (r + 1) % p, tag=7)
            comm.Recv(got, (r - 1) % p, tag=numpush.ANY_TAG, status=status)
        else:
            comm.Recv(got, numpush.ANY_SOURCE, tag=7, status=status)
            comm.Send(block, (r + 1) % p, tag=7)
        same_array(got, every[(r - 1) % p])
        assert (status.source, status.tag, status.count) == ((r - 1) % p, 7, block.size)
    assert calls == []
    # A buffer spec still goes the general way, with the same results.
    recv = np.zeros_like(block)
    comm.Scatter([np.concatenate(every), block.dtype] if r == 0 else None, [recv, block.dtype],
                 root=0)
    same_array(recv, block)
    got = np.zeros((2 * p, 3), dtype=block.dtype)
    comm.Allgather([block, block.dtype], [got, block.dtype])
    same_array(got, np.concatenate(every))
    assert calls == ["scatter", "allgather"]
    del calls[:]


@pytest.mark.parametrize("dt", ["i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f4", "f8",
                                "c8", "c16", "?"])
def test_uppercase_fast_path(comm, dt, monkeypatch):
    # The buffer collectives of plain arrays go straight to C (_core.c,
    # "fast paths"); the general path's calls are counted to show it.
    from numpush import comm as comm_mod
    calls = []
    core = comm_mod._core
    general = ("bcast", "allreduce", "scatter", "gather", "allgather", "alltoall", "reduce",
               "send", "recv")

    class Spy:
        def __getattr__(self, name):
            f = getattr(core, name)
            if name in general:
                return lambda *args: (calls.append(name), f(*args))[1]
            return f

    monkeypatch.setattr(comm_mod, "_core", Spy())
    root = comm.size - 1
    src = make(dt, (4, 3), seed=2)
    for a in (src, np.asfortranarray(src)):
        buf = a.copy(order="A") if comm.rank == root else np.zeros_like(a)
        comm.Bcast(buf, root=root)
        same_array(buf, a)
    op, want = (numpush.LOR, src) if dt == "?" else (
        (numpush.SUM, src * comm.size) if dt.startswith("c") else (numpush.MAX, src))
    out = np.zeros_like(src)
    comm.Allreduce(src, out, op=op)
    same_array(out, want)
    inout = src.copy()
    comm.Allreduce(numpush.IN_PLACE, inout, op=op)
    same_array(inout, want)
    assert calls == []
    check_block_fast_paths(comm, dt, op, calls)
    # What the fast path leaves alone goes the general way and still works:
    # a buffer spec, and (for multi-byte types) a non-native byte order.
    buf = src.copy() if comm.rank == root else np.zeros_like(src)
    comm.Bcast([buf, src.dtype], root=root)
    same_array(buf, src)
    assert calls == ["bcast"]
    if src.dtype.itemsize > 1:
        swapped = src.astype(src.dtype.newbyteorder(">"))
        buf = swapped.copy() if comm.rank == root else np.zeros_like(swapped)
        comm.Bcast(buf, root=root)
        same_array(buf, swapped)
        assert calls == ["bcast", "bcast"]


def test_gather_small_objects_one_collective(comm, monkeypatch):
    # Small objects ride in the header slots that gather and allgather
    # exchange first: one collective in all.  A large one on some rank
    # sends the rest the general way; the small ones still come from slots.
    calls = spy_collectives(monkeypatch, ("allgather", "gather_list", "bcast", "gatherv",
                                          "allreduce"))
    r, p = comm.rank, comm.size
    for root in range(p):
        del calls[:]
        got = comm.gather(small_objects(r), root=root)
        assert calls == ["allgather"]
        if r == root:
            for q in range(p):
                same_small_objects(got[q], small_objects(q))
        else:
            assert got is None
    del calls[:]
    every = comm.allgather(make("f4", (2, 2), seed=r))
    assert calls == ["allgather"]
    for q in range(p):
        same_array(every[q], make("f4", (2, 2), seed=q))
    # Mixed: the last rank's array is too large for its slot.
    big = make("f8", (5000,), seed=9)
    mine = big if r == p - 1 else make("i8", (2,), seed=r)
    got = comm.gather(mine, root=0)
    if r == 0:
        for q in range(p):
            same_array(got[q], big if q == p - 1 else make("i8", (2,), seed=q))
    every = comm.allgather(mine)
    for q in range(p):
        same_array(every[q], big if q == p - 1 else make("i8", (2,), seed=q))
