"""numpush: mpi4py-like collectives that move numpy arrays and pandas
DataFrames without pickling their data.

    import numpush
    comm = numpush.COMM_WORLD
    df = comm.bcast(df if comm.rank == 0 else None, root=0)

Code written for mpi4py runs after changing ``from mpi4py import MPI`` to
``from numpush import MPI`` (``numpush.MPI`` is this module), where the
feature exists:

- ``COMM_WORLD``, ``comm.rank``/``size``, ``Get_rank()``/``Get_size()``,
  ``Split``, ``Dup``, ``Free``, ``Barrier``;
- objects: ``bcast``, ``scatter``, ``gather``, ``allgather``, ``allreduce``,
  ``reduce``, ``alltoall``, ``send``, ``recv``; numpush adds ``concat=True`` to
  gather/allgather (one array or frame back), and splits an ndarray, Series
  or DataFrame handed to ``scatter`` by rows as ``np.array_split`` does;
- buffers in place: ``Bcast``, ``Scatter``, ``Scatterv``, ``Gather``,
  ``Gatherv``, ``Allgather``, ``Allreduce``, ``Reduce``, ``Alltoall``,
  ``Send``, ``Recv`` on buffer-protocol objects or ``[buf, type]`` specs, with
  ``IN_PLACE``;
- ops ``SUM``, ``PROD``, ``MIN``, ``MAX``, ``LAND``, ``LOR``, ``LXOR``,
  ``BAND``, ``BOR``, ``BXOR`` (and ``Op.Create(fn)`` for the object methods).

How objects travel (numpush.codec): a msgpack envelope (kind, dtype, shape,
order; for frames the columns, index, dtypes and block layout) and then the
raw bytes of every numeric block, received straight into freshly allocated,
64-byte aligned arrays.  Object and string columns, nullable (masked)
extension arrays, structured dtypes and any other Python object go through
pickle protocol 5, with their numpy buffers out of band.

Errors are ``numpush.Error`` (``.name`` "ERR_ROOT", ``.detail``, ``.code``).
In a job of more than one rank, an uncaught exception prints its traceback
and aborts the whole job with a non-zero exit, as ``python -m mpi4py`` does.

Environment: ``NUMPUSH_PY_CORE=mpi4py`` runs this Python layer over mpi4py
instead of the C library (a development aid that checks the Python layer
against a reference transport; see numpush/_core_mpi4py.py).
"""

import atexit
import os
import sys

import numpy as _np

from . import comm as _comm
from .errors import Error

if os.environ.get("NUMPUSH_PY_CORE") == "mpi4py":
    from . import _core_mpi4py as _core
else:
    from . import _core

_comm._core = _core
_core.configure(Error, _comm.IN_PLACE)

from .comm import (  # noqa: E402
    ANY_SOURCE, ANY_TAG, BAND, BOR, BXOR, COMM_NULL, IN_PLACE, LAND, LOR, LXOR, MAX, MIN,
    PROD, SUM, UNDEFINED, Comm, Op, Status,
)

__version__ = "0.1.0"

# Datatypes, for mpi4py-style buffer specs [buf, DOUBLE]: numpy dtypes.
INT8_T, INT16_T, INT32_T, INT64_T = (_np.dtype(t) for t in ("i1", "i2", "i4", "i8"))
UINT8_T, UINT16_T, UINT32_T, UINT64_T = (_np.dtype(t) for t in ("u1", "u2", "u4", "u8"))
SIGNED_CHAR, SHORT, INT, LONG, LONG_LONG = INT8_T, INT16_T, INT32_T, INT64_T, INT64_T
UNSIGNED_CHAR, UNSIGNED_SHORT, UNSIGNED = UINT8_T, UINT16_T, UINT32_T
UNSIGNED_LONG = UNSIGNED_LONG_LONG = UINT64_T
FLOAT, DOUBLE = _np.dtype("f4"), _np.dtype("f8")
C_FLOAT_COMPLEX, C_DOUBLE_COMPLEX = _np.dtype("c8"), _np.dtype("c16")
COMPLEX, DOUBLE_COMPLEX = C_FLOAT_COMPLEX, C_DOUBLE_COMPLEX
BOOL = C_BOOL = _np.dtype("?")
BYTE = CHAR = _np.dtype("u1")

TAG_UB = getattr(_core, "TAG_UB", 0x3FFFFFFF)

MPI = sys.modules[__name__]  # so that `from numpush import MPI` reads like mpi4py

COMM_WORLD = Comm(_core.init())
COMM_SELF = None
try:
    if COMM_WORLD.size == 1:
        COMM_SELF = COMM_WORLD
except Error:  # pragma: no cover
    pass


def Wtime():
    return _core.wtime()


def Is_initialized():
    return bool(_core.initialized())


def Is_finalized():
    return not _core.initialized()


def Finalize():
    _core.finalize()


def Get_processor_name():
    return os.uname().nodename


def _finalize():
    try:
        _core.finalize()
    except Error as exc:  # the job is ending anyway: say why, do not hang
        print(f"numpush: finalize: {exc}", file=sys.stderr, flush=True)


atexit.register(_finalize)

_prev_hook = sys.excepthook


def _abort_hook(etype, value, tb):
    """An uncaught exception on one rank ends the whole job: print this
    rank's traceback, then np_abort (which makes the launcher exit non-zero)."""
    try:
        sys.stderr.write(f"numpush: rank {COMM_WORLD.rank} of {COMM_WORLD.size}: "
                         "uncaught exception, aborting the job\n")
        _prev_hook(etype, value, tb)
        sys.stderr.flush()
        sys.stdout.flush()
    finally:
        _core.abort(1)


if COMM_WORLD.size > 1 and os.environ.get("NUMPUSH_PY_NO_ABORT") != "1":
    sys.excepthook = _abort_hook

__all__ = [
    "ANY_SOURCE", "ANY_TAG", "BAND", "BOR", "BXOR", "COMM_NULL", "COMM_WORLD", "Comm",
    "Error", "IN_PLACE", "LAND", "LOR", "LXOR", "MAX", "MIN", "MPI", "Op", "PROD", "SUM",
    "Status", "UNDEFINED", "Wtime",
]
