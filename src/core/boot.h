/*
 * Bootstrap: how a rank learns who it is and meets its peers.
 *
 * bootstrap.c tries each method in order (numpush-run's rendezvous, PMIx,
 * PMI-1, env://, singleton); each lives in its own boot_<name>.c and fills
 * an npi_boot.  Everything above this layer (shared memory, fabric,
 * communicators) sees only this struct.
 */
#ifndef NUMPUSH_BOOT_H
#define NUMPUSH_BOOT_H

#include "npi.h"

#define NPI_BOOT_NODE_MAX 64
#define NPI_BOOT_JOB_MAX  24

typedef struct npi_boot npi_boot;

typedef struct npi_boot_ops {
    /* Publish key=value for the other ranks.  Blocking; val is copied.
     * Visible to others after the next fence.  Errors: NP_ERR_BOOTSTRAP. */
    np_err (*put)(npi_boot *b, const char *key, const void *val, size_t len);
    /* Read a value published by any rank before the last fence, waiting up to
     * the configured timeout for it.  Copies at most cap bytes into val and
     * stores the full length in *len.  Errors: NP_ERR_BOOTSTRAP,
     * NP_ERR_TIMEOUT, NP_ERR_TRUNCATE (cap too small; *len says how much). */
    np_err (*get)(npi_boot *b, const char *key, void *val, size_t cap, size_t *len);
    /* Collective over all ranks of the job: barrier that makes every earlier
     * put visible.  Errors: NP_ERR_BOOTSTRAP, NP_ERR_TIMEOUT, NP_ERR_PEER. */
    np_err (*fence)(npi_boot *b);
    /* Release the method's resources (connections, server threads). */
    void (*finalize)(npi_boot *b);
    /* Ask the launcher to end the whole job with code (may return if the
     * method cannot; the caller then exits by itself). */
    void (*abort)(npi_boot *b, int code);
} npi_boot_ops;

struct npi_boot {
    const char *method; /* "numpush-run", "pmix", "pmi1", "env", "singleton" */
    int rank, size;
    int local_rank, local_size; /* among the ranks on this node */
    int node_id;                /* index of this node among the job's nodes */
    int node_count;
    /* Per global rank: its node index.  Filled by bootstrap.c. */
    int *node_of_rank;
    char node[NPI_BOOT_NODE_MAX]; /* node name: NUMPUSH_NODE or hostname */
    char job[NPI_BOOT_JOB_MAX];   /* job id, unique per job on a node; names segments */
    const npi_boot_ops *ops;
    void *impl;
    /* False only for a bare NUMPUSH_RANK/NUMPUSH_SIZE environment without
     * NUMPUSH_ROOT or numpush-run: put/get/fence then fail with
     * NP_ERR_NOT_IMPLEMENTED and the job is taken to be on one node. */
    bool has_store;
    /* Set by np_finalize when the job's last barrier failed (a rank died or
     * became unreachable): finalize then waits for the others no longer
     * than NUMPUSH_TIMEOUT, since some of them will never say goodbye. */
    bool failed;
};

/* Fill b from whichever launcher started this process; see bootstrap.c for
 * the order.  On failure nothing is left open. */
np_err npi_boot_init(npi_boot *b);
void npi_boot_finalize(npi_boot *b);

/* The bootstrap of this process after np_init, or NULL. */
npi_boot *npi_boot_self(void);

/* The name of the method in use ("numpush-run", "pmix", "pmi1", "env",
 * "singleton"), else of the last one used, else NULL.  numpush-info also gets
 * npi_info_bootstrap(FILE *), defined in bootstrap.c. */
const char *npi_boot_method_name(void);

#endif
