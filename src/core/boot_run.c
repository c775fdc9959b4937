/*
 * Bootstrap under numpush-run: the launcher serves a key-value store and
 * hands every rank its address (NUMPUSH_RUN_ADDR), the job secret
 * (NUMPUSH_SECRET), rank, size, local rank and size and the job id.  The
 * put/get/fence helpers here also serve env://, which speaks the same store.
 */
#include "config.h"

#include "boot_methods.h"
#include "kvstore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

np_err npi_boot_kv_error(npi_boot *b, int rc, const char *what, const char *key)
{
    const char *k = key && *key ? key : "";
    switch (rc) {
    case -ETIMEDOUT:
        return npi_error(NP_ERR_TIMEOUT,
                         "bootstrap %s: %s%s%s timed out after %d ms (NUMPUSH_BOOT_TIMEOUT): a "
                         "rank is missing or late",
                         b->method, what, *k ? " of " : "", k, npi_boot_timeout_ms());
    case -EACCES:
        return npi_error(NP_ERR_BOOTSTRAP,
                         "bootstrap %s: the store refused %s: wrong NUMPUSH_SECRET", b->method,
                         what);
    case -ECONNRESET:
        return npi_error(NP_ERR_PEER, "bootstrap %s: %s%s%s: the store went away", b->method, what,
                         *k ? " of " : "", k);
    case -ENOMEM:
        return npi_error(NP_ERR_NOMEM, "bootstrap %s: %s: out of memory", b->method, what);
    default:
        return npi_error(NP_ERR_BOOTSTRAP, "bootstrap %s: %s%s%s failed: %s", b->method, what,
                         *k ? " of " : "", k, strerror(rc < 0 ? -rc : rc));
    }
}

np_err npi_boot_kv_put(npi_boot *b, const char *key, const void *val, size_t len)
{
    npi_boot_kv *kv = b->impl;
    int rc = npi_kvc_put(kv->client, key, val, len);
    return rc ? npi_boot_kv_error(b, rc, "put", key) : NP_OK;
}

np_err npi_boot_kv_get(npi_boot *b, const char *key, void *val, size_t cap, size_t *len)
{
    npi_boot_kv *kv = b->impl;
    size_t full = 0;
    int rc = npi_kvc_get(kv->client, key, val, cap, &full, npi_boot_timeout_ms());
    if (rc)
        return npi_boot_kv_error(b, rc, "get", key);
    if (len)
        *len = full;
    if (full > cap)
        return npi_error(NP_ERR_TRUNCATE,
                         "bootstrap %s: get of %s: value has %zu bytes, room for %zu", b->method,
                         key, full, cap);
    return NP_OK;
}

np_err npi_boot_kv_fence(npi_boot *b)
{
    npi_boot_kv *kv = b->impl;
    int rc = npi_kvc_fence(kv->client, npi_boot_timeout_ms());
    return rc ? npi_boot_kv_error(b, rc, "fence", NULL) : NP_OK;
}

static void run_finalize(npi_boot *b)
{
    npi_boot_kv *kv = b->impl;
    if (!kv)
        return;
    npi_kvc_close(kv->client);
    free(kv);
    b->impl = NULL;
}

static void run_abort(npi_boot *b, int code)
{
    npi_boot_kv *kv = b->impl;
    if (kv)
        npi_kvc_abort(kv->client, b->rank, code);
}

static const npi_boot_ops run_ops = {
    .put = npi_boot_kv_put,
    .get = npi_boot_kv_get,
    .fence = npi_boot_kv_fence,
    .finalize = run_finalize,
    .abort = run_abort,
};

static bool run_detect(char *why, size_t n)
{
    const char *addr = getenv("NUMPUSH_RUN_ADDR");
    if (!addr || !*addr)
        return false;
    snprintf(why, n, "NUMPUSH_RUN_ADDR=%s", addr);
    return true;
}

static np_err run_init(npi_boot *b)
{
    const char *addr = getenv("NUMPUSH_RUN_ADDR");
    const char *secret = getenv("NUMPUSH_SECRET");
    const char *job = getenv("NUMPUSH_JOBID");
    if (!addr || !*addr)
        return npi_error(NP_ERR_BOOTSTRAP, "bootstrap numpush-run: NUMPUSH_RUN_ADDR is not set");
    if (!npi_boot_env_int("NUMPUSH_RANK", &b->rank) || !npi_boot_env_int("NUMPUSH_SIZE", &b->size))
        return npi_error(NP_ERR_BOOTSTRAP,
                         "bootstrap numpush-run: NUMPUSH_RUN_ADDR is set but NUMPUSH_RANK or "
                         "NUMPUSH_SIZE is missing or malformed");
    if (!npi_boot_env_int("NUMPUSH_LOCAL_RANK", &b->local_rank) ||
        !npi_boot_env_int("NUMPUSH_LOCAL_SIZE", &b->local_size))
        b->local_rank = -1;
    snprintf(b->job, sizeof b->job, "%s", job && *job ? job : "run");
    npi_boot_kv *kv = calloc(1, sizeof *kv);
    if (!kv)
        return npi_error(NP_ERR_NOMEM, "bootstrap numpush-run: out of memory");
    int rc = npi_kvc_connect(&kv->client, addr, secret ? secret : "", npi_boot_timeout_ms());
    if (rc) {
        free(kv);
        return npi_error(NP_ERR_BOOTSTRAP,
                         "bootstrap numpush-run: cannot reach the launcher's store at %s: %s", addr,
                         strerror(-rc));
    }
    b->impl = kv;
    b->ops = &run_ops;
    b->has_store = true;
    return NP_OK;
}

const npi_boot_method npi_boot_method_run = {
    .name = "numpush-run",
    .detect = run_detect,
    .init = run_init,
};
