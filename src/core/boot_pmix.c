/*
 * PMIx (Open MPI's mpirun, Slurm's srun --mpi=pmix): rank, size, local rank
 * and size come from PMIx_Get of the job's reserved keys; put/fence map to
 * PMIx_Put + PMIx_Commit and a data-collecting PMIx_Fence.
 *
 * PMIx keys belong to the rank that put them, while npi_boot keys are global.
 * get() therefore looks first at the rank that a trailing ".<rank>" in the key
 * names (the convention of every per-rank key in numpush, e.g.
 * "npi.node.3"), then at every rank, polling until NUMPUSH_BOOT_TIMEOUT since
 * a key may be put after our fence.
 *
 * Without libpmix at build time this file still defines the method, which
 * then never detects its launcher (bootstrap.c's foreign-launcher check says
 * why a job under mpirun fails).
 */
#include "config.h"

#include "boot_methods.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef NPI_HAVE_PMIX
#include <pmix.h>

typedef struct pmix_impl {
    pmix_proc_t me;
} pmix_impl;

/* Read a number of whatever integer type the server chose. */
static bool pmix_number(const pmix_value_t *v, long *out)
{
    switch (v->type) {
    case PMIX_UINT32:
        *out = (long)v->data.uint32;
        return true;
    case PMIX_UINT16:
        *out = (long)v->data.uint16;
        return true;
    case PMIX_INT:
        *out = (long)v->data.integer;
        return true;
    case PMIX_UINT:
        *out = (long)v->data.uint;
        return true;
    case PMIX_INT32:
        *out = (long)v->data.int32;
        return true;
    case PMIX_UINT64:
        *out = (long)v->data.uint64;
        return true;
    case PMIX_SIZE:
        *out = (long)v->data.size;
        return true;
    case PMIX_PROC_RANK:
        *out = (long)v->data.rank;
        return true;
    default:
        return false;
    }
}

static bool pmix_get_long(const pmix_proc_t *who, const char *key, long *out)
{
    pmix_value_t *v = NULL;
    if (PMIx_Get(who, key, NULL, 0, &v) != PMIX_SUCCESS || !v)
        return false;
    bool ok = pmix_number(v, out);
    PMIX_VALUE_RELEASE(v);
    return ok;
}

/* PMIx keys are at most PMIX_MAX_KEYLEN; longer ones travel as a hash. */
static const char *pmix_key(const char *key, char *buf, size_t n)
{
    if (strlen(key) < PMIX_MAX_KEYLEN)
        return key;
    uint64_t h = 1469598103934665603ull;
    for (const char *c = key; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    snprintf(buf, n, "npi.h%016llx", (unsigned long long)h);
    return buf;
}

static np_err pmix_put(npi_boot *b, const char *key, const void *val, size_t len)
{
    char kb[64];
    pmix_value_t v;
    PMIX_VALUE_CONSTRUCT(&v);
    v.type = PMIX_BYTE_OBJECT;
    v.data.bo.bytes = (char *)val;
    v.data.bo.size = len;
    pmix_status_t rc = PMIx_Put(PMIX_GLOBAL, pmix_key(key, kb, sizeof kb), &v);
    if (rc == PMIX_SUCCESS)
        rc = PMIx_Commit();
    /* The bytes are ours; do not let a destructor free them. */
    if (rc != PMIX_SUCCESS)
        return npi_error(NP_ERR_BOOTSTRAP, "bootstrap pmix: put of %s failed: %s", key,
                         PMIx_Error_string(rc));
    return NP_OK;
}

/* Try one rank; true when it had the key (copied into val). */
static bool pmix_try(npi_boot *b, int rank, const char *key, void *val, size_t cap, size_t *len)
{
    pmix_impl *p = b->impl;
    pmix_proc_t who;
    PMIX_PROC_LOAD(&who, p->me.nspace, (pmix_rank_t)rank);
    pmix_info_t info;
    bool yes = true;
    /* Optional: answer from what the fence collected, without asking the
     * server to wait for the key. */
    PMIX_INFO_LOAD(&info, PMIX_OPTIONAL, &yes, PMIX_BOOL);
    pmix_value_t *v = NULL;
    pmix_status_t rc = PMIx_Get(&who, key, &info, 1, &v);
    PMIX_INFO_DESTRUCT(&info);
    if (rc != PMIX_SUCCESS || !v)
        return false;
    bool ok = v->type == PMIX_BYTE_OBJECT;
    if (ok) {
        memcpy(val, v->data.bo.bytes, v->data.bo.size < cap ? v->data.bo.size : cap);
        *len = v->data.bo.size;
    }
    PMIX_VALUE_RELEASE(v);
    return ok;
}

static np_err pmix_get(npi_boot *b, const char *key, void *val, size_t cap, size_t *len)
{
    char kb[64];
    const char *k = pmix_key(key, kb, sizeof kb);
    /* The rank named by a trailing ".<digits>" is the likely owner. */
    int hint = -1;
    size_t kl = strlen(key), d = kl;
    while (d > 0 && isdigit((unsigned char)key[d - 1]))
        d--;
    if (d < kl && d > 0 && key[d - 1] == '.' && kl - d < 9)
        hint = atoi(key + d);
    uint64_t deadline = npi_now_ns() + (uint64_t)npi_boot_timeout_ms() * 1000000ull;
    size_t full = 0;
    unsigned delay_us = 200;
    for (;;) {
        bool found = hint >= 0 && hint < b->size && pmix_try(b, hint, k, val, cap, &full);
        for (int r = 0; r < b->size && !found; r++)
            if (r != hint)
                found = pmix_try(b, r, k, val, cap, &full);
        if (found)
            break;
        if (npi_now_ns() >= deadline)
            return npi_error(NP_ERR_TIMEOUT,
                             "bootstrap pmix: get of %s timed out after %d ms "
                             "(NUMPUSH_BOOT_TIMEOUT)",
                             key, npi_boot_timeout_ms());
        usleep(delay_us);
        if (delay_us < 20000)
            delay_us *= 2;
    }
    if (len)
        *len = full;
    if (full > cap)
        return npi_error(NP_ERR_TRUNCATE,
                         "bootstrap pmix: get of %s: value has %zu bytes, room "
                         "for %zu",
                         key, full, cap);
    return NP_OK;
}

static np_err pmix_fence(npi_boot *b)
{
    pmix_info_t info;
    bool yes = true;
    PMIX_INFO_LOAD(&info, PMIX_COLLECT_DATA, &yes, PMIX_BOOL);
    pmix_status_t rc = PMIx_Fence(NULL, 0, &info, 1);
    PMIX_INFO_DESTRUCT(&info);
    if (rc != PMIX_SUCCESS)
        return npi_error(NP_ERR_PEER, "bootstrap pmix: fence failed: %s", PMIx_Error_string(rc));
    return NP_OK;
}

static void pmix_finalize(npi_boot *b)
{
    if (!b->impl)
        return;
    PMIx_Finalize(NULL, 0);
    free(b->impl);
    b->impl = NULL;
}

static void pmix_abort(npi_boot *b, int code)
{
    PMIx_Abort(code, "numpush: np_abort", NULL, 0);
}

static const npi_boot_ops pmix_ops = {
    .put = pmix_put,
    .get = pmix_get,
    .fence = pmix_fence,
    .finalize = pmix_finalize,
    .abort = pmix_abort,
};

static bool pmix_detect(char *why, size_t n)
{
    /* Only a PMIx server's own variables: PMIx_Init without a server would
     * spend time looking for one, or start as a singleton of its own. */
    static const char *const vars[] = {"PMIX_NAMESPACE",   "PMIX_RANK",        "PMIX_SERVER_URI41",
                                       "PMIX_SERVER_URI4", "PMIX_SERVER_URI3", "PMIX_SERVER_URI21",
                                       "PMIX_SERVER_URI2"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        if (getenv(vars[i])) {
            snprintf(why, n, "%s is set", vars[i]);
            return true;
        }
    }
    return false;
}

static np_err pmix_init(npi_boot *b)
{
    pmix_impl *p = calloc(1, sizeof *p);
    if (!p)
        return npi_error(NP_ERR_NOMEM, "bootstrap pmix: out of memory");
    pmix_status_t rc = PMIx_Init(&p->me, NULL, 0);
    if (rc != PMIX_SUCCESS) {
        free(p);
        return npi_error(NP_ERR_BOOTSTRAP, "bootstrap pmix: PMIx_Init failed: %s",
                         PMIx_Error_string(rc));
    }
    pmix_proc_t wild;
    PMIX_PROC_LOAD(&wild, p->me.nspace, PMIX_RANK_WILDCARD);
    long size = 0, lrank = -1, lsize = 0;
    if (!pmix_get_long(&wild, PMIX_JOB_SIZE, &size) || size < 1) {
        PMIx_Finalize(NULL, 0);
        free(p);
        return npi_error(NP_ERR_BOOTSTRAP, "bootstrap pmix: the server gave no PMIX_JOB_SIZE");
    }
    b->rank = (int)p->me.rank;
    b->size = (int)size;
    if (pmix_get_long(&p->me, PMIX_LOCAL_RANK, &lrank) &&
        pmix_get_long(&wild, PMIX_LOCAL_SIZE, &lsize)) {
        b->local_rank = (int)lrank;
        b->local_size = (int)lsize;
    }
    /* NUMPUSH_NODE still wins; otherwise the name the resource manager uses. */
    pmix_value_t *v = NULL;
    if (!getenv("NUMPUSH_NODE") && PMIx_Get(&p->me, PMIX_HOSTNAME, NULL, 0, &v) == PMIX_SUCCESS &&
        v) {
        if (v->type == PMIX_STRING && v->data.string)
            snprintf(b->node, sizeof b->node, "%s", v->data.string);
        PMIX_VALUE_RELEASE(v);
    }
    npi_boot_job_from(b->job, sizeof b->job, 'x', p->me.nspace);
    b->impl = p;
    b->ops = &pmix_ops;
    b->has_store = true;
    return NP_OK;
}

#else /* !NPI_HAVE_PMIX */

static bool pmix_detect(char *why, size_t n)
{
    return false;
}

static np_err pmix_init(npi_boot *b)
{
    return npi_error(NP_ERR_BOOTSTRAP, "bootstrap pmix: this build has no PMIx (libpmix-dev)");
}

#endif

const npi_boot_method npi_boot_method_pmix = {
    .name = "pmix",
    .detect = pmix_detect,
    .init = pmix_init,
};
