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

/* "eager", "cells", "cma", "flags". */
const char *npi_alg_name(npi_alg a);

/* Print the decision table (for numpush-info). */
void npi_decide_print(FILE *out);

#endif
