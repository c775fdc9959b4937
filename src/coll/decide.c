/*
 * The decision table: which algorithm each collective uses within a node.
 *
 * Three families (see decide.h).  Eager costs one round of flags and two
 * copies through the eager area; it wins while the payload fits there.
 * Cells cost two copies pipelined through shared windows plus two flag
 * steps per window.  CMA costs one process_vm_readv per peer block and
 * moves each byte once; it wins for large blocks, from sizes where the
 * system call and page pinning cost less than a second copy.
 *
 * The cut-offs come from this run, on the 2-core CI machine (Intel Xeon
 * VM, shared with other jobs, so only ratios measured in one run count):
 *
 *   for a in eager cells cma; do NUMPUSH_SHM_EAGER=1048576 \
 *     NUMPUSH_{BCAST,SCATTER,GATHER,ALLREDUCE,REDUCE,ALLGATHER,ALLTOALL}_ALG=$a \
 *     numpush-run -n {2,4} bench/bench_coll -s 1K,4K,16K,64K,256K,1M,4M -b 0.2; done
 *
 * With one rank per core, CMA overtook both others at 16 KiB for the
 * data movers (at 16 KiB: gather 1.15 us against 2.40 us for cells) and at
 * 64 KiB for allreduce (10.0 against 11.4 us).  With more ranks than cores
 * (4 on 2) every extra system call may hand the core to another rank, so
 * eager and cells hold longer: CMA from 64 KiB for scatter, gather and
 * alltoall, from 256 KiB for allgather and from 1 MiB for the reductions,
 * and a broadcast goes back to cells from 256 KiB (1 MiB: 116 us cells
 * against 188 us CMA, three readers of one buffer on two cores).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "decide.h"

#include <sched.h>

#include <string.h>

/* Block size (bytes) from which single copy beats cells, per collective,
 * with one rank per core (over false) or more ranks than cores. */
static size_t decide_cma_from(npi_coll c, bool over)
{
    switch (c) {
    case NPI_COLL_BCAST:
    case NPI_COLL_SCATTER:
    case NPI_COLL_SCATTERV:
    case NPI_COLL_GATHER:
    case NPI_COLL_GATHERV:
    case NPI_COLL_ALLTOALL:
        return over ? 64 * 1024 : 16 * 1024;
    case NPI_COLL_ALLGATHER:
        return over ? 256 * 1024 : 16 * 1024;
    case NPI_COLL_REDUCE:
        return over ? 1024 * 1024 : 16 * 1024;
    case NPI_COLL_ALLREDUCE:
        return over ? 1024 * 1024 : 64 * 1024;
    default:
        return SIZE_MAX;
    }
}

/* Oversubscribed broadcasts return to cells from this size (see above). */
#define DECIDE_BCAST_OVER_CELLS (256 * 1024)

/* Bytes a rank publishes in its eager area for one call, or SIZE_MAX when
 * the collective has no eager form (v-collectives: a non-root learns the
 * counts only after arrival). */
static size_t decide_eager_bytes(const npi_decide_in *in)
{
    switch (in->coll) {
    case NPI_COLL_SCATTER:
    case NPI_COLL_ALLTOALL:
        return in->bytes > SIZE_MAX / (size_t)in->ranks ? SIZE_MAX : in->bytes * (size_t)in->ranks;
    case NPI_COLL_SCATTERV:
    case NPI_COLL_GATHERV:
        return SIZE_MAX;
    default:
        return in->bytes;
    }
}

static bool decide_possible(const npi_decide_in *in, npi_alg a)
{
    if (in->coll == NPI_COLL_BARRIER)
        return a == NPI_ALG_FLAGS;
    switch (a) {
    case NPI_ALG_EAGER:
        return decide_eager_bytes(in) <= in->eager;
    case NPI_ALG_CELLS:
        return true;
    case NPI_ALG_CMA:
        return in->cma;
    case NPI_ALG_TREE:
        return in->cma && in->groups > 1 && in->coll == NPI_COLL_BCAST;
    default:
        return false;
    }
}

npi_alg npi_decide_table(const npi_decide_in *in)
{
    if (in->coll == NPI_COLL_BARRIER)
        return NPI_ALG_FLAGS;
    bool over = in->ranks > in->cores;
    bool cma = in->cma && in->bytes >= decide_cma_from(in->coll, over);
    if (over && in->coll == NPI_COLL_BCAST && in->bytes >= DECIDE_BCAST_OVER_CELLS &&
        !decide_possible(in, NPI_ALG_TREE))
        cma = false;
    if (!cma && decide_possible(in, NPI_ALG_EAGER))
        return NPI_ALG_EAGER;
    if (cma)
        return decide_possible(in, NPI_ALG_TREE) ? NPI_ALG_TREE : NPI_ALG_CMA;
    return NPI_ALG_CELLS;
}

static const char *const decide_names[NPI_ALG_COUNT_] = {"eager", "cells", "cma", "flags", "tree"};

const char *npi_alg_name(npi_alg a)
{
    return (unsigned)a < NPI_ALG_COUNT_ ? decide_names[a] : "unknown";
}

static const char *const decide_vars[NPI_COLL_COUNT_] = {
    [NPI_COLL_BARRIER] = "NUMPUSH_BARRIER_ALG",     [NPI_COLL_BCAST] = "NUMPUSH_BCAST_ALG",
    [NPI_COLL_SCATTER] = "NUMPUSH_SCATTER_ALG",     [NPI_COLL_SCATTERV] = "NUMPUSH_SCATTERV_ALG",
    [NPI_COLL_GATHER] = "NUMPUSH_GATHER_ALG",       [NPI_COLL_GATHERV] = "NUMPUSH_GATHERV_ALG",
    [NPI_COLL_ALLREDUCE] = "NUMPUSH_ALLREDUCE_ALG", [NPI_COLL_REDUCE] = "NUMPUSH_REDUCE_ALG",
    [NPI_COLL_ALLGATHER] = "NUMPUSH_ALLGATHER_ALG", [NPI_COLL_ALLTOALL] = "NUMPUSH_ALLTOALL_ALG",
};

/* The forced algorithm per collective (-1: none), read once by
 * npi_decide_load: looking the environment up on every call would cost more
 * than a small collective itself. */
static int decide_forced[NPI_COLL_COUNT_] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1};

np_err npi_decide_load(void)
{
    for (int c = 0; c < NPI_COLL_COUNT_; c++) {
        const char *forced = npi_config_get(decide_vars[c], NULL);
        decide_forced[c] = -1;
        if (forced == NULL || forced[0] == '\0')
            continue;
        for (int f = 0; f < NPI_ALG_COUNT_; f++)
            if (strcmp(forced, decide_names[f]) == 0)
                decide_forced[c] = f;
        if (decide_forced[c] < 0)
            return npi_error(NP_ERR_CONFIG, "%s=%s: expected %s", decide_vars[c], forced,
                             c == NPI_COLL_BARRIER ? "flags" : "eager, cells, cma or tree (bcast)");
    }
    return NP_OK;
}

npi_alg npi_decide(const npi_decide_in *in)
{
    npi_alg a = npi_decide_table(in);
    if ((unsigned)in->coll >= NPI_COLL_COUNT_ || decide_forced[in->coll] < 0)
        return a;
    /* A forced algorithm these inputs cannot run (eager beyond the eager
     * area, CMA where the kernel refuses it) falls back to the table. */
    npi_alg f = (npi_alg)decide_forced[in->coll];
    return decide_possible(in, f) ? f : a;
}

void npi_decide_print(FILE *out)
{
    static const size_t sizes[] = {8, 4096, 16384, 65536, 262144, 1048576, 67108864};
    static const int ranks[] = {2, 4, 8};
    size_t eager = 16384;
    long v;
    if (npi_config_long("NUMPUSH_SHM_EAGER", &v) == NP_OK && v > 0)
        eager = (size_t)v;
    cpu_set_t set;
    int cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    /* Overrides as a program started now would see them. */
    bool overrides = npi_decide_load() == NP_OK;
    fprintf(out, "  %d cores; bytes per rank's block; each cell: with CMA / without%s\n", cores,
            overrides ? ", NUMPUSH_*_ALG applied" : " (a NUMPUSH_*_ALG value is invalid)");
    fprintf(out, "  %-10s %5s", "collective", "ranks");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        fprintf(out, " %11zu", sizes[i]);
    fprintf(out, "\n");
    for (int c = 0; c < NPI_COLL_COUNT_; c++) {
        for (size_t r = 0; r < sizeof ranks / sizeof ranks[0]; r++) {
            fprintf(out, "  %-10s %5d", npi_coll_name((npi_coll)c), ranks[r]);
            for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
                npi_decide_in yes = {(npi_coll)c, sizes[i], ranks[r], true, eager, 1, cores};
                npi_decide_in no = yes;
                no.cma = false;
                char cell[24];
                snprintf(cell, sizeof cell, "%s/%s", npi_alg_name(npi_decide(&yes)),
                         npi_alg_name(npi_decide(&no)));
                fprintf(out, " %11s", cell);
            }
            fprintf(out, "\n");
        }
    }
    fprintf(out,
            "  bcast uses tree instead of cma when the ranks span several hwloc groups\n"
            "  (packages, NUMA nodes or L3 caches; NUMPUSH_TOPOLOGY overrides the machine).\n");
}

/* The hook numpush-info looks for (see src/run/numpush_info.c). */
void npi_info_decisions(FILE *out)
{
    npi_decide_print(out);
}
