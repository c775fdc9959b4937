/*
 * Failure behaviour of the collectives within a node: argument errors,
 * mismatched calls and a peer killed mid-broadcast.
 *
 * The program starts its own ranks (fork, with the NUMPUSH_RANK family of
 * variables), because the kill test needs survivors to report after a rank
 * died, which a launcher that stops the job at the first death would
 * prevent.  Usage: test_coll_fail [-n N] [errors|kill-cells|kill-cma|late].
 *
 * late: the last rank computes (sleeps) for 12 s before a broadcast it is
 * the root of, longer than NUMPUSH_TIMEOUT, which bounds only the detection
 * of a dead peer: the others must wait for it and every rank must succeed.
 * With
 * NUMPUSH_WAIT_TIMEOUT set, the late rank sleeps 3 s and the others must
 * give up with NP_ERR_TIMEOUT after about that many seconds.
 */
#include <numpush/numpush.h>

#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int me, nranks, failures;

/* numpush reads NUMPUSH_<COLL>_ALG once, at np_init; this internal entry
 * point re-reads it. */
extern np_err npi_decide_load(void);

static void fail(const char *what, np_err got, np_err want)
{
    fprintf(stderr, "rank %d: FAIL: %s: got %s, expected %s (%s)\n", me, what, np_errname(got),
            np_errname(want), np_last_error());
    failures++;
}

static void expect(const char *what, np_err got, np_err want)
{
    if (got != want)
        fail(what, got, want);
}

/* In an eager call, a rank that needs at most one peer's post (every rank
 * of a bcast or scatter, a non-root of a gather or reduce) returns once it
 * has that post, before every signature has been checked (src/coll/coll.c,
 * "Running ahead").  If its own call agrees with the post it read, it gets
 * NP_ERR_MISMATCH from its next call on the communicator, which has still
 * done its own work.  pending records that such a report is due. */
static bool pending;

static void expect_mismatch(const char *what, np_err got, bool sender)
{
    if (got == NP_OK && sender) {
        pending = true;
        return;
    }
    expect(what, got, NP_ERR_MISMATCH);
}

/* After an error the communicator must still work. */
static void still_works(const char *after)
{
    int32_t v = me == 0 ? 4242 : 0;
    np_err e = np_barrier(np_comm_world());
    if (pending) {
        pending = false;
        if (e != NP_ERR_MISMATCH)
            fail("mismatch reported by the next call", e, NP_ERR_MISMATCH);
        else if (me == 0)
            printf("late mismatch message: %s\n", np_last_error());
        e = NP_OK;
    }
    if (e == NP_OK)
        e = np_bcast(&v, 1, NP_INT32, 0, np_comm_world());
    if (e != NP_OK || v != 4242) {
        fprintf(stderr, "rank %d: FAIL: communicator unusable after %s: %s\n", me, after,
                np_last_error());
        failures++;
    }
}

static void test_errors(void)
{
    np_comm *w = np_comm_world();
    int last = nranks - 1;
    int32_t buf[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[8 * 16];
    np_err e;

    /* Mismatch of each kind: collective, count, dtype, op, root. */
    if (me == last && nranks > 1)
        e = np_barrier(w);
    else
        e = np_bcast(buf, 4, NP_INT32, 0, w);
    if (nranks > 1)
        expect_mismatch("mismatch collective", e, me != last);
    else
        expect("mismatch collective", e, NP_OK);
    if (e == NP_ERR_MISMATCH && me == 0)
        printf("mismatch message: %s\n", np_last_error());
    still_works("collective mismatch");

    /* The receive buffer must be untouched when the call fails. */
    int32_t keep[5] = {-1, -1, -1, -1, -1};
    if (me == 0)
        memcpy(keep, buf, sizeof buf[0] * 5);
    e = np_bcast(keep, me == last ? 5 : 4, NP_INT32, 0, w);
    if (nranks > 1)
        expect_mismatch("mismatch count", e, true);
    else
        expect("mismatch count", e, NP_OK);
    if (me != 0 && e != NP_OK && keep[0] != -1)
        fail("mismatch count left the buffer untouched", NP_OK, NP_ERR_MISMATCH);
    still_works("count mismatch");

    e = np_allgather(buf, out, 2, me == last ? NP_INT64 : NP_INT32, w);
    expect("mismatch dtype", e, nranks > 1 ? NP_ERR_MISMATCH : NP_OK);
    still_works("dtype mismatch");

    e = np_allreduce(buf, out, 4, NP_INT32, me == last ? NP_MAX : NP_SUM, w);
    expect("mismatch op", e, nranks > 1 ? NP_ERR_MISMATCH : NP_OK);
    still_works("op mismatch");

    e = np_reduce(buf, out, 4, NP_INT32, NP_SUM, me == last ? last : 0, w);
    if (nranks > 1)
        expect_mismatch("mismatch root", e, me != 0 && me != last);
    else
        expect("mismatch root", e, NP_OK);
    if (e == NP_ERR_MISMATCH && me == 0)
        printf("mismatch message: %s\n", np_last_error());
    still_works("root mismatch");

    /* scatterv: rank last expects one element more than the root sends. */
    size_t counts[16], displs[16];
    for (int q = 0; q < nranks; q++) {
        counts[q] = 2;
        displs[q] = 2 * (size_t)q;
    }
    e = np_scatterv(out, counts, displs, buf, me == last && last > 0 ? 3 : 2, NP_INT32, 0, w);
    expect("mismatch scatterv count", e, nranks > 1 ? NP_ERR_MISMATCH : NP_OK);
    if (e == NP_ERR_MISMATCH && me == 0)
        printf("mismatch message: %s\n", np_last_error());
    still_works("scatterv mismatch");

    /* NULL buffers: everywhere, then on one rank only. */
    expect("NULL buffer", np_bcast(NULL, 4, NP_INT32, 0, w), NP_ERR_NULL);
    expect("NULL buffer with count 0", np_bcast(NULL, 0, NP_INT32, 0, w), NP_OK);
    e = np_allreduce(me == last ? NULL : buf, out, 4, NP_INT32, NP_SUM, w);
    expect("NULL buffer on one rank", e,
           me == last   ? NP_ERR_NULL
           : nranks > 1 ? NP_ERR_MISMATCH
                        : NP_OK);
    still_works("NULL buffer");

    /* Root out of range, bad dtype, bad (dtype, op), bad communicator. */
    expect("root = size", np_bcast(buf, 4, NP_INT32, nranks, w), NP_ERR_ROOT);
    expect("root = -1", np_gather(buf, out, 1, NP_INT32, -1, w), NP_ERR_ROOT);
    expect("bad dtype", np_bcast(buf, 4, (np_dtype)99, 0, w), NP_ERR_DTYPE);
    expect("float with band", np_allreduce(buf, out, 2, NP_FLOAT32, NP_BAND, w), NP_ERR_OP);
    expect("NULL communicator", np_bcast(buf, 4, NP_INT32, 0, NULL), NP_ERR_COMM);
    still_works("argument errors");
}

/* Broadcast 8 MiB in a loop until a peer is killed; exit 0 on ERR_PEER. */
static int test_kill(const char *alg)
{
    setenv("NUMPUSH_BCAST_ALG", alg, 1);
    npi_decide_load();
    size_t bytes = 8u << 20;
    char *buf = malloc(bytes);
    memset(buf, me, bytes);
    double start = np_wtime();
    for (;;) {
        np_err e = np_bcast(buf, bytes, NP_BYTE, 0, np_comm_world());
        if (e == NP_ERR_PEER) {
            printf("rank %d: NP_ERR_PEER as expected: %s\n", me, np_last_error());
            return 0;
        }
        if (e != NP_OK) {
            fprintf(stderr, "rank %d: FAIL: got %s, expected ERR_PEER: %s\n", me, np_errname(e),
                    np_last_error());
            return 1;
        }
        if (np_wtime() - start > 30) {
            fprintf(stderr, "rank %d: FAIL: no peer died within 30 s\n", me);
            return 1;
        }
    }
}

static int test_late(void)
{
    const char *wt = getenv("NUMPUSH_WAIT_TIMEOUT");
    double bound = wt ? atof(wt) : 0;
    int last = nranks - 1;
    int32_t v[4] = {0, 0, 0, 0};
    /* The late rank is the root, so every other rank must wait for it. */
    if (me == last)
        for (int i = 0; i < 4; i++)
            v[i] = 100 + i;
    if (me == last)
        sleep(bound > 0 ? 3 : 12);
    if (bound > 0 && me == last)
        return 0; /* the others gave up on this call: joining it proves nothing */
    double t0 = np_wtime();
    np_err e = np_bcast(v, 4, NP_INT32, last, np_comm_world());
    double dt = np_wtime() - t0;
    if (bound > 0) {
        if (e != NP_ERR_TIMEOUT || dt > bound + 1.5) {
            fprintf(stderr,
                    "rank %d: FAIL: got %s after %.2f s, expected ERR_TIMEOUT after %.1f s\n", me,
                    np_errname(e), dt, bound);
            return 1;
        }
        printf("rank %d: NP_ERR_TIMEOUT after %.2f s as expected: %s\n", me, dt, np_last_error());
        return 0;
    }
    if (e != NP_OK || v[0] != 100 || v[3] != 103) {
        fprintf(stderr, "rank %d: FAIL: bcast after a late rank: %s (%s), v[0] = %d\n", me,
                np_errname(e), np_last_error(), v[0]);
        return 1;
    }
    /* Everyone must still agree on the communicator afterwards. */
    int32_t one = 1, sum = 0;
    e = np_allreduce(&one, &sum, 1, NP_INT32, NP_SUM, np_comm_world());
    if (e != NP_OK || sum != nranks) {
        fprintf(stderr, "rank %d: FAIL: allreduce after a late rank: %s\n", me, np_errname(e));
        return 1;
    }
    if (me == 0)
        printf("late: rank 0 waited %.1f s for the late root and succeeded\n", dt);
    return 0;
}

static int child(const char *mode)
{
    np_err e = np_init(NULL, NULL);
    if (e != NP_OK) {
        fprintf(stderr, "np_init: %s\n", np_last_error());
        return 1;
    }
    me = np_comm_rank(np_comm_world());
    nranks = np_comm_size(np_comm_world());
    if (strncmp(mode, "kill-", 5) == 0) {
        /* The communicator is dead: skip finalize. */
        int rc = test_kill(mode + 5);
        fflush(stdout);
        _exit(rc);
    }
    if (strcmp(mode, "late") == 0) {
        int rc = test_late();
        fflush(stdout);
        if (getenv("NUMPUSH_WAIT_TIMEOUT"))
            _exit(rc); /* the communicator is out of step: skip finalize */
        np_finalize();
        return rc;
    }
    test_errors();
    int total = 0;
    if (np_allreduce(&failures, &total, 1, NP_INT32, NP_SUM, np_comm_world()) != NP_OK)
        total = 1;
    np_finalize();
    if (me == 0)
        printf("test_coll_fail errors: %d ranks: %s\n", nranks, total ? "FAIL" : "ok");
    return total ? 1 : 0;
}

static int leftover_segments(const char *job)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "numpush-%s-", job);
    DIR *d = opendir("/dev/shm");
    int found = 0;
    struct dirent *ent;
    while (d && (ent = readdir(d)) != NULL)
        if (strncmp(ent->d_name, prefix, strlen(prefix)) == 0) {
            fprintf(stderr, "FAIL: /dev/shm/%s left behind\n", ent->d_name);
            found++;
        }
    if (d)
        closedir(d);
    return found;
}

int main(int argc, char **argv)
{
    int n = 4;
    const char *mode = "errors";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            n = atoi(argv[++i]);
        else
            mode = argv[i];
    }
    if (getenv("NUMPUSH_RANK"))
        return child(mode);
    char job[32], val[32];
    snprintf(job, sizeof job, "fail%ld", (long)getpid());
    setenv("NUMPUSH_JOBID", job, 1);
    snprintf(val, sizeof val, "%d", n);
    setenv("NUMPUSH_SIZE", val, 1);
    setenv("NUMPUSH_LOCAL_SIZE", val, 1);
    if (!getenv("NUMPUSH_TIMEOUT"))
        setenv("NUMPUSH_TIMEOUT", "5", 1);
    pid_t pids[64] = {0};
    if (n < 1 || n > 64)
        n = 4;
    for (int r = 0; r < n; r++) {
        snprintf(val, sizeof val, "%d", r);
        setenv("NUMPUSH_RANK", val, 1);
        setenv("NUMPUSH_LOCAL_RANK", val, 1);
        pids[r] = fork();
        if (pids[r] == 0) {
            int rc = child(mode);
            fflush(stdout);
            _exit(rc);
        }
    }
    int victim = n - 1, bad = 0;
    struct timespec kill_at = {0, 0}, now;
    if (strncmp(mode, "kill-", 5) == 0) {
        usleep(500000);
        clock_gettime(CLOCK_MONOTONIC, &kill_at);
        kill(pids[victim], SIGKILL);
    }
    for (int r = 0; r < n; r++) {
        int status;
        waitpid(pids[r], &status, 0);
        if (strncmp(mode, "kill-", 5) == 0 && r == victim)
            continue;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "FAIL: rank %d ended with status %#x\n", r, status);
            bad++;
        }
    }
    if (kill_at.tv_sec) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        double dt = (double)(now.tv_sec - kill_at.tv_sec) + (now.tv_nsec - kill_at.tv_nsec) * 1e-9;
        printf("%s: survivors reported NP_ERR_PEER %.3f s after the kill\n", mode, dt);
        if (dt > 5.0) {
            fprintf(stderr, "FAIL: survivors took longer than NUMPUSH_TIMEOUT\n");
            bad++;
        }
    }
    bad += leftover_segments(job);
    printf("test_coll_fail %s: %d ranks: %s\n", mode, n, bad ? "FAIL" : "ok");
    return bad ? 1 : 0;
}
