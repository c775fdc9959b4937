"""A stand-in for numpush._core over mpi4py (NUMPUSH_PY_CORE=mpi4py).

It offers the same functions with the same arguments as src/_core.c, so the
Python layer (codec, object protocols, buffer specs) can be run and tested
under mpirun against a reference MPI, independently of the C library.  It is
a development aid, not a transport: the C extension is what numpush ships.
"""

import numpy as np
from mpi4py import MPI

ANY_SOURCE = MPI.ANY_SOURCE
ANY_TAG = MPI.ANY_TAG
UNDEFINED = MPI.UNDEFINED
TAG_UB = 0x3FFFFFFF
VERSION = "mpi4py-" + MPI.Get_version().__repr__()

_TYPES = [MPI.INT8_T, MPI.INT16_T, MPI.INT32_T, MPI.INT64_T, MPI.UINT8_T, MPI.UINT16_T,
          MPI.UINT32_T, MPI.UINT64_T, MPI.FLOAT, MPI.DOUBLE, MPI.C_FLOAT_COMPLEX,
          MPI.C_DOUBLE_COMPLEX, MPI.C_BOOL, MPI.BYTE]
_SIZES = [1, 2, 4, 8, 1, 2, 4, 8, 4, 8, 8, 16, 1, 1]
_OPS = [MPI.SUM, MPI.PROD, MPI.MIN, MPI.MAX, MPI.LAND, MPI.LOR, MPI.LXOR, MPI.BAND, MPI.BOR,
        MPI.BXOR]
_comms = {}
_error = RuntimeError
_in_place = object()


def configure(err, in_place):
    global _error, _in_place
    _error, _in_place = err, in_place


def _c(h):
    return _comms[h]


def _new(c):
    h = len(_comms) + 1
    _comms[h] = c
    return h


def init():
    return _new(MPI.COMM_WORLD)


def finalize():
    pass


def initialized():
    return MPI.Is_initialized() and not MPI.Is_finalized()


def abort(code):
    MPI.COMM_WORLD.Abort(code)


def wtime():
    return MPI.Wtime()


def errname(code):
    return str(code)


def dtype_size(dt):
    return _SIZES[dt]


def comm_rank(h):
    return _c(h).Get_rank()


def comm_size(h):
    return _c(h).Get_size()


def comm_split(h, color, key):
    c = _c(h).Split(MPI.UNDEFINED if color == UNDEFINED else color, key)
    return None if c == MPI.COMM_NULL else _new(c)


def comm_dup(h):
    return _new(_c(h).Dup())


def comm_free(h):
    _comms.pop(h).Free()


def barrier(h):
    _c(h).Barrier()


def _raw(obj):
    if obj is None:
        return None
    if obj is _in_place:
        return MPI.IN_PLACE
    a = obj if isinstance(obj, np.ndarray) else np.asarray(memoryview(obj).cast("B"))
    return a.reshape(-1, order="A").view(np.uint8)


def _spec(obj, count, dt):
    # As in mpi4py, the count of a collective's spec is per rank.
    a = _raw(obj)
    if a is None or a is MPI.IN_PLACE:
        return a
    return [a, count, _TYPES[dt]]


def bcast_array(h, buf, root):
    return NotImplemented  # the general path does it (see _core.c, "fast paths")


def allreduce_array(h, s, r, op):
    return NotImplemented


def scatter_array(h, s, r, root):
    return NotImplemented


def gather_array(h, s, r, root):
    return NotImplemented


def allgather_array(h, s, r):
    return NotImplemented


def alltoall_array(h, s, r):
    return NotImplemented


def reduce_array(h, s, r, op, root):
    return NotImplemented


def send_array(h, buf, dest, tag):
    return NotImplemented


def recv_array(h, buf, source, tag):
    return NotImplemented


def bcast(h, buf, count, dt, root):
    _c(h).Bcast(_spec(buf, count, dt), root)


def scatter(h, s, r, count, dt, root):
    c = _c(h)
    _c(h).Scatter(_spec(s, count, dt), _spec(r, count, dt), root)


def gather(h, s, r, count, dt, root):
    c = _c(h)
    c.Gather(_spec(s, count, dt), _spec(r, count, dt), root)


def allgather(h, s, r, count, dt):
    c = _c(h)
    c.Allgather(_spec(s, count, dt), _spec(r, count, dt))


def alltoall(h, s, r, count, dt):
    c = _c(h)
    c.Alltoall(_spec(s, count, dt), _spec(r, count, dt))


def allreduce(h, s, r, count, dt, op):
    _c(h).Allreduce(_spec(s, count, dt), _spec(r, count, dt), _OPS[op])


def reduce(h, s, r, count, dt, op, root):
    _c(h).Reduce(_spec(s, count, dt), _spec(r, count, dt), _OPS[op], root)


def scatterv(h, s, counts, displs, r, rcount, dt, root):
    sb = None if s is None else [_raw(s), (counts, displs), _TYPES[dt]]
    _c(h).Scatterv(sb, _spec(r, rcount, dt), root)


def gatherv(h, s, scount, r, counts, displs, dt, root):
    rb = None if r is None else [_raw(r), (counts, displs), _TYPES[dt]]
    _c(h).Gatherv(_spec(s, scount, dt), rb, root)


def scatter_list(h, bufs, mine, root):
    c = _c(h)
    if c.rank == root:
        for i, b in enumerate(bufs):
            if i != root and b is not None and len(_raw(b)):
                c.Send(_raw(b), i, tag=77)
        if mine is not None and bufs[root] is not None and len(_raw(mine)):
            _raw(mine)[:] = _raw(bufs[root])
    elif mine is not None and len(_raw(mine)):
        c.Recv(_raw(mine), root, tag=77)


def gather_list(h, mine, bufs, root):
    c = _c(h)
    if c.rank == root:
        for i, b in enumerate(bufs):
            if i != root and b is not None and len(_raw(b)):
                c.Recv(_raw(b), i, tag=78)
        if mine is not None and bufs[root] is not None and len(_raw(mine)):
            _raw(bufs[root])[:] = _raw(mine)
    elif mine is not None and len(_raw(mine)):
        c.Send(_raw(mine), root, tag=78)


def send(h, buf, count, dt, dest, tag):
    _c(h).Send(_spec(buf, count, dt), dest, tag)


def recv(h, buf, count, dt, src, tag):
    st = MPI.Status()
    _c(h).Recv(_spec(buf, count, dt), src, tag, st)
    return st.Get_source(), st.Get_tag(), st.Get_count(_TYPES[dt])
