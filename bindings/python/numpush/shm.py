"""numpush.shm: arrays and DataFrames in shared memory, one copy per node.

    from numpush.shm import SharedArray, SharedDataFrame
    sdf = SharedDataFrame.from_frame(df)          # numeric columns now shared
    with multiprocessing.Pool(4) as pool:          # fork or spawn
        pool.starmap(work, [(sdf, a, b) for a, b in blocks])   # pickles a handle
    def work(sdf, a, b):
        out = sdf["result"]                        # writable view, no copy
        with sdf.lock(rows=slice(a, b), write=True):
            out[a:b] = sdf["x"][a:b] * 2

What is shared
    ``SharedArray`` is an ``ndarray`` whose memory is a shared segment.
    ``SharedDataFrame`` keeps each column whose dtype is a plain numpy dtype
    (bool, integers, floats, complex, datetime64, timedelta64) as a 1-D
    array in one shared segment, and so is a numeric index; other columns
    (strings, objects, extension dtypes) and other indexes are ordinary
    Python objects that are pickled (copied) with the handle.
    ``sdf.frame`` is a DataFrame over the shared arrays (no copy).  Write
    through ``sdf[col]`` (a writable ndarray): with pandas' copy-on-write a
    write through the DataFrame API lands in a private copy instead.

Pickling
    A shared object pickles as a small handle (and its non-shared columns),
    so a ``multiprocessing`` worker, started by fork or spawn, maps the same
    memory instead of receiving a copy.  Unpickling the same segment again
    in one process reuses its mapping.

Lifetime (Linux)
    A segment is an anonymous memfd: it never has a name in /dev/shm, so
    nothing can be left behind however the processes end, SIGKILL
    included.  A handle names the process that pickled it, a descriptor
    number and the inode; the receiver opens ``/proc/<pid>/fd/<n>`` (allowed
    between processes of one user and pid namespace), checks the inode and
    maps it.  The memory lives while any process maps it or holds its
    descriptor, and goes when the last one closes or exits.  Attaching never
    takes ownership; nothing is registered with multiprocessing's
    resource_tracker, so there are no spurious leak warnings and no unlink
    under live users.  The process that pickles a handle must still be
    alive when the receiver unpickles it (as it is for a Pool's parent).
    Where memfd or /proc is missing (macOS), a POSIX named segment is used
    instead, named ``/nps<pid>.<n>`` (within macOS's 31 bytes); its creator
    unlinks it when closed or at exit, so only a SIGKILLed creator can
    leave a name behind there.

Locks
    Every shared object carries robust reader/writer locks (numpush's
    np_rwlock, in the segment), one per block of ``block_rows`` rows, the
    granularity chosen when the object is created (default: at most 256
    blocks).  ``obj.lock(rows=slice(a, b), write=True)`` takes the locks of
    every block the rows touch, in ascending order (so overlapping lockers
    never deadlock); ``rows=None`` takes all of them.  Uncontended, a lock
    costs well under a microsecond.  A process killed while holding a write
    lock does not wedge the others: a waiter notices within about 10 ms,
    takes the lock back, and the next holder gets ``LockOwnerDied`` once
    (with the lock released), or, with ``raise_owner_died=False``, the lock
    with ``owner_died`` set.  Locks are advisory and not recursive.

Node-shared arrays over a communicator
    ``shared_array(comm, shape, dtype)`` (attached to communicators as
    ``comm.shared_array``): collective over ``comm``, whose ranks must share
    a node; every rank gets the same SharedArray.
"""

import itertools
import mmap
import os
import socket
import sys
import threading
import weakref

import numpy as np

from . import _shm
from .errors import Error

try:
    import pandas as pd
except ImportError:  # pragma: no cover
    pd = None

__all__ = ["LockOwnerDied", "SharedArray", "SharedDataFrame", "shared_array"]


class LockOwnerDied(Error):
    """A process died while holding a write lock: the rows it guarded may be
    half-written.  Raised once, to the next process to take the lock."""

    def __init__(self, name="ERR_LOCK", detail=""):
        super().__init__(name, detail)


_shm.configure(Error, LockOwnerDied)

_LOCK = _shm.LOCK_SIZE
_ALIGN = 4096                # data starts on a page: what large arrays want
_MAX_BLOCKS = 256            # default number of lock blocks
_USE_MEMFD = hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd")
_serial = itertools.count()
_registry = weakref.WeakValueDictionary()   # (dev, ino) -> _Segment, per process
_registry_lock = threading.Lock()


def _round_up(n, a):
    return (n + a - 1) // a * a


# ---------------------------------------------------------------- segments

class _Segment:
    """One shared segment mapped in this process.  It holds one descriptor
    (what handles name, so that this process can pass the segment on) and an
    mmap object; arrays keep the mmap alive through their buffer, so the
    mapping lasts as long as any view of it, whatever close() is called."""

    __slots__ = ("fd", "mm", "size", "ino", "dev", "name", "creator", "addr", "_view",
                 "__weakref__")

    def __init__(self, fd, size, name, creator):
        self.fd = fd
        try:
            self.mm = mmap.mmap(fd, size)
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        self.size, self.ino, self.dev = size, st.st_ino, st.st_dev
        self.name, self.creator = name, creator
        self._view = np.frombuffer(self.mm, np.uint8)
        self.addr = self._view.ctypes.data
        with _registry_lock:
            _registry[(self.dev, self.ino)] = self
        if name is not None and creator:  # pragma: no cover
            weakref.finalize(self, _unlink, name)

    def __del__(self):
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:  # pragma: no cover
                pass
            self.fd = -1

    @classmethod
    def create(cls, size):
        size = _round_up(max(size, 1), mmap.PAGESIZE)
        n = next(_serial)
        if _USE_MEMFD:
            fd = os.memfd_create(f"numpush-{os.getpid()}-{n}", os.MFD_CLOEXEC)
            name = None
        else:  # pragma: no cover - macOS and other systems without memfd
            import _posixshmem
            name = f"/nps{os.getpid():x}.{n:x}"
            fd = _posixshmem.shm_open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
        except BaseException:
            os.close(fd)
            if name is not None:  # pragma: no cover
                _unlink(name)
            raise
        return cls(fd, size, name, True)

    def handle(self):
        if self.fd < 0:
            raise Error("ERR_ARG", "numpush.shm: this segment was closed in this process")
        return (os.getpid(), self.fd, self.ino, self.dev, self.size, self.name)

    @classmethod
    def attach(cls, handle):
        pid, fd, ino, dev, size, name = handle
        with _registry_lock:
            seg = _registry.get((dev, ino))
        if seg is not None and seg.fd >= 0:
            return seg
        try:
            if name is None:
                newfd = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDWR | os.O_CLOEXEC)
            else:  # pragma: no cover
                import _posixshmem
                newfd = _posixshmem.shm_open(name, os.O_RDWR, 0o600)
        except FileNotFoundError:
            raise Error("ERR_PEER", f"numpush.shm: the process that shared this segment "
                        f"(pid {pid}) has exited or closed it") from None
        except OSError as exc:
            raise Error("ERR_SYSTEM", f"numpush.shm: attaching the segment of pid {pid}: "
                        f"{exc}") from None
        st = os.fstat(newfd)
        if (st.st_ino, st.st_dev) != (ino, dev):
            os.close(newfd)
            raise Error("ERR_PEER", f"numpush.shm: pid {pid} no longer holds this segment "
                        "(its descriptor now names another file)")
        return cls(newfd, size, name, False)

    def close(self):
        """Drop this process's hold as far as live views allow: the mapping
        and descriptor go now if nothing views them, else with the last
        view."""
        self._view = None
        try:
            self.mm.close()
        except BufferError:
            pass
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.name is not None and self.creator:  # pragma: no cover
            _unlink(self.name)


def _unlink(name):  # pragma: no cover - named segments only
    try:
        import _posixshmem
        _posixshmem.shm_unlink(name)
    except OSError:
        pass


# ---------------------------------------------------------------- locks

class _Locks:
    """Block-of-rows locks at the start of a segment."""

    __slots__ = ("seg", "nrows", "block_rows", "nblocks")

    def __init__(self, seg, nrows, block_rows, nblocks):
        self.seg, self.nrows, self.block_rows, self.nblocks = seg, nrows, block_rows, nblocks

    @staticmethod
    def plan(nrows, block_rows):
        if block_rows is None:
            block_rows = max(1, -(-nrows // _MAX_BLOCKS))
        block_rows = int(block_rows)
        if block_rows < 1:
            raise ValueError("block_rows must be at least 1")
        return block_rows, max(1, -(-nrows // block_rows))

    def span(self, rows, write, timeout, raise_owner_died):
        if rows is None:
            first, last = 0, self.nblocks
        else:
            if isinstance(rows, slice):
                a, b, step = rows.indices(self.nrows)
                if step != 1:
                    raise ValueError("lock rows must be a contiguous slice (step 1)")
            else:
                a = int(rows)
                if a < 0:
                    a += self.nrows
                if not 0 <= a < self.nrows:
                    raise IndexError(f"row {rows} out of range for {self.nrows} rows")
                b = a + 1
            if b <= a:
                first = last = 0
            else:
                first, last = a // self.block_rows, (b - 1) // self.block_rows + 1
        return _shm.Span(self.seg._view, self.seg.addr + first * _LOCK, last - first, _LOCK,
                         bool(write), -1.0 if timeout is None else float(timeout),
                         bool(raise_owner_died))

    def state(self):
        return (self.nrows, self.block_rows, self.nblocks)


def _lock_doc(fn):
    fn.__doc__ = """Lock the blocks of rows that ``rows`` touches (``None``: all), for
        writing (exclusive) or reading (shared).  Use as ``with obj.lock(...):``
        or call ``acquire()``/``release()`` on the returned span.  ``timeout``
        in seconds (``None``: wait for ever) raises TimeoutError.  A dead
        writer's lock raises LockOwnerDied once (lock released) unless
        ``raise_owner_died=False``, which sets ``span.owner_died``."""
    return fn


# ---------------------------------------------------------------- arrays

def _bounds(a):
    """The first and one-past-last byte an array touches."""
    lo = hi = a.ctypes.data
    if a.size == 0:
        return lo, lo
    for n, s in zip(a.shape, a.strides):
        if s < 0:
            lo += (n - 1) * s
        else:
            hi += (n - 1) * s
    return lo, hi + a.itemsize


class SharedArray(np.ndarray):
    """An ndarray in shared memory that pickles as a handle.

    ``SharedArray(shape, dtype=float, block_rows=None)`` is zero-filled;
    ``SharedArray.from_array(a)`` copies ``a`` in once.  Views and slices stay
    SharedArrays and pickle as handles too; results of arithmetic live in
    private memory and pickle as ordinary arrays.  ``lock(rows=...)`` counts
    rows (the first axis) of the array as created."""

    def __new__(cls, shape, dtype=float, block_rows=None, order="C"):
        shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(n) for n in shape)
        dtype = np.dtype(dtype)
        if dtype.hasobject:
            raise TypeError("numpush.shm: object arrays cannot be shared (they hold pointers)")
        nrows = shape[0] if shape else 1
        block_rows, nblocks = _Locks.plan(nrows, block_rows)
        data_off = _round_up(nblocks * _LOCK, _ALIGN)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        seg = _Segment.create(data_off + nbytes)
        obj = super().__new__(cls, shape, dtype, buffer=seg.mm, offset=data_off, order=order)
        obj._npshm = _Locks(seg, nrows, block_rows, nblocks)
        return obj

    @classmethod
    def from_array(cls, a, block_rows=None):
        a = np.asanyarray(a)
        out = cls(a.shape, a.dtype, block_rows, order="F" if a.flags.f_contiguous
                  and not a.flags.c_contiguous else "C")
        out[...] = a
        return out

    def __array_finalize__(self, obj):
        self._npshm = getattr(obj, "_npshm", None)

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        # A ufunc's output is new private memory: hand it back as a plain
        # ndarray rather than a SharedArray that is not shared.
        out = arr.view(np.ndarray) if isinstance(arr, np.ndarray) else arr
        if return_scalar and isinstance(out, np.ndarray) and out.ndim == 0:
            return out[()]
        return out

    def _shared(self):
        locks = getattr(self, "_npshm", None)
        if locks is None or locks.seg.fd < 0:
            return None
        lo, hi = _bounds(self)
        base = locks.seg.addr
        return locks if base <= lo and hi <= base + locks.seg.size else None

    def __reduce__(self):
        locks = self._shared()
        if locks is None:
            return (np.array, (np.asarray(self).view(np.ndarray).copy(),))
        offset = self.ctypes.data - locks.seg.addr
        return (_rebuild_array, (locks.seg.handle(), locks.state(), offset, self.shape,
                                 self.strides, self.dtype))

    def __reduce_ex__(self, protocol):
        return self.__reduce__()

    @_lock_doc
    def lock(self, rows=None, write=False, timeout=None, raise_owner_died=True):
        locks = getattr(self, "_npshm", None)
        if locks is None:
            raise Error("ERR_ARG", "numpush.shm: this array is not in shared memory")
        return locks.span(rows, write, timeout, raise_owner_died)

    @property
    def handle(self):
        """What a pickle of this array carries (pid, fd, inode, dev, size, name)."""
        locks = self._shared()
        return None if locks is None else locks.seg.handle()

    def close(self):
        """Release this process's hold on the segment (the memory stays while
        any array viewing it lives, here or elsewhere)."""
        locks = getattr(self, "_npshm", None)
        if locks is not None:
            locks.seg.close()


def _rebuild_array(handle, lock_state, offset, shape, strides, dtype):
    seg = _Segment.attach(handle)
    arr = np.ndarray.__new__(SharedArray, shape, dtype, buffer=seg.mm, offset=offset,
                             strides=strides)
    arr._npshm = _Locks(seg, *lock_state)
    return arr


# ---------------------------------------------------------------- frames

def _shareable(dtype):
    return isinstance(dtype, np.dtype) and dtype.kind in "biufcmM" and not dtype.hasobject


class SharedDataFrame:
    """A DataFrame whose numeric columns (and numeric index) live in one
    shared segment.  ``from_frame(df, block_rows=None)`` copies them in once.

    ``sdf[col]`` is the column as a writable ndarray (shared columns) or as
    the original values (others); ``sdf.frame`` is a DataFrame over the
    shared memory; ``sdf.lock(rows=..., write=...)`` locks blocks of rows."""

    __slots__ = ("_locks", "_seg", "_layout", "_arrays", "_other", "_index", "_columns",
                 "_frame", "__weakref__")

    @classmethod
    def from_frame(cls, df, block_rows=None):
        if pd is None:  # pragma: no cover
            raise ImportError("numpush.shm.SharedDataFrame needs pandas")
        nrows = len(df)
        if not df.columns.is_unique:
            raise ValueError("numpush.shm: SharedDataFrame needs unique column labels")
        block_rows, nblocks = _Locks.plan(nrows, block_rows)
        off = _round_up(nblocks * _LOCK, _ALIGN)
        layout, other = [], {}
        for j, col in enumerate(df.columns):
            dt = df.dtypes.iloc[j]
            if _shareable(dt):
                layout.append((col, off, dt.str))
                off = _round_up(off + nrows * dt.itemsize, _ALIGN)
            else:
                other[col] = df.iloc[:, j]
        idx = df.index
        if isinstance(idx, pd.RangeIndex):
            index = ("range", idx.start, idx.stop, idx.step, idx.name)
        elif not isinstance(idx, pd.MultiIndex) and _shareable(idx.dtype):
            index = ("shared", off, idx.dtype.str, idx.name)
            off = _round_up(off + nrows * idx.dtype.itemsize, _ALIGN)
        else:
            index = ("object", idx)
        seg = _Segment.create(off)
        self = cls._build(seg, _Locks(seg, nrows, block_rows, nblocks), layout, other, index,
                          list(df.columns))
        for j, (col, _, _) in enumerate(layout):
            self._arrays[col][:] = df[col].to_numpy()
        if index[0] == "shared":
            self._index_array()[:] = idx.to_numpy()
        return self

    @classmethod
    def _build(cls, seg, locks, layout, other, index, columns):
        self = object.__new__(cls)
        self._seg, self._locks, self._layout = seg, locks, layout
        self._other, self._index, self._columns, self._frame = other, index, columns, None
        n = locks.nrows
        self._arrays = {}
        for col, off, dt in layout:
            a = np.ndarray.__new__(SharedArray, (n,), np.dtype(dt), buffer=seg.mm, offset=off)
            a._npshm = locks
            self._arrays[col] = a
        return self

    def _index_array(self):
        _, off, dt, _ = self._index
        a = np.ndarray.__new__(SharedArray, (self._locks.nrows,), np.dtype(dt),
                               buffer=self._seg.mm, offset=off)
        a._npshm = self._locks
        return a

    def __reduce__(self):
        return (_rebuild_frame, (self._seg.handle(), self._locks.state(), self._layout,
                                 self._other, self._index, self._columns))

    # --------------------------------------------------------- access

    def __len__(self):
        return self._locks.nrows

    @property
    def columns(self):
        return list(self._columns)

    @property
    def shape(self):
        return (self._locks.nrows, len(self._columns))

    @property
    def shared_columns(self):
        """The columns that live in shared memory."""
        return [col for col, _, _ in self._layout]

    def __getitem__(self, col):
        """A shared column as a writable SharedArray (no copy); another
        column as its (private) values."""
        a = self._arrays.get(col)
        if a is not None:
            return a
        if col in self._other:
            return self._other[col].array
        raise KeyError(col)

    def __setitem__(self, col, values):
        """Write into a shared column, in place: ``sdf[col] = values``."""
        a = self._arrays.get(col)
        if a is None:
            raise KeyError(f"{col!r} is not a shared column; columns are fixed at from_frame")
        a[...] = values

    @property
    def frame(self):
        """A DataFrame over the shared columns (no copy) and the others."""
        if self._frame is None:
            data = {}
            for col in self._columns:
                data[col] = self._arrays[col] if col in self._arrays else \
                    self._other[col].reset_index(drop=True).array
            kind = self._index[0]
            if kind == "range":
                _, start, stop, step, name = self._index
                index = pd.RangeIndex(start, stop, step, name=name)
            elif kind == "shared":
                index = pd.Index(self._index_array().view(np.ndarray), copy=False,
                                 name=self._index[3])
            else:
                index = self._index[1]
            data = {c: (v.view(np.ndarray) if isinstance(v, np.ndarray) else v)
                    for c, v in data.items()}
            self._frame = pd.DataFrame(data, index=index, columns=self._columns, copy=False)
        return self._frame

    def to_frame(self):
        """A private copy as an ordinary DataFrame."""
        return self.frame.copy(deep=True)

    @_lock_doc
    def lock(self, rows=None, write=False, timeout=None, raise_owner_died=True):
        return self._locks.span(rows, write, timeout, raise_owner_died)

    def close(self):
        """Release this process's hold (the memory lives while any view of it
        does, here or elsewhere)."""
        self._frame = None
        self._arrays = {}
        self._seg.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return (f"<numpush.shm.SharedDataFrame {self.shape[0]} rows x {self.shape[1]} columns, "
                f"{len(self._layout)} shared, {self._locks.nblocks} lock blocks of "
                f"{self._locks.block_rows} rows>")


def _rebuild_frame(handle, lock_state, layout, other, index, columns):
    seg = _Segment.attach(handle)
    return SharedDataFrame._build(seg, _Locks(seg, *lock_state), layout, other, index, columns)


# ---------------------------------------------------------------- communicators

def _host_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except OSError:  # pragma: no cover
        boot = ""
    return f"{socket.gethostname()}/{boot}"


def shared_array(comm, shape, dtype=float, block_rows=None):
    """Collective over ``comm``: one SharedArray of ``shape`` that every rank
    maps (rank 0 creates it).  The ranks must share a node (split a larger
    communicator by node first); otherwise every rank raises ERR_COMM."""
    hosts = comm.allgather(_host_id())
    for r, h in enumerate(hosts):
        if h != hosts[0]:
            raise Error("ERR_COMM", f"rank {comm.rank}: shared_array: ranks 0 and {r} are on "
                        "different nodes; split the communicator by node first")
    state, err = None, None
    if comm.rank == 0:
        try:
            arr = SharedArray(shape, dtype, block_rows)
            state = arr.__reduce__()[1]
        except Exception as exc:  # every rank must hear of it
            err = f"rank 0 could not create the segment: {exc}"
    state, err = comm.bcast((state, err), root=0)
    if comm.rank != 0 and err is None:
        try:
            arr = _rebuild_array(*state)
        except Exception as exc:
            err = f"rank {comm.rank} could not attach: {exc}"
    errs = [e for e in comm.allgather(err) if e is not None]
    if errs:
        raise Error("ERR_SYSTEM", f"rank {comm.rank}: shared_array: {errs[0]}")
    return arr
