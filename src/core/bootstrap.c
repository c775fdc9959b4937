/*
 * Bootstrap dispatch: find out which launcher started this process, then lay
 * the job out over nodes the same way whatever the method.
 *
 * Order, and why: numpush-run first (its variables are unambiguous and it
 * serves the richest store), then PMIx (Open MPI, Slurm), then PMI-1 over
 * PMI_FD (MPICH's hydra), then env:// (torchrun-style variables), and last a
 * singleton.  NUMPUSH_BOOT=run|pmix|pmi1|env|singleton forces one.  A process
 * that sees another launcher's task count > 1 but would come up as a
 * singleton fails instead of silently running alone.
 *
 * Node layout: every rank publishes its node name (NUMPUSH_NODE, else the
 * hostname); nodes are numbered in order of the lowest rank on them, and
 * local rank and size come from the same names, so shared memory and fabric
 * agree on who is "local" whichever launcher started the job.
 */
#include "config.h"

#include "boot_methods.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static npi_boot *boot_current;
static const char *boot_last_method;

static const npi_boot_method *const boot_methods[] = {
    &npi_boot_method_run, &npi_boot_method_pmix,   &npi_boot_method_pmi1,
    &npi_boot_method_env, &npi_boot_method_single,
};
#define BOOT_NMETHODS (sizeof boot_methods / sizeof boot_methods[0])

/* Variables by which other launchers announce how many tasks they started. */
static const char *const boot_foreign_sizes[] = {
    "OMPI_COMM_WORLD_SIZE", "PMI_SIZE",   "PMIX_SIZE",    "SLURM_NTASKS",
    "MPI_LOCALNRANKS",      "WORLD_SIZE", "NUMPUSH_SIZE",
};

int npi_boot_timeout_ms(void)
{
    const char *v = getenv("NUMPUSH_BOOT_TIMEOUT");
    double s = v && *v ? atof(v) : 60.0;
    if (!(s > 0))
        s = 60.0;
    return s > 2e6 ? 2000000000 : (int)(s * 1000);
}

bool npi_boot_env_int(const char *name, int *out)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return false;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < -1 || x > 1 << 30)
        return false;
    *out = (int)x;
    return true;
}

void npi_boot_job_from(char *job, size_t n, char prefix, const char *unique)
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    uint64_t h = 1469598103934665603ull;
    for (const char *p = unique; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    size_t len = n < 11 ? n - 1 : 10;
    job[0] = prefix;
    for (size_t i = 1; i < len; i++, h /= 36)
        job[i] = digits[h % 36];
    job[len] = '\0';
}

/* Whether the environment says this process is one of several tasks; names
 * the variable in why. */
static bool boot_foreign_many(char *why, size_t n)
{
    for (size_t i = 0; i < sizeof boot_foreign_sizes / sizeof boot_foreign_sizes[0]; i++) {
        int v;
        if (npi_boot_env_int(boot_foreign_sizes[i], &v) && v > 1) {
            snprintf(why, n, "%s=%d", boot_foreign_sizes[i], v);
            return true;
        }
    }
    if (getenv("PMIX_RANK") || getenv("PMI_FD") || getenv("PMIX_NAMESPACE")) {
        snprintf(why, n, "%s is set",
                 getenv("PMIX_RANK") ? "PMIX_RANK"
                 : getenv("PMI_FD")  ? "PMI_FD"
                                     : "PMIX_NAMESPACE");
        return true;
    }
    return false;
}

static const npi_boot_method *boot_pick(char *why, size_t n, np_err *err)
{
    const char *force = getenv("NUMPUSH_BOOT");
    *err = NP_OK;
    for (size_t i = 0; i < BOOT_NMETHODS; i++) {
        const npi_boot_method *m = boot_methods[i];
        if (force && *force) {
            if (strcmp(force, m->name) && !(!strcmp(force, "run") && m == &npi_boot_method_run))
                continue;
            m->detect(why, n);
            return m;
        }
        if (m == &npi_boot_method_single)
            break;
        if (m->detect(why, n))
            return m;
    }
    if (force && *force) {
        *err = npi_error(NP_ERR_CONFIG,
                         "bootstrap: NUMPUSH_BOOT=%s is not one of numpush-run, pmix, pmi1, env, "
                         "singleton",
                         force);
        return NULL;
    }
    char seen[128];
    if (boot_foreign_many(seen, sizeof seen)) {
        *err = npi_error(NP_ERR_BOOTSTRAP,
                         "bootstrap: %s says this process is one of several tasks, but no "
                         "bootstrap method recognised its launcher (numpush-run, PMIx%s, PMI-1 "
                         "over PMI_FD, env:// with NUMPUSH_ROOT); refusing to run as a singleton",
                         seen,
#ifdef NPI_HAVE_PMIX
                         ""
#else
                         ": not built in"
#endif
        );
        return NULL;
    }
    npi_boot_method_single.detect(why, n);
    return &npi_boot_method_single;
}

/* Exchange node names and derive node ids, node_count, local rank and size. */
static np_err boot_layout(npi_boot *b)
{
    np_err e = NP_OK;
    char(*names)[NPI_BOOT_NODE_MAX] = NULL;
    b->node_of_rank = calloc((size_t)b->size, sizeof *b->node_of_rank);
    if (!b->node_of_rank)
        return npi_error(NP_ERR_NOMEM, "bootstrap: out of memory for %d ranks", b->size);
    if (b->size == 1 || !b->has_store) {
        /* Without a store (a bare NUMPUSH_RANK/NUMPUSH_SIZE environment)
         * nothing can be learnt about the others: one node, as before. */
        b->node_id = 0;
        b->node_count = 1;
        return NP_OK;
    }
    names = calloc((size_t)b->size, sizeof *names);
    if (!names)
        return npi_error(NP_ERR_NOMEM, "bootstrap: out of memory for %d ranks", b->size);
    char key[64];
    snprintf(key, sizeof key, "npi.node.%d", b->rank);
    if ((e = b->ops->put(b, key, b->node, strlen(b->node) + 1)) || (e = b->ops->fence(b)))
        goto out;
    for (int r = 0; r < b->size; r++) {
        size_t len = 0;
        if (r == b->rank) {
            memcpy(names[r], b->node, sizeof names[r]);
            continue;
        }
        snprintf(key, sizeof key, "npi.node.%d", r);
        if ((e = b->ops->get(b, key, names[r], sizeof names[r] - 1, &len)))
            goto out;
        names[r][sizeof names[r] - 1] = '\0';
    }
    /* Nodes in order of their lowest rank: rank 0's node is node 0 everywhere. */
    int count = 0, local_rank = 0, local_size = 0;
    for (int r = 0; r < b->size; r++) {
        int first = r;
        for (int q = 0; q < r; q++)
            if (!strcmp(names[q], names[r])) {
                first = q;
                break;
            }
        b->node_of_rank[r] = first == r ? count++ : b->node_of_rank[first];
        if (!strcmp(names[r], b->node)) {
            local_size++;
            if (r < b->rank)
                local_rank++;
        }
    }
    b->node_count = count;
    b->node_id = b->node_of_rank[b->rank];
    if ((b->local_size && b->local_size != local_size) || b->local_rank != local_rank) {
        if (getenv("NUMPUSH_DEBUG") && atoi(getenv("NUMPUSH_DEBUG")) > 0)
            fprintf(stderr,
                    "numpush: rank %d: launcher said local rank %d of %d, node names say %d of "
                    "%d; using the names\n",
                    b->rank, b->local_rank, b->local_size, local_rank, local_size);
    }
    b->local_rank = local_rank;
    b->local_size = local_size;
out:
    free(names);
    return e;
}

np_err npi_boot_init(npi_boot *b)
{
    memset(b, 0, sizeof *b);
    const char *node = getenv("NUMPUSH_NODE");
    if (node && *node)
        snprintf(b->node, sizeof b->node, "%s", node);
    else if (gethostname(b->node, sizeof b->node - 1))
        snprintf(b->node, sizeof b->node, "localhost");

    char why[256] = "";
    np_err e;
    const npi_boot_method *m = boot_pick(why, sizeof why, &e);
    if (!m)
        return e;
    b->method = m->name;
    b->local_rank = -1;
    if ((e = m->init(b)))
        goto fail_method;
    if (b->size < 1 || b->rank < 0 || b->rank >= b->size) {
        e = npi_error(NP_ERR_BOOTSTRAP, "bootstrap %s: rank %d out of range for size %d", b->method,
                      b->rank, b->size);
        goto fail;
    }
    if (b->local_rank < 0) {
        b->local_rank = b->rank;
        b->local_size = b->size;
    }
    /* Segment names are "/numpush-<job>-...": a job id given from outside
     * (NUMPUSH_JOBID) that is long or holds other characters is hashed into
     * one that fits. */
    bool job_ok = b->job[0] && strlen(b->job) <= 12;
    for (const char *c = b->job; *c && job_ok; c++)
        job_ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9');
    if (!job_ok) {
        char given[NPI_BOOT_JOB_MAX];
        memcpy(given, b->job, sizeof given);
        npi_boot_job_from(b->job, sizeof b->job, 'u', given);
    }
    npi_error_set_rank(b->rank);
    if ((e = boot_layout(b)))
        goto fail;
    if (getenv("NUMPUSH_DEBUG") && atoi(getenv("NUMPUSH_DEBUG")) > 0)
        fprintf(stderr,
                "numpush: rank %d of %d: bootstrap %s (%s), job %s, node %s (%d of %d), local "
                "rank %d of %d\n",
                b->rank, b->size, b->method, why, b->job, b->node, b->node_id, b->node_count,
                b->local_rank, b->local_size);
    boot_current = b;
    boot_last_method = b->method;
    return NP_OK;
fail:
    if (b->ops && b->ops->finalize)
        b->ops->finalize(b);
fail_method:
    free(b->node_of_rank);
    b->node_of_rank = NULL;
    b->ops = NULL;
    return e;
}

void npi_boot_finalize(npi_boot *b)
{
    if (b->ops && b->ops->finalize)
        b->ops->finalize(b);
    b->ops = NULL;
    free(b->node_of_rank);
    b->node_of_rank = NULL;
    if (boot_current == b)
        boot_current = NULL;
}

npi_boot *npi_boot_self(void)
{
    return boot_current;
}

const char *npi_boot_method_name(void)
{
    if (boot_current)
        return boot_current->method;
    return boot_last_method;
}

/* numpush-info's "Bootstrap:" section: what this process would use and why,
 * without connecting to anything. */
void npi_info_bootstrap(FILE *out)
{
    char why[256] = "";
    np_err e;
    const char *used = npi_boot_method_name();
    if (used)
        fprintf(out, "  in use     %s\n", used);
    const npi_boot_method *m = boot_pick(why, sizeof why, &e);
    if (m)
        fprintf(out, "  would use  %s (%s)\n", m->name, why);
    else
        fprintf(out, "  would fail %s\n", np_last_error());
    fprintf(out,
            "  order      numpush-run, pmix%s, pmi1, env, singleton (NUMPUSH_BOOT forces one)\n",
#ifdef NPI_HAVE_PMIX
            ""
#else
            " (not built in)"
#endif
    );
}
