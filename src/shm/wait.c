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
 * Every wait has a deadline (NUMPUSH_TIMEOUT) and, once it is in the slow
 * path, checks every few milliseconds that the peer it waits for is alive,
 * so a SIGKILLed peer gives NP_ERR_PEER quickly instead of a hang.
 */
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
    for (long i = 0; i < s->spin; i++) {
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
    uint64_t last_check = 0;
    for (;;) {
        uint32_t seen = atomic_load_explicit(wait_word(f), memory_order_acquire);
        atomic_fetch_add_explicit(&f->waiters, 1, memory_order_seq_cst);
        if (ready(arg)) {
            atomic_fetch_sub_explicit(&f->waiters, 1, memory_order_relaxed);
            return NP_OK;
        }
        struct timespec ts = {0, (long)WAIT_SLEEP_NS};
        syscall(SYS_futex, wait_word(f), FUTEX_WAIT, seen, &ts, NULL, 0);
        atomic_fetch_sub_explicit(&f->waiters, 1, memory_order_relaxed);
        if (ready(arg))
            return NP_OK;
        now = npi_now_ns();
        if (now - last_check >= WAIT_CHECK_NS) {
            last_check = now;
            np_err err = wait_check_peers(s, peer, who);
            if (err != NP_OK)
                return err;
        }
        if (npi_shm_conf.timeout_ns && now - start > npi_shm_conf.timeout_ns)
            return npi_error(NP_ERR_TIMEOUT, "%s: waited %.1f s for rank %d without progress", who,
                             (double)(now - start) * 1e-9, peer);
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
