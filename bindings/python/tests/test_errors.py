"""Bad input gives numpush.Error naming the problem on every rank, no hang."""
import os
import threading

import numpy as np
import pandas as pd
import pytest

import numpush


def test_frames_with_different_columns(comm):
    cols = ["a", "b"] if comm.rank == 0 else ["a", "c"]
    df = pd.DataFrame(np.ones((3, 2)), columns=cols)
    if comm.size == 1:
        comm.allreduce(df)
        return
    with pytest.raises(numpush.Error) as ei:
        comm.allreduce(df)
    assert ei.value.name == "ERR_MISMATCH"
    assert "columns" in str(ei.value) and "'c'" in str(ei.value)


def test_frames_with_different_shapes(comm):
    df = pd.DataFrame({"a": np.ones(3 + (comm.rank == comm.size - 1))})
    if comm.size == 1:
        return
    with pytest.raises(numpush.Error, match="shape"):
        comm.reduce(df, root=0)


def test_non_numeric_frame(comm):
    df = pd.DataFrame({"a": [1.0, 2.0], "s": ["x", "y"]})
    with pytest.raises(numpush.Error) as ei:
        comm.allreduce(df)
    assert ei.value.name == "ERR_DTYPE" and "'s'" in str(ei.value)


def test_array_vs_object(comm):
    if comm.size == 1:
        return
    obj = np.ones(3) if comm.rank == 0 else 3.0
    with pytest.raises(numpush.Error, match="ndarray"):
        comm.allreduce(obj)


def test_unsupported_object(comm):
    lock = threading.Lock()  # cannot be pickled
    with pytest.raises(numpush.Error) as ei:
        comm.bcast(lock if comm.rank == 0 else None, root=0)
    assert "lock" in str(ei.value)
    with pytest.raises(numpush.Error, match="lock"):
        comm.gather(lock if comm.rank == comm.size - 1 else 1, root=0)
    with pytest.raises(numpush.Error, match="cannot split"):
        comm.scatter(np.float64(1.0) if comm.rank == 0 else None, root=0)
    with pytest.raises(numpush.Error, match="items"):
        comm.scatter(list(range(comm.size + 1)), root=0)


@pytest.mark.parametrize("root", [-1, 99])
def test_root_out_of_range(comm, root):
    for call in (lambda: comm.bcast(1, root=root), lambda: comm.scatter([1] * comm.size, root),
                 lambda: comm.gather(1, root=root), lambda: comm.reduce(1, root=root),
                 lambda: comm.Bcast(np.ones(2), root=root)):
        with pytest.raises(numpush.Error) as ei:
            call()
        assert ei.value.name == "ERR_ROOT" and str(root) in str(ei.value)


def test_error_attributes():
    e = numpush.Error("ERR_ROOT", "rank 0: np_bcast: root 7 out of range", 5)
    assert e.name == "ERR_ROOT" and e.code == 5 and "root 7" in str(e)
    assert str(e).startswith("ERR_ROOT: ")


def test_bad_buffer(comm):
    with pytest.raises(numpush.Error, match="buffer protocol"):
        comm.Bcast([1, 2, 3])
    with pytest.raises(numpush.Error, match="contiguous"):
        comm.Bcast(np.ones((4, 4))[:, 1])
    with pytest.raises(numpush.Error, match="too small"):
        comm.Bcast([np.ones(2), 5, numpush.DOUBLE])


def test_c_library_error(comm):
    """An error found by the C library arrives as numpush.Error with the C
    name and np_last_error's detail, on every rank."""
    if os.environ.get("NUMPUSH_PY_CORE") == "mpi4py":
        pytest.skip("the mpi4py development core does not map MPI errors")
    out = np.empty(3, dtype="f8")
    with pytest.raises(numpush.Error) as ei:
        comm.Allreduce(np.ones(3, dtype="f8"), out, op=numpush.BXOR)
    assert ei.value.name == "ERR_OP" and ei.value.code == 4
    assert ei.value.detail
