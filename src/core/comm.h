/*
 * Communicators: a group of ranks with its own shared segment, sequence
 * numbers and point-to-point channels, so that nothing done on one
 * communicator can be mistaken for something done on another.
 */
#ifndef NUMPUSH_COMM_H
#define NUMPUSH_COMM_H

#include "npi.h"
#include "shm/shm.h"

#define NPI_COMM_MAGIC 0x636f6d6du

typedef struct npi_hier npi_hier;

struct np_comm {
    uint32_t magic; /* NPI_COMM_MAGIC while live; cleared by np_comm_free */
    uint64_t id;    /* names the segment; 0 is the world */
    int rank, size;
    int *world_of; /* comm rank -> world rank */
    bool has_shm;  /* false when the ranks span nodes (the fabric's job) */
    bool cma;      /* every pair of ranks may use process_vm_readv */
    int ngroups;   /* hwloc groups the ranks span (1: flat) */
    int *group;    /* comm rank -> group, 0 .. ngroups-1 */
    npi_shm shm;
    uint64_t seq; /* sequence number of the last collective started */
    /* Collectives within a node (src/coll/coll.c): the call this rank left
     * before its peers had checked its signature (0: none), and a mismatch
     * found in that call afterwards, reported by the next call. */
    uint64_t ahead;
    bool ahead_told; /* that call already returned its mismatch */
    np_err late_err;
    char late_msg[512];
    uint64_t nsplit; /* communicators derived so far (names the next one) */
    /* Point to point: per peer, messages posted to it, slots of its channel
     * to us reclaimed, and stream chunks moved each way. */
    uint64_t *p2p_head, *p2p_tail, *p2p_sent_chunks, *p2p_recv_chunks;
    /* Private scratch for reductions, grown on demand. */
    void *tmp;
    size_t tmp_cap;
    npi_hier *hier; /* ranks span nodes: node sub-communicator, leaders (coll/hier.c) */
    /* NP_OK, or the failure between nodes that broke this communicator,
     * with its message (coll/hier_broken.c). */
    np_err hier_broken;
    char hier_broken_msg[512];
    struct np_comm *next; /* registry of live communicators */
};

/* Whether comm is a live communicator (NP_ERR_COMM otherwise, naming who). */
np_err npi_comm_check(const np_comm *comm, const char *who);

/* Create the world communicator from the bootstrap (np_init). */
np_err npi_comm_world_create(void);

/* Release every communicator (np_finalize); the world last. */
void npi_comm_release_all(void);

/* For coll/hier.c: a node-local sub-communicator of n ranks (world ranks
 * world_of, the caller is me) kept out of the registry, since its parent
 * owns it; and its release. */
np_err npi_comm_create_sub(uint64_t id, int n, int me, const int *world_of, np_comm **out);
void npi_comm_destroy_sub(np_comm *c);

/* At least bytes of private scratch owned by comm, or NULL (out of memory). */
void *npi_comm_tmp(np_comm *comm, size_t bytes);

#endif
