/*
 * env://, as torchrun does it: NUMPUSH_RANK, NUMPUSH_SIZE and
 * NUMPUSH_ROOT=host:port (NUMPUSH_LOCAL_RANK optional: the node layout comes
 * from node names anyway).  Rank 0 serves the key-value store on port of
 * NUMPUSH_ROOT on all interfaces; every rank, rank 0 included, is a client of
 * it.  If NUMPUSH_SECRET is set every rank must present it; without it the
 * store is as open as torchrun's TCPStore.
 *
 * A bare NUMPUSH_RANK/NUMPUSH_SIZE without NUMPUSH_ROOT is still accepted (the
 * first bootstrap worked that way): rank and size are known but there is no
 * store, so put/get/fence fail and the job is assumed to be on one node.
 */
#include "config.h"

#include "boot_methods.h"
#include "kvstore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

typedef struct env_impl {
    npi_boot_kv kv;  /* first: the shared kv helpers cast impl to it */
    npi_kvs *server; /* rank 0 only */
} env_impl;

static void env_finalize(npi_boot *b)
{
    env_impl *e = b->impl;
    if (!e)
        return;
    npi_kvc_close(e->kv.client);
    if (e->server) {
        /* Rank 0 holds the store: keep it until every other rank has come and
         * gone, so a late rank's last get is still answered.  After a
         * failure some never go (their host's link is down: their closing
         * never arrives), so wait no longer than it takes to declare a
         * peer dead. */
        long long waited = 0, limit = npi_boot_timeout_ms();
        if (b->failed) {
            /* Validated by np_init already; read quietly, so that the
             * caller's error message survives. */
            const char *t = npi_config_get("NUMPUSH_TIMEOUT", NULL);
            double dead_s = t ? strtod(t, NULL) : 0;
            if (dead_s > 0 && dead_s * 1000 < (double)limit)
                limit = (long long)(dead_s * 1000);
        }
        for (;;) {
            int open_now, ever;
            npi_kvs_clients(e->server, &open_now, &ever);
            if ((open_now == 0 && ever >= b->size) || waited >= limit)
                break;
            usleep(5000);
            waited += 5;
        }
        npi_kvs_stop(e->server);
    }
    free(e);
    b->impl = NULL;
}

static void env_abort(npi_boot *b, int code)
{
    /* torchrun-style jobs have no launcher to ask; the caller exits. */
}

static const npi_boot_ops env_ops = {
    .put = npi_boot_kv_put,
    .get = npi_boot_kv_get,
    .fence = npi_boot_kv_fence,
    .finalize = env_finalize,
    .abort = env_abort,
};

static np_err env_nostore(npi_boot *b)
{
    return npi_error(NP_ERR_NOT_IMPLEMENTED,
                     "bootstrap env: no store (set NUMPUSH_ROOT=host:port, or start the job "
                     "with numpush-run)");
}

static np_err env_put_none(npi_boot *b, const char *key, const void *val, size_t len)
{
    return env_nostore(b);
}

static np_err env_get_none(npi_boot *b, const char *key, void *val, size_t cap, size_t *len)
{
    return env_nostore(b);
}

static np_err env_fence_none(npi_boot *b)
{
    return b->size == 1 ? NP_OK : env_nostore(b);
}

static void env_finalize_none(npi_boot *b) {}

static const npi_boot_ops env_ops_none = {
    .put = env_put_none,
    .get = env_get_none,
    .fence = env_fence_none,
    .finalize = env_finalize_none,
    .abort = env_abort,
};

static bool env_detect(char *why, size_t n)
{
    const char *root = getenv("NUMPUSH_ROOT");
    if (root && *root) {
        snprintf(why, n, "NUMPUSH_ROOT=%s", root);
        return true;
    }
    if (getenv("NUMPUSH_RANK") && getenv("NUMPUSH_SIZE")) {
        snprintf(why, n, "NUMPUSH_RANK and NUMPUSH_SIZE without a store");
        return true;
    }
    return false;
}

static np_err env_init(npi_boot *b)
{
    const char *root = getenv("NUMPUSH_ROOT");
    const char *job = getenv("NUMPUSH_JOBID");
    const char *secret = getenv("NUMPUSH_SECRET");
    if (!npi_boot_env_int("NUMPUSH_RANK", &b->rank) || !npi_boot_env_int("NUMPUSH_SIZE", &b->size))
        return npi_error(NP_ERR_BOOTSTRAP,
                         "bootstrap env: NUMPUSH_RANK and NUMPUSH_SIZE must both be set to "
                         "numbers");
    if (!npi_boot_env_int("NUMPUSH_LOCAL_RANK", &b->local_rank) ||
        !npi_boot_env_int("NUMPUSH_LOCAL_SIZE", &b->local_size))
        b->local_rank = -1;
    if (!root || !*root) {
        if (b->size == 1) {
            /* One rank needs no peers: the singleton's local store serves. */
            np_err e = npi_boot_method_single.init(b);
            snprintf(b->job, sizeof b->job, "%s", job && *job ? job : "env");
            return e;
        }
        snprintf(b->job, sizeof b->job, "%s", job && *job ? job : "env");
        b->ops = &env_ops_none;
        b->has_store = false;
        return NP_OK;
    }
    const char *colon = strrchr(root, ':');
    int port = colon ? atoi(colon + 1) : 0;
    if (!colon || port <= 0 || port > 65535)
        return npi_error(NP_ERR_CONFIG, "bootstrap env: NUMPUSH_ROOT=%s is not host:port", root);
    if (b->rank < 0 || b->rank >= b->size)
        return npi_error(NP_ERR_BOOTSTRAP,
                         "bootstrap env: NUMPUSH_RANK=%d out of range for "
                         "NUMPUSH_SIZE=%d",
                         b->rank, b->size);
    env_impl *e = calloc(1, sizeof *e);
    if (!e)
        return npi_error(NP_ERR_NOMEM, "bootstrap env: out of memory");
    char err[256], addrs[300];
    if (b->rank == 0) {
        int rc = npi_kvs_start(&e->server, NULL, port, secret ? secret : "", b->size, NULL, NULL,
                               err, sizeof err);
        if (rc) {
            free(e);
            return npi_error(NP_ERR_BOOTSTRAP,
                             "bootstrap env: rank 0 cannot serve NUMPUSH_ROOT=%s: %s", root, err);
        }
        /* Rank 0 reaches its own store on loopback whatever name ROOT uses. */
        snprintf(addrs, sizeof addrs, "127.0.0.1:%d", port);
    } else {
        snprintf(addrs, sizeof addrs, "%s", root);
    }
    int rc = npi_kvc_connect(&e->kv.client, addrs, secret ? secret : "", npi_boot_timeout_ms());
    if (rc) {
        if (e->server)
            npi_kvs_stop(e->server);
        free(e);
        return npi_error(NP_ERR_BOOTSTRAP,
                         "bootstrap env: rank %d cannot reach rank 0's store at NUMPUSH_ROOT=%s "
                         "within %d ms: %s",
                         b->rank, root, npi_boot_timeout_ms(), strerror(-rc));
    }
    b->impl = e;
    b->ops = &env_ops;
    b->has_store = true;
    np_err er = NP_OK;
    if (job && *job) {
        snprintf(b->job, sizeof b->job, "%s", job);
    } else if (b->rank == 0) {
        /* Rank 0 draws the job id, so two jobs on one node never share
         * segment names, and publishes it to the others. */
        unsigned char rnd[8] = {0};
        char seed[64];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
            memset(rnd, 0, sizeof rnd);
        snprintf(seed, sizeof seed, "%s/%ld/%ld/%02x%02x%02x%02x%02x%02x%02x%02x", root,
                 (long)getpid(), (long)time(NULL), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5],
                 rnd[6], rnd[7]);
        npi_boot_job_from(b->job, sizeof b->job, 'e', seed);
        er = npi_boot_kv_put(b, "npi.jobid", b->job, strlen(b->job) + 1);
    } else {
        size_t len;
        er = npi_boot_kv_get(b, "npi.jobid", b->job, sizeof b->job - 1, &len);
        b->job[sizeof b->job - 1] = '\0';
    }
    if (er) {
        env_finalize(b);
        return er;
    }
    return NP_OK;
}

const npi_boot_method npi_boot_method_env = {
    .name = "env",
    .detect = env_detect,
    .init = env_init,
};
