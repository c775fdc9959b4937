"""Communicators: mpi4py's Comm shape over numpush's C collectives.

Lowercase methods move Python objects; ndarrays, Series and DataFrames travel
as a msgpack envelope plus their raw blocks (see numpush.codec), everything
else as pickle protocol 5 with out-of-band buffers.  Uppercase methods work
in place on buffer-protocol objects (numpy arrays, bytearray, memoryview,
array.array) or on mpi4py-style buffer specs ``[buf, type]``,
``[buf, count, type]``, ``[buf, (counts, displs), type]``.
"""

import functools
import hashlib
import operator
import pickle
import struct

import msgpack
import numpy as np

from . import codec
from .errors import Error

try:
    import pandas as pd
except ImportError:  # pragma: no cover
    pd = None

_core = None  # set by numpush/__init__.py

# ------------------------------------------------------------------ dtypes

BYTE_CODE = 13
_DTYPE_CODES = {
    np.dtype(np.int8): 0, np.dtype(np.int16): 1, np.dtype(np.int32): 2,
    np.dtype(np.int64): 3, np.dtype(np.uint8): 4, np.dtype(np.uint16): 5,
    np.dtype(np.uint32): 6, np.dtype(np.uint64): 7, np.dtype(np.float32): 8,
    np.dtype(np.float64): 9, np.dtype(np.complex64): 10, np.dtype(np.complex128): 11,
    np.dtype(np.bool_): 12,
}
_NUMERIC_KINDS = "biufc"


def dtype_code(dt):
    """numpush's dtype code for a numpy dtype; None if numpush has no such
    element type (such data still moves, as bytes, but cannot be reduced)."""
    return _DTYPE_CODES.get(dt)


# ------------------------------------------------------------------ ops

class Op:
    """A reduction operation.  Built-in ops map to the C kernels; every op is
    also callable on two Python objects, which is what the lowercase methods
    use for objects that are not arrays or frames."""

    __slots__ = ("code", "name", "fn", "commute")

    def __init__(self, code, name, fn, commute=True):
        self.code = code
        self.name = name
        self.fn = fn
        self.commute = commute

    def __call__(self, a, b):
        return self.fn(a, b)

    def __repr__(self):
        return f"numpush.{self.name}"

    def Is_commutative(self):
        return self.commute

    def Free(self):
        pass

    @classmethod
    def Create(cls, function, commute=False):
        """A user op for the lowercase methods: function(a, b) -> a (op) b."""
        return cls(None, getattr(function, "__name__", "user"), function, commute)


def _land(a, b):
    return np.logical_and(a, b) if isinstance(a, np.ndarray) else (a and b)


def _lor(a, b):
    return np.logical_or(a, b) if isinstance(a, np.ndarray) else (a or b)


def _lxor(a, b):
    return np.logical_xor(a, b) if isinstance(a, np.ndarray) else (bool(a) != bool(b))


def _min(a, b):
    return np.minimum(a, b) if isinstance(a, np.ndarray) else min(a, b)


def _max(a, b):
    return np.maximum(a, b) if isinstance(a, np.ndarray) else max(a, b)


SUM = Op(0, "SUM", operator.add)
PROD = Op(1, "PROD", operator.mul)
MIN = Op(2, "MIN", _min)
MAX = Op(3, "MAX", _max)
LAND = Op(4, "LAND", _land)
LOR = Op(5, "LOR", _lor)
LXOR = Op(6, "LXOR", _lxor)
BAND = Op(7, "BAND", operator.and_)
BOR = Op(8, "BOR", operator.or_)
BXOR = Op(9, "BXOR", operator.xor)


def _op_of(op):
    if isinstance(op, Op):
        return op
    if callable(op):
        return Op.Create(op, commute=False)
    raise Error("ERR_OP", f"{op!r} is not a reduction op (numpush.SUM, ... or a callable)")


# ------------------------------------------------------------------ constants

class _InPlace:
    __slots__ = ()

    def __repr__(self):
        return "numpush.IN_PLACE"


IN_PLACE = _InPlace()
ANY_SOURCE = -1
ANY_TAG = -1
UNDEFINED = -32766


class Status:
    """What a receive saw: ``source``, ``tag``, ``count`` (elements of the
    receive's datatype; bytes for lowercase recv's first message)."""

    __slots__ = ("source", "tag", "count", "error")

    def __init__(self):
        self.source = ANY_SOURCE
        self.tag = ANY_TAG
        self.count = 0
        self.error = 0

    def Get_source(self):
        return self.source

    def Get_tag(self):
        return self.tag

    def Get_count(self, datatype=None):
        return self.count

    def Get_error(self):
        return self.error


# ------------------------------------------------------------------ buffer specs

def _as_array(buf, writable):
    if isinstance(buf, np.ndarray):
        return buf
    try:
        mv = memoryview(buf)
    except TypeError:
        raise Error("ERR_ARG", f"{type(buf).__name__} does not support the buffer protocol")
    try:
        return np.asarray(mv)
    except (TypeError, ValueError):
        return np.frombuffer(mv.cast("B"), np.uint8)


def _dtype_of(t):
    if t is None:
        return None
    if isinstance(t, np.dtype):
        return t
    try:
        return np.dtype(t)
    except TypeError:
        return None  # e.g. an mpi4py Datatype: trust the buffer's own type


def _spec(spec, what, writable=True):
    """Parse a buffer spec into (array, dtype code, element count, counts,
    displs).  counts/displs are None unless the spec gave them."""
    counts = displs = None
    dt = None
    count = None
    if isinstance(spec, (list, tuple)) and not isinstance(spec, np.ndarray):
        if not spec:
            raise Error("ERR_ARG", f"{what}: empty buffer spec")
        buf = spec[0]
        rest = list(spec[1:])
        if rest and (_dtype_of(rest[-1]) is not None or not isinstance(
                rest[-1], (int, list, tuple, np.ndarray))):
            dt = _dtype_of(rest.pop())
        if len(rest) == 1:
            x = rest[0]
            if isinstance(x, (int, np.integer)):
                count = int(x)
            elif isinstance(x, (list, tuple)) and len(x) == 2 and isinstance(
                    x[0], (list, tuple, np.ndarray)):
                counts, displs = x
            else:
                counts = x
        elif len(rest) == 2:
            counts, displs = rest
        elif rest:
            raise Error("ERR_ARG", f"{what}: cannot read buffer spec {spec!r}")
    else:
        buf = spec
    a = _as_array(buf, writable)
    if not (a.flags.c_contiguous or a.flags.f_contiguous):
        raise Error("ERR_ARG", f"{what}: the buffer is not contiguous")
    if dt is not None and dt != a.dtype:
        a = codec.raw_bytes(a).view(dt)
    code = _DTYPE_CODES.get(a.dtype)
    if code is None:
        a = codec.raw_bytes(a)
        code = BYTE_CODE
    n = a.size
    if count is not None:
        if count > n:
            raise Error("ERR_COUNT", f"{what}: buffer of {n} elements is too small for a "
                        f"count of {count}")
        n = count
    if counts is not None:
        counts = [int(c) for c in counts]
        if displs is None:
            displs = [0] + list(np.cumsum(counts[:-1], dtype=np.int64).tolist())
        else:
            displs = [int(d) for d in displs]
    return a, code, n, counts, displs


# ------------------------------------------------------------------ helpers

# bcast's fixed first broadcast: _SMALL_HDR bytes of header (payload
# length, kind, envelope length) then the payload: a whole small message
# (kind _K_SMALL_PICKLE: a pickle; _K_SMALL_WIRE: the envelope, then every
# buffer, each padded to 64 bytes) or, for _K_LARGE, the envelope (its first
# part if it is longer) of a message whose buffers follow; for _K_ERROR the
# root's error text.
_SMALL = 16 * 1024
_SMALL_HDR = 16
_SMALL_HEAD = struct.Struct("<qii")
# _K_SMALL_ND: one contiguous array of a plain numeric dtype, the payload a
# msgpack [dtype string, shape, order] then the array's bytes at the next
# 64-byte boundary, written and read through memoryviews: the generic wire
# form costs about 10 us per call in Python for an 8-byte array, this 3.
# _K_LARGE_ND: the same header for an array too large to ride along; its
# bytes follow in one broadcast of their own, straight into the receivers'
# fresh arrays.
_K_LARGE, _K_SMALL_PICKLE, _K_SMALL_WIRE, _K_ERROR, _K_SMALL_ND, _K_LARGE_ND = range(6)
_small_bufs = []
_small_views = []
_plain_dtypes = {}


def _small_buf():
    """The reused, 64-byte aligned fixed buffer of bcast (the call consumes
    it before it returns)."""
    if not _small_bufs:
        _small_bufs.append(codec.alloc(_SMALL))
        _small_views.append(memoryview(_small_bufs[0]))
    return _small_bufs[0]


def _nd_describe(a, mv, base, end):
    """Write array a's header (msgpack [dtype string, shape, order]) at
    mv[base:] and, when they fit before end, its bytes at the next multiple
    of 64 after the header.  Returns (header length, whether the bytes were
    written), or None, with nothing written, when a is not a contiguous
    array of a plain numeric dtype."""
    if a.dtype.kind not in "biufc":
        return None
    if a.flags.c_contiguous:
        order, flat = "C", a
    elif a.flags.f_contiguous:
        order, flat = "F", a.T  # C-contiguous: the same bytes in the same order
    else:
        return None
    meta = _pack((a.dtype.str, a.shape, order))
    at = base + _pad(len(meta))
    n = a.nbytes
    if at > end:
        return None
    mv[base:base + len(meta)] = meta
    inline = at + n <= end
    if n and inline:  # a memoryview cannot cast an empty array
        mv[at:at + n] = memoryview(flat).cast("B")
    return len(meta), inline


def _nd_rebuild(mv, base, n, nenv, filled):
    """The fresh array that _nd_describe described at mv[base:]: n bytes,
    copied from mv when filled, else still to be received."""
    dts, shape, order = _unpack(mv[base:base + nenv])
    dt = _plain_dtypes.get(dts)
    if dt is None:
        dt = _plain_dtypes[dts] = np.dtype(dts)
    # Aligned as every array numpush hands out (codec.alloc).
    a = codec.alloc(n).view(dt).reshape(shape, order=order)
    if n and filled:
        at = base + _pad(nenv)
        memoryview(a if order == "C" else a.T).cast("B")[:] = mv[at:at + n]
    return a


def _nd_pack(a, mv):
    """Describe array a in bcast's fixed buffer (memoryview mv): _K_SMALL_ND
    with its bytes, or _K_LARGE_ND when they do not fit (the caller then
    broadcasts a itself); None when _nd_describe refuses a."""
    d = _nd_describe(a, mv, _SMALL_HDR, _SMALL)
    if d is None:
        return None
    kind = _K_SMALL_ND if d[1] else _K_LARGE_ND
    _SMALL_HEAD.pack_into(mv, 0, a.nbytes, kind, d[0])
    return kind


def _nd_unpack(mv, kind, n, nenv):
    """The fresh array that _nd_pack described in mv, filled from mv for
    _K_SMALL_ND, still to be filled for _K_LARGE_ND."""
    return _nd_rebuild(mv, _SMALL_HDR, n, nenv, kind == _K_SMALL_ND)


# gather's and allgather's header exchange is one allgather of a fixed
# _SLOT bytes per rank: _SLOT_HEAD bytes of int64 fields (envelope length
# (< 0: error text), buffers, concat signature, rows, buffers before the
# rows, inline kind, inline header length, inline bytes), then room for the
# whole object when it is small: a plain array as _nd_describe writes it
# (_K_SMALL_ND) or a pickle (_K_SMALL_PICKLE).  When every rank's object
# fits, that one collective is the whole gather.  scatter's header is one
# scatter of such slots from the root (its head's fields 2 and 3: the most
# buffers of any piece, and whether every piece is inline).
_SLOT = 1024
_SLOT_HEAD = 64


def _inline_encode(obj, mv, large_nd=False):
    """Write obj after the slot's head; (kind, header length, bytes), or
    None when it does not fit or is an array or frame that must not be
    pickled.  With large_nd, a plain array too large for the slot is
    described there all the same (_K_LARGE_ND: dtype, shape and order; its
    bytes travel on their own)."""
    if type(obj) is np.ndarray:
        if obj.nbytes > _SLOT - _SLOT_HEAD and not large_nd:
            return None
        d = _nd_describe(obj, mv, _SLOT_HEAD, _SLOT)
        if d is None or not (d[1] or large_nd):
            return None
        return _K_SMALL_ND if d[1] else _K_LARGE_ND, d[0], obj.nbytes
    if isinstance(obj, np.ndarray) or (pd is not None and isinstance(
            obj, (pd.DataFrame, pd.Series, pd.Index))):
        return None
    try:
        data = pickle.dumps(obj, protocol=5)
    except Exception:  # noqa: BLE001 - the general path reports it
        return None
    if len(data) > _SLOT - _SLOT_HEAD:
        return None
    mv[_SLOT_HEAD:_SLOT_HEAD + len(data)] = data
    return _K_SMALL_PICKLE, 0, len(data)


def _inline_decode(row, kind, nenv, n):
    """The object that _inline_encode wrote into slot row (a uint8 array);
    for _K_LARGE_ND, the fresh array still to be filled."""
    mv = memoryview(row)
    if kind == _K_SMALL_PICKLE:
        return pickle.loads(mv[_SLOT_HEAD:_SLOT_HEAD + n])
    return _nd_rebuild(mv, _SLOT_HEAD, n, nenv, kind == _K_SMALL_ND)


def _nd_bytes(a):
    """The bytes of a C- or F-contiguous array in memory order, as the
    buffer that sends or receives them."""
    return memoryview(a if a.flags.c_contiguous else a.T).cast("B")


def _nd_slots(slots, allhdr, rank, bufs):
    """For gather and allgather when every rank's object is a plain array
    described in its slot: (heads, descs, mine, join).  heads[r] is rank
    r's (header length, bytes), descs[r] its [dtype, shape, order]; mine this rank's bytes (its one buffer, or,
    when small, its slot's copy); join the (dtype, shape) of the result
    when the arrays join by their bytes (one dtype, the same trailing
    shape, C order; a 0-d array joins as one row), else None."""
    heads = [(int(allhdr[r, 6]), int(allhdr[r, 7])) for r in range(len(slots))]
    descs = [_unpack(memoryview(slots[r])[_SLOT_HEAD:_SLOT_HEAD + heads[r][0]])
             for r in range(len(slots))]
    if bufs:
        mine = bufs[0]
    else:
        at = _SLOT_HEAD + _pad(heads[rank][0])
        mine = memoryview(slots[rank])[at:at + heads[rank][1]]
    shapes = [tuple(d[1]) or (1,) for d in descs]
    join = None
    if all(d[0] == descs[0][0] and sh[1:] == shapes[0][1:] and (d[2] == "C" or len(sh) == 1)
           for d, sh in zip(descs, shapes)):
        join = np.dtype(descs[0][0]), (sum(sh[0] for sh in shapes),) + shapes[0][1:]
    return heads, descs, mine, join


def _pad(n):
    return (n + 63) & ~63


def _row_bounds(rows, n):
    """The n + 1 row bounds of np.array_split(rows, n): the first rows % n
    parts get one row more.  Computed here because array_split itself took
    8.6 us for 4 rows in 2 parts (slicing takes 0.5), a quarter of a small
    scatter."""
    each, extra = divmod(rows, n)
    return [i * each + min(i, extra) for i in range(n + 1)]


_pack = msgpack.Packer(use_bin_type=True).pack


def _unpack(b):
    return msgpack.unpackb(b, raw=False, strict_map_key=False, use_list=True)


def _open(env):
    """(meta, receive buffers) for an envelope [meta, sizes(, joins)]."""
    parts = _unpack(env)
    return parts[0], codec.alloc_wire(parts[1], parts[2] if len(parts) > 2 else ())


def _signature(*parts):
    """A 63-bit digest of parts (the same on every rank, unlike hash())."""
    h = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") >> 1


class Comm:
    """A communicator.  ``COMM_WORLD`` holds every rank of the job."""

    __slots__ = ("_h", "rank", "size", "__weakref__")

    def __init__(self, handle):
        self._h = handle
        self.rank = _core.comm_rank(handle)
        self.size = _core.comm_size(handle)

    def __repr__(self):
        return f"<numpush.Comm rank {self.rank} of {self.size}>"

    # ---------------------------------------------------------------- basics

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.size

    def Split(self, color=0, key=0):
        h = _core.comm_split(self._h, UNDEFINED if color is None else color, key)
        return COMM_NULL if h is None else Comm(h)

    def Dup(self):
        return Comm(_core.comm_dup(self._h))

    Clone = Dup

    def Free(self):
        _core.comm_free(self._h)
        self._h = 0
        self.rank = self.size = -1

    def Barrier(self):
        _core.barrier(self._h)

    barrier = Barrier

    def Abort(self, errorcode=0):
        _core.abort(errorcode)

    def _root(self, root, what):
        if not isinstance(root, (int, np.integer)) or not 0 <= root < self.size:
            raise Error("ERR_ROOT", f"rank {self.rank}: {what}: root {root!r} out of range "
                        f"for a communicator of size {self.size}")
        return int(root)

    # ---------------------------------------------------------------- buffers

    def Bcast(self, buf, root=0):
        # The common case, a contiguous array of a numpush dtype, goes
        # straight to C (_core.c, "fast paths"): parsing a buffer spec costs
        # more than a small broadcast itself (8 B between 2 ranks: 0.3 us).
        if _core.bcast_array(self._h, buf, root) is None:
            return
        root = self._root(root, "Bcast")
        a, code, n, _, _ = _spec(buf, "Bcast")
        _core.bcast(self._h, a, n, code, root)

    def Scatter(self, sendbuf, recvbuf, root=0):
        if _core.scatter_array(self._h, sendbuf, recvbuf, root) is None:
            return  # fast path, as in Bcast
        root = self._root(root, "Scatter")
        if recvbuf is IN_PLACE:
            s, code, n, _, _ = _spec(sendbuf, "Scatter")
            _core.scatter(self._h, s, IN_PLACE, n // self.size, code, root)
            return
        r, code, n, _, _ = _spec(recvbuf, "Scatter")
        s = None
        if self.rank == root:
            s = _spec(sendbuf, "Scatter", False)[0]
        _core.scatter(self._h, s, r, n, code, root)

    def Scatterv(self, sendbuf, recvbuf, root=0):
        root = self._root(root, "Scatterv")
        s = counts = displs = None
        code = None
        if self.rank == root:
            s, code, n, counts, displs = _spec(sendbuf, "Scatterv", False)
            if counts is None:
                base, extra = divmod(n, self.size)
                counts = [base + (i < extra) for i in range(self.size)]
                displs = [0] + np.cumsum(counts[:-1]).tolist()
        if recvbuf is IN_PLACE:
            _core.scatterv(self._h, s, counts, displs, IN_PLACE, counts[self.rank], code, root)
            return
        r, rcode, rn, _, _ = _spec(recvbuf, "Scatterv")
        _core.scatterv(self._h, s, counts, displs, r, rn, rcode, root)

    def Gather(self, sendbuf, recvbuf, root=0):
        if _core.gather_array(self._h, sendbuf, recvbuf, root) is None:
            return  # fast path, as in Bcast
        root = self._root(root, "Gather")
        r = None
        if self.rank == root:
            r, code, rn, _, _ = _spec(recvbuf, "Gather")
        if sendbuf is IN_PLACE:
            _core.gather(self._h, IN_PLACE, r, rn // self.size, code, root)
            return
        s, code, n, _, _ = _spec(sendbuf, "Gather", False)
        _core.gather(self._h, s, r, n, code, root)

    def Gatherv(self, sendbuf, recvbuf, root=0):
        root = self._root(root, "Gatherv")
        r = counts = displs = None
        if self.rank == root:
            r, code, rn, counts, displs = _spec(recvbuf, "Gatherv")
            if counts is None:
                base, extra = divmod(rn, self.size)
                counts = [base + (i < extra) for i in range(self.size)]
                displs = [0] + np.cumsum(counts[:-1]).tolist()
        if sendbuf is IN_PLACE:
            _core.gatherv(self._h, IN_PLACE, counts[self.rank], r, counts, displs, code, root)
            return
        s, code, n, _, _ = _spec(sendbuf, "Gatherv", False)
        _core.gatherv(self._h, s, n, r, counts, displs, code, root)

    def Allgather(self, sendbuf, recvbuf):
        if _core.allgather_array(self._h, sendbuf, recvbuf) is None:
            return  # fast path, as in Bcast
        r, code, rn, _, _ = _spec(recvbuf, "Allgather")
        if sendbuf is IN_PLACE:
            _core.allgather(self._h, IN_PLACE, r, rn // self.size, code)
            return
        s, scode, n, _, _ = _spec(sendbuf, "Allgather", False)
        _core.allgather(self._h, s, r, n, code)

    def Alltoall(self, sendbuf, recvbuf):
        if _core.alltoall_array(self._h, sendbuf, recvbuf) is None:
            return  # fast path, as in Bcast
        r, code, rn, _, _ = _spec(recvbuf, "Alltoall")
        s = IN_PLACE if sendbuf is IN_PLACE else _spec(sendbuf, "Alltoall", False)[0]
        _core.alltoall(self._h, s, r, rn // self.size, code)

    def Allreduce(self, sendbuf, recvbuf, op=SUM):
        # Fast path as in Bcast: arrays of one numpush dtype, a built-in op.
        if (type(op) is Op and op.code is not None
                and _core.allreduce_array(self._h, sendbuf, recvbuf, op.code) is None):
            return
        op = _op_of(op)
        r, code, n, _, _ = _spec(recvbuf, "Allreduce")
        s = IN_PLACE if sendbuf is IN_PLACE else _spec(sendbuf, "Allreduce", False)[0]
        if op.code is None:
            src = r if s is IN_PLACE else s
            parts = np.empty((self.size,) + src.shape, src.dtype)
            self.Allgather(np.ascontiguousarray(src), parts)
            r[...] = functools.reduce(op.fn, list(parts))
            return
        _core.allreduce(self._h, s, r, n, code, op.code)

    def Reduce(self, sendbuf, recvbuf, op=SUM, root=0):
        # Fast path as in Allreduce.
        if (type(op) is Op and op.code is not None
                and _core.reduce_array(self._h, sendbuf, recvbuf, op.code, root) is None):
            return
        op = _op_of(op)
        root = self._root(root, "Reduce")
        if op.code is None:
            src = recvbuf if sendbuf is IN_PLACE else sendbuf
            src = _spec(src, "Reduce", False)[0]
            res = self.reduce(np.ascontiguousarray(src), op=op, root=root)
            if self.rank == root:
                _spec(recvbuf, "Reduce")[0][...] = res
            return
        r = None
        if self.rank == root:
            r, code, n, _, _ = _spec(recvbuf, "Reduce")
        if sendbuf is IN_PLACE:
            _core.reduce(self._h, IN_PLACE, r, n, code, op.code, root)
            return
        s, code, n, _, _ = _spec(sendbuf, "Reduce", False)
        _core.reduce(self._h, s, r, n, code, op.code, root)

    def Send(self, buf, dest, tag=0):
        if _core.send_array(self._h, buf, dest, tag) is None:
            return  # fast path, as in Bcast
        a, code, n, _, _ = _spec(buf, "Send", False)
        _core.send(self._h, a, n, code, dest, tag)

    def Recv(self, buf, source=ANY_SOURCE, tag=ANY_TAG, status=None):
        got = _core.recv_array(self._h, buf, source, tag)  # fast path, as in Bcast
        if got is NotImplemented:
            a, code, n, _, _ = _spec(buf, "Recv")
            got = _core.recv(self._h, a, n, code, source, tag)
        src, tg, cnt = got
        if status is not None:
            status.source, status.tag, status.count = src, tg, cnt

    # ---------------------------------------------------------------- objects

    def _encode_or_error(self, obj, what, rows=False):
        try:
            meta, bufs, joins = codec.encode_wire(obj, rows)
            head = [meta, [b.nbytes for b in bufs]]
            if joins:
                head.append(joins)
            return _pack(head), bufs, None
        except Exception as exc:  # noqa: BLE001 - reported on every rank below
            return None, None, f"rank {self.rank}: {what}: cannot send {type(obj).__name__}: " \
                               f"{type(exc).__name__}: {exc}"

    def _decode(self, env, recv_bufs):
        meta, _ = env
        return codec.decode(meta, recv_bufs)

    def bcast(self, obj, root=0):
        """obj at root, delivered to every rank (numpy/pandas without pickle).

        One broadcast of a fixed _SMALL-byte buffer carries the header and,
        when it fits, the whole message (a plain pickle, or the envelope and
        every buffer); otherwise it carries the envelope (or its first part)
        and the buffers follow, one broadcast each, straight into the
        receivers' own allocations.  The root decides; the other ranks learn
        which from the fixed buffer, so no extra round is needed."""
        h = self._h
        root = self._root(root, "bcast")
        small = _small_buf()
        if self.rank == root:
            kind = _nd_pack(obj, _small_views[0]) if type(obj) is np.ndarray else None
            if kind is not None:
                _core.bcast(h, small, _SMALL, BYTE_CODE, root)
                if kind == _K_LARGE_ND:
                    _core.bcast(h, obj, obj.nbytes, BYTE_CODE, root)
                return obj
            kind, env, bufs, err = self._bcast_pack(obj, small)
            _core.bcast(h, small, _SMALL, BYTE_CODE, root)
            if kind == _K_SMALL_PICKLE or kind == _K_SMALL_WIRE:
                return obj
            if len(env) > _SMALL - _SMALL_HDR:
                rest = env[_SMALL - _SMALL_HDR:]
                _core.bcast(h, rest, len(rest), BYTE_CODE, root)
            if err is not None:
                raise Error("ERR_ARG", err)
            for b in bufs:
                _core.bcast(h, b, b.nbytes, BYTE_CODE, root)
            return obj
        _core.bcast(h, small, _SMALL, BYTE_CODE, root)
        n, kind, nenv = _SMALL_HEAD.unpack_from(small)
        if kind == _K_SMALL_ND or kind == _K_LARGE_ND:
            a = _nd_unpack(_small_views[0], kind, n, nenv)
            if kind == _K_LARGE_ND:
                _core.bcast(h, a, n, BYTE_CODE, root)
            return a
        if kind == _K_SMALL_PICKLE:
            return pickle.loads(small[_SMALL_HDR:_SMALL_HDR + n])
        if kind == _K_SMALL_WIRE:
            head = _unpack(small[_SMALL_HDR:_SMALL_HDR + nenv])
            meta, sizes = head[0], head[1]
            at = _SMALL_HDR + _pad(nenv)
            whole = codec.alloc(n - _pad(nenv))
            whole[:] = small[at:_SMALL_HDR + n]
            bufs = codec.Wire()
            bufs.whole = {}
            off = 0
            for sz in sizes:
                bufs.append(whole[off:off + sz])
                off += _pad(sz)
            return codec.decode(meta, bufs)
        if n > _SMALL - _SMALL_HDR:
            rest = bytearray(n - (_SMALL - _SMALL_HDR))
            _core.bcast(h, rest, len(rest), BYTE_CODE, root)
            env = small[_SMALL_HDR:].tobytes() + bytes(rest)
        else:
            env = small[_SMALL_HDR:_SMALL_HDR + n].tobytes()
        if kind == _K_ERROR:
            raise Error("ERR_ARG", env.decode(errors="replace"))
        meta, bufs = _open(env)
        for b in bufs:
            _core.bcast(h, b, b.nbytes, BYTE_CODE, root)
        return codec.decode(meta, bufs)

    def _bcast_pack(self, obj, small):
        """At bcast's root: fill the fixed buffer small and return (kind,
        envelope, buffers, error text) for what follows it."""
        room = _SMALL - _SMALL_HDR
        try:
            meta, bufs, joins = codec.encode_wire(obj)
        except Exception as exc:  # noqa: BLE001 - reported on every rank
            err = f"rank {self.rank}: bcast: cannot send {type(obj).__name__}: " \
                  f"{type(exc).__name__}: {exc}"
            env = err.encode()
            _SMALL_HEAD.pack_into(small, 0, len(env), _K_ERROR, 0)
            head = env[:room]
            small[_SMALL_HDR:_SMALL_HDR + len(head)] = np.frombuffer(head, np.uint8)
            return _K_ERROR, env, [], err
        if not bufs and meta["k"] == "pk" and "d" in meta and len(meta["d"]) <= room:
            d = meta["d"]
            _SMALL_HEAD.pack_into(small, 0, len(d), _K_SMALL_PICKLE, 0)
            small[_SMALL_HDR:_SMALL_HDR + len(d)] = np.frombuffer(d, np.uint8)
            return _K_SMALL_PICKLE, None, None, None
        sizes = [b.nbytes for b in bufs]
        head = [meta, sizes]
        if joins:
            head.append(joins)
        env = _pack(head)
        if not joins:
            total = _pad(len(env)) + sum(_pad(sz) for sz in sizes)
            if total <= room:
                _SMALL_HEAD.pack_into(small, 0, total, _K_SMALL_WIRE, len(env))
                small[_SMALL_HDR:_SMALL_HDR + len(env)] = np.frombuffer(env, np.uint8)
                at = _SMALL_HDR + _pad(len(env))
                for b, sz in zip(bufs, sizes):
                    small[at:at + sz] = b
                    at += _pad(sz)
                return _K_SMALL_WIRE, None, None, None
        _SMALL_HEAD.pack_into(small, 0, len(env), _K_LARGE, 0)
        part = env[:room]
        small[_SMALL_HDR:_SMALL_HDR + len(part)] = np.frombuffer(part, np.uint8)
        return _K_LARGE, env, bufs, None

    def _split_for_scatter(self, sendobj):
        n = self.size
        if isinstance(sendobj, np.ndarray):
            if sendobj.ndim == 0:
                raise TypeError("a 0-d array cannot be split by rows")
            b = _row_bounds(len(sendobj), n)
            return [sendobj[b[i]:b[i + 1]] for i in range(n)]
        if pd is not None and isinstance(sendobj, (pd.DataFrame, pd.Series)):
            b = _row_bounds(len(sendobj), n)
            return [sendobj.iloc[b[i]:b[i + 1]] for i in range(n)]
        if sendobj is None:
            raise TypeError("root passed None")
        parts = list(sendobj)
        if len(parts) != n:
            raise ValueError(f"expected {n} items, one per rank, got {len(parts)}")
        return parts

    def scatter(self, sendobj, root=0):
        """Rank i gets sendobj[i]; an ndarray, Series or DataFrame is split by
        rows as np.array_split does (the index comes along)."""
        h = self._h
        root = self._root(root, "scatter")
        # First one scatter of header slots (see _SLOT): head [envelope bytes
        # (< 0: error text), buffers, most buffers of any rank, every piece
        # inline, every piece a plain array, inline kind, inline header
        # length, inline bytes].  A small piece rides in its slot, and when
        # every piece does, that one collective is the whole scatter.  A
        # larger plain array is described in its slot and its bytes are its
        # one buffer: when every piece is a plain array no envelopes follow.
        slot = np.empty(_SLOT, np.uint8)
        envs = parts = None
        if self.rank == root:
            slots = np.zeros((self.size, _SLOT), np.uint8)
            envs, parts = self._scatter_encode(sendobj, slots)
            _core.scatter(h, slots, slot, _SLOT, BYTE_CODE, root)
        else:
            _core.scatter(h, None, slot, _SLOT, BYTE_CODE, root)
        n, nb, k, every_inline, every_nd, kind, nenv, nbytes = \
            slot[:_SLOT_HEAD].view(np.int64).tolist()
        if every_inline:
            return _inline_decode(slot, kind, nenv, nbytes)
        if not every_nd:
            env = bytearray(abs(n))
            _core.scatter_list(h, envs, env, root)
            if n < 0:
                raise Error("ERR_ARG", env.decode(errors="replace"))
        if kind:  # described in the slot (and, if small, carried there)
            obj = _inline_decode(slot, kind, nenv, nbytes)
            mine = [_nd_bytes(obj)] if kind == _K_LARGE_ND and nb else []
        else:
            meta, mine = _open(env)
        for j in range(k):
            send = None
            if self.rank == root:
                send = [p[j] if j < len(p) else None for p in parts]
            _core.scatter_list(h, send, mine[j] if j < nb else None, root)
        return obj if kind else codec.decode(meta, mine)

    def _scatter_encode(self, sendobj, slots):
        """At scatter's root: fill every rank's header slot, its piece inline
        when small, described when a larger plain array (its bytes then its
        one buffer); (envelopes, buffers) per rank for the rest (an empty
        envelope for a piece in its slot), or the error text as every rank's
        envelope when sendobj cannot be split or a piece cannot be sent."""
        err = None
        envs, parts = [], []
        try:
            pieces = self._split_for_scatter(sendobj)
        except Exception as exc:  # noqa: BLE001 - reported on every rank
            err = f"rank {self.rank}: scatter: cannot split {type(sendobj).__name__}: " \
                  f"{type(exc).__name__}: {exc}"
            pieces = []
        heads = slots[:, :_SLOT_HEAD].view(np.int64)
        kinds = []
        for r, p in enumerate(pieces):
            inline = _inline_encode(p, memoryview(slots[r]), large_nd=True)
            if inline is not None:
                heads[r, 5:8] = inline
                kinds.append(inline[0])
                envs.append(b"")
                parts.append([_nd_bytes(p)] if inline[0] == _K_LARGE_ND else [])
                continue
            env, bufs, err = self._encode_or_error(p, "scatter")
            if err is not None:
                break
            kinds.append(0)
            envs.append(env)
            parts.append(bufs)
        if err is not None:
            slots[:] = 0
            envs, parts = [err.encode()] * self.size, [[]] * self.size
            heads[:, 0] = -len(envs[0])
            return envs, parts
        # One assignment of plain Python values: per-column numpy calls cost
        # a microsecond each, as much as the collective itself.
        most = max(len(b) for b in parts)
        inline = int(all(k in (_K_SMALL_ND, _K_SMALL_PICKLE) for k in kinds))
        nd = int(all(k in (_K_SMALL_ND, _K_LARGE_ND) for k in kinds))
        heads[:, :5] = [(len(e), len(b), most, inline, nd) for e, b in zip(envs, parts)]
        return envs, parts

    def _gather_headers(self, obj, what, concat=False, large_nd=False):
        """Exchange every rank's header slot (see _SLOT): returns (env, bufs,
        err, allhdr, slots), allhdr the (size, 8) int64 heads.  A small
        object rides in its slot and is not encoded (env b"", no buffers,
        allhdr[r, 5] its kind); otherwise the head says what follows: the
        envelope's length, its buffers, and for concat=True the
        concatenation layout's signature (0: none), rows, and how many
        buffers come before the blocks' rows (see codec.concat_layout)."""
        slot = np.zeros(_SLOT, np.uint8)
        head = slot[:_SLOT_HEAD].view(np.int64)
        inline = _inline_encode(obj, memoryview(slot), large_nd)
        if inline is not None:
            env, bufs, err = b"", [], None
            head[5:8] = inline
            if inline[0] == _K_LARGE_ND:  # its bytes follow as its one buffer
                bufs = [_nd_bytes(obj)] if obj.nbytes else []
                head[1] = len(bufs)
        else:
            layout = codec.concat_layout(obj) if concat else None
            sig = rows = 0
            if layout is not None:
                sig, rows = _signature(layout[0]), layout[1]
                if layout[0][0] == "nd" and not obj.flags.c_contiguous:
                    obj = np.ascontiguousarray(obj)  # one buffer, rows in order
            env, bufs, err = self._encode_or_error(obj, what, rows=layout is not None)
            if err is not None:
                env, bufs, sig = err.encode(), [], 0
            nfront = len(bufs)
            if sig and layout[0][0] == "df":
                nfront = len(bufs) - len(obj.columns)
            elif sig:
                nfront = 0
            head[:5] = [len(env) if err is None else -len(env), len(bufs), sig, rows, nfront]
        slots = np.empty((self.size, _SLOT), np.uint8)
        _core.allgather(self._h, slot, slots, _SLOT, BYTE_CODE)
        return env, bufs, err, slots[:, :_SLOT_HEAD].view(np.int64), slots

    def _raise_encode_failures(self, allhdr, env, what):
        """If some rank could not encode its object, every rank raises with
        that rank's reason (the ranks exchange the reasons first)."""
        # A list's min: numpy's (column >= 0).all() takes 2 us on 4 rows.
        if min(allhdr[:, 0].tolist()) >= 0:
            return
        texts = self._allgather_padded(env, np.abs(allhdr[:, 0]))
        bad = [r for r in range(self.size) if allhdr[r, 0] < 0]
        raise Error("ERR_ARG", "; ".join(texts[r].decode(errors="replace") for r in bad))

    def _allgather_padded(self, env, lengths):
        """Every rank's bytes env (of lengths[r]) at every rank, through one
        np_allgather padded to the longest."""
        width = int(lengths.max())
        mine = np.zeros(width, np.uint8)
        mine[:len(env)] = np.frombuffer(env, np.uint8)
        every = np.empty((self.size, width), np.uint8)
        _core.allgather(self._h, mine, every, width, BYTE_CODE)
        return [every[r, :lengths[r]].tobytes() for r in range(self.size)]

    def gather(self, sendobj, root=0, concat=False):
        """A list of every rank's object at root (None elsewhere).  With
        concat=True, arrays are concatenated along axis 0 and Series/frames
        with pandas.concat, giving one object at root."""
        h = self._h
        root = self._root(root, "gather")
        env, bufs, err, allhdr, slots = self._gather_headers(sendobj, "gather", concat, True)
        self._raise_encode_failures(allhdr, env, "gather")
        isroot = self.rank == root
        kinds = allhdr[:, 5].tolist()
        if _K_LARGE_ND in kinds and all(k in (_K_SMALL_ND, _K_LARGE_ND) for k in kinds):
            return self._gather_nd(root, concat, bufs, allhdr, slots, kinds)
        if all(kinds):  # every object came in its slot: nothing else to move
            if not isroot:
                return None
            objs = [_inline_decode(slots[r], kinds[r], int(allhdr[r, 6]), int(allhdr[r, 7]))
                    for r in range(self.size)]
            return _concat(objs) if concat else objs
        if allhdr[0, 2] != 0 and (allhdr[:, 2] == allhdr[0, 2]).all():
            return self._gather_concat(sendobj, root, env, bufs, allhdr)
        envs = [bytearray(int(n)) for n in allhdr[:, 0]] if isroot else None
        _core.gather_list(h, env, envs, root)
        metas = recv = None
        if isroot:
            # Ranks whose object came in its slot sent an empty envelope; a
            # large plain array's bytes come as its one buffer.
            metas = [_unpack(e) if not kinds[r] else None for r, e in enumerate(envs)]
            recv = [codec.alloc_wire(m[1], m[2] if len(m) > 2 else ()) if m is not None
                    else [] for m in metas]
            shells = {r: _inline_decode(slots[r], _K_LARGE_ND, int(allhdr[r, 6]),
                                        int(allhdr[r, 7]))
                      for r in range(self.size) if kinds[r] == _K_LARGE_ND}
            for r, a in shells.items():
                recv[r] = [_nd_bytes(a)] if a.nbytes else []
        for j in range(int(allhdr[:, 1].max())):
            dest = [r[j] if j < len(r) else None for r in recv] if isroot else None
            _core.gather_list(h, bufs[j] if j < len(bufs) else None, dest, root)
        if not isroot:
            return None
        objs = [codec.decode(m[0], b) if m is not None else shells[r] if r in shells else
                _inline_decode(slots[r], kinds[r], int(allhdr[r, 6]), int(allhdr[r, 7]))
                for r, (m, b) in enumerate(zip(metas, recv))]
        return _concat(objs) if concat else objs

    def _gather_nd(self, root, concat, bufs, allhdr, slots, kinds):
        """gather when every rank's object is a plain array described in its
        slot (small ones carry their bytes there too): no envelopes.  With
        concat=True and arrays that join by their bytes (one dtype, the same
        trailing shape, C order), the root allocates the result and one
        gatherv puts each rank's bytes in place; otherwise one gather of the
        large arrays' bytes into fresh arrays, concatenated as gather does."""
        h = self._h
        isroot = self.rank == root
        heads, _, mine, join = _nd_slots(slots, allhdr, self.rank, bufs)
        if concat and join is not None:
            out = raw = counts = None
            if isroot:
                out = codec.alloc(sum(n for _, n in heads)).view(join[0]).reshape(join[1])
                raw = codec.raw_bytes(out)
                counts = [n for _, n in heads]
            if all(n == heads[0][1] for _, n in heads):
                # Equal blocks: np_gather, whose small blocks ride in the
                # senders' eager areas so that they need not wait for the root.
                _core.gather(h, mine, raw, len(mine), BYTE_CODE, root)
            else:
                displs = None if counts is None else \
                    np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist()
                _core.gatherv(h, mine, len(mine), raw, counts, displs, BYTE_CODE, root)
            return out
        dest = objs = None
        if isroot:
            objs = [_inline_decode(slots[r], kinds[r], *heads[r]) for r in range(self.size)]
            dest = [_nd_bytes(o) if kinds[r] == _K_LARGE_ND and o.nbytes else None
                    for r, o in enumerate(objs)]
        _core.gather_list(h, bufs[0] if bufs else None, dest, root)
        if not isroot:
            return None
        return _concat(objs) if concat else objs

    def _gather_concat(self, sendobj, root, env, bufs, allhdr):
        """gather(concat=True) when every rank's object has the same
        concatenation layout (codec.concat_layout): the root allocates the
        result and each block's column (each array's rows) is gathered
        straight into its place, one gatherv per column, so that nothing is
        concatenated afterwards.  The rest (the frames' indexes) travels as
        in gather and is joined as pandas.concat joins it."""
        h = self._h
        isroot = self.rank == root
        rows = allhdr[:, 3]
        nfront = allhdr[:, 4]
        offs = np.concatenate([[0], np.cumsum(rows)]).tolist()
        total = int(offs[-1])
        envs = recv = None
        if isroot:
            envs = [bytearray(int(n)) for n in allhdr[:, 0]]
        _core.gather_list(h, env, envs, root)
        if isroot:
            metas = [_unpack(e) for e in envs]
            recv = [codec.alloc_wire(m[1][:int(nfront[r])]) for r, m in enumerate(metas)]
        for j in range(int(nfront.max())):
            dest = [r[j] if j < len(r) else None for r in recv] if isroot else None
            _core.gather_list(h, bufs[j] if j < int(nfront[self.rank]) else None, dest, root)
        mine = bufs[int(nfront[self.rank]):]
        if isinstance(sendobj, np.ndarray):
            a = np.atleast_1d(sendobj)
            assert len(mine) == 1 and mine[0].nbytes == a.nbytes
            rowbytes = a.dtype.itemsize * int(np.prod(a.shape[1:], dtype=np.int64))
            out = counts = displs = None
            if isroot:
                out = codec.alloc(total * rowbytes).view(a.dtype).reshape((total,) + a.shape[1:])
                counts = [int(n) * rowbytes for n in rows]
                displs = [int(o) * rowbytes for o in offs[:-1]]
            _core.gatherv(h, mine[0], mine[0].nbytes, None if out is None else
                          codec.raw_bytes(out), counts, displs, BYTE_CODE, root)
            return out
        blocks = []
        t = 0
        for blk in sendobj._mgr.blocks:
            dt = blk.values.dtype
            ncols = blk.shape[0]
            final = counts = displs = None
            if isroot:
                final = codec.alloc(ncols * total * dt.itemsize).view(dt).reshape(ncols, total)
                counts = [int(n) * dt.itemsize for n in rows]
                displs = [int(o) * dt.itemsize for o in offs[:-1]]
                blocks.append((final, blk.mgr_locs.as_array))
            for j in range(ncols):
                _core.gatherv(h, mine[t], mine[t].nbytes, None if final is None else
                              codec.raw_bytes(final[j]), counts, displs, BYTE_CODE, root)
                t += 1
        if not isroot:
            return None
        indexes = [sendobj.index if r == root else codec._index(metas[r][0]["ix"], recv[r])
                   for r in range(self.size)]
        index = indexes[0].append(indexes[1:])
        return _frame_from_blocks(blocks, index, sendobj.columns)

    def allgather(self, sendobj, concat=False):
        """Every rank's object, at every rank, in rank order (concat as in gather)."""
        h = self._h
        env, bufs, err, allhdr, slots = self._gather_headers(sendobj, "allgather",
                                                             large_nd=True)
        self._raise_encode_failures(allhdr, env, "allgather")
        kinds = allhdr[:, 5].tolist()
        nbytes = allhdr[:, 7].tolist()
        # Joined arrays of one byte size: one np_allgather straight into the
        # result.  Unjoined ones go by broadcasts below, which skip the copy
        # of this rank's own block that an allgather makes (2 ranks, 1 MiB
        # each: 84 us against 179).
        if (concat and _K_LARGE_ND in kinds and
                all(k in (_K_SMALL_ND, _K_LARGE_ND) for k in kinds) and
                all(n == nbytes[0] for n in nbytes)):
            return self._allgather_nd(sendobj, bufs, allhdr, slots)
        # Objects that came in their slots need nothing more; a large plain
        # array's bytes follow in a broadcast from its rank; the others'
        # envelopes (empty for the former) follow in one padded allgather.
        described = [k not in (0, _K_LARGE_ND) for k in kinds]
        envs = self._allgather_padded(env, allhdr[:, 0]) if 0 in kinds else None
        objs = []
        for r in range(self.size):
            if r == self.rank:
                for b in bufs:
                    _core.bcast(h, b, b.nbytes, BYTE_CODE, r)
                objs.append(sendobj)
                continue
            if kinds[r]:
                obj = _inline_decode(slots[r], kinds[r], int(allhdr[r, 6]), nbytes[r])
                if not described[r] and obj.nbytes:
                    _core.bcast(h, _nd_bytes(obj), obj.nbytes, BYTE_CODE, r)
                objs.append(obj)
                continue
            meta, rb = _open(envs[r])
            for b in rb:
                _core.bcast(h, b, b.nbytes, BYTE_CODE, r)
            objs.append(codec.decode(meta, rb))
        return _concat(objs) if concat else objs

    def _allgather_nd(self, sendobj, bufs, allhdr, slots):
        """allgather(concat=True) when every rank's object is a plain array
        of the same byte size described in its slot: one np_allgather of the
        bytes into one buffer, which is the joined result when the arrays
        join by their bytes (as in _gather_nd), else holds one array per rank
        (this rank's entry is its own object), then joined."""
        n = self.size
        heads, descs, mine, join = _nd_slots(slots, allhdr, self.rank, bufs)
        size = heads[0][1]
        raw = codec.alloc(n * size)
        _core.allgather(self._h, mine, raw, size, BYTE_CODE)
        if join is not None:
            return raw.view(join[0]).reshape(join[1])
        objs = [sendobj if r == self.rank else
                raw[r * size:(r + 1) * size].view(np.dtype(d[0])).reshape(d[1], order=d[2])
                for r, d in enumerate(descs)]
        return _concat(objs)

    def alltoall(self, sendobj):
        """sendobj is a sequence of size objects; item j goes to rank j, and
        the result holds, at position i, what rank i sent here."""
        return [self.scatter(sendobj if r == self.rank else None, root=r)
                for r in range(self.size)]

    def _reduce_plan(self, obj, op, what):
        """Agree across ranks on how to reduce: returns (kind, arrays) where
        kind is "arr", "se", "df" or "obj"; raises Error on every rank when the
        ranks' arrays or frames disagree or cannot be reduced.  The agreement
        costs one allgather of 24 bytes per rank; only on a mismatch do the
        ranks exchange their descriptions, to name the difference."""
        desc, arrays, kind = None, None, "obj"
        if op.code is not None:
            if isinstance(obj, np.ndarray):
                kind = "arr"
                ok = obj.dtype in _DTYPE_CODES
                desc = ("ndarray", obj.dtype.str, obj.shape,
                        "" if ok else f"dtype {obj.dtype} is not numeric")
                if ok:
                    arrays = [np.ascontiguousarray(obj)]
            elif pd is not None and isinstance(obj, pd.Series):
                kind = "se"
                ok = obj.dtype in _DTYPE_CODES
                desc = ("Series", str(obj.dtype), len(obj),
                        "" if ok else f"dtype {obj.dtype} is not numeric")
                if ok:
                    arrays = [np.ascontiguousarray(obj.to_numpy(copy=False))]
            elif pd is not None and isinstance(obj, pd.DataFrame):
                kind = "df"
                bad = [c for c, d in zip(obj.columns, obj.dtypes) if d not in _DTYPE_CODES]
                desc = ("DataFrame", obj.shape, repr(list(obj.columns)),
                        [str(d) for d in obj.dtypes],
                        f"non-numeric columns {bad}" if bad else "")
                if not bad:
                    arrays = sorted(((blk.mgr_locs.as_array, np.ascontiguousarray(blk.values))
                                     for blk in obj._mgr.blocks), key=lambda t: t[0][0])
        layout = _signature([t[0].tolist() for t in arrays]) if kind == "df" and arrays else 0
        sig = np.array([0 if desc is None else _signature(desc),
                        0 if desc is not None and desc[-1] else 1, layout], np.int64)
        every = np.empty((self.size, 3), np.int64)
        _core.allgather(self._h, sig, every, 3, 3)
        if not (every[:, 0] == every[0, 0]).all() or not every[:, 1].all():
            descs = self._allgather_small(desc)
            for r, d in enumerate(descs):
                if d is not None and d[-1]:
                    raise Error("ERR_DTYPE", f"rank {self.rank}: {what}: rank {r} passed "
                                f"{_describe(d)}: {d[-1]}; only numeric data reduce elementwise")
            for r, d in enumerate(descs):
                if d != descs[0]:
                    raise Error("ERR_MISMATCH",
                                f"rank {self.rank}: {what}: ranks disagree: rank 0 passed "
                                f"{_describe(descs[0])} but rank {r} passed {_describe(d)}")
            raise Error("ERR_INTERNAL", f"rank {self.rank}: {what}: signatures differ "
                        "but descriptions agree")
        if desc is None:
            return "obj", None
        if kind == "df" and not (every[:, 2] == every[0, 2]).all():
            # Same columns and dtypes but different block layouts: reduce
            # column by column so that the data line up.
            arrays = [(np.array([j]), np.ascontiguousarray(obj.iloc[:, j].to_numpy())[None, :])
                      for j in range(obj.shape[1])]
        return kind, arrays

    def _allgather_small(self, obj):
        return self.allgather(obj)

    def _reduce_common(self, sendobj, op, root, what):
        op = _op_of(op)
        kind, arrays = self._reduce_plan(sendobj, op, what)
        allr = root is None
        isroot = allr or self.rank == root
        if kind == "obj":
            objs = self.allgather(sendobj) if allr else self.gather(sendobj, root=root)
            if not isroot:
                return None
            return functools.reduce(op.fn, objs)
        outs = []
        for item in arrays:
            a = item[1] if kind == "df" else item
            code = _DTYPE_CODES.get(a.dtype)
            if code is None:
                raise Error("ERR_DTYPE", f"rank {self.rank}: {what}: dtype {a.dtype} "
                            "cannot be reduced")
            out = codec.alloc(a.nbytes).view(a.dtype).reshape(a.shape) if isroot else None
            if allr:
                _core.allreduce(self._h, a, out, a.size, code, op.code)
            else:
                _core.reduce(self._h, a, out, a.size, code, op.code, root)
            outs.append(out)
        if not isroot:
            return None
        if kind == "arr":
            return outs[0].reshape(sendobj.shape)
        if kind == "se":
            return pd.Series(outs[0], index=sendobj.index, name=sendobj.name, copy=False)
        blocks = [(o, locs) for (locs, _), o in zip(arrays, outs)]
        return _frame_from_blocks(blocks, sendobj.index, sendobj.columns)

    def allreduce(self, sendobj, op=SUM):
        """The reduction of every rank's object at every rank.  Numeric
        ndarrays, Series and DataFrames reduce elementwise in the C kernels
        (every rank must pass the same shape, dtypes and columns; the result
        keeps the local index); other objects reduce in Python in rank
        order with op(a, b)."""
        return self._reduce_common(sendobj, op, None, "allreduce")

    def reduce(self, sendobj, op=SUM, root=0):
        """As allreduce with the result at root only (None elsewhere)."""
        root = self._root(root, "reduce")
        return self._reduce_common(sendobj, op, root, "reduce")

    def send(self, obj, dest, tag=0):
        h = self._h
        env, bufs, err = self._encode_or_error(obj, "send")
        if err is not None:
            raise Error("ERR_ARG", err)
        hdr = np.array([len(env), len(bufs)], np.int64)
        _core.send(h, hdr, 2, 3, dest, tag)
        _core.send(h, env, len(env), BYTE_CODE, dest, tag)
        for b in bufs:
            _core.send(h, b, b.nbytes, BYTE_CODE, dest, tag)

    def recv(self, buf=None, source=ANY_SOURCE, tag=ANY_TAG, status=None):
        h = self._h
        hdr = np.empty(2, np.int64)
        src, tg, _ = _core.recv(h, hdr, 2, 3, source, tag)
        env = bytearray(int(hdr[0]))
        _core.recv(h, env, len(env), BYTE_CODE, src, tg)
        meta, bufs = _open(env)
        for b in bufs:
            _core.recv(h, b, b.nbytes, BYTE_CODE, src, tg)
        if status is not None:
            status.source, status.tag, status.count = src, tg, len(env)
        return codec.decode(meta, bufs)

    def sendrecv(self, sendobj, dest, sendtag=0, recvbuf=None, source=ANY_SOURCE,
                 recvtag=ANY_TAG, status=None):
        """Send then receive (safe as long as the transport buffers the send
        or the peers order their calls; numpush's send returns once the
        buffer may be reused)."""
        self.send(sendobj, dest, sendtag)
        return self.recv(recvbuf, source, recvtag, status)


def _frame_from_blocks(blocks, index, columns):
    if codec._from_blocks is not None:
        return codec._from_blocks([(o, np.asarray(locs, np.intp)) for o, locs in blocks],
                                  index=index, columns=columns)
    cols = [None] * len(columns)
    for o, locs in blocks:
        for j, loc in enumerate(locs):
            cols[loc] = o[j]
    df = pd.DataFrame(dict(enumerate(cols)), index=index, copy=False)
    df.columns = columns
    return df


def _describe(d):
    if d is None:
        return "an object that is not an array or a frame"
    if d[0] == "ndarray":
        return f"an ndarray of dtype {d[1]} and shape {tuple(d[2])}"
    if d[0] == "Series":
        return f"a Series of dtype {d[1]} and length {d[2]}"
    return f"a DataFrame of shape {tuple(d[1])} with columns {d[2]} and dtypes {d[3]}"


def _concat(objs):
    if not objs:
        return objs
    first = objs[0]
    if isinstance(first, np.ndarray):
        # 0-d arrays (and scalars) join as one row.  np.atleast_1d only
        # where needed: on every part it cost more than the concatenation
        # of four small arrays.
        return np.concatenate(
            [o if type(o) is np.ndarray and o.ndim else np.atleast_1d(o) for o in objs], axis=0)
    if pd is not None and isinstance(first, (pd.DataFrame, pd.Series)):
        return pd.concat(objs)
    return objs


class _NullComm:
    __slots__ = ()

    def __repr__(self):
        return "numpush.COMM_NULL"

    def __bool__(self):
        return False


COMM_NULL = _NullComm()
