/*
 * Robust reader/writer locks in shared memory (np_rwlock, see
 * include/numpush/shm_lock.h and the layout in rwlock.h).
 *
 * Fast paths: a writer takes the lock with one compare-and-swap of its
 * thread id into writer and a scan of the reader slots (all free when
 * uncontended); a reader with one compare-and-swap into a reader slot and a
 * load of writer.  Releases are one store plus a load of waiters.  No system
 * call: the thread id is cached per thread (and forgotten in a forked
 * child, whose thread has a new id).
 *
 * Slow path: spin briefly (a holder on another core is about to finish),
 * yield for a short while (cheap hand-over when processes outnumber cores),
 * then sleep on the futex word seq.  Every RWL_CHECK_NS a waiter checks that
 * the threads it waits for are alive and takes back what dead ones hold; a
 * waiter never sleeps longer than RWL_SLEEP_NS at a time, which bounds how
 * long a holder's death can go unnoticed.
 */
#include "npi.h"
#include "rwlock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#ifdef __linux__
#include <linux/futex.h>
#endif

#define RWL_SPIN     64
#define RWL_YIELD_NS 100000ull
#define RWL_SLEEP_NS 5000000ull
#define RWL_CHECK_NS 10000000ull

#define RWL_N NP_RWLOCK_READERS

/* ------------------------------------------------------------ thread ids */

/* gettid is a system call, so each thread asks once.  A forked child's only
 * thread has a new id, hence the reset in the child. */
static __thread uint32_t rwl_tid_cache;
static pthread_once_t rwl_once = PTHREAD_ONCE_INIT;

static void rwl_atfork_child(void)
{
    rwl_tid_cache = 0;
}

static void rwl_register_atfork(void)
{
    pthread_atfork(NULL, NULL, rwl_atfork_child);
}

static uint32_t rwl_tid_slow(void)
{
    pthread_once(&rwl_once, rwl_register_atfork);
#ifdef SYS_gettid
    rwl_tid_cache = (uint32_t)syscall(SYS_gettid);
#else
    rwl_tid_cache = (uint32_t)getpid();
#endif
    return rwl_tid_cache;
}

static inline uint32_t rwl_tid(void)
{
    uint32_t t = rwl_tid_cache;
    return NPI_LIKELY(t != 0) ? t : rwl_tid_slow();
}

/* Whether thread tid still runs.  A killed process stays a zombie until its
 * parent reaps it, and kill(pid, 0) succeeds on zombies, so on Linux the
 * answer comes from /proc/<tid>/stat (which also exists for threads that
 * are not a process's main thread). */
static bool rwl_alive(uint32_t tid)
{
#ifdef __linux__
    char path[48];
    snprintf(path, sizeof path, "/proc/%u/stat", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return !(errno == ENOENT || errno == ESRCH);
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return !(n < 0 && errno == ESRCH);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (p != NULL && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
        return false;
    return true;
#else
    return !(kill((pid_t)tid, 0) == -1 && errno == ESRCH);
#endif
}

/* ------------------------------------------------------------ primitives */

static inline void rwl_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Readers of one lock start probing at different slots, so that a few
 * concurrent readers rarely collide on a slot. */
static inline unsigned rwl_hash(uint32_t tid)
{
    return (unsigned)((tid * 2654435761u) % RWL_N);
}

static void rwl_futex_wait(_Atomic uint32_t *word, uint32_t seen, uint64_t ns)
{
#ifdef __linux__
    struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, seen, &ts, NULL, 0);
#else
    /* Without futexes, a short sleep: the lock still works, only slower to
     * hand over. */
    (void)word;
    (void)seen;
    struct timespec ts = {0, (long)(ns < 200000 ? ns : 200000)};
    nanosleep(&ts, NULL);
#endif
}

/* After a release: wake sleepers if any announced themselves.  The caller's
 * release was sequentially consistent, and so is a waiter's increment of
 * waiters before its last attempt, so either the waiter saw the release or
 * this load sees the waiter. */
static inline void rwl_wake(npi_rwlock *r)
{
    if (atomic_load(&r->waiters) != 0) {
        atomic_fetch_add(&r->seq, 1);
#ifdef __linux__
        syscall(SYS_futex, (uint32_t *)&r->seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
#endif
    }
}

static inline bool rwl_no_readers(npi_rwlock *r)
{
    for (unsigned i = 0; i < RWL_N; i++)
        if (atomic_load(&r->reader[i]) != 0)
            return false;
    return true;
}

static inline bool rwl_reading(npi_rwlock *r, uint32_t me)
{
    for (unsigned i = 0; i < RWL_N; i++)
        if (atomic_load_explicit(&r->reader[i], memory_order_relaxed) == me)
            return true;
    return false;
}

/* The lock is held: report a dead writer's leftovers to this holder only. */
static inline np_err rwl_acquired(npi_rwlock *r)
{
    if (NPI_UNLIKELY(atomic_load_explicit(&r->dirty, memory_order_relaxed) != 0) &&
        atomic_exchange(&r->dirty, 0) != 0)
        return npi_error(NP_ERR_LOCK, "np_rwlock: a writer died holding the lock; "
                                      "the data it protects may be inconsistent");
    return NP_OK;
}

/* One attempt to read: claim a slot, then make sure no writer owns the
 * lock; a reader that sees a writer gives its slot back (and wakes the
 * writer, which may be waiting for exactly that slot).  Returns 1 when held,
 * 0 when busy, -1 when the caller itself owns the write lock. */
static inline int rwl_rd_try(npi_rwlock *r, uint32_t me)
{
    unsigned h = rwl_hash(me);
    for (unsigned k = 0; k < RWL_N; k++) {
        unsigned i = h + k < RWL_N ? h + k : h + k - RWL_N;
        uint32_t expect = 0;
        if (atomic_load_explicit(&r->reader[i], memory_order_relaxed) != 0 ||
            !atomic_compare_exchange_strong(&r->reader[i], &expect, me))
            continue;
        uint32_t w = atomic_load(&r->writer);
        if (NPI_LIKELY(w == 0))
            return 1;
        atomic_store(&r->reader[i], 0);
        rwl_wake(r);
        return w == me ? -1 : 0;
    }
    return atomic_load(&r->writer) == me ? -1 : 0;
}

/* ------------------------------------------------------------ recovery */

/* Take back what dead threads hold.  A dead writer's word is swapped for
 * the caller's id, so exactly one waiter recovers it and a second death in
 * the middle of recovery is recovered in turn.  A writer-to-be keeps it
 * (*took = true); a reader marks the lock dirty and releases it.  Returns
 * whether anything changed. */
static bool rwl_recover(npi_rwlock *r, uint32_t me, bool want_write, bool *took)
{
    bool changed = false;
    uint32_t w = atomic_load(&r->writer);
    if (w != 0 && w != me && !rwl_alive(w) && atomic_compare_exchange_strong(&r->writer, &w, me)) {
        changed = true;
        if (want_write) {
            *took = true;
        } else {
            atomic_store(&r->dirty, 1);
            atomic_store(&r->writer, 0);
        }
    }
    for (unsigned i = 0; i < RWL_N; i++) {
        uint32_t t = atomic_load_explicit(&r->reader[i], memory_order_relaxed);
        if (t != 0 && t != me && !rwl_alive(t) &&
            atomic_compare_exchange_strong(&r->reader[i], &t, 0))
            changed = true;
    }
    if (changed)
        rwl_wake(r);
    return changed;
}

/* ------------------------------------------------------------ waiting */

typedef struct rwl_clock {
    uint64_t start, deadline, checked;
    unsigned spins;
} rwl_clock;

static void rwl_clock_start(rwl_clock *c, double timeout)
{
    c->start = npi_now_ns();
    c->checked = c->start;
    c->deadline = timeout < 0 ? UINT64_MAX : c->start + (uint64_t)(timeout * 1e9);
    c->spins = 0;
}

typedef enum { RWL_RETRY, RWL_SLEEP, RWL_CHECK, RWL_EXPIRED } rwl_step;

/* What a waiter does next: spin, yield, check liveness, sleep, or give up. */
static rwl_step rwl_next(rwl_clock *c, uint64_t *sleep_ns)
{
    if (c->spins < RWL_SPIN) {
        c->spins++;
        rwl_relax();
        return RWL_RETRY;
    }
    uint64_t now = npi_now_ns();
    if (now >= c->deadline)
        return RWL_EXPIRED;
    if (now - c->checked >= RWL_CHECK_NS) {
        c->checked = now;
        return RWL_CHECK;
    }
    if (now - c->start < RWL_YIELD_NS) {
        sched_yield();
        return RWL_RETRY;
    }
    uint64_t left = c->deadline - now;
    uint64_t to_check = RWL_CHECK_NS - (now - c->checked);
    *sleep_ns = left < to_check ? left : to_check;
    if (*sleep_ns > RWL_SLEEP_NS)
        *sleep_ns = RWL_SLEEP_NS;
    return RWL_SLEEP;
}

static np_err rwl_rdlock_slow(npi_rwlock *r, uint32_t me, double timeout)
{
    rwl_clock c;
    rwl_clock_start(&c, timeout);
    for (;;) {
        int got = rwl_rd_try(r, me);
        if (got > 0)
            return rwl_acquired(r);
        if (got < 0)
            return npi_error(NP_ERR_ARG, "np_rwlock_rdlock: the calling thread holds the lock "
                                         "for writing (locks are not recursive)");
        uint64_t ns = 0;
        bool took = false;
        switch (rwl_next(&c, &ns)) {
        case RWL_RETRY:
            continue;
        case RWL_CHECK:
            rwl_recover(r, me, false, &took);
            continue;
        case RWL_EXPIRED:
            return npi_error(NP_ERR_TIMEOUT,
                             "np_rwlock_rdlock: lock still held by writer %u "
                             "after %.3f s",
                             (unsigned)atomic_load(&r->writer), timeout);
        case RWL_SLEEP:
            break;
        }
        uint32_t seen = atomic_load(&r->seq);
        atomic_fetch_add(&r->waiters, 1);
        got = rwl_rd_try(r, me);
        if (got == 0)
            rwl_futex_wait(&r->seq, seen, ns);
        atomic_fetch_sub(&r->waiters, 1);
        if (got > 0)
            return rwl_acquired(r);
    }
}

/* A writer first owns the writer word (which stops new readers), then waits
 * for the readers already in to leave.  own says whether the fast path
 * already took the word. */
static np_err rwl_wrlock_slow(npi_rwlock *r, uint32_t me, double timeout, bool own)
{
    rwl_clock c;
    rwl_clock_start(&c, timeout);
    bool died = false; /* the word was taken back from a dead writer */
    np_err err;
    for (;;) {
        if (!own) {
            uint32_t expect = 0;
            own = atomic_compare_exchange_strong(&r->writer, &expect, me);
            if (!own && expect == me)
                return npi_error(NP_ERR_ARG, "np_rwlock_wrlock: the calling thread already "
                                             "holds the lock for writing");
        }
        if (own && rwl_no_readers(r))
            goto held;
        if (own && rwl_reading(r, me)) {
            err = npi_error(NP_ERR_ARG, "np_rwlock_wrlock: the calling thread holds the lock "
                                        "for reading (locks are not recursive)");
            goto give_up;
        }
        uint64_t ns = 0;
        bool took = false;
        switch (rwl_next(&c, &ns)) {
        case RWL_RETRY:
            continue;
        case RWL_CHECK:
            rwl_recover(r, me, true, &took);
            if (took)
                own = died = true;
            continue;
        case RWL_EXPIRED:
            err = npi_error(NP_ERR_TIMEOUT, "np_rwlock_wrlock: lock still held after %.3f s",
                            timeout);
            goto give_up;
        case RWL_SLEEP:
            break;
        }
        /* Announce ourselves, try once more, then sleep; see rwl_wake. */
        uint32_t seen = atomic_load(&r->seq);
        atomic_fetch_add(&r->waiters, 1);
        if (!own) {
            uint32_t expect = 0;
            own = atomic_compare_exchange_strong(&r->writer, &expect, me);
        }
        if (!(own && rwl_no_readers(r)))
            rwl_futex_wait(&r->seq, seen, ns);
        atomic_fetch_sub(&r->waiters, 1);
    }
held:
    if (died) {
        atomic_store(&r->dirty, 0);
        return npi_error(NP_ERR_LOCK, "np_rwlock_wrlock: a writer died holding the lock; "
                                      "the data it protects may be inconsistent");
    }
    return rwl_acquired(r);
give_up:
    if (own) {
        /* A dead writer's lock that we took back and now let go of stays
         * marked, so the next holder still hears of it. */
        if (died)
            atomic_store(&r->dirty, 1);
        atomic_store(&r->writer, 0);
        rwl_wake(r);
    }
    return err;
}

/* ------------------------------------------------------------ public */

np_err np_rwlock_init(np_rwlock *lock)
{
    if (lock == NULL)
        return npi_error(NP_ERR_NULL, "np_rwlock_init: lock is NULL");
    memset(lock, 0, sizeof *lock);
    atomic_thread_fence(memory_order_seq_cst);
    return NP_OK;
}

np_err np_rwlock_rdlock(np_rwlock *lock, double timeout)
{
    if (NPI_UNLIKELY(lock == NULL))
        return npi_error(NP_ERR_NULL, "np_rwlock_rdlock: lock is NULL");
    npi_rwlock *r = (npi_rwlock *)lock;
    uint32_t me = rwl_tid();
    if (NPI_LIKELY(rwl_rd_try(r, me) > 0))
        return rwl_acquired(r);
    return rwl_rdlock_slow(r, me, timeout);
}

np_err np_rwlock_wrlock(np_rwlock *lock, double timeout)
{
    if (NPI_UNLIKELY(lock == NULL))
        return npi_error(NP_ERR_NULL, "np_rwlock_wrlock: lock is NULL");
    npi_rwlock *r = (npi_rwlock *)lock;
    uint32_t me = rwl_tid();
    uint32_t expect = 0;
    bool own = atomic_compare_exchange_strong(&r->writer, &expect, me);
    if (NPI_LIKELY(own && rwl_no_readers(r)))
        return rwl_acquired(r);
    return rwl_wrlock_slow(r, me, timeout, own);
}

np_err np_rwlock_unlock(np_rwlock *lock)
{
    if (NPI_UNLIKELY(lock == NULL))
        return npi_error(NP_ERR_NULL, "np_rwlock_unlock: lock is NULL");
    npi_rwlock *r = (npi_rwlock *)lock;
    uint32_t me = rwl_tid();
    /* A thread that owns the writer word holds no reader slot (rdlock and
     * wrlock refuse that), so one load tells the two cases apart. */
    if (atomic_load_explicit(&r->writer, memory_order_relaxed) == me) {
        atomic_store(&r->writer, 0);
        rwl_wake(r);
        return NP_OK;
    }
    unsigned h = rwl_hash(me);
    for (unsigned k = 0; k < RWL_N; k++) {
        unsigned i = h + k < RWL_N ? h + k : h + k - RWL_N;
        if (atomic_load_explicit(&r->reader[i], memory_order_relaxed) == me) {
            atomic_store(&r->reader[i], 0);
            rwl_wake(r);
            return NP_OK;
        }
    }
    return npi_error(NP_ERR_ARG, "np_rwlock_unlock: the calling thread does not hold the lock");
}
