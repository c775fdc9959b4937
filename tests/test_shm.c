/*
 * Check suite for the shared-memory primitives of src/shm: segments leave
 * nothing in /dev/shm, npi_copy equals memcpy for every alignment, and
 * flags, futex waits and peer-death detection work across fork().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm/shm.h"

static char shm_job[32];

static void setup(void)
{
    snprintf(shm_job, sizeof shm_job, "tshm%ld", (long)getpid());
    ck_assert_int_eq(npi_shm_configure(), NP_OK);
    npi_shm_conf.timeout_ns = 5000000000ull;
    npi_shm_conf.wait_timeout_ns = 0;
}

static bool name_exists(const npi_shm *s)
{
    char path[128];
    snprintf(path, sizeof path, "/dev/shm%s", s->name);
    return access(path, F_OK) == 0;
}

START_TEST(segment_single_rank_unlinks_at_once)
{
    npi_shm s;
    ck_assert_int_eq(npi_shm_attach(&s, shm_job, 1, 1, 0), NP_OK);
    ck_assert(!name_exists(&s));
    ck_assert_int_eq(s.ctl[0].pid, getpid());
    npi_shm_detach(&s);
}
END_TEST

START_TEST(segment_unlinked_after_last_attach)
{
    npi_shm s;
    ck_assert_int_eq(npi_shm_attach(&s, shm_job, 2, 2, 0), NP_OK);
    ck_assert(name_exists(&s));
    pid_t child = fork();
    if (child == 0) {
        npi_shm c;
        np_err e = npi_shm_attach(&c, shm_job, 2, 2, 1);
        /* Both mappings see the same memory. */
        if (e == NP_OK)
            npi_flag_set(&c.ctl[1].post[0].flag, 77);
        _exit(e == NP_OK ? 0 : 1);
    }
    int status;
    waitpid(child, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert(!name_exists(&s));
    ck_assert_uint_eq(npi_flag_get(&s.ctl[1].post[0].flag), 77);
    npi_shm_detach(&s);
}
END_TEST

START_TEST(segment_open_waits_for_creator)
{
    /* The opener starts first and retries until the creator appears. */
    pid_t child = fork();
    if (child == 0) {
        npi_shm c;
        np_err e = npi_shm_attach(&c, shm_job, 3, 2, 1);
        _exit(e == NP_OK ? 0 : 1);
    }
    usleep(100000);
    npi_shm s;
    ck_assert_int_eq(npi_shm_attach(&s, shm_job, 3, 2, 0), NP_OK);
    int status;
    waitpid(child, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert(!name_exists(&s));
    npi_shm_detach(&s);
}
END_TEST

/* The creator's segment for n ranks on this node; the other ranks never
 * come, so the name is removed here. */
static size_t cell_for(int n, uint64_t id)
{
    npi_shm s;
    ck_assert_int_eq(npi_shm_attach(&s, shm_job, id, n, 0), NP_OK);
    size_t cell = s.hdr->cell;
    char name[sizeof s.name];
    memcpy(name, s.name, sizeof name);
    npi_shm_detach(&s);
    shm_unlink(name);
    return cell;
}

START_TEST(segment_cells_grow_with_more_ranks_than_cores)
{
    cpu_set_t set;
    int cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    if (cores <= 1)
        cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    size_t saved = npi_shm_conf.cell;
    npi_shm_conf.cell = 0; /* auto */
    ck_assert_uint_eq(cell_for(cores, 20), 128 * 1024);
    ck_assert_uint_eq(cell_for(cores + 1, 21), 512 * 1024);
    /* Never more than 64 MiB of cells in all: 65 ranks get 256 KiB. */
    if (cores < 64)
        ck_assert_uint_eq(cell_for(65, 22), 256 * 1024);
    npi_shm_conf.cell = 65536; /* NUMPUSH_SHM_CELL wins either way */
    ck_assert_uint_eq(cell_for(cores + 1, 23), 65536);
    npi_shm_conf.cell = saved;
}
END_TEST

START_TEST(copy_matches_memcpy_at_every_alignment)
{
    static const size_t sizes[] = {0, 1, 63, 64, 255, 256, 257, 4099, 65536 + 7};
    size_t cap = 65536 + 256, saved = npi_shm_conf.copy_stream;
    unsigned char *src = malloc(cap), *a = malloc(cap), *b = malloc(cap);
    for (size_t i = 0; i < cap; i++)
        src[i] = (unsigned char)(i * 131 + 7);
    /* Pass 0: plain memcpy after the head; pass 1: non-temporal stores from
     * 256 bytes on; pass 2: pieces of a destination large enough to stream
     * (npi_copy_piece), whatever their own size. */
    for (int pass = 0; pass < 3; pass++) {
        npi_shm_conf.copy_stream = pass == 0 ? 0 : 256;
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
            for (size_t so = 0; so < 64; so += 5)
                for (size_t d = 0; d < 64; d++) {
                    memset(a, 0xee, cap);
                    memset(b, 0xee, cap);
                    memcpy(a + d, src + so, sizes[k]);
                    if (pass == 2)
                        npi_copy_piece(b + d, src + so, sizes[k], 1024);
                    else
                        npi_copy(b + d, src + so, sizes[k]);
                    ck_assert_msg(memcmp(a, b, cap) == 0, "pass %d size %zu src+%zu dst+%zu", pass,
                                  sizes[k], so, d);
                }
    }
    npi_shm_conf.copy_stream = saved;
    free(src);
    free(a);
    free(b);
}
END_TEST

START_TEST(copy_streams_large_buffers_exactly)
{
    /* The default threshold, crossed by an odd size at odd offsets. */
    size_t n = npi_shm_conf.copy_stream + 4096 + 13, cap = n + 128;
    ck_assert_uint_gt(npi_shm_conf.copy_stream, 0);
    unsigned char *src = malloc(cap), *b = malloc(cap);
    for (size_t i = 0; i < cap; i++)
        src[i] = (unsigned char)(i * 131 + (i >> 12));
    for (size_t d = 0; d < 64; d += 21) {
        memset(b, 0xee, cap);
        npi_copy(b + d, src + 3, n);
        ck_assert(memcmp(b + d, src + 3, n) == 0);
        for (size_t i = 0; i < d; i++)
            ck_assert_uint_eq(b[i], 0xee);
        for (size_t i = d + n; i < cap; i++)
            ck_assert_uint_eq(b[i], 0xee);
    }
    free(src);
    free(b);
}
END_TEST

static bool flag_ge_5(void *arg)
{
    return npi_flag_get(arg) >= 5;
}

START_TEST(wait_sleeps_and_wakes_across_fork)
{
    /* No spinning: the waiter goes to the futex at once and must be woken
     * by the writer's npi_flag_set. */
    npi_shm_conf.spin = 0;
    npi_shm s;
    ck_assert_int_eq(npi_shm_attach(&s, shm_job, 4, 2, 0), NP_OK);
    pid_t child = fork();
    if (child == 0) {
        npi_shm c;
        if (npi_shm_attach(&c, shm_job, 4, 2, 1) != NP_OK)
            _exit(1);
        usleep(50000);
        for (uint64_t v = 1; v <= 5; v++)
            npi_flag_set(&c.ctl[1].post[0].flag, v);
        /* Then wait for the parent's answer. */
        _exit(npi_shm_wait_flag(&c, 0, 0, 9, "test") == NP_OK ? 0 : 2);
    }
    uint64_t t0 = npi_now_ns();
    ck_assert_int_eq(
        npi_shm_wait(&s, &s.ctl[1].post[0].flag, flag_ge_5, &s.ctl[1].post[0].flag, 1, "test"),
        NP_OK);
    ck_assert(npi_now_ns() - t0 < 2000000000ull);
    npi_flag_set(&s.ctl[0].post[0].flag, 9);
    int status;
    waitpid(child, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    npi_shm_detach(&s);
}
END_TEST

START_TEST(wait_reports_dead_peer)
{
    npi_shm s;
    ck_assert_int_eq(npi_shm_attach(&s, shm_job, 5, 2, 0), NP_OK);
    pid_t child = fork();
    if (child == 0) {
        npi_shm c;
        npi_shm_attach(&c, shm_job, 5, 2, 1);
        pause();
        _exit(0);
    }
    while (s.ctl[1].pid == 0)
        usleep(1000);
    usleep(20000);
    kill(child, SIGKILL);
    /* Not reaped yet: the peer is a zombie, which must count as dead. */
    uint64_t t0 = npi_now_ns();
    np_err e = npi_shm_wait_flag(&s, 1, 0, 1, "test");
    ck_assert_int_eq(e, NP_ERR_PEER);
    ck_assert(npi_now_ns() - t0 < 1000000000ull);
    ck_assert(strstr(np_last_error(), "died") != NULL);
    int status;
    waitpid(child, &status, 0);
    npi_shm_detach(&s);
}
END_TEST

/* NUMPUSH_WAIT_TIMEOUT bounds a wait for a live peer. */
START_TEST(wait_times_out)
{
    npi_shm_conf.wait_timeout_ns = 100000000ull;
    npi_shm s;
    ck_assert_int_eq(npi_shm_attach(&s, shm_job, 6, 1, 0), NP_OK);
    ck_assert_int_eq(npi_shm_wait_flag(&s, 0, 0, 1, "test"), NP_ERR_TIMEOUT);
    npi_shm_detach(&s);
}
END_TEST

/* NUMPUSH_TIMEOUT bounds only the detection of a dead peer: a live peer
 * that takes three times as long is still waited for. */
START_TEST(wait_outlasts_timeout_for_live_peer)
{
    npi_shm_conf.timeout_ns = 100000000ull;
    npi_shm s;
    ck_assert_int_eq(npi_shm_attach(&s, shm_job, 7, 2, 0), NP_OK);
    pid_t child = fork();
    if (child == 0) {
        npi_shm c;
        npi_shm_attach(&c, shm_job, 7, 2, 1);
        usleep(300000);
        npi_flag_set(&c.ctl[1].post[0].flag, 1);
        pause();
        _exit(0);
    }
    ck_assert_int_eq(npi_shm_wait_flag(&s, 1, 0, 1, "test"), NP_OK);
    kill(child, SIGKILL);
    int status;
    waitpid(child, &status, 0);
    npi_shm_detach(&s);
}
END_TEST

START_TEST(cma_reads_and_writes_own_memory)
{
    if (!npi_cma_syscall_works())
        return; /* a seccomp filter forbids it here: the cells path covers it */
    char a[100] = "single copy", b[100] = {0};
    ck_assert_int_eq(npi_cma_read(getpid(), b, (uint64_t)(uintptr_t)a, sizeof a), NP_OK);
    ck_assert_str_eq(b, "single copy");
    ck_assert_int_eq(npi_cma_write(getpid(), (uint64_t)(uintptr_t)a, "written", 8), NP_OK);
    ck_assert_str_eq(a, "written");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shm");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, segment_single_rank_unlinks_at_once);
    tcase_add_test(tc, segment_unlinked_after_last_attach);
    tcase_add_test(tc, segment_open_waits_for_creator);
    tcase_add_test(tc, segment_cells_grow_with_more_ranks_than_cores);
    tcase_add_test(tc, copy_matches_memcpy_at_every_alignment);
    tcase_add_test(tc, copy_streams_large_buffers_exactly);
    tcase_add_test(tc, wait_sleeps_and_wakes_across_fork);
    tcase_add_test(tc, wait_reports_dead_peer);
    tcase_add_test(tc, wait_times_out);
    tcase_add_test(tc, wait_outlasts_timeout_for_live_peer);
    tcase_add_test(tc, cma_reads_and_writes_own_memory);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
