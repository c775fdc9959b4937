/*
 * Failures between nodes, driven by tests/coll_netns.sh, which starts six
 * ranks on three network-namespace hosts (env://) and either kills one
 * (mode "kill": rank 4, the third host's leader, dies by SIGKILL after a
 * few allreduces) or takes the third host's link down (mode "link").
 * Every survivor loops on a 1 MiB allreduce and must get NP_ERR_PEER, not
 * hang and not succeed forever, within a bound that follows from
 * NUMPUSH_TIMEOUT.  Modes "mismatch" and "mismatch-node": ranks disagree
 * on an allreduce's count and all must fail with NP_ERR_MISMATCH at once.
 * Mode "mismatch-null": rank 3 (second host, not its leader) passes a NULL
 * sendbuf to an allreduce; it must get NP_ERR_NULL and every other rank
 * NP_ERR_MISMATCH at once.  Mode "mismatch-root": rank 3 passes root 99 to
 * a gather whose root is 0 elsewhere, then every rank calls a barrier;
 * every rank must have an error from one of the two (the third host's
 * ranks, whose part of the gather is done before the alarm comes, from the
 * barrier), rank 3 NP_ERR_ROOT, at once.  Mode "kill-gather": as "kill",
 * with a 64 KiB gather to rank 0 instead of the allreduce; every survivor
 * of every host must get an error within the bound.  Mode "kill-quiet":
 * rank 2 (the second host's leader) dies before the first allreduce and
 * the third host's ranks join it 12 s late; rank 0, whose ring neighbours
 * are the dead rank and the sleeping rank 4, must fail at once all the
 * same (a participant is gone), not wait for rank 4.  After each mismatch
 * mode an agreed allreduce must give every rank the right sum at once
 * (the communicator stays usable); after a death or a lost link the
 * communicator is broken, every later call must fail at once, and
 * np_finalize must return within a few seconds (the rank that holds the
 * env:// store waits for ranks behind a downed link no longer than
 * NUMPUSH_TIMEOUT).  Mode "late": the third host's ranks are alive but
 * join the second of three rounds 2.5 NUMPUSH_TIMEOUTs late (as after a
 * long computation or a checkpoint); a round is a 64 MiB bcast from rank 0
 * (more than the socket buffers hold, so the sender waits on a full
 * window) and a 1 MiB allreduce.  Every rank must wait for them and get
 * the right values, as within a node, not NP_ERR_PEER.
 * Exit 0 when that holds for this rank.
 */
#include <numpush/numpush.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A disagreement or a bad argument leaves the communicator usable: an
 * agreed allreduce after it must give every rank the right sum at once. */
static bool agreed_allreduce(np_comm *w, int me, const int64_t *a, int64_t *b)
{
    double t = np_wtime();
    np_err e = np_allreduce(a, b, 4, NP_INT64, NP_SUM, w);
    t = np_wtime() - t;
    bool ok = e == NP_OK && t < 3.0;
    for (int64_t i = 0; ok && i < 4; i++)
        ok = b[i] == 15 + 6 * i; /* a[i] = rank + i on ranks 0..5 */
    printf("rank %d: the agreed call after it: %s after %.2f s%s%s\n", me, np_errname(e), t,
           e == NP_OK ? "" : ": ", e == NP_OK ? "" : np_last_error());
    fflush(stdout);
    return ok;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "kill";
    np_err e = np_init(&argc, &argv);
    if (e != NP_OK) {
        fprintf(stderr, "np_init: %s: %s\n", np_errname(e), np_last_error());
        return 2;
    }
    np_comm *w = np_comm_world();
    int me = np_comm_rank(w);
    size_t count = (1u << 20) / 8;
    int64_t *a = malloc(count * 8), *b = malloc(count * 8);
    for (size_t i = 0; i < count; i++)
        a[i] = me + (int64_t)i;
    if (strcmp(mode, "mismatch-null") == 0 || strcmp(mode, "mismatch-root") == 0) {
        bool bad = me == 3, rooted = strcmp(mode, "mismatch-root") == 0;
        double t = np_wtime();
        np_err e2 = NP_OK;
        if (rooted) {
            int64_t *all = me == 0 ? malloc(6 * 4 * 8) : NULL;
            e = np_gather(a, all, 4, NP_INT64, bad ? 99 : 0, w);
            printf("rank %d: gather: %s: %s\n", me, np_errname(e), np_last_error());
            e2 = np_barrier(w);
            printf("rank %d: barrier: %s: %s\n", me, np_errname(e2), np_last_error());
            free(all);
        } else {
            e = np_allreduce(bad ? NULL : a, b, 4, NP_INT64, NP_SUM, w);
            printf("rank %d: allreduce: %s: %s\n", me, np_errname(e), np_last_error());
        }
        t = np_wtime() - t;
        printf("rank %d: %.2f s\n", me, t);
        fflush(stdout);
        bool again_ok = agreed_allreduce(w, me, a, b);
        sleep(1);
        np_err want = bad ? (rooted ? NP_ERR_ROOT : NP_ERR_NULL) : NP_ERR_MISMATCH;
        bool ok = e == want || (!bad && e == NP_OK && e2 == NP_ERR_MISMATCH);
        _exit(ok && t < 3.0 && again_ok ? 0 : 1);
    }
    if (strncmp(mode, "mismatch", 8) == 0) {
        /* "mismatch": rank 5 alone passes another count (its node finds
         * out in shared memory); "mismatch-node": both ranks of the second
         * host do (only the envelopes between hosts can tell).  Every rank
         * must get NP_ERR_MISMATCH well before NUMPUSH_TIMEOUT (10 s). */
        bool odd = strcmp(mode, "mismatch") == 0 ? me == 5 : me == 2 || me == 3;
        double t = np_wtime();
        e = np_allreduce(a, b, odd ? 5 : 4, NP_INT64, NP_SUM, w);
        t = np_wtime() - t;
        printf("rank %d: %s after %.2f s: %s\n", me, np_errname(e), t, np_last_error());
        fflush(stdout);
        bool again_ok = agreed_allreduce(w, me, a, b);
        /* Stay a moment: a rank that left at once would look dead to a
         * peer that has not yet read its alarm. */
        sleep(1);
        _exit(e == NP_ERR_MISMATCH && t < 3.0 && again_ok ? 0 : 1);
    }
    if (strcmp(mode, "late") == 0) {
        const char *tmo = getenv("NUMPUSH_TIMEOUT");
        double late = 2.5 * (tmo ? atof(tmo) : 5.0);
        bool ok = true;
        size_t big = (size_t)64 << 20;
        uint8_t *m = malloc(big);
        for (int it = 0; it < 3; it++) {
            if (it == 1 && me >= 4)
                usleep((useconds_t)(late * 1e6));
            double t = np_wtime();
            for (size_t i = 0; i < big; i++)
                m[i] = me == 0 ? (uint8_t)(i * 31 + (size_t)it) : 0;
            e = np_bcast(m, big, NP_UINT8, 0, w);
            bool got = e == NP_OK;
            for (size_t i = 0; got && i < big; i++)
                got = m[i] == (uint8_t)(i * 31 + (size_t)it);
            printf("rank %d: bcast %d: %s, %s\n", me, it, np_errname(e),
                   got ? "right bytes" : "WRONG");
            ok = ok && got;
            e = np_allreduce(a, b, count, NP_INT64, NP_SUM, w);
            t = np_wtime() - t;
            /* a[i] = rank + i on ranks 0..5 */
            bool right = e == NP_OK;
            for (size_t i = 0; right && i < count; i++)
                right = b[i] == 15 + 6 * (int64_t)i;
            printf("rank %d: allreduce %d: %s after %.2f s%s%s\n", me, it, np_errname(e), t,
                   right ? ", right sums" : ", WRONG", e == NP_OK ? "" : np_last_error());
            fflush(stdout);
            ok = ok && right;
        }
        free(m);
        _exit(ok && np_finalize() == NP_OK ? 0 : 1);
    }
    bool gather = strcmp(mode, "kill-gather") == 0;
    int64_t *all = gather && me == 0 ? malloc(6 * 65536) : NULL;
    /* kill-quiet: the second host's leader dies before the first call and
     * the third host sleeps through it, so rank 0 waits in the ring for
     * rank 4, alive and never heard from, while a participant is gone. */
    bool quiet = strcmp(mode, "kill-quiet") == 0;
    if (quiet && me == 2)
        raise(SIGKILL);
    if (quiet && me >= 4)
        sleep(12);
    double last_ok = np_wtime(), t0 = last_ok;
    for (int it = 0;; it++) {
        if ((strcmp(mode, "kill") == 0 || gather) && me == 4 && it == 20)
            raise(SIGKILL);
        if (gather)
            e = np_gather(a, all, 65536 / 8, NP_INT64, 0, w);
        else
            e = np_allreduce(a, b, count, NP_INT64, NP_SUM, w);
        double now = np_wtime();
        if (e != NP_OK) {
            double took = now - last_ok;
            printf("rank %d: %s after %d calls, %.2f s after the last success: %s\n", me,
                   np_errname(e), it, took, np_last_error());
            fflush(stdout);
            /* The communicator is broken now: the next call fails at once,
             * on every survivor, whether or not its own part went wrong. */
            double t2 = np_wtime();
            np_err again = gather ? np_gather(a, all, 65536 / 8, NP_INT64, 0, w)
                                  : np_allreduce(a, b, count, NP_INT64, NP_SUM, w);
            t2 = np_wtime() - t2;
            printf("rank %d: the call after it: %s after %.2f s: %s\n", me, np_errname(again), t2,
                   np_last_error());
            fflush(stdout);
            /* Finalizing after the failure ends too, without waiting for
             * the dead rank. */
            double t3 = np_wtime();
            np_err fin = np_finalize();
            t3 = np_wtime() - t3;
            printf("rank %d: np_finalize: %s after %.2f s\n", me, np_errname(fin), t3);
            fflush(stdout);
            /* NUMPUSH_TIMEOUT is 3 s; the error may need two timeouts to
             * reach ranks behind a leader that waited itself. */
            _exit(e == NP_ERR_PEER && took < 10.0 && again == e && t2 < 0.5 && t3 < 5.0 ? 0 : 1);
        }
        last_ok = now;
        if (now - t0 > 40.0) {
            printf("rank %d: no error after %d calls and 40 s\n", me, it);
            fflush(stdout);
            _exit(1);
        }
        if (strcmp(mode, "link") == 0)
            usleep(20000);
    }
}
