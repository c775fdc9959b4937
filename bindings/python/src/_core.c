/*
 * numpush._core: the thin C layer between Python and the public C API.
 *
 * Every function here takes buffer-protocol objects and explicit element
 * counts computed by the Python layer (numpush/comm.py), checks that each
 * buffer is large enough for what the C call will read or write, and runs the
 * C call with the GIL released.  Communicators travel as integer handles (the
 * np_comm pointer), which keeps the per-call cost to a few attribute lookups.
 *
 * A failing C call raises the exception class registered by configure()
 * (numpush.Error) with the error's symbolic name, np_last_error()'s detail
 * and the numeric code.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <numpush/numpush.h>

/* Run stmt with the GIL released (the C call may block on other ranks). */
#define CORE_NOGIL(stmt)                                                                           \
    do {                                                                                           \
        PyThreadState *core_ts_ = PyEval_SaveThread();                                             \
        stmt;                                                                                      \
        PyEval_RestoreThread(core_ts_);                                                            \
    } while (0)

/* numpush.Error and numpush.IN_PLACE, registered by configure(). */
static PyObject *core_error_cls;
static PyObject *core_in_place;

/* Raise numpush.Error(name, detail, code). */
static PyObject *core_raise(const char *name, const char *detail, int code)
{
    if (core_error_cls == NULL) {
        PyErr_Format(PyExc_RuntimeError, "%s: %s", name, detail);
        return NULL;
    }
    PyObject *exc = PyObject_CallFunction(core_error_cls, "ssi", name, detail, code);
    if (exc != NULL) {
        PyErr_SetObject(core_error_cls, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

/* Raise for a failed C call e. */
static PyObject *core_raise_np(np_err e)
{
    const char *detail = np_last_error();
    if (detail == NULL || detail[0] == '\0')
        detail = np_strerror(e);
    return core_raise(np_errname(e), detail, (int)e);
}

/* Raise a numpush.Error that the binding itself detected. */
static PyObject *core_raise_fmt(np_err e, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return core_raise(np_errname(e), msg, (int)e);
}

static np_comm *core_comm(PyObject *h)
{
    void *p = PyLong_AsVoidPtr(h);
    if (p == NULL && !PyErr_Occurred())
        core_raise_fmt(NP_ERR_COMM, "communicator handle is NULL (freed communicator?)");
    return (np_comm *)p;
}

/* A buffer argument: a Py_buffer, or NP_IN_PLACE, or absent (None). */
typedef struct core_buf {
    Py_buffer view;
    int held;
    const void *ptr; /* view.buf, NP_IN_PLACE or NULL */
    size_t len;      /* bytes */
} core_buf;

/* Acquire obj as a buffer.  writable asks for a writable one.  allow_none and
 * allow_in_place say whether None / IN_PLACE are accepted here.  need is the
 * minimum size in bytes (checked only for real buffers). */
static int core_get(PyObject *obj, core_buf *b, int writable, int allow_none, int allow_in_place,
                    size_t need, const char *what)
{
    b->held = 0;
    b->ptr = NULL;
    b->len = 0;
    if (obj == Py_None && allow_none)
        return 0;
    if (core_in_place != NULL && obj == core_in_place) {
        if (!allow_in_place) {
            core_raise_fmt(NP_ERR_ARG, "%s: IN_PLACE is not allowed here", what);
            return -1;
        }
        b->ptr = NP_IN_PLACE;
        return 0;
    }
    int flags = PyBUF_ANY_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, &b->view, flags) < 0) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyObject *s = value ? PyObject_Str(value) : NULL;
        const char *txt = s ? PyUnicode_AsUTF8(s) : NULL;
        core_raise_fmt(NP_ERR_ARG, "%s: not a%s contiguous buffer (%s: %s)", what,
                       writable ? " writable" : "", Py_TYPE(obj)->tp_name, txt ? txt : "?");
        Py_XDECREF(s);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return -1;
    }
    b->held = 1;
    b->ptr = b->view.buf;
    b->len = (size_t)b->view.len;
    if (b->len < need) {
        core_raise_fmt(NP_ERR_COUNT, "%s: buffer of %zu bytes is too small for %zu bytes", what,
                       b->len, need);
        PyBuffer_Release(&b->view);
        b->held = 0;
        return -1;
    }
    return 0;
}

static void core_put(core_buf *b)
{
    if (b->held)
        PyBuffer_Release(&b->view);
    b->held = 0;
}

static size_t core_dtsize(int dt)
{
    return np_dtype_size((np_dtype)dt);
}

/* Bytes of count elements of dt, or raise on overflow / bad dtype. */
static int core_bytes(unsigned long long count, int dt, size_t mult, size_t *out)
{
    size_t es = core_dtsize(dt);
    if (es == 0) {
        core_raise_fmt(NP_ERR_DTYPE, "unknown numpush dtype code %d", dt);
        return -1;
    }
    if (mult != 0 && count > SIZE_MAX / es / mult) {
        core_raise_fmt(NP_ERR_COUNT, "count %llu overflows", count);
        return -1;
    }
    *out = (size_t)count * es * mult;
    return 0;
}

/* ------------------------------------------------------------------ lifetime */

static PyObject *core_configure(PyObject *self, PyObject *args)
{
    PyObject *err, *inplace;
    if (!PyArg_ParseTuple(args, "OO", &err, &inplace))
        return NULL;
    Py_XSETREF(core_error_cls, Py_NewRef(err));
    Py_XSETREF(core_in_place, Py_NewRef(inplace));
    Py_RETURN_NONE;
}

static PyObject *core_init(PyObject *self, PyObject *noargs)
{
    np_err e = NP_OK;
    if (!np_initialized()) {
        CORE_NOGIL(e = np_init(NULL, NULL));
    }
    if (e != NP_OK)
        return core_raise_np(e);
    return PyLong_FromVoidPtr(np_comm_world());
}

static PyObject *core_finalize(PyObject *self, PyObject *noargs)
{
    np_err e = NP_OK;
    if (np_initialized()) {
        CORE_NOGIL(e = np_finalize());
    }
    if (e != NP_OK)
        return core_raise_np(e);
    Py_RETURN_NONE;
}

static PyObject *core_initialized(PyObject *self, PyObject *noargs)
{
    return PyBool_FromLong(np_initialized());
}

static PyObject *core_abort(PyObject *self, PyObject *args)
{
    int code;
    if (!PyArg_ParseTuple(args, "i", &code))
        return NULL;
    np_abort(np_comm_world(), code);
    Py_RETURN_NONE; /* not reached */
}

static PyObject *core_wtime(PyObject *self, PyObject *noargs)
{
    return PyFloat_FromDouble(np_wtime());
}

static PyObject *core_errname(PyObject *self, PyObject *args)
{
    int e;
    if (!PyArg_ParseTuple(args, "i", &e))
        return NULL;
    return PyUnicode_FromString(np_errname((np_err)e));
}

static PyObject *core_dtype_size(PyObject *self, PyObject *args)
{
    int dt;
    if (!PyArg_ParseTuple(args, "i", &dt))
        return NULL;
    return PyLong_FromSize_t(core_dtsize(dt));
}

/* ------------------------------------------------------------------ communicators */

static PyObject *core_comm_rank(PyObject *self, PyObject *args)
{
    PyObject *h;
    if (!PyArg_ParseTuple(args, "O", &h))
        return NULL;
    np_comm *c = core_comm(h);
    if (c == NULL)
        return NULL;
    return PyLong_FromLong(np_comm_rank(c));
}

static PyObject *core_comm_size(PyObject *self, PyObject *args)
{
    PyObject *h;
    if (!PyArg_ParseTuple(args, "O", &h))
        return NULL;
    np_comm *c = core_comm(h);
    if (c == NULL)
        return NULL;
    return PyLong_FromLong(np_comm_size(c));
}

static PyObject *core_comm_split(PyObject *self, PyObject *args)
{
    PyObject *h;
    int color, key;
    if (!PyArg_ParseTuple(args, "Oii", &h, &color, &key))
        return NULL;
    np_comm *c = core_comm(h), *out = NULL;
    if (c == NULL)
        return NULL;
    np_err e;
    CORE_NOGIL(e = np_comm_split(c, color, key, &out));
    if (e != NP_OK)
        return core_raise_np(e);
    if (out == NULL)
        Py_RETURN_NONE;
    return PyLong_FromVoidPtr(out);
}

static PyObject *core_comm_dup(PyObject *self, PyObject *args)
{
    PyObject *h;
    if (!PyArg_ParseTuple(args, "O", &h))
        return NULL;
    np_comm *c = core_comm(h), *out = NULL;
    if (c == NULL)
        return NULL;
    np_err e;
    CORE_NOGIL(e = np_comm_dup(c, &out));
    if (e != NP_OK)
        return core_raise_np(e);
    return PyLong_FromVoidPtr(out);
}

static PyObject *core_comm_free(PyObject *self, PyObject *args)
{
    PyObject *h;
    if (!PyArg_ParseTuple(args, "O", &h))
        return NULL;
    np_comm *c = core_comm(h);
    if (c == NULL)
        return NULL;
    np_err e;
    CORE_NOGIL(e = np_comm_free(&c));
    if (e != NP_OK)
        return core_raise_np(e);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ collectives */

static PyObject *core_barrier(PyObject *self, PyObject *args)
{
    PyObject *h;
    if (!PyArg_ParseTuple(args, "O", &h))
        return NULL;
    np_comm *c = core_comm(h);
    if (c == NULL)
        return NULL;
    np_err e;
    CORE_NOGIL(e = np_barrier(c));
    if (e != NP_OK)
        return core_raise_np(e);
    Py_RETURN_NONE;
}

/* bcast(h, buf, count, dt, root) */
static PyObject *core_bcast(PyObject *self, PyObject *args)
{
    PyObject *h, *bo;
    unsigned long long count;
    int dt, root;
    if (!PyArg_ParseTuple(args, "OOKii", &h, &bo, &count, &dt, &root))
        return NULL;
    np_comm *c = core_comm(h);
    size_t need;
    if (c == NULL || core_bytes(count, dt, 1, &need) < 0)
        return NULL;
    core_buf b;
    /* Only receivers write into buf, so the root may pass a read-only one. */
    if (core_get(bo, &b, np_comm_rank(c) != root, 0, 0, need, "bcast") < 0)
        return NULL;
    np_err e;
    CORE_NOGIL(e = np_bcast((void *)b.ptr, (size_t)count, (np_dtype)dt, root, c));
    core_put(&b);
    if (e != NP_OK)
        return core_raise_np(e);
    Py_RETURN_NONE;
}

/* scatter(h, sendbuf|None|IN_PLACE, recvbuf|IN_PLACE, count, dt, root) */
static PyObject *core_scatter(PyObject *self, PyObject *args)
{
    PyObject *h, *so, *ro;
    unsigned long long count;
    int dt, root;
    if (!PyArg_ParseTuple(args, "OOOKii", &h, &so, &ro, &count, &dt, &root))
        return NULL;
    np_comm *c = core_comm(h);
    size_t one;
    if (c == NULL || core_bytes(count, dt, 1, &one) < 0)
        return NULL;
    int rank = np_comm_rank(c), size = np_comm_size(c);
    core_buf s = {0}, r = {0};
    if (core_get(so, &s, 0, 1, 0, rank == root ? one * (size_t)size : 0, "scatter sendbuf") < 0)
        return NULL;
    if (core_get(ro, &r, 1, 0, rank == root, one, "scatter recvbuf") < 0) {
        core_put(&s);
        return NULL;
    }
    np_err e;
    CORE_NOGIL(e = np_scatter(s.ptr, (void *)r.ptr, (size_t)count, (np_dtype)dt, root, c));
    core_put(&s);
    core_put(&r);
    if (e != NP_OK)
        return core_raise_np(e);
    Py_RETURN_NONE;
}

/* gather(h, sendbuf|IN_PLACE, recvbuf|None, count, dt, root) */
static PyObject *core_gather(PyObject *self, PyObject *args)
{
    PyObject *h, *so, *ro;
    unsigned long long count;
    int dt, root;
    if (!PyArg_ParseTuple(args, "OOOKii", &h, &so, &ro, &count, &dt, &root))
        return NULL;
    np_comm *c = core_comm(h);
    size_t one;
    if (c == NULL || core_bytes(count, dt, 1, &one) < 0)
        return NULL;
    int rank = np_comm_rank(c), size = np_comm_size(c);
    core_buf s = {0}, r = {0};
    if (core_get(so, &s, 0, 0, rank == root, one, "gather sendbuf") < 0)
        return NULL;
    if (core_get(ro, &r, 1, rank != root, 0, rank == root ? one * (size_t)size : 0,
                 "gather recvbuf") < 0) {
        core_put(&s);
        return NULL;
    }
    np_err e;
    CORE_NOGIL(e = np_gather(s.ptr, (void *)r.ptr, (size_t)count, (np_dtype)dt, root, c));
    core_put(&s);
    core_put(&r);
    if (e != NP_OK)
        return core_raise_np(e);
    Py_RETURN_NONE;
}

/* allgather(h, sendbuf|IN_PLACE, recvbuf, count, dt) and alltoall (same shape) */
static PyObject *core_all_x(PyObject *args, int which)
{
    PyObject *h, *so, *ro;
    unsigned long long count;
    int dt;
    if (!PyArg_ParseTuple(args, "OOOKi", &h, &so, &ro, &count, &dt))
        return NULL;
    np_comm *c = core_comm(h);
    size_t one;
    if (c == NULL || core_bytes(count, dt, 1, &one) < 0)
        return NULL;
    int size = np_comm_size(c);
    const char *nm = which ? "alltoall" : "allgather";
    core_buf s = {0}, r = {0};
    if (core_get(so, &s, 0, 0, 1, which ? one * (size_t)size : one, nm) < 0)
        return NULL;
    if (core_get(ro, &r, 1, 0, 0, one * (size_t)size, nm) < 0) {
        core_put(&s);
        return NULL;
    }
    np_err e;
    if (which) {
        CORE_NOGIL(e = np_alltoall(s.ptr, (void *)r.ptr, (size_t)count, (np_dtype)dt, c));
    } else {
        CORE_NOGIL(e = np_allgather(s.ptr, (void *)r.ptr, (size_t)count, (np_dtype)dt, c));
    }
    core_put(&s);
    core_put(&r);
    if (e != NP_OK)
        return core_raise_np(e);
    Py_RETURN_NONE;
}

static PyObject *core_allgather(PyObject *self, PyObject *args)
{
    return core_all_x(args, 0);
}

static PyObject *core_alltoall(PyObject *self, PyObject *args)
{
    return core_all_x(args, 1);
}

/* allreduce(h, sendbuf|IN_PLACE, recvbuf, count, dt, op) */
static PyObject *core_allreduce(PyObject *self, PyObject *args)
{
    PyObject *h, *so, *ro;
    unsigned long long count;
    int dt, op;
    if (!PyArg_ParseTuple(args, "OOOKii", &h, &so, &ro, &count, &dt, &op))
        return NULL;
    np_comm *c = core_comm(h);
    size_t one;
    if (c == NULL || core_bytes(count, dt, 1, &one) < 0)
        return NULL;
    core_buf s = {0}, r = {0};
    if (core_get(so, &s, 0, 0, 1, one, "allreduce sendbuf") < 0)
        return NULL;
    if (core_get(ro, &r, 1, 0, 0, one, "allreduce recvbuf") < 0) {
        core_put(&s);
        return NULL;
    }
    np_err e;
    CORE_NOGIL(e = np_allreduce(s.ptr, (void *)r.ptr, (size_t)count, (np_dtype)dt, (np_op)op, c));
    core_put(&s);
    core_put(&r);
    if (e != NP_OK)
        return core_raise_np(e);
    Py_RETURN_NONE;
}

/* reduce(h, sendbuf|IN_PLACE, recvbuf|None, count, dt, op, root) */
static PyObject *core_reduce(PyObject *self, PyObject *args)
{
    PyObject *h, *so, *ro;
    unsigned long long count;
    int dt, op, root;
    if (!PyArg_ParseTuple(args, "OOOKiii", &h, &so, &ro, &count, &dt, &op, &root))
        return NULL;
    np_comm *c = core_comm(h);
    size_t one;
    if (c == NULL || core_bytes(count, dt, 1, &one) < 0)
        return NULL;
    int rank = np_comm_rank(c);
    core_buf s = {0}, r = {0};
    if (core_get(so, &s, 0, 0, rank == root, one, "reduce sendbuf") < 0)
        return NULL;
    if (core_get(ro, &r, 1, rank != root, 0, rank == root ? one : 0, "reduce recvbuf") < 0) {
        core_put(&s);
        return NULL;
    }
    np_err e;
    CORE_NOGIL(
        e = np_reduce(s.ptr, (void *)r.ptr, (size_t)count, (np_dtype)dt, (np_op)op, root, c));
    core_put(&s);
    core_put(&r);
    if (e != NP_OK)
        return core_raise_np(e);
    Py_RETURN_NONE;
}

/* Read a sequence of size non-negative integers into a fresh size_t array. */
static size_t *core_sizes(PyObject *seq, int size, const char *what)
{
    PyObject *fast = PySequence_Fast(seq, what);
    if (fast == NULL)
        return NULL;
    if (PySequence_Fast_GET_SIZE(fast) != size) {
        core_raise_fmt(NP_ERR_ARG, "%s: expected %d entries, got %zd", what, size,
                       PySequence_Fast_GET_SIZE(fast));
        Py_DECREF(fast);
        return NULL;
    }
    size_t *out = PyMem_Malloc(sizeof(size_t) * (size_t)(size > 0 ? size : 1));
    if (out == NULL) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return NULL;
    }
    for (int i = 0; i < size; i++) {
        unsigned long long v = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(fast, i));
        if (PyErr_Occurred()) {
            PyErr_Clear();
            core_raise_fmt(NP_ERR_ARG, "%s: entry %d is not a non-negative integer", what, i);
            PyMem_Free(out);
            Py_DECREF(fast);
            return NULL;
        }
        out[i] = (size_t)v;
    }
    Py_DECREF(fast);
    return out;
}

/* The furthest byte that counts/displs reach, in elements. */
static size_t core_extent(const size_t *counts, const size_t *displs, int size)
{
    size_t hi = 0;
    for (int i = 0; i < size; i++)
        if (counts[i] != 0 && counts[i] + displs[i] > hi)
            hi = counts[i] + displs[i];
    return hi;
}

/* scatterv(h, sendbuf|None, counts|None, displs|None, recvbuf|IN_PLACE, recvcount, dt, root) */
static PyObject *core_scatterv(PyObject *self, PyObject *args)
{
    PyObject *h, *so, *co, *dob, *ro;
    unsigned long long rcount;
    int dt, root;
    if (!PyArg_ParseTuple(args, "OOOOOKii", &h, &so, &co, &dob, &ro, &rcount, &dt, &root))
        return NULL;
    np_comm *c = core_comm(h);
    size_t es = core_dtsize(dt), rneed;
    if (c == NULL || core_bytes(rcount, dt, 1, &rneed) < 0)
        return NULL;
    int rank = np_comm_rank(c), size = np_comm_size(c);
    size_t *counts = NULL, *displs = NULL;
    core_buf s = {0}, r = {0};
    PyObject *ret = NULL;
    if (rank == root) {
        if ((counts = core_sizes(co, size, "scatterv counts")) == NULL ||
            (displs = core_sizes(dob, size, "scatterv displs")) == NULL)
            goto out;
        if (core_get(so, &s, 0, 0, 0, core_extent(counts, displs, size) * es, "scatterv sendbuf") <
            0)
            goto out;
    }
    if (core_get(ro, &r, 1, 0, rank == root, rneed, "scatterv recvbuf") < 0)
        goto out;
    np_err e;
    CORE_NOGIL(e = np_scatterv(s.ptr, counts, displs, (void *)r.ptr, (size_t)rcount, (np_dtype)dt,
                               root, c));
    if (e != NP_OK) {
        core_raise_np(e);
        goto out;
    }
    ret = Py_NewRef(Py_None);
out:
    core_put(&s);
    core_put(&r);
    PyMem_Free(counts);
    PyMem_Free(displs);
    return ret;
}

/* gatherv(h, sendbuf|IN_PLACE, sendcount, recvbuf|None, counts|None, displs|None, dt, root) */
static PyObject *core_gatherv(PyObject *self, PyObject *args)
{
    PyObject *h, *so, *ro, *co, *dob;
    unsigned long long scount;
    int dt, root;
    if (!PyArg_ParseTuple(args, "OOKOOOii", &h, &so, &scount, &ro, &co, &dob, &dt, &root))
        return NULL;
    np_comm *c = core_comm(h);
    size_t es = core_dtsize(dt), sneed;
    if (c == NULL || core_bytes(scount, dt, 1, &sneed) < 0)
        return NULL;
    int rank = np_comm_rank(c), size = np_comm_size(c);
    size_t *counts = NULL, *displs = NULL;
    core_buf s = {0}, r = {0};
    PyObject *ret = NULL;
    if (core_get(so, &s, 0, 0, rank == root, sneed, "gatherv sendbuf") < 0)
        goto out;
    if (rank == root) {
        if ((counts = core_sizes(co, size, "gatherv counts")) == NULL ||
            (displs = core_sizes(dob, size, "gatherv displs")) == NULL)
            goto out;
        if (core_get(ro, &r, 1, 0, 0, core_extent(counts, displs, size) * es, "gatherv recvbuf") <
            0)
            goto out;
    }
    np_err e;
    CORE_NOGIL(e = np_gatherv(s.ptr, (size_t)scount, (void *)r.ptr, counts, displs, (np_dtype)dt,
                              root, c));
    if (e != NP_OK) {
        core_raise_np(e);
        goto out;
    }
    ret = Py_NewRef(Py_None);
out:
    core_put(&s);
    core_put(&r);
    PyMem_Free(counts);
    PyMem_Free(displs);
    return ret;
}

/*
 * Per-rank buffer lists: scatter_list(h, bufs|None, recvbuf, root) sends
 * bufs[i] (separate objects, bytes) to rank i; gather_list(h, sendbuf,
 * bufs|None, root) receives rank i's bytes into bufs[i].  Both run one
 * np_scatterv/np_gatherv of NP_BYTE whose base is the lowest address among the
 * buffers and whose displacements are each buffer's distance from it, so the
 * parts of an object never need to be copied into one contiguous area.
 */
static PyObject *core_list_x(PyObject *args, int gather)
{
    PyObject *h, *lo, *bo;
    int root;
    if (!PyArg_ParseTuple(args, "OOOi", &h, gather ? &bo : &lo, gather ? &lo : &bo, &root))
        return NULL;
    np_comm *c = core_comm(h);
    if (c == NULL)
        return NULL;
    int rank = np_comm_rank(c), size = np_comm_size(c);
    const char *nm = gather ? "gather" : "scatter";
    core_buf *parts = NULL;
    size_t *counts = NULL, *displs = NULL;
    core_buf own = {0};
    PyObject *fast = NULL, *ret = NULL;
    int nheld = 0;
    uintptr_t base = 0;
    if (rank == root) {
        fast = PySequence_Fast(lo, "buffer list");
        if (fast == NULL)
            goto out;
        if (PySequence_Fast_GET_SIZE(fast) != size) {
            core_raise_fmt(NP_ERR_ARG, "%s: expected %d buffers, got %zd", nm, size,
                           PySequence_Fast_GET_SIZE(fast));
            goto out;
        }
        parts = PyMem_Calloc((size_t)size, sizeof *parts);
        counts = PyMem_Calloc((size_t)size, sizeof *counts);
        displs = PyMem_Calloc((size_t)size, sizeof *displs);
        if (parts == NULL || counts == NULL || displs == NULL) {
            PyErr_NoMemory();
            goto out;
        }
        for (int i = 0; i < size; i++, nheld++)
            if (core_get(PySequence_Fast_GET_ITEM(fast, i), &parts[i], gather, 1, 0, 0, nm) < 0)
                goto out;
        base = UINTPTR_MAX;
        for (int i = 0; i < size; i++)
            if (parts[i].len > 0 && (uintptr_t)parts[i].ptr < base)
                base = (uintptr_t)parts[i].ptr;
        if (base == UINTPTR_MAX)
            base = 0;
        for (int i = 0; i < size; i++) {
            counts[i] = parts[i].len;
            displs[i] = parts[i].len > 0 ? (size_t)((uintptr_t)parts[i].ptr - base) : 0;
        }
    }
    if (core_get(bo, &own, !gather, 1, 0, 0, nm) < 0)
        goto out;
    np_err e;
    if (gather) {
        CORE_NOGIL(
            e = np_gatherv(own.ptr, own.len, (void *)base, counts, displs, NP_BYTE, root, c));
    } else {
        CORE_NOGIL(e = np_scatterv((const void *)base, counts, displs, (void *)own.ptr, own.len,
                                   NP_BYTE, root, c));
    }
    if (e != NP_OK) {
        core_raise_np(e);
        goto out;
    }
    ret = Py_NewRef(Py_None);
out:
    for (int i = 0; i < nheld; i++)
        core_put(&parts[i]);
    core_put(&own);
    PyMem_Free(parts);
    PyMem_Free(counts);
    PyMem_Free(displs);
    Py_XDECREF(fast);
    return ret;
}

static PyObject *core_scatter_list(PyObject *self, PyObject *args)
{
    return core_list_x(args, 0);
}

static PyObject *core_gather_list(PyObject *self, PyObject *args)
{
    return core_list_x(args, 1);
}

/* ------------------------------------------------------------------ point to point */

/* send(h, buf, count, dt, dest, tag) */
static PyObject *core_send(PyObject *self, PyObject *args)
{
    PyObject *h, *bo;
    unsigned long long count;
    int dt, dest, tag;
    if (!PyArg_ParseTuple(args, "OOKiii", &h, &bo, &count, &dt, &dest, &tag))
        return NULL;
    np_comm *c = core_comm(h);
    size_t need;
    if (c == NULL || core_bytes(count, dt, 1, &need) < 0)
        return NULL;
    core_buf b;
    if (core_get(bo, &b, 0, 0, 0, need, "send") < 0)
        return NULL;
    np_err e;
    CORE_NOGIL(e = np_send(b.ptr, (size_t)count, (np_dtype)dt, dest, tag, c));
    core_put(&b);
    if (e != NP_OK)
        return core_raise_np(e);
    Py_RETURN_NONE;
}

/* recv(h, buf, count, dt, src, tag) -> (source, tag, count) */
static PyObject *core_recv(PyObject *self, PyObject *args)
{
    PyObject *h, *bo;
    unsigned long long count;
    int dt, src, tag;
    if (!PyArg_ParseTuple(args, "OOKiii", &h, &bo, &count, &dt, &src, &tag))
        return NULL;
    np_comm *c = core_comm(h);
    size_t need;
    if (c == NULL || core_bytes(count, dt, 1, &need) < 0)
        return NULL;
    core_buf b;
    if (core_get(bo, &b, 1, 0, 0, need, "recv") < 0)
        return NULL;
    np_status st = {0};
    np_err e;
    CORE_NOGIL(e = np_recv((void *)b.ptr, (size_t)count, (np_dtype)dt, src, tag, c, &st));
    core_put(&b);
    if (e != NP_OK)
        return core_raise_np(e);
    return Py_BuildValue("iiK", st.source, st.tag, (unsigned long long)st.count);
}

/* ------------------------------------------------------------------ module */

/* ------------------------------------------------------------------ fast paths
 *
 * Send, Recv and the buffer collectives of plain arrays (Bcast,
 * Allreduce, Scatter, Gather, Allgather, Alltoall, Reduce), the calls that
 * sit in users' inner loops, come here first: one C call reads the dtype
 * from the buffer's own format, where the general path parses a buffer
 * spec in Python first (0.5 to 2 us, more than a small call itself takes).
 * Anything unusual (a buffer spec, a non-native byte order, a dtype numpush
 * has no code for, a root out of range, an unreadable buffer) returns
 * NotImplemented, and the Python layer takes its general path, which gives
 * the error messages. */

/* numpush's dtype code for a buffer's struct format and item size, or -1. */
static int core_format_dtype(const char *fmt, Py_ssize_t itemsize)
{
    if (fmt == NULL)
        return 4; /* PyBUF_FORMAT not honoured: unsigned bytes */
    if (fmt[0] == '@')
        fmt++;
    if (fmt[0] == 'Z' && fmt[2] == '\0')
        return fmt[1] == 'f' && itemsize == 8 ? 10 : fmt[1] == 'd' && itemsize == 16 ? 11 : -1;
    if (fmt[0] == '\0' || fmt[1] != '\0')
        return -1;
    int log2 = itemsize == 1 ? 0 : itemsize == 2 ? 1 : itemsize == 4 ? 2 : itemsize == 8 ? 3 : -1;
    if (log2 < 0)
        return -1;
    switch (fmt[0]) {
    case 'b':
    case 'h':
    case 'i':
    case 'l':
    case 'q':
        return log2; /* int8 0 .. int64 3 */
    case 'B':
    case 'H':
    case 'I':
    case 'L':
    case 'Q':
        return 4 + log2; /* uint8 4 .. uint64 7 */
    case 'f':
        return itemsize == 4 ? 8 : -1;
    case 'd':
        return itemsize == 8 ? 9 : -1;
    case '?':
        return itemsize == 1 ? 12 : -1;
    default:
        return -1;
    }
}

/* Acquire obj with its format; the dtype code in *dt, or 0 with the error
 * cleared (the caller falls back) when it is not a plain array. */
static int core_get_typed(PyObject *obj, Py_buffer *v, int writable, int *dt)
{
    int flags = PyBUF_FORMAT | PyBUF_ANY_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, v, flags) < 0) {
        PyErr_Clear();
        return 0;
    }
    *dt = core_format_dtype(v->format, v->itemsize);
    if (*dt < 0 || v->itemsize <= 0) {
        PyBuffer_Release(v);
        return 0;
    }
    return 1;
}

/* A fast path's root: an exact int in range, or -1 (fall back: the general
 * path gives the error). */
static int core_fast_root(PyObject *obj, np_comm *c)
{
    if (!PyLong_CheckExact(obj))
        return -1;
    long root = PyLong_AsLong(obj);
    if (root == -1 && PyErr_Occurred())
        PyErr_Clear();
    return root >= 0 && root < np_comm_size(c) ? (int)root : -1;
}

/* An exact int that fits a C int, in *out; 0 to fall back. */
static int core_fast_int(PyObject *obj, int *out)
{
    if (!PyLong_CheckExact(obj))
        return 0;
    int overflow;
    long v = PyLong_AsLongAndOverflow(obj, &overflow);
    if (overflow || v < INT_MIN || v > INT_MAX || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    *out = (int)v;
    return 1;
}

/* bcast_array(h, buf, root): None when done, NotImplemented to fall back. */
static PyObject *core_bcast_array(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3)
        Py_RETURN_NOTIMPLEMENTED;
    np_comm *c = core_comm(args[0]);
    if (c == NULL)
        return NULL;
    int root = core_fast_root(args[2], c);
    if (root < 0)
        Py_RETURN_NOTIMPLEMENTED;
    Py_buffer v;
    int dt;
    /* Only receivers write into buf, so the root may pass a read-only one. */
    if (!core_get_typed(args[1], &v, np_comm_rank(c) != root, &dt))
        Py_RETURN_NOTIMPLEMENTED;
    size_t count = (size_t)(v.len / v.itemsize);
    np_err e;
    CORE_NOGIL(e = np_bcast(v.buf, count, (np_dtype)dt, (int)root, c));
    PyBuffer_Release(&v);
    if (e != NP_OK)
        return core_raise_np(e);
    Py_RETURN_NONE;
}

/* allreduce_array(h, sendbuf|IN_PLACE, recvbuf, op): None when done,
 * NotImplemented to fall back.  Both arrays must have the same dtype and
 * size. */
static PyObject *core_allreduce_array(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyLong_CheckExact(args[3]))
        Py_RETURN_NOTIMPLEMENTED;
    np_comm *c = core_comm(args[0]);
    if (c == NULL)
        return NULL;
    int op = (int)PyLong_AsLong(args[3]);
    Py_buffer r, s;
    int rdt, sdt;
    if (!core_get_typed(args[2], &r, 1, &rdt))
        Py_RETURN_NOTIMPLEMENTED;
    int in_place = core_in_place != NULL && args[1] == core_in_place;
    if (!in_place) {
        if (!core_get_typed(args[1], &s, 0, &sdt)) {
            PyBuffer_Release(&r);
            Py_RETURN_NOTIMPLEMENTED;
        }
        if (sdt != rdt || s.len != r.len) {
            PyBuffer_Release(&s);
            PyBuffer_Release(&r);
            Py_RETURN_NOTIMPLEMENTED;
        }
    }
    size_t count = (size_t)(r.len / r.itemsize);
    const void *src = in_place ? NP_IN_PLACE : s.buf;
    np_err e;
    CORE_NOGIL(e = np_allreduce(src, r.buf, count, (np_dtype)rdt, (np_op)op, c));
    if (!in_place)
        PyBuffer_Release(&s);
    PyBuffer_Release(&r);
    if (e != NP_OK)
        return core_raise_np(e);
    Py_RETURN_NONE;
}

/* The two typed views of a block collective's fast path: send and recv,
 * each taken only where this rank uses it.  Fails (0, nothing held) unless
 * both have the same dtype and recv holds ratio_r / ratio_s times send's
 * bytes. */
typedef struct core_pair {
    Py_buffer s, r;
    int has_s, has_r, dt;
} core_pair;

static void core_pair_put(core_pair *p)
{
    if (p->has_s)
        PyBuffer_Release(&p->s);
    if (p->has_r)
        PyBuffer_Release(&p->r);
}

static int core_pair_get(core_pair *p, PyObject *so, PyObject *ro, int use_s, int use_r,
                         Py_ssize_t ratio_s, Py_ssize_t ratio_r)
{
    int sdt = -1, rdt = -1;
    *p = (core_pair){0};
    if (use_s && (core_in_place != NULL && so == core_in_place))
        return 0;
    if (use_s && !(p->has_s = core_get_typed(so, &p->s, 0, &sdt)))
        return 0;
    if (use_r && !(p->has_r = core_get_typed(ro, &p->r, 1, &rdt))) {
        core_pair_put(p);
        return 0;
    }
    p->dt = use_s ? sdt : rdt;
    if (use_s && use_r && (sdt != rdt || p->s.len * ratio_s != p->r.len * ratio_r)) {
        core_pair_put(p);
        return 0;
    }
    return 1;
}

/* scatter_array(h, sendbuf, recvbuf, root) and gather_array (same shape):
 * None when done, NotImplemented to fall back.  The per-rank buffer gives
 * the count (scatter's recvbuf, gather's sendbuf); the root's other buffer
 * holds size times as much of the same dtype.  Other ranks' other buffer is
 * not looked at (mpi4py: "significant only at root"). */
static PyObject *core_rooted_array(PyObject *const *args, Py_ssize_t nargs, int gather)
{
    if (nargs != 4)
        Py_RETURN_NOTIMPLEMENTED;
    np_comm *c = core_comm(args[0]);
    if (c == NULL)
        return NULL;
    int root = core_fast_root(args[3], c), at_root = np_comm_rank(c) == root;
    Py_ssize_t size = np_comm_size(c);
    core_pair p;
    if (root < 0 || (!gather && core_in_place != NULL && args[2] == core_in_place) ||
        !core_pair_get(&p, args[1], args[2], gather || at_root, !gather || at_root,
                       gather ? size : 1, gather ? 1 : size))
        Py_RETURN_NOTIMPLEMENTED;
    const Py_buffer *one = gather ? &p.s : &p.r;
    size_t count = (size_t)(one->len / one->itemsize);
    const void *sbuf = p.has_s ? p.s.buf : NULL;
    void *rbuf = p.has_r ? p.r.buf : NULL;
    np_err e;
    if (gather) {
        CORE_NOGIL(e = np_gather(sbuf, rbuf, count, (np_dtype)p.dt, root, c));
    } else {
        CORE_NOGIL(e = np_scatter(sbuf, rbuf, count, (np_dtype)p.dt, root, c));
    }
    core_pair_put(&p);
    if (e != NP_OK)
        return core_raise_np(e);
    Py_RETURN_NONE;
}

static PyObject *core_scatter_array(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return core_rooted_array(args, nargs, 0);
}

static PyObject *core_gather_array(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return core_rooted_array(args, nargs, 1);
}

/* allgather_array(h, sendbuf, recvbuf) and alltoall_array (same shape):
 * None when done, NotImplemented to fall back.  allgather's recvbuf holds
 * size sendbufs; alltoall's both hold size blocks. */
static PyObject *core_all_x_array(PyObject *const *args, Py_ssize_t nargs, int which)
{
    if (nargs != 3)
        Py_RETURN_NOTIMPLEMENTED;
    np_comm *c = core_comm(args[0]);
    if (c == NULL)
        return NULL;
    Py_ssize_t size = np_comm_size(c);
    core_pair p;
    if (!core_pair_get(&p, args[1], args[2], 1, 1, which ? 1 : size, 1))
        Py_RETURN_NOTIMPLEMENTED;
    size_t elems = (size_t)(p.s.len / p.s.itemsize);
    np_err e;
    if (which && elems % (size_t)size != 0) {
        core_pair_put(&p);
        Py_RETURN_NOTIMPLEMENTED;
    }
    if (which) {
        CORE_NOGIL(e = np_alltoall(p.s.buf, p.r.buf, elems / (size_t)size, (np_dtype)p.dt, c));
    } else {
        CORE_NOGIL(e = np_allgather(p.s.buf, p.r.buf, elems, (np_dtype)p.dt, c));
    }
    core_pair_put(&p);
    if (e != NP_OK)
        return core_raise_np(e);
    Py_RETURN_NONE;
}

static PyObject *core_allgather_array(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return core_all_x_array(args, nargs, 0);
}

static PyObject *core_alltoall_array(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return core_all_x_array(args, nargs, 1);
}

/* reduce_array(h, sendbuf, recvbuf, op, root): None when done,
 * NotImplemented to fall back.  The root's recvbuf has sendbuf's dtype and
 * size; other ranks' recvbuf is not looked at. */
static PyObject *core_reduce_array(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    int op;
    if (nargs != 5 || !core_fast_int(args[3], &op))
        Py_RETURN_NOTIMPLEMENTED;
    np_comm *c = core_comm(args[0]);
    if (c == NULL)
        return NULL;
    int root = core_fast_root(args[4], c);
    core_pair p;
    if (root < 0 || !core_pair_get(&p, args[1], args[2], 1, np_comm_rank(c) == root, 1, 1))
        Py_RETURN_NOTIMPLEMENTED;
    size_t count = (size_t)(p.s.len / p.s.itemsize);
    np_err e;
    CORE_NOGIL(e = np_reduce(p.s.buf, p.has_r ? p.r.buf : NULL, count, (np_dtype)p.dt, (np_op)op,
                             root, c));
    core_pair_put(&p);
    if (e != NP_OK)
        return core_raise_np(e);
    Py_RETURN_NONE;
}

/* send_array(h, buf, dest, tag): None when done, NotImplemented to fall
 * back.  np_send checks dest and tag, as in the general path. */
static PyObject *core_send_array(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    int dest, tag, dt;
    if (nargs != 4 || !core_fast_int(args[2], &dest) || !core_fast_int(args[3], &tag))
        Py_RETURN_NOTIMPLEMENTED;
    np_comm *c = core_comm(args[0]);
    if (c == NULL)
        return NULL;
    Py_buffer v;
    if (!core_get_typed(args[1], &v, 0, &dt))
        Py_RETURN_NOTIMPLEMENTED;
    np_err e;
    CORE_NOGIL(e = np_send(v.buf, (size_t)(v.len / v.itemsize), (np_dtype)dt, dest, tag, c));
    PyBuffer_Release(&v);
    if (e != NP_OK)
        return core_raise_np(e);
    Py_RETURN_NONE;
}

/* recv_array(h, buf, source, tag) -> (source, tag, count), or
 * NotImplemented to fall back. */
static PyObject *core_recv_array(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    int src, tag, dt;
    if (nargs != 4 || !core_fast_int(args[2], &src) || !core_fast_int(args[3], &tag))
        Py_RETURN_NOTIMPLEMENTED;
    np_comm *c = core_comm(args[0]);
    if (c == NULL)
        return NULL;
    Py_buffer v;
    if (!core_get_typed(args[1], &v, 1, &dt))
        Py_RETURN_NOTIMPLEMENTED;
    np_status st = {0};
    np_err e;
    CORE_NOGIL(e = np_recv(v.buf, (size_t)(v.len / v.itemsize), (np_dtype)dt, src, tag, c, &st));
    PyBuffer_Release(&v);
    if (e != NP_OK)
        return core_raise_np(e);
    return Py_BuildValue("iiK", st.source, st.tag, (unsigned long long)st.count);
}

/* address(buf): where buf's data starts, as an int.  codec.alloc aligns
 * fresh arrays with it: numpy's __array_interface__ takes about 2 us, ten
 * times this, which mattered in every small receive. */
static PyObject *core_address(PyObject *self, PyObject *obj)
{
    Py_buffer v;
    if (PyObject_GetBuffer(obj, &v, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *r = PyLong_FromVoidPtr(v.buf);
    PyBuffer_Release(&v);
    return r;
}

static PyMethodDef core_methods[] = {
    {"address", core_address, METH_O, "address(buf): the address of buf's first byte"},
    {"bcast_array", (PyCFunction)(void (*)(void))core_bcast_array, METH_FASTCALL, NULL},
    {"allreduce_array", (PyCFunction)(void (*)(void))core_allreduce_array, METH_FASTCALL, NULL},
    {"scatter_array", (PyCFunction)(void (*)(void))core_scatter_array, METH_FASTCALL, NULL},
    {"gather_array", (PyCFunction)(void (*)(void))core_gather_array, METH_FASTCALL, NULL},
    {"allgather_array", (PyCFunction)(void (*)(void))core_allgather_array, METH_FASTCALL, NULL},
    {"alltoall_array", (PyCFunction)(void (*)(void))core_alltoall_array, METH_FASTCALL, NULL},
    {"reduce_array", (PyCFunction)(void (*)(void))core_reduce_array, METH_FASTCALL, NULL},
    {"send_array", (PyCFunction)(void (*)(void))core_send_array, METH_FASTCALL, NULL},
    {"recv_array", (PyCFunction)(void (*)(void))core_recv_array, METH_FASTCALL, NULL},
    {"configure", core_configure, METH_VARARGS, "configure(Error, IN_PLACE)"},
    {"init", core_init, METH_NOARGS, "np_init; returns the world handle"},
    {"finalize", core_finalize, METH_NOARGS, "np_finalize (no-op if not initialised)"},
    {"initialized", core_initialized, METH_NOARGS, "np_initialized"},
    {"abort", core_abort, METH_VARARGS, "abort(code): np_abort on the world"},
    {"wtime", core_wtime, METH_NOARGS, "np_wtime"},
    {"errname", core_errname, METH_VARARGS, "errname(code)"},
    {"dtype_size", core_dtype_size, METH_VARARGS, "dtype_size(dt)"},
    {"comm_rank", core_comm_rank, METH_VARARGS, NULL},
    {"comm_size", core_comm_size, METH_VARARGS, NULL},
    {"comm_split", core_comm_split, METH_VARARGS, NULL},
    {"comm_dup", core_comm_dup, METH_VARARGS, NULL},
    {"comm_free", core_comm_free, METH_VARARGS, NULL},
    {"barrier", core_barrier, METH_VARARGS, NULL},
    {"bcast", core_bcast, METH_VARARGS, NULL},
    {"scatter", core_scatter, METH_VARARGS, NULL},
    {"gather", core_gather, METH_VARARGS, NULL},
    {"allgather", core_allgather, METH_VARARGS, NULL},
    {"alltoall", core_alltoall, METH_VARARGS, NULL},
    {"allreduce", core_allreduce, METH_VARARGS, NULL},
    {"reduce", core_reduce, METH_VARARGS, NULL},
    {"scatterv", core_scatterv, METH_VARARGS, NULL},
    {"gatherv", core_gatherv, METH_VARARGS, NULL},
    {"scatter_list", core_scatter_list, METH_VARARGS, NULL},
    {"gather_list", core_gather_list, METH_VARARGS, NULL},
    {"send", core_send, METH_VARARGS, NULL},
    {"recv", core_recv, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    "numpush._core",
    "C layer of numpush: buffer-protocol wrappers over the numpush C API.",
    -1,
    core_methods,
};

PyMODINIT_FUNC PyInit__core(void)
{
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "ANY_SOURCE", NP_ANY_SOURCE) < 0 ||
        PyModule_AddIntConstant(m, "ANY_TAG", NP_ANY_TAG) < 0 ||
        PyModule_AddIntConstant(m, "UNDEFINED", NP_UNDEFINED) < 0 ||
        PyModule_AddIntConstant(m, "TAG_UB", NP_TAG_MAX) < 0 ||
        PyModule_AddStringConstant(m, "VERSION", NP_VERSION_STRING) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
