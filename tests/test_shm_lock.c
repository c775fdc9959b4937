/* Check suite for src/shm/rwlock.c: robust reader/writer locks in shared
 * memory, exercised by forked processes over an anonymous shared mapping. */
#include "npi.h"

#include <numpush/shm_lock.h>

#include <check.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Everything the processes of one test share. */
typedef struct shared {
    np_rwlock lock;
    _Atomic int inside_w;   /* writers inside the critical section */
    _Atomic int inside_r;   /* readers inside */
    _Atomic int max_r;      /* most readers seen inside at once */
    _Atomic int violations; /* exclusion failures seen */
    _Atomic int ready;      /* children that reached their rendezvous */
    _Atomic int errs_lock;  /* NP_ERR_LOCK results */
    _Atomic int errs_other; /* any other unexpected result */
    long counter;           /* plain, protected by the lock */
} shared;

static shared *sh_new(void)
{
    shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(s, MAP_FAILED);
    memset(s, 0, sizeof *s);
    return s;
}

static void sh_free(shared *s)
{
    munmap(s, sizeof *s);
}

/* Wait for every child; each must exit 0. */
static void reap(pid_t *pids, int n)
{
    for (int i = 0; i < n; i++) {
        int st = 0;
        ck_assert_int_eq(waitpid(pids[i], &st, 0), pids[i]);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d ended with status 0x%x", i,
                      st);
    }
}

static void wait_ready(shared *s, int n)
{
    double until = np_wtime() + 20;
    while (atomic_load(&s->ready) < n && np_wtime() < until)
        usleep(1000);
    ck_assert_int_ge(atomic_load(&s->ready), n);
}

START_TEST(uncontended_calls_and_misuse)
{
    shared *s = sh_new();
    ck_assert_int_eq(np_rwlock_rdlock(&s->lock, -1), NP_OK);
    ck_assert_int_eq(np_rwlock_rdlock(&s->lock, -1), NP_OK); /* two read holds */
    ck_assert_int_eq(np_rwlock_wrlock(&s->lock, 0), NP_ERR_ARG);
    ck_assert_int_eq(np_rwlock_unlock(&s->lock), NP_OK);
    ck_assert_int_eq(np_rwlock_unlock(&s->lock), NP_OK);
    ck_assert_int_eq(np_rwlock_unlock(&s->lock), NP_ERR_ARG);
    ck_assert_int_eq(np_rwlock_wrlock(&s->lock, -1), NP_OK);
    ck_assert_int_eq(np_rwlock_wrlock(&s->lock, 0), NP_ERR_ARG);
    ck_assert_int_eq(np_rwlock_rdlock(&s->lock, 0), NP_ERR_ARG);
    ck_assert_int_eq(np_rwlock_unlock(&s->lock), NP_OK);
    ck_assert_int_eq(np_rwlock_unlock(&s->lock), NP_ERR_ARG);
    ck_assert_int_eq(np_rwlock_rdlock(NULL, 0), NP_ERR_NULL);
    ck_assert_int_eq(np_rwlock_init(&s->lock), NP_OK);
    sh_free(s);
}
END_TEST

START_TEST(held_lock_times_out_for_others)
{
    shared *s = sh_new();
    ck_assert_int_eq(np_rwlock_wrlock(&s->lock, -1), NP_OK);
    pid_t pid = fork();
    if (pid == 0) {
        int ok = np_rwlock_rdlock(&s->lock, 0) == NP_ERR_TIMEOUT &&
                 np_rwlock_wrlock(&s->lock, 0.05) == NP_ERR_TIMEOUT &&
                 np_rwlock_rdlock(&s->lock, 0.05) == NP_ERR_TIMEOUT;
        _exit(ok ? 0 : 1);
    }
    reap(&pid, 1);
    ck_assert_int_eq(np_rwlock_unlock(&s->lock), NP_OK);
    sh_free(s);
}
END_TEST

/* Writers and readers hammer one lock; writers must be alone, readers only
 * with readers; the plain counter must come out exact. */
START_TEST(writers_exclude_everyone)
{
    enum { WRITERS = 3, READERS = 2, ITER = 3000 };
    shared *s = sh_new();
    pid_t pids[WRITERS + READERS];
    for (int c = 0; c < WRITERS + READERS; c++) {
        pids[c] = fork();
        ck_assert_int_ge(pids[c], 0);
        if (pids[c] != 0)
            continue;
        bool writer = c < WRITERS;
        for (int i = 0; i < ITER; i++) {
            np_err e = writer ? np_rwlock_wrlock(&s->lock, -1) : np_rwlock_rdlock(&s->lock, -1);
            if (e != NP_OK)
                atomic_fetch_add(&s->errs_other, 1);
            if (writer) {
                if (atomic_fetch_add(&s->inside_w, 1) != 0 || atomic_load(&s->inside_r) != 0)
                    atomic_fetch_add(&s->violations, 1);
                long v = s->counter;
                if (i % 64 == 0)
                    sched_yield(); /* let a broken lock show itself */
                s->counter = v + 1;
                atomic_fetch_sub(&s->inside_w, 1);
            } else {
                atomic_fetch_add(&s->inside_r, 1);
                if (atomic_load(&s->inside_w) != 0)
                    atomic_fetch_add(&s->violations, 1);
                if (i % 64 == 0)
                    sched_yield();
                atomic_fetch_sub(&s->inside_r, 1);
            }
            if (np_rwlock_unlock(&s->lock) != NP_OK)
                atomic_fetch_add(&s->errs_other, 1);
        }
        _exit(0);
    }
    reap(pids, WRITERS + READERS);
    ck_assert_int_eq(atomic_load(&s->violations), 0);
    ck_assert_int_eq(atomic_load(&s->errs_other), 0);
    ck_assert_int_eq(s->counter, (long)WRITERS * ITER);
    sh_free(s);
}
END_TEST

/* Three readers must be inside together: each waits inside for the others. */
START_TEST(readers_share)
{
    enum { READERS = 3 };
    shared *s = sh_new();
    pid_t pids[READERS];
    for (int c = 0; c < READERS; c++) {
        pids[c] = fork();
        if (pids[c] != 0)
            continue;
        if (np_rwlock_rdlock(&s->lock, 10) != NP_OK)
            _exit(2);
        atomic_fetch_add(&s->ready, 1);
        double until = np_wtime() + 10;
        while (atomic_load(&s->ready) < READERS && np_wtime() < until)
            usleep(100);
        int all = atomic_load(&s->ready) >= READERS;
        np_rwlock_unlock(&s->lock);
        _exit(all ? 0 : 1);
    }
    reap(pids, READERS);
    sh_free(s);
}
END_TEST

/* A child SIGKILLed while it writes: the others are not wedged, and exactly
 * one of the next holders hears NP_ERR_LOCK.  The dead child is not reaped
 * until the end, so the lock must see through the zombie. */
START_TEST(dead_writer_is_recovered_once)
{
    enum { WAITERS = 3 };
    shared *s = sh_new();
    pid_t victim = fork();
    if (victim == 0) {
        np_rwlock_wrlock(&s->lock, -1);
        s->counter = -1; /* a half-done update */
        atomic_store(&s->ready, 1);
        for (;;)
            pause();
    }
    wait_ready(s, 1);
    atomic_store(&s->ready, 0);
    pid_t pids[WAITERS];
    for (int c = 0; c < WAITERS; c++) {
        pids[c] = fork();
        if (pids[c] != 0)
            continue;
        atomic_fetch_add(&s->ready, 1);
        bool write = c % 2 == 0;
        np_err e = write ? np_rwlock_wrlock(&s->lock, 20) : np_rwlock_rdlock(&s->lock, 20);
        if (e == NP_ERR_LOCK)
            atomic_fetch_add(&s->errs_lock, 1);
        else if (e != NP_OK)
            atomic_fetch_add(&s->errs_other, 1);
        if (e == NP_OK || e == NP_ERR_LOCK)
            np_rwlock_unlock(&s->lock);
        _exit(0);
    }
    wait_ready(s, WAITERS);
    usleep(20000); /* let them sleep on the lock */
    double t0 = np_wtime();
    kill(victim, SIGKILL);
    reap(pids, WAITERS);
    double took = np_wtime() - t0;
    /* The parent locks too, after the others: no second report. */
    ck_assert_int_eq(np_rwlock_wrlock(&s->lock, 5), NP_OK);
    ck_assert_int_eq(np_rwlock_unlock(&s->lock), NP_OK);
    int st;
    waitpid(victim, &st, 0);
    ck_assert_int_eq(atomic_load(&s->errs_lock), 1);
    ck_assert_int_eq(atomic_load(&s->errs_other), 0);
    ck_assert_double_lt(took, 5.0);
    printf("test_shm_lock: waiters recovered a SIGKILLed writer's lock in %.1f ms\n", took * 1e3);
    sh_free(s);
}
END_TEST

/* A reader that dies only delays a writer; no report, since readers change
 * nothing. */
START_TEST(dead_reader_is_dropped_silently)
{
    shared *s = sh_new();
    pid_t victim = fork();
    if (victim == 0) {
        np_rwlock_rdlock(&s->lock, -1);
        atomic_store(&s->ready, 1);
        for (;;)
            pause();
    }
    wait_ready(s, 1);
    ck_assert_int_eq(np_rwlock_wrlock(&s->lock, 0.05), NP_ERR_TIMEOUT);
    kill(victim, SIGKILL);
    ck_assert_int_eq(np_rwlock_wrlock(&s->lock, 5), NP_OK);
    ck_assert_int_eq(np_rwlock_unlock(&s->lock), NP_OK);
    int st;
    waitpid(victim, &st, 0);
    sh_free(s);
}
END_TEST

START_TEST(uncontended_timing)
{
    enum { N = 2000000 };
    shared *s = sh_new();
    double best_w = 1e9, best_r = 1e9;
    for (int round = 0; round < 3; round++) {
        double t0 = np_wtime();
        for (int i = 0; i < N; i++) {
            np_rwlock_wrlock(&s->lock, -1);
            np_rwlock_unlock(&s->lock);
        }
        double t1 = np_wtime();
        for (int i = 0; i < N; i++) {
            np_rwlock_rdlock(&s->lock, -1);
            np_rwlock_unlock(&s->lock);
        }
        double t2 = np_wtime();
        best_w = (t1 - t0) / N < best_w ? (t1 - t0) / N : best_w;
        best_r = (t2 - t1) / N < best_r ? (t2 - t1) / N : best_r;
    }
    printf("test_shm_lock: uncontended wrlock+unlock %.1f ns, rdlock+unlock %.1f ns\n",
           best_w * 1e9, best_r * 1e9);
    /* The goal is well under a microsecond; the bound leaves room for a
     * noisy shared machine. */
    ck_assert_double_lt(best_w, 2e-6);
    ck_assert_double_lt(best_r, 2e-6);
    sh_free(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shm_lock");
    TCase *tc = tcase_create("rwlock");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, uncontended_calls_and_misuse);
    tcase_add_test(tc, held_lock_times_out_for_others);
    tcase_add_test(tc, writers_exclude_everyone);
    tcase_add_test(tc, readers_share);
    tcase_add_test(tc, dead_writer_is_recovered_once);
    tcase_add_test(tc, dead_reader_is_dropped_silently);
    tcase_add_test(tc, uncontended_timing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
