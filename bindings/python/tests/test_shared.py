"""Semantics shared with mpi4py: this file runs under numpush (default) and
under mpi4py (NUMPUSH_TEST_MPI=mpi4py, launched by mpirun), so any difference
between the two shows up as a failure in one of the runs."""
import os

import numpy as np
import numpy.testing as npt
import pandas as pd
import pandas.testing as pdt

if os.environ.get("NUMPUSH_TEST_MPI") == "mpi4py":
    from mpi4py import MPI
else:
    from numpush import MPI


def test_rank_size(comm):
    assert comm.Get_rank() == comm.rank and comm.Get_size() == comm.size
    assert 0 <= comm.rank < comm.size


def test_lowercase_objects(comm):
    data = {"k": comm.rank, "a": np.arange(3.0)} if comm.rank == 0 else None
    got = comm.bcast(data, root=0)
    assert got["k"] == 0
    npt.assert_array_equal(got["a"], np.arange(3.0))
    got = comm.scatter([i * i for i in range(comm.size)] if comm.rank == 0 else None, root=0)
    assert got == comm.rank * comm.rank
    got = comm.gather(comm.rank + 1, root=0)
    assert got == (list(range(1, comm.size + 1)) if comm.rank == 0 else None)
    assert comm.allgather(str(comm.rank)) == [str(r) for r in range(comm.size)]
    assert comm.allreduce(comm.rank, op=MPI.SUM) == sum(range(comm.size))
    assert comm.allreduce(comm.rank, op=MPI.MAX) == comm.size - 1
    assert comm.reduce(comm.rank + 1, op=MPI.PROD, root=0) == (
        int(np.prod(np.arange(1, comm.size + 1))) if comm.rank == 0 else None)
    assert comm.alltoall([(comm.rank, j) for j in range(comm.size)]) == [
        (i, comm.rank) for i in range(comm.size)]


def test_lowercase_pandas(comm):
    df = pd.DataFrame({"x": np.arange(4.0), "s": list("abcd")},
                      index=pd.date_range("2024", periods=4, tz="UTC"))
    pdt.assert_frame_equal(comm.bcast(df if comm.rank == 0 else None, root=0), df)
    got = comm.allgather(df.iloc[comm.rank % 4:comm.rank % 4 + 1])
    for r, g in enumerate(got):
        pdt.assert_frame_equal(g, df.iloc[r % 4:r % 4 + 1])


def test_uppercase_buffers(comm):
    n, p, r = 5, comm.size, comm.rank
    buf = np.arange(n, dtype="f8") if r == 0 else np.zeros(n)
    comm.Bcast(buf, root=0)
    npt.assert_array_equal(buf, np.arange(n, dtype="f8"))
    buf = np.zeros(n, dtype="i4")
    if r == p - 1:
        buf[:] = 7
    comm.Bcast([buf, MPI.INT], root=p - 1)
    npt.assert_array_equal(buf, 7)

    send = np.arange(p * 3, dtype="i8") if r == 0 else None
    recv = np.empty(3, dtype="i8")
    comm.Scatter(send, recv, root=0)
    npt.assert_array_equal(recv, np.arange(3) + 3 * r)

    out = np.empty((p, 3), dtype="i8") if r == 0 else None
    comm.Gather(recv, out, root=0)
    if r == 0:
        npt.assert_array_equal(out.ravel(), np.arange(p * 3))

    every = np.empty((p, 2), dtype="f4")
    comm.Allgather(np.full(2, r, dtype="f4"), every)
    npt.assert_array_equal(every, np.repeat(np.arange(p, dtype="f4"), 2).reshape(p, 2))

    src = np.arange(6, dtype="f8") * (r + 1)
    dst = np.empty_like(src)
    comm.Allreduce(src, dst, op=MPI.SUM)
    npt.assert_array_equal(dst, np.arange(6.0) * (p * (p + 1) // 2))
    comm.Allreduce(MPI.IN_PLACE, src, op=MPI.MAX)
    npt.assert_array_equal(src, np.arange(6.0) * p)

    res = np.zeros(4, dtype="i4") if r == 0 else None
    comm.Reduce(np.full(4, r + 1, dtype="i4"), res, op=MPI.SUM, root=0)
    if r == 0:
        npt.assert_array_equal(res, p * (p + 1) // 2)

    a2a = np.empty(p, dtype="i8")
    comm.Alltoall(np.arange(p, dtype="i8") + 100 * r, a2a)
    npt.assert_array_equal(a2a, np.arange(p) * 100 + r)

    fl = np.zeros((3, 2), order="F") + r
    comm.Allreduce(MPI.IN_PLACE, fl, op=MPI.SUM)
    npt.assert_array_equal(fl, sum(range(p)))


def test_vector_variants(comm):
    p, r = comm.size, comm.rank
    counts = [i + 1 for i in range(p)]
    displs = [sum(counts[:i]) for i in range(p)]
    total = sum(counts)
    send = np.arange(total, dtype="f8") if r == 0 else None
    recv = np.empty(counts[r], dtype="f8")
    comm.Scatterv([send, counts, displs, MPI.DOUBLE] if r == 0 else None, recv, root=0)
    npt.assert_array_equal(recv, np.arange(displs[r], displs[r] + counts[r], dtype="f8"))
    out = np.full(total, -1.0) if r == 0 else None
    comm.Gatherv(recv, [out, counts, displs, MPI.DOUBLE] if r == 0 else None, root=0)
    if r == 0:
        npt.assert_array_equal(out, np.arange(total, dtype="f8"))


def test_point_to_point(comm):
    p, r = comm.size, comm.rank
    if p == 1:
        return
    if r == 0:
        for dest in range(1, p):
            comm.send({"to": dest, "df": pd.DataFrame({"v": [dest]})}, dest=dest, tag=11)
            comm.Send(np.full(3, dest, dtype="i8"), dest=dest, tag=12)
        got = sorted(comm.recv(source=MPI.ANY_SOURCE, tag=13) for _ in range(1, p))
        assert got == list(range(1, p))
    else:
        msg = comm.recv(source=0, tag=11)
        assert msg["to"] == r
        pdt.assert_frame_equal(msg["df"], pd.DataFrame({"v": [r]}))
        buf = np.empty(3, dtype="i8")
        st = MPI.Status()
        comm.Recv(buf, source=0, tag=12, status=st)
        assert st.Get_source() == 0 and st.Get_tag() == 12
        npt.assert_array_equal(buf, r)
        comm.send(r, dest=0, tag=13)


def test_split(comm):
    sub = comm.Split(comm.rank % 2, comm.rank)
    assert sub.Get_size() == len(range(comm.rank % 2, comm.size, 2))
    assert sub.allreduce(1) == sub.Get_size()
    sub.Free()
