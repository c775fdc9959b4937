/*
 * Choosing an algorithm for a collective: a pure function of the collective,
 * the bytes per rank, the number of ranks and what the node allows, with an
 * override per collective (NUMPUSH_<COLL>_ALG=name).
 */
#ifndef NUMPUSH_DECIDE_H
#define NUMPUSH_DECIDE_H

#include <stdio.h>

#include "core/envelope.h"
#include "npi.h"

/* Algorithm families within a node.  Values travel in the shared segment
 * (ranks check that they agree), so they are stable. */
typedef enum npi_alg {
    NPI_ALG_EAGER = 0, /* payloads ride in the senders' eager areas: one flag round */
    NPI_ALG_CELLS = 1, /* pipelined through shared cells: two copies, overlapped */
    NPI_ALG_CMA = 2,   /* single copy between user buffers with process_vm_readv */
    NPI_ALG_FLAGS = 3, /* barrier: one round of flags */
    NPI_ALG_TREE = 4,  /* single copies along the node's hierarchy (hwloc groups) */
    NPI_ALG_COUNT_
} npi_alg;

/* What the choice depends on. */
typedef struct npi_decide_in {
    npi_coll coll;
    size_t bytes; /* count * dtype size: one rank's block */
    int ranks;    /* communicator size */
    bool cma;     /* whether single copy works between these ranks */
    size_t eager; /* eager area per rank (bytes) */
    int groups;   /* hwloc groups (packages, NUMA nodes, L3s) the ranks span */
    int cores;    /* CPUs the ranks share (more ranks than cores: oversubscribed) */
} npi_decide_in;

/* The algorithm the table picks for in, ignoring overrides; always one the
 * inputs allow (never eager beyond the eager area, never CMA without it). */
npi_alg npi_decide_table(const npi_decide_in *in);

/* Read the NUMPUSH_<COLL>_ALG overrides (np_init; tests call it again
 * after changing them).  Errors: NP_ERR_CONFIG for an unknown name. */
np_err npi_decide_load(void);

/* As npi_decide_table, honouring the NUMPUSH_<COLL>_ALG override loaded by
 * npi_decide_load when the forced algorithm is possible for these inputs. */
npi_alg npi_decide(const npi_decide_in *in);

/* Bytes at the end of each receiver's buffer that the root of a CMA
 * broadcast writes itself (0: none); see npi_coll_root_share. */
size_t npi_decide_root_share(size_t bytes, int ranks, int cores);

/* Who makes the single copies of a CMA alltoall or allgather
 * (npi_coll_exchange_cma, coll.h "Claims").  Claims are one 64-bit word per rank: at most 64 ranks.
 */
#define NPI_CLAIM_MAX 64

typedef enum npi_claims {
    NPI_CLAIMS_NONE = 0,       /* every receiver pulls its blocks */
    NPI_CLAIMS_PULL_FIRST = 1, /* claims: a rank takes its incoming blocks, then its outgoing */
    NPI_CLAIMS_PUSH_FIRST = 2, /* claims, outgoing blocks first (NUMPUSH_CMA_CLAIMS=push) */
} npi_claims;

/* For blocks of bytes among ranks sharing cores, honouring
 * NUMPUSH_CMA_CLAIMS as loaded by npi_decide_load.  Ranks may be given
 * different settings: alltoall.c stays correct whatever each one uses. */
npi_claims npi_decide_claims(size_t bytes, int ranks, int cores);

/* "eager", "cells", "cma", "flags". */
const char *npi_alg_name(npi_alg a);

/* ---------------------------------------------------------------- between nodes */

/* Algorithms among the node leaders of a communicator that spans nodes
 * (net_*.c).  Chosen by each rank from the same inputs, so never sent. */
typedef enum npi_net_alg {
    NPI_NET_BINOMIAL = 0,       /* bcast, reduce, gather, scatter: binomial tree */
    NPI_NET_KNOMIAL = 1,        /* bcast, reduce: k-nomial tree (NUMPUSH_NET_KNOMIAL_K) */
    NPI_NET_CHAIN = 2,          /* bcast: pipelined chain */
    NPI_NET_SAG = 3,            /* bcast: scatter + ring allgather */
    NPI_NET_RECDBL = 4,         /* allreduce: recursive doubling */
    NPI_NET_RING = 5,           /* allreduce, allgather: ring */
    NPI_NET_RABENSEIFNER = 6,   /* allreduce: recursive halving + recursive doubling */
    NPI_NET_PAIRWISE = 7,       /* alltoall: pairwise exchange */
    NPI_NET_BRUCK = 8,          /* alltoall: Bruck's log2(n) rounds */
    NPI_NET_LINEAR = 9,         /* gather, scatter (v): one message per node at the root */
    NPI_NET_DISSEMINATION = 10, /* barrier */
    NPI_NET_COUNT_
} npi_net_alg;

/* What the choice between nodes depends on. */
typedef struct npi_decide_net_in {
    npi_coll coll;
    size_t bytes;     /* bcast, (all)reduce: the vector; gather, scatter: one node's
                         block; alltoall: the block one node sends another */
    size_t count;     /* elements of the vector ((all)reduce) */
    int nodes;        /* leaders taking part */
    bool commutative; /* the op of a reduction */
    bool even;        /* every node has as many ranks, in consecutive ranks */
} npi_decide_net_in;

/* The algorithm between nodes for in, ignoring overrides. */
npi_net_alg npi_decide_net_table(const npi_decide_net_in *in);
/* As npi_decide_net_table, honouring NUMPUSH_NET_<COLL>_ALG (loaded by
 * npi_decide_load) where the forced algorithm can run these inputs. */
npi_net_alg npi_decide_net(const npi_decide_net_in *in);
/* The radix of the k-nomial trees (NUMPUSH_NET_KNOMIAL_K, 2..16). */
int npi_decide_knomial_k(void);
const char *npi_net_alg_name(npi_net_alg a);

/* Print the decision table (for numpush-info). */
void npi_decide_print(FILE *out);

#endif
