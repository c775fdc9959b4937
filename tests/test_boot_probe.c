/*
 * A rank of a multi-process bootstrap test: run under numpush-run,
 * mpirun.openmpi (PMIx), mpirun.mpich (PMI-1) or env://.  It checks rank,
 * size and local rank against what the launcher says (or, with --expect-*
 * arguments, against what the test script says), publishes a value, fences,
 * and reads back every peer's value.  It prints one line "probe ok rank R of
 * S local L of LS node N/NC method M" and exits 0, or prints what was wrong
 * and exits 1.
 *
 * Options: --expect-size N, --expect-nodes N, --expect-method NAME,
 * --bytes N (size of the exchanged value; default 64, large values exercise
 * PMI-1 chunking), --sleep S (sleep before exiting), --exit-rank R --code C
 * (rank R exits with C right after the exchange), --kill-rank R (rank R
 * SIGKILLs itself there), --abort-rank R (calls abort), --foreign 1 (before
 * joining, rank 0 plays a process outside the job: requests with a missing
 * or wrong secret must be refused and must leave no trace in the store).
 */
#include "boot.h"
#include "kvstore.h"

#include <errno.h>
#include <signal.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int probe_fail(const npi_boot *b, const char *what, np_err e)
{
    fprintf(stderr, "probe rank %d: %s: %s (%s)\n", b ? b->rank : -1, what, np_errname(e),
            np_last_error());
    return 1;
}

static void probe_fill(unsigned char *v, size_t n, int rank)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (unsigned char)(rank * 31 + i * 7 + 1);
}

/* Requests without the job's secret: each must get an "auth" reply (or a
 * closed connection), and a later honest look must find nothing they put. */
static int probe_foreign(void)
{
    const char *addr = getenv("NUMPUSH_RUN_ADDR");
    const char *secret = getenv("NUMPUSH_SECRET");
    const char *tries[] = {"", "wrong-secret-0123456789abcdef012", NULL};
    static const int ops[] = {NPI_KV_PUT, NPI_KV_GET, NPI_KV_FENCE, NPI_KV_ABORT};
    char wrong[130];
    snprintf(wrong, sizeof wrong, "%.*sX", secret ? (int)strlen(secret) - 1 : 0,
             secret ? secret : "");
    tries[2] = wrong; /* right length, last character wrong */
    for (int t = 0; t < 3; t++) {
        for (int o = 0; o < 4; o++) {
            npi_kvc *c;
            if (npi_kvc_connect(&c, addr, tries[t], 2000)) {
                fprintf(stderr, "probe foreign: cannot connect to %s\n", addr);
                return 1;
            }
            int rc = npi_kvc_raw(c, ops[o], tries[t], "probe.foreign",
                                 ops[o] == NPI_KV_ABORT ? "0 9" : "x", ops[o] == NPI_KV_GET ? 0 : 3,
                                 2000);
            npi_kvc_close(c);
            if (rc != NPI_KV_EAUTH && rc != -ECONNRESET) {
                fprintf(stderr, "probe foreign: op %d with secret '%s' was not refused (%d)\n",
                        ops[o], tries[t], rc);
                return 1;
            }
        }
    }
    npi_kvc *c;
    size_t len;
    char buf[8];
    if (npi_kvc_connect(&c, addr, secret, 2000))
        return 1;
    int rc = npi_kvc_get(c, "probe.foreign", buf, sizeof buf, &len, 200);
    npi_kvc_close(c);
    if (rc != -ETIMEDOUT) {
        fprintf(stderr, "probe foreign: a refused put left a value (%d)\n", rc);
        return 1;
    }
    printf("probe foreign: 12 requests without the secret refused\n");
    return 0;
}

int main(int argc, char **argv)
{
    int expect_size = -1, expect_nodes = -1, exit_rank = -1, code = 0, abort_rank = -1;
    int kill_rank = -1, foreign = 0;
    double sleep_s = 0;
    size_t bytes = 64;
    const char *expect_method = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--expect-size"))
            expect_size = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--expect-nodes"))
            expect_nodes = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--expect-method"))
            expect_method = argv[i + 1];
        else if (!strcmp(argv[i], "--bytes"))
            bytes = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--sleep"))
            sleep_s = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--exit-rank"))
            exit_rank = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--code"))
            code = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--abort-rank"))
            abort_rank = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--kill-rank"))
            kill_rank = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--foreign"))
            foreign = atoi(argv[i + 1]);
    }
    if (foreign && getenv("NUMPUSH_RANK") && !strcmp(getenv("NUMPUSH_RANK"), "0") &&
        probe_foreign())
        return 1;
    npi_boot b;
    np_err e = npi_boot_init(&b);
    if (e)
        return probe_fail(NULL, "npi_boot_init", e);
    int bad = 0;
#define PROBE_CHECK(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "probe rank %d: ", b.rank);                                            \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            bad = 1;                                                                               \
        }                                                                                          \
    } while (0)
    PROBE_CHECK(expect_size < 0 || b.size == expect_size, "size %d, expected %d", b.size,
                expect_size);
    PROBE_CHECK(expect_nodes < 0 || b.node_count == expect_nodes, "%d nodes, expected %d",
                b.node_count, expect_nodes);
    PROBE_CHECK(!expect_method || !strcmp(b.method, expect_method), "method %s, expected %s",
                b.method, expect_method);
    PROBE_CHECK(b.rank >= 0 && b.rank < b.size, "rank %d out of range", b.rank);
    PROBE_CHECK(b.local_rank >= 0 && b.local_rank < b.local_size, "local rank %d of %d",
                b.local_rank, b.local_size);
    PROBE_CHECK(strlen(b.job) > 0 && strlen(b.job) <= 12 && !strchr(b.job, '-'),
                "job id '%s' unusable in segment names", b.job);
    PROBE_CHECK(npi_boot_method_name() && !strcmp(npi_boot_method_name(), b.method),
                "npi_boot_method_name says %s", npi_boot_method_name());
    /* Launchers that state the rank directly must agree with the bootstrap. */
    const char *vars[] = {"NUMPUSH_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK"};
    for (int i = 0; i < 3; i++)
        if (getenv(vars[i]))
            PROBE_CHECK(atoi(getenv(vars[i])) == b.rank, "%s=%s but rank %d", vars[i],
                        getenv(vars[i]), b.rank);
    const char *lvars[] = {"NUMPUSH_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK"};
    for (int i = 0; i < 2; i++)
        if (getenv(lvars[i]))
            PROBE_CHECK(atoi(getenv(lvars[i])) == b.local_rank, "%s=%s but local rank %d", lvars[i],
                        getenv(lvars[i]), b.local_rank);
    /* The node layout must be consistent: count the ranks on my node. */
    int same = 0, lower = 0;
    for (int r = 0; r < b.size; r++)
        if (b.node_of_rank[r] == b.node_id) {
            same++;
            lower += r < b.rank;
        }
    PROBE_CHECK(same == b.local_size && lower == b.local_rank,
                "node_of_rank gives local %d of %d, boot says %d of %d", lower, same, b.local_rank,
                b.local_size);

    unsigned char *mine = malloc(bytes + 1), *got = malloc(bytes + 1);
    char key[64];
    probe_fill(mine, bytes, b.rank);
    snprintf(key, sizeof key, "probe.val.%d", b.rank);
    if ((e = b.ops->put(&b, key, mine, bytes)))
        return probe_fail(&b, "put", e);
    if ((e = b.ops->fence(&b)))
        return probe_fail(&b, "fence", e);
    for (int r = 0; r < b.size; r++) {
        size_t len = 0;
        snprintf(key, sizeof key, "probe.val.%d", r);
        if ((e = b.ops->get(&b, key, got, bytes + 1, &len)))
            return probe_fail(&b, "get", e);
        probe_fill(mine, bytes, r);
        PROBE_CHECK(len == bytes && !memcmp(got, mine, bytes), "value of rank %d is wrong", r);
    }
    if (abort_rank == b.rank) {
        b.ops->abort(&b, code ? code : 1);
        sleep(30);
    }
    if (exit_rank == b.rank)
        _exit(code);
    if (kill_rank == b.rank)
        raise(SIGKILL);
    /* A second fence so that no rank's store goes away under a slower one. */
    if ((e = b.ops->fence(&b)))
        return probe_fail(&b, "second fence", e);
    if (!bad)
        printf("probe ok rank %d of %d local %d of %d node %d/%d method %s job %s\n", b.rank,
               b.size, b.local_rank, b.local_size, b.node_id, b.node_count, b.method, b.job);
    fflush(stdout);
    if (sleep_s > 0)
        usleep((useconds_t)(sleep_s * 1e6));
    npi_boot_finalize(&b);
    free(mine);
    free(got);
    return bad;
}
