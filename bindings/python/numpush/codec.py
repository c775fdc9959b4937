"""The wire format of Python objects: a msgpack envelope plus raw buffers.

``encode(obj)`` returns ``(meta, bufs)``: ``meta`` is a small tree of msgpack
types that describes the object, ``bufs`` a list of contiguous buffers (numpy
arrays viewed as bytes, or pickle's out-of-band buffers) that ``meta`` refers
to by position.  Block data is never copied on the way out, except that a
non-contiguous array is made contiguous once.  ``decode(meta, bufs)`` rebuilds
the object from buffers that the receiver allocated itself (``alloc``) and
filled straight from the wire: arrays and DataFrame blocks are views of them.

Items of ``meta`` are dicts with a kind ``k``:

``nd``   ndarray: ``dt`` dtype string (numpy's ``dtype.str``), ``sh`` shape,
         ``o`` memory order "C" or "F", ``b`` buffer index.  A 2-D array
         whose rows are contiguous but not adjacent (a row slice of a
         frame's block) has ``j`` = [first, count] instead of ``b``: its rows
         travel as buffers first .. first+count-1, which the receiver places
         one after the other in a single allocation (see ``alloc_wire``), so
         that it gets one C-ordered array again; nothing is copied to send.
``pk``   anything else: pickle protocol 5.  Small pickles ride in ``d``
         inline; large ones in buffer ``b``.  Out-of-band buffers (numpy
         arrays inside objects, PickleBuffer) are buffers ``oob``.  Object and
         string columns, nullable (masked) arrays, structured dtypes and
         generic Python objects travel this way.
``dtz``  datetime with a time zone: int64 ticks ``v`` (an ``nd``), ``u`` unit,
         ``tz`` zone name.
``cat``  Categorical: codes ``c`` (``nd``), categories ``cats`` (an index
         item), ``ord`` ordered.
``ri``   RangeIndex (``a`` start, ``b`` stop, ``s`` step); ``mi`` MultiIndex
         (levels ``lv``, codes ``cd``, names ``nms``); ``dti`` DatetimeIndex
         (values ``v``, ``tz``, ``fq`` freq); ``lst`` a small index of plain
         labels carried as a msgpack list with its dtype ``dt``; ``ix`` any
         other Index (values ``v``, an array item).
``se``   Series: values ``v``, index ``ix``, name ``nm``.
``df``   DataFrame: index ``ix``, columns ``cols``, blocks ``bl``: a list of
         ``[placement, item]`` where item is a 2-D ``nd`` (a pandas block of
         shape (columns, rows), as the block manager keeps it) or a 1-D item
         for a single extension or object column.
``lab``  a label (index name, Series name) that msgpack cannot carry as is:
         pickled inline.
"""

import mmap
import os
import pickle
import weakref

import numpy as np

try:  # the compiled core's pointer lookup, ten times numpy's (see alloc)
    from numpush._core import address as _address
except ImportError:  # pragma: no cover - the extension is always built
    def _address(a):
        return a.__array_interface__["data"][0]

try:
    import pandas as pd
except ImportError:  # pragma: no cover - pandas is a dependency
    pd = None

try:
    from pandas.api.internals import create_dataframe_from_blocks as _from_blocks
except ImportError:  # older pandas: frames are rebuilt column by column
    _from_blocks = None

__all__ = ["encode", "encode_wire", "decode", "alloc", "alloc_wire", "raw_bytes",
           "concat_layout", "INLINE_PICKLE"]

# Pickles up to this size ride inside the envelope instead of a buffer of
# their own, which saves a collective per small object.
INLINE_PICKLE = 32 * 1024
# Indexes of plain labels up to this length travel as a msgpack list.
_LIST_INDEX_MAX = 4096
_ALIGN = 64
# A 2-D array that is not contiguous but whose rows are travels row by row
# (one buffer per row, no copy) when a row holds at least this many bytes;
# smaller rows are cheaper to copy once than to send one by one.
SPLIT_ROW_BYTES = 32 * 1024
# gather(concat=True) of frames receives column by column straight into the
# result when a frame has at most this many columns, or its columns hold at
# least SPLIT_ROW_BYTES each on every rank.
CONCAT_MAX_COLS = 64
_PLAIN = (str, int, float, bool, type(None))


class _Pool:
    """Recycles large receive buffers.

    A received array or frame lives on a buffer that numpush allocated.  A
    fresh large allocation costs a page fault per page the first time it is
    written, which made a broadcast into fresh memory about 1.5 to 2 times
    slower than one into memory that had been used before.  So buffers of at
    least MIN bytes are anonymous mappings (transparent huge pages where the
    kernel allows), and when the last array that views one is garbage
    collected the mapping goes back to this pool instead of to the kernel;
    the next receive of a similar size reuses it, already faulted in.

    The pool keeps at most MAX_BYTES of free mappings (environment
    NUMPUSH_PY_POOL_BYTES, default 1 GiB; 0 turns it off) and hands out a
    mapping only to a request of at least half its size.
    """

    MIN = 1 << 20
    HUGE = 2 << 20

    def __init__(self):
        self.free = []  # mmap objects, most recently released last
        self.bytes = 0
        self.max_bytes = int(os.environ.get("NUMPUSH_PY_POOL_BYTES", 1 << 30))

    def get(self, nbytes):
        for i in range(len(self.free) - 1, -1, -1):
            m = self.free[i]
            if nbytes <= len(m) <= 2 * nbytes:
                del self.free[i]
                self.bytes -= len(m)
                break
        else:
            size = -(-nbytes // self.HUGE) * self.HUGE
            m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            if hasattr(m, "madvise") and hasattr(mmap, "MADV_HUGEPAGE"):
                try:
                    m.madvise(mmap.MADV_HUGEPAGE)
                except OSError:
                    pass
        whole = np.frombuffer(m, np.uint8)
        weakref.finalize(whole, self.put, m)
        return whole[:nbytes]

    def put(self, m):
        if self.max_bytes <= 0 or len(m) > self.max_bytes:
            return
        self.free.append(m)
        self.bytes += len(m)
        while self.bytes > self.max_bytes:
            self.bytes -= len(self.free.pop(0))


_pool = _Pool()


def alloc(nbytes):
    """A fresh uint8 array of nbytes whose data is 64-byte aligned (memcpy on
    this hardware is much slower into a destination that is not).  Large
    buffers come from a pool of recycled mappings (see _Pool)."""
    if nbytes >= _Pool.MIN and _pool.max_bytes > 0:
        return _pool.get(nbytes)
    raw = np.empty(nbytes + _ALIGN, np.uint8)
    off = (-_address(raw)) % _ALIGN
    return raw[off:off + nbytes]


class Wire(list):
    """The receive buffers of one object: a list of uint8 arrays, one per
    buffer on the wire, and in ``whole`` the allocations that joined groups
    of them (``{first: uint8 array}``, see the ``j`` items of ``nd``)."""

    __slots__ = ("whole",)


def alloc_wire(sizes, joins=()):
    """Receive buffers for the wire buffers of sizes (bytes): fresh and
    aligned, except that each join [first, count] gets one allocation whose
    consecutive parts are buffers first .. first+count-1."""
    out = Wire([None] * len(sizes))
    out.whole = {}
    for first, count in joins:
        whole = alloc(sum(sizes[first:first + count]))
        out.whole[first] = whole
        at = 0
        for i in range(first, first + count):
            out[i] = whole[at:at + sizes[i]]
            at += sizes[i]
    for i, n in enumerate(sizes):
        if out[i] is None:
            out[i] = alloc(n)
    return out


def raw_bytes(a):
    """A C- or F-contiguous array as a flat uint8 view (no copy).  Works for
    dtypes that lack the buffer protocol (datetime64, timedelta64)."""
    return a.reshape(-1, order="A").view(np.uint8)


def _movable(dt):
    """Whether an array of dt can travel as raw bytes."""
    return not dt.hasobject and dt.fields is None and dt.itemsize > 0


# ------------------------------------------------------------------ encoding

class _Enc:
    __slots__ = ("bufs", "joins", "rows")

    def __init__(self, rows=False):
        self.bufs = []
        self.joins = []
        self.rows = rows  # frames' blocks always travel row by row

    def buf(self, b):
        self.bufs.append(b)
        return len(self.bufs) - 1

    def nd_rows(self, a):
        """A 2-D array as one buffer per row (rows made contiguous first if
        they are not)."""
        if a.ndim != 2:
            raise ValueError("nd_rows needs a 2-D array")
        if a.shape[1] > 1 and a.strides[1] != a.itemsize:
            a = np.ascontiguousarray(a)
        first = len(self.bufs)
        for j in range(a.shape[0]):
            self.bufs.append(raw_bytes(a[j]))
        self.joins.append([first, a.shape[0]])
        return {"k": "nd", "dt": a.dtype.str, "sh": a.shape, "o": "C",
                "j": [first, a.shape[0]]}

    def nd(self, a):
        if (a.ndim == 2 and not (a.flags.c_contiguous or a.flags.f_contiguous)
                and a.strides[1] == a.itemsize and a.shape[1] * a.itemsize >= SPLIT_ROW_BYTES):
            return self.nd_rows(a)
        if a.flags.c_contiguous:
            order = "C"
        elif a.flags.f_contiguous:
            order = "F"
        else:
            a = np.ascontiguousarray(a)
            order = "C"
        return {"k": "nd", "dt": a.dtype.str, "sh": a.shape, "o": order,
                "b": self.buf(raw_bytes(a))}

    def pickle(self, obj):
        oob = []

        def keep(pb):
            try:
                raw = pb.raw()
            except BufferError:  # non-contiguous: stays in band
                return True
            oob.append(self.buf(raw))
            return False

        data = pickle.dumps(obj, protocol=5, buffer_callback=keep)
        item = {"k": "pk", "oob": oob}
        if len(data) <= INLINE_PICKLE:
            item["d"] = data
        else:
            item["b"] = self.buf(np.frombuffer(data, np.uint8))
        return item

    def label(self, x):
        if isinstance(x, _PLAIN):
            return x
        return {"k": "lab", "d": pickle.dumps(x, protocol=5)}

    def array(self, a):
        """An array-like column: ndarray or pandas extension array."""
        if isinstance(a, np.ndarray):
            return self.nd(a) if _movable(a.dtype) else self.pickle(a)
        if pd is not None:
            dt = a.dtype
            if isinstance(dt, pd.DatetimeTZDtype):
                return {"k": "dtz", "v": self.nd(np.asarray(a.asi8)), "u": dt.unit,
                        "tz": str(dt.tz)}
            if isinstance(dt, pd.CategoricalDtype):
                return {"k": "cat", "c": self.nd(np.asarray(a.codes)),
                        "cats": self.index(a.categories), "ord": bool(dt.ordered)}
            if dt.kind in "mM" and isinstance(dt, np.dtype):
                return self.nd(np.asarray(a))
        return self.pickle(a)

    def index(self, ix):
        if isinstance(ix, pd.RangeIndex):
            return {"k": "ri", "a": ix.start, "b": ix.stop, "s": ix.step,
                    "nm": self.label(ix.name)}
        if isinstance(ix, pd.MultiIndex):
            return {"k": "mi", "lv": [self.index(lv) for lv in ix.levels],
                    "cd": [self.nd(np.asarray(c)) for c in ix.codes],
                    "nms": [self.label(n) for n in ix.names]}
        if isinstance(ix, pd.DatetimeIndex):
            tz = ix.tz
            vals = ix.tz_convert(None) if tz is not None else ix
            return {"k": "dti", "v": self.nd(np.asarray(vals.values)),
                    "tz": None if tz is None else str(tz),
                    "fq": None if ix.freq is None else ix.freqstr,
                    "nm": self.label(ix.name)}
        dt = ix.dtype
        if (len(ix) <= _LIST_INDEX_MAX and (dt == object or str(dt) == "str")
                and all(type(x) in (str, int, float) for x in ix)):
            return {"k": "lst", "v": ix.tolist(), "dt": str(dt), "nm": self.label(ix.name)}
        return {"k": "ix", "v": self.array(ix.array if not isinstance(dt, np.dtype)
                                           else np.asarray(ix)),
                "nm": self.label(ix.name)}

    def frame(self, df):
        # The index and the columns first, so that the blocks' buffers come
        # last (gather with concat=True relies on it).
        ix = self.index(df.index)
        cols = self.index(df.columns)
        nd = self.nd_rows if self.rows else self.nd
        blocks = []
        for blk in df._mgr.blocks:
            locs = blk.mgr_locs.as_array.tolist()
            vals = blk.values
            if vals.ndim == 1:  # one extension column (strings, categorical, ...)
                blocks.append([locs, self.array(vals)])
            elif isinstance(vals, np.ndarray):  # numeric, bool or object 2-D block
                blocks.append([locs, nd(vals) if _movable(vals.dtype)
                               else self.pickle(vals)])
            elif isinstance(vals.dtype, np.dtype):  # naive datetime64/timedelta64
                blocks.append([locs, nd(np.asarray(vals))])
            else:  # a 2-D extension block (tz-aware datetimes): column by column
                for j, loc in enumerate(locs):
                    blocks.append([[loc], self.array(vals[j])])
        return {"k": "df", "ix": ix, "cols": cols, "bl": blocks, "n": len(df)}

    def obj(self, obj):
        if isinstance(obj, np.ndarray) and type(obj) is np.ndarray:
            return self.nd(obj) if _movable(obj.dtype) else self.pickle(obj)
        if pd is not None:
            if type(obj) is pd.DataFrame:
                return self.frame(obj)
            if type(obj) is pd.Series:
                return {"k": "se", "v": self.array(obj.array if not isinstance(
                    obj.dtype, np.dtype) else obj.to_numpy(copy=False)),
                    "ix": self.index(obj.index), "nm": self.label(obj.name)}
        return self.pickle(obj)


def encode(obj):
    """(meta, bufs) for obj; see the module docstring."""
    e = _Enc()
    meta = e.obj(obj)
    return meta, e.bufs


def encode_wire(obj, rows=False):
    """(meta, bufs, joins): as encode, plus the groups of buffers that the
    receiver should place in one allocation (pass them to alloc_wire).  With
    rows=True every block of a frame travels row by row, after every other
    buffer (for gather with concat=True)."""
    e = _Enc(rows)
    meta = e.obj(obj)
    return meta, e.bufs, e.joins


def concat_layout(obj):
    """What gather(concat=True) needs to receive obj's data straight into the
    concatenated result, or None when it cannot: (description, rows) where
    the description is the same on every rank whose object concatenates the
    same way (a frame of numeric blocks with the same columns, dtypes and
    block layout; an ndarray of the same dtype and trailing shape)."""
    if isinstance(obj, np.ndarray) and type(obj) is np.ndarray:
        a = np.atleast_1d(obj)
        if not _movable(a.dtype) or not a.dtype.isnative:  # np.concatenate makes it native
            return None
        if not (a.ndim == 1 or a.flags.c_contiguous):
            # np.concatenate keeps the inputs' memory order; only C-like
            # inputs concatenate into a C-ordered result.
            st = [abs(x) for x, n in zip(a.strides, a.shape) if n > 1]
            if a.flags.f_contiguous or st != sorted(st, reverse=True):
                return None
        return ("nd", a.dtype.str, a.shape[1:]), len(a)
    if pd is None or type(obj) is not pd.DataFrame:
        return None
    blocks = obj._mgr.blocks
    if not blocks:
        return None
    desc = []
    small = 1 << 62
    for blk in blocks:
        vals = blk.values
        if (vals.ndim != 2 or not isinstance(vals.dtype, np.dtype)
                or not _movable(vals.dtype) or not vals.dtype.isnative):
            return None
        desc.append((blk.mgr_locs.as_array.tolist(), vals.dtype.str))
        small = min(small, vals.dtype.itemsize)
    cols = obj.columns
    if len(cols) > CONCAT_MAX_COLS and len(obj) * small < SPLIT_ROW_BYTES:
        return None
    return ("df", desc, type(cols).__name__, str(cols.dtype), repr(list(cols.names)),
            repr(cols.tolist())), len(obj)


# ------------------------------------------------------------------ decoding

def _label(x):
    if isinstance(x, dict):
        return pickle.loads(x["d"])
    return x


def _nd(it, bufs):
    dt = np.dtype(it["dt"])
    if "j" in it:  # rows that travelled one by one into one allocation
        first, count = it["j"]
        whole = getattr(bufs, "whole", {}).get(first)
        if whole is None:  # buffers allocated one by one: join them
            whole = np.concatenate([np.asarray(bufs[i]).view(np.uint8)
                                    for i in range(first, first + count)]
                                   or [np.empty(0, np.uint8)])
        return whole.view(dt).reshape(tuple(it["sh"]))
    b = bufs[it["b"]]
    return b.view(dt).reshape(tuple(it["sh"]), order=it["o"])


def _array(it, bufs):
    k = it["k"]
    if k == "nd":
        return _nd(it, bufs)
    if k == "pk":
        return _unpickle(it, bufs)
    if k == "dtz":
        ticks = _nd(it["v"], bufs).view(f"M8[{it['u']}]")
        return pd.DatetimeIndex(ticks).tz_localize("UTC").tz_convert(it["tz"]).array
    if k == "cat":
        return pd.Categorical.from_codes(_nd(it["c"], bufs), categories=_index(it["cats"], bufs),
                                         ordered=it["ord"])
    raise ValueError(f"unknown array item {k!r}")


def _unpickle(it, bufs):
    data = it["d"] if "d" in it else bufs[it["b"]]
    return pickle.loads(data, buffers=[bufs[i] for i in it["oob"]])


def _index(it, bufs):
    k = it["k"]
    if k == "ri":
        return pd.RangeIndex(it["a"], it["b"], it["s"], name=_label(it["nm"]))
    if k == "mi":
        return pd.MultiIndex(levels=[_index(lv, bufs) for lv in it["lv"]],
                             codes=[_nd(c, bufs) for c in it["cd"]],
                             names=[_label(n) for n in it["nms"]], verify_integrity=False)
    if k == "dti":
        ix = pd.DatetimeIndex(_nd(it["v"], bufs), name=_label(it["nm"]))
        if it["tz"] is not None:
            ix = ix.tz_localize("UTC").tz_convert(it["tz"])
        if it["fq"] is not None:
            ix.freq = it["fq"]
        return ix
    if k == "lst":
        return pd.Index(it["v"], dtype=it["dt"], name=_label(it["nm"]))
    if k == "ix":
        return pd.Index(_array(it["v"], bufs), name=_label(it["nm"]), copy=False)
    raise ValueError(f"unknown index item {k!r}")


def _frame(it, bufs):
    index = _index(it["ix"], bufs)
    columns = _index(it["cols"], bufs)
    blocks = []
    for locs, item in it["bl"]:
        vals = _array(item, bufs)
        if isinstance(vals, np.ndarray) and vals.ndim == 1:
            vals = vals.reshape(1, -1)
        blocks.append((vals, np.asarray(locs, dtype=np.intp)))
    if _from_blocks is not None:
        return _from_blocks(blocks, index=index, columns=columns)
    cols = [None] * len(columns)
    for vals, locs in blocks:
        for j, loc in enumerate(locs):
            cols[loc] = vals[j] if isinstance(vals, np.ndarray) else vals
    df = pd.DataFrame(dict(enumerate(cols)), index=index, copy=False)
    df.columns = columns
    return df


def decode(meta, bufs):
    """The object that meta describes, built on bufs (views, no copy)."""
    k = meta["k"]
    if k == "df":
        return _frame(meta, bufs)
    if k == "se":
        return pd.Series(_array(meta["v"], bufs), index=_index(meta["ix"], bufs),
                         name=_label(meta["nm"]), copy=False)
    return _array(meta, bufs)
