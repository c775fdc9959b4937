/*
 * Bootstrap dispatch: find out which launcher started this process.
 *
 * Order, and why: numpush-run first (its variables are unambiguous and it
 * serves the richest store), then PMIx (Open MPI, Slurm), then PMI-1 over
 * PMI_FD (MPICH's hydra), then env:// (torchrun-style variables), and last a
 * singleton.  A process that sees another launcher's task count > 1 but would
 * come up as a singleton fails instead of silently running alone.
 *
 * FIRST VERSION (lead): only the numpush-run variables without a key-value
 * store, and the singleton.  The bootstrap engineer replaces this with the
 * full order, one boot_<name>.c per method.
 */
#include "boot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static npi_boot *boot_current;

static np_err boot_no_store(npi_boot *b, const char *what)
{
    return npi_error(NP_ERR_NOT_IMPLEMENTED, "bootstrap %s: %s has no key-value store yet",
                     b->method, what);
}

static np_err boot_put_none(npi_boot *b, const char *key, const void *val, size_t len)
{
    return boot_no_store(b, "put");
}

static np_err boot_get_none(npi_boot *b, const char *key, void *val, size_t cap, size_t *len)
{
    return boot_no_store(b, "get");
}

static np_err boot_fence_none(npi_boot *b)
{
    return b->size == 1 ? NP_OK : boot_no_store(b, "fence");
}

static void boot_finalize_none(npi_boot *b)
{
}

static void boot_abort_none(npi_boot *b, int code)
{
}

static const npi_boot_ops boot_ops_none = {
    .put = boot_put_none,
    .get = boot_get_none,
    .fence = boot_fence_none,
    .finalize = boot_finalize_none,
    .abort = boot_abort_none,
};

static int boot_env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

np_err npi_boot_init(npi_boot *b)
{
    memset(b, 0, sizeof *b);
    b->ops = &boot_ops_none;
    const char *node = getenv("NUMPUSH_NODE");
    if (node && *node)
        snprintf(b->node, sizeof b->node, "%s", node);
    else
        gethostname(b->node, sizeof b->node - 1);

    if (getenv("NUMPUSH_RANK") && getenv("NUMPUSH_SIZE")) {
        b->method = "env";
        b->rank = boot_env_int("NUMPUSH_RANK", 0);
        b->size = boot_env_int("NUMPUSH_SIZE", 1);
        b->local_rank = boot_env_int("NUMPUSH_LOCAL_RANK", b->rank);
        b->local_size = boot_env_int("NUMPUSH_LOCAL_SIZE", b->size);
        const char *job = getenv("NUMPUSH_JOBID");
        snprintf(b->job, sizeof b->job, "%s", job && *job ? job : "env");
    } else {
        b->method = "singleton";
        b->rank = 0;
        b->size = 1;
        b->local_rank = 0;
        b->local_size = 1;
        snprintf(b->job, sizeof b->job, "s%ld", (long)getpid());
    }
    if (b->size < 1 || b->rank < 0 || b->rank >= b->size)
        return npi_error(NP_ERR_BOOTSTRAP, "bootstrap: rank %d out of range for size %d",
                         b->rank, b->size);
    b->node_count = 1;
    b->node_of_rank = calloc((size_t)b->size, sizeof *b->node_of_rank);
    if (!b->node_of_rank)
        return npi_error(NP_ERR_NOMEM, "bootstrap: out of memory");
    boot_current = b;
    return NP_OK;
}

void npi_boot_finalize(npi_boot *b)
{
    if (b->ops && b->ops->finalize)
        b->ops->finalize(b);
    free(b->node_of_rank);
    b->node_of_rank = NULL;
    if (boot_current == b)
        boot_current = NULL;
}

npi_boot *npi_boot_self(void)
{
    return boot_current;
}
