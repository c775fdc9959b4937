/*
 * Waiting for a peer: spin, then yield, then sleep on a futex.
 *
 * Ranks often outnumber cores here (four ranks on two cores is the normal
 * test setup), and a rank that spins while the rank it waits for has no core
 * only delays that rank.  So a waiter spins for NUMPUSH_SPIN polls (enough to
 * catch a peer that is running on another core), yields its core for a short
 * while (cheap hand-over when oversubscribed), and then sleeps in the kernel
 * on the flag word until a writer wakes it.  Writers pay for the wake system
 * call only when a waiter has announced itself in the flag's waiters count.
 *
 * A live peer may legitimately compute for minutes before it joins a
 * collective, so waiting for it has no deadline (MPI semantics), unless the
 * user asks for one with NUMPUSH_WAIT_TIMEOUT.  What is bounded is the time
 * to notice a dead peer: once in the slow path the waiter checks every few
 * milliseconds (and at least four times per NUMPUSH_TIMEOUT) that the peer
 * it waits for is alive, so a SIGKILLed peer gives NP_ERR_PEER in tens of
 * milliseconds instead of a hang.  The sleeps between checks are short
 * futex waits, so a long wait costs no CPU.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "shm.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* How long a waiter yields before it sleeps, and how long one sleep lasts
 * at most (a bound on a lost wake-up and on the liveness check period). */
#define WAIT_YIELD_NS 200000ull
#define WAIT_SLEEP_NS 2000000ull
#define WAIT_CHECK_NS 5000000ull

static inline void wait_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* The futex is the low half of the 64-bit flag: every change of the flag by
 * less than 2^32 changes it, which is all a futex needs to see. */
static inline uint32_t *wait_word(npi_flag *f)
{
    return (uint32_t *)&f->v;
}

void npi_flag_set(npi_flag *f, uint64_t v)
{
    /* Sequentially consistent store then load: with the waiter's increment of
     * waiters followed by its load of v, at least one side sees the other, so
     * either the waiter sees v or the writer sees the waiter and wakes it. */
    atomic_store_explicit(&f->v, v, memory_order_seq_cst);
    if (atomic_load_explicit(&f->waiters, memory_order_seq_cst) != 0)
        syscall(SYS_futex, wait_word(f), FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void npi_flag_bump(npi_flag *f)
{
    atomic_fetch_add_explicit(&f->v, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&f->waiters, memory_order_seq_cst) != 0)
        syscall(SYS_futex, wait_word(f), FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

bool npi_pid_dead(pid_t pid)
{
    if (pid <= 0)
        return false;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return true;
    /* A killed child of a launcher that has not reaped it yet is a zombie:
     * kill() still finds it, /proc says 'Z'. */
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return false;
    size_t got = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[got] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

static np_err wait_check_peers(npi_shm *s, int peer, const char *who)
{
    if (atomic_load_explicit(&s->hdr->broken, memory_order_relaxed))
        return npi_error(NP_ERR_PEER, "%s: the communicator is broken (a rank died earlier)", who);
    int lo = peer < 0 ? 0 : peer, hi = peer < 0 ? s->n : peer + 1;
    for (int q = lo; q < hi; q++) {
        if (q == s->me)
            continue;
        pid_t pid = s->ctl[q].pid;
        if (npi_pid_dead(pid)) {
            atomic_store(&s->hdr->broken, 1);
            return npi_error(NP_ERR_PEER, "%s: rank %d (pid %d) died", who, q, (int)pid);
        }
    }
    return NP_OK;
}

np_err npi_shm_wait(npi_shm *s, npi_flag *f, npi_ready_fn ready, void *arg, int peer,
                    const char *who)
{
    if (ready(arg))
        return NP_OK;
    /* Spinning pays only while the awaited rank runs on another core.  On
     * a shared machine the scheduler often puts two ranks on one core for
     * a while (the other is busy with someone else's job), and then every
     * poll is wasted (300 polls cost about 10 us here) until this rank
     * yields.  Each rank notes its CPU whenever it starts to wait; a waiter
     * that finds the awaited rank last seen on its own CPU yields at once. */
    long spin = s->spin;
    if (spin > 0) {
        int cpu = sched_getcpu();
        atomic_store_explicit(&s->ctl[s->me].oncpu, cpu, memory_order_relaxed);
        if (peer >= 0 && cpu >= 0 &&
            atomic_load_explicit(&s->ctl[peer].oncpu, memory_order_relaxed) == cpu)
            spin = 0;
    }
    for (long i = 0; i < spin; i++) {
        wait_relax();
        if (ready(arg))
            return NP_OK;
    }
    uint64_t start = npi_now_ns();
    uint64_t now = start;
    while (now - start < WAIT_YIELD_NS) {
        sched_yield();
        if (ready(arg))
            return NP_OK;
        now = npi_now_ns();
    }
    /* Check liveness often enough that a death is reported well within
     * NUMPUSH_TIMEOUT, even if the user sets it below the default period. */
    uint64_t check_ns = WAIT_CHECK_NS, sleep_ns = WAIT_SLEEP_NS;
    if (npi_shm_conf.timeout_ns && npi_shm_conf.timeout_ns / 4 < check_ns)
        check_ns = npi_shm_conf.timeout_ns / 4;
    if (sleep_ns > check_ns)
        sleep_ns = check_ns > 100000 ? check_ns : 100000;
    uint64_t last_check = 0;
    for (;;) {
        uint32_t seen = atomic_load_explicit(wait_word(f), memory_order_acquire);
        atomic_fetch_add_explicit(&f->waiters, 1, memory_order_seq_cst);
        if (ready(arg)) {
            atomic_fetch_sub_explicit(&f->waiters, 1, memory_order_relaxed);
            return NP_OK;
        }
        struct timespec ts = {0, (long)sleep_ns};
        syscall(SYS_futex, wait_word(f), FUTEX_WAIT, seen, &ts, NULL, 0);
        atomic_fetch_sub_explicit(&f->waiters, 1, memory_order_relaxed);
        if (ready(arg))
            return NP_OK;
        now = npi_now_ns();
        if (now - last_check >= check_ns) {
            last_check = now;
            np_err err = wait_check_peers(s, peer, who);
            if (err != NP_OK)
                return err;
        }
        if (npi_shm_conf.wait_timeout_ns && now - start > npi_shm_conf.wait_timeout_ns)
            return npi_error(NP_ERR_TIMEOUT,
                             "%s: waited %.1f s for rank %d, which is alive but did not progress "
                             "(NUMPUSH_WAIT_TIMEOUT)",
                             who, (double)(now - start) * 1e-9, peer);
    }
}

typedef struct wait_flag_arg {
    npi_flag *f;
    uint64_t v;
} wait_flag_arg;

static bool wait_flag_ready(void *arg)
{
    wait_flag_arg *a = arg;
    return npi_flag_get(a->f) >= a->v;
}

np_err npi_shm_wait_flag(npi_shm *s, int q, int p, uint64_t v, const char *who)
{
    npi_flag *f = &s->ctl[q].post[p & 1].flag;
    if (NPI_LIKELY(npi_flag_get(f) >= v))
        return NP_OK;
    wait_flag_arg a = {f, v};
    return npi_shm_wait(s, f, wait_flag_ready, &a, q, who);
}
