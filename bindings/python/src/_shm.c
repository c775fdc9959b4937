/*
 * numpush._shm: the robust shared-memory reader/writer locks of
 * <numpush/shm_lock.h>, for numpush.shm.
 *
 * Segments themselves need no C: numpush.shm makes them with
 * os.memfd_create, opens a peer's through /proc and maps them with the
 * standard mmap module, whose objects already tie the mapping's lifetime to
 * the arrays that view it.  What Python cannot do is lock memory that other
 * processes map, so this module offers one type, Span: a run of np_rwlock
 * objects at a fixed stride (the locks of a block of rows), taken in
 * ascending address order (so that overlapping spans never deadlock) and
 * released in reverse, usable as a context manager.
 *
 * The fast path of a span of one lock is one np_rwlock call with the GIL
 * held.  A lock that is busy is waited for without the GIL, in slices, so
 * that Ctrl-C still interrupts a long wait.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <numpush/numpush.h>
#include <numpush/shm_lock.h>

#include <stdint.h>

/* How long one GIL-free wait lasts before signals are checked. */
#define SHM_SLICE 0.1

/* Set by configure(): numpush.Error and numpush.shm.LockOwnerDied. */
static PyObject *shm_error_cls;
static PyObject *shm_died_cls;

static PyObject *shm_raise_named(PyObject *cls, const char *name, const char *detail)
{
    PyObject *c = cls != NULL ? cls : PyExc_RuntimeError;
    PyObject *exc = PyObject_CallFunction(c, "ss", name, detail);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

/* Take one lock; NP_OK, NP_ERR_LOCK (held, previous writer died), or an
 * error with a Python exception set (the lock not held). */
static np_err shm_take(np_rwlock *l, int write, double timeout)
{
    double asked = timeout;
    np_err e = write ? np_rwlock_wrlock(l, 0) : np_rwlock_rdlock(l, 0);
    if (e != NP_ERR_TIMEOUT || timeout == 0)
        goto done;
    for (;;) {
        double slice = timeout < 0 || timeout > SHM_SLICE ? SHM_SLICE : timeout;
        Py_BEGIN_ALLOW_THREADS e = write ? np_rwlock_wrlock(l, slice) : np_rwlock_rdlock(l, slice);
        Py_END_ALLOW_THREADS if (e != NP_ERR_TIMEOUT) break;
        if (timeout >= 0) {
            timeout -= slice;
            if (timeout <= 0)
                break;
        }
        if (PyErr_CheckSignals() != 0)
            return NP_ERR_TIMEOUT;
    }
done:
    if (e != NP_OK && e != NP_ERR_LOCK && !PyErr_Occurred()) {
        if (e == NP_ERR_TIMEOUT)
            PyErr_Format(PyExc_TimeoutError, "numpush.shm: lock not acquired within %.3f s", asked);
        else
            shm_raise_named(shm_error_cls, np_errname(e), np_last_error());
    }
    return e;
}

typedef struct {
    PyObject_HEAD PyObject *owner; /* keeps the mapping alive */
    uintptr_t addr;
    Py_ssize_t count;
    Py_ssize_t stride;
    int write;
    double timeout;
    int raise_died;
    int held;
    int owner_died;
} Span;

static void span_unlock(Span *s, Py_ssize_t n)
{
    for (Py_ssize_t i = n - 1; i >= 0; i--)
        np_rwlock_unlock((np_rwlock *)(s->addr + (uintptr_t)(i * s->stride)));
}

static PyObject *span_acquire(Span *s, PyObject *unused)
{
    if (s->held)
        return PyErr_Format(PyExc_RuntimeError, "numpush.shm: this lock span is already held");
    s->owner_died = 0;
    for (Py_ssize_t i = 0; i < s->count; i++) {
        np_err e =
            shm_take((np_rwlock *)(s->addr + (uintptr_t)(i * s->stride)), s->write, s->timeout);
        if (e == NP_ERR_LOCK) {
            s->owner_died = 1;
        } else if (e != NP_OK) {
            span_unlock(s, i);
            return NULL;
        }
    }
    s->held = 1;
    if (s->owner_died && s->raise_died) {
        /* The holder learns of the dead writer once; the locks are let go
         * so that a caller that does not catch this cannot wedge others. */
        span_unlock(s, s->count);
        s->held = 0;
        return shm_raise_named(shm_died_cls, "ERR_LOCK",
                               "a process died while writing under this lock; the rows it "
                               "protects may be inconsistent (the lock is released)");
    }
    Py_INCREF(s);
    return (PyObject *)s;
}

static PyObject *span_release(Span *s, PyObject *unused)
{
    if (!s->held)
        return PyErr_Format(PyExc_RuntimeError, "numpush.shm: this lock span is not held");
    span_unlock(s, s->count);
    s->held = 0;
    Py_RETURN_NONE;
}

static PyObject *span_exit(Span *s, PyObject *args)
{
    if (s->held) {
        span_unlock(s, s->count);
        s->held = 0;
    }
    Py_RETURN_FALSE;
}

static int span_init(Span *s, PyObject *args, PyObject *kw)
{
    static char *names[] = {"owner", "addr",    "count",      "stride",
                            "write", "timeout", "raise_died", NULL};
    PyObject *owner;
    unsigned long long addr;
    Py_ssize_t count, stride;
    int write = 0, raise_died = 1;
    double timeout = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OKnn|pdp", names, &owner, &addr, &count, &stride,
                                     &write, &timeout, &raise_died))
        return -1;
    if (addr == 0 || addr % 64 != 0 || count < 0 || stride % 64 != 0) {
        PyErr_SetString(PyExc_ValueError, "numpush.shm: bad lock address, count or stride");
        return -1;
    }
    if (s->held) {
        PyErr_SetString(PyExc_RuntimeError, "numpush.shm: span re-initialised while held");
        return -1;
    }
    Py_INCREF(owner);
    Py_XSETREF(s->owner, owner);
    s->addr = (uintptr_t)addr;
    s->count = count;
    s->stride = stride;
    s->write = write;
    s->timeout = timeout;
    s->raise_died = raise_died;
    return 0;
}

static void span_dealloc(Span *s)
{
    /* A span dropped while held (an abandoned acquire()) must not wedge the
     * other processes. */
    if (s->held)
        span_unlock(s, s->count);
    Py_XDECREF(s->owner);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyMethodDef span_methods[] = {
    {"acquire", (PyCFunction)span_acquire, METH_NOARGS,
     "Take every lock of the span (ascending).  Raises LockOwnerDied (locks released) when a "
     "writer died holding one, unless raise_died is false; then owner_died is set."},
    {"release", (PyCFunction)span_release, METH_NOARGS, "Release every lock of the span."},
    {"__enter__", (PyCFunction)span_acquire, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)span_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef span_members[] = {
    {"owner_died", T_INT, offsetof(Span, owner_died), READONLY,
     "1 when the last acquire found a lock whose writer had died"},
    {"held", T_INT, offsetof(Span, held), READONLY, "1 while the span is held"},
    {"write", T_INT, offsetof(Span, write), READONLY, "1 for a write (exclusive) span"},
    {"count", T_PYSSIZET, offsetof(Span, count), READONLY, "number of locks"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject SpanType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "numpush._shm.Span",
    .tp_basicsize = sizeof(Span),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Span(owner, addr, count, stride, write=False, timeout=-1, raise_died=True): "
              "count np_rwlock objects at addr, addr+stride, ...",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)span_init,
    .tp_dealloc = (destructor)span_dealloc,
    .tp_methods = span_methods,
    .tp_members = span_members,
};

static PyObject *shm_configure(PyObject *self, PyObject *args)
{
    PyObject *err, *died;
    if (!PyArg_ParseTuple(args, "OO", &err, &died))
        return NULL;
    Py_INCREF(err);
    Py_INCREF(died);
    Py_XSETREF(shm_error_cls, err);
    Py_XSETREF(shm_died_cls, died);
    Py_RETURN_NONE;
}

/* Re-initialise count locks (only while nobody uses them). */
static PyObject *shm_init_locks(PyObject *self, PyObject *args)
{
    unsigned long long addr;
    Py_ssize_t count, stride;
    if (!PyArg_ParseTuple(args, "Knn", &addr, &count, &stride))
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++)
        np_rwlock_init((np_rwlock *)(uintptr_t)(addr + (unsigned long long)(i * stride)));
    Py_RETURN_NONE;
}

static PyMethodDef shm_functions[] = {
    {"configure", shm_configure, METH_VARARGS,
     "configure(Error, LockOwnerDied): the exception classes to raise."},
    {"init_locks", shm_init_locks, METH_VARARGS,
     "init_locks(addr, count, stride): reset locks to unlocked."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef shm_module = {
    PyModuleDef_HEAD_INIT, "numpush._shm", "Robust shared-memory locks for numpush.shm.", -1,
    shm_functions,
};

PyMODINIT_FUNC PyInit__shm(void)
{
    if (PyType_Ready(&SpanType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&shm_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&SpanType);
    if (PyModule_AddObject(m, "Span", (PyObject *)&SpanType) < 0 ||
        PyModule_AddIntConstant(m, "LOCK_SIZE", NP_RWLOCK_SIZE) < 0 ||
        PyModule_AddIntConstant(m, "LOCK_READERS", NP_RWLOCK_READERS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
