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
 * The cut-offs come from these runs, on the 2-core machine (Intel Xeon VM,
 * shared with other engineers' builds and tests, so every figure is the
 * best of three interleaved runs and only comparisons within one sweep
 * count):
 *
 *   for a in eager cells cma; do NUMPUSH_SHM_EAGER=4194304 \
 *     NUMPUSH_{BCAST,SCATTER,GATHER,ALLREDUCE,REDUCE,ALLGATHER,ALLTOALL}_ALG=$a \
 *     numpush-run -n {2,4} bench/bench_coll -s 4K,16K,64K,256K,1M,4M,16M -b 0.15; done
 *
 * With one rank per core (2 ranks), CMA overtakes eager at 16 KiB for the
 * data movers (bcast 16 KiB: 1.2 us against 2.8 us eager; alltoall 2.0
 * against 3.8 us), and at 512 KiB for the reductions, whose eager form
 * reduces straight out of shared memory (allreduce 256 KiB: eager 22.6,
 * CMA 30.8 us; 1 MiB: 169 against 148 us; reduce 256 KiB 13.5 against
 * 13.9 us, 1 MiB 95 against 67 us).
 *
 * With more ranks than cores (4 on 2) every synchronisation may cost a
 * context switch, so the algorithm with the fewest waits wins: eager, in
 * which the ranks that only publish leave at once (coll.c, "Running
 * ahead").  For bcast, gather and reduce it beats both others wherever the
 * payload fits the eager area (bcast 64 KiB 3.3 us against 8.8 cells and
 * 10.5 CMA; 1 MiB 127 against 164 and 294 us; gather 1 MiB 164 against
 * 243 us CMA; reduce 1 MiB 150 against 235 us CMA), which is why the area
 * is 1 MiB per rank (NUMPUSH_SHM_EAGER).  The others switch to CMA at 64
 * KiB (scatter 9.4 against 11.3 us eager, alltoall 43.5 against 63.2 us)
 * or 256 KiB (allgather 149 against 185 us eager, allreduce 86 against 93
 * eager and 119 cells).  A broadcast beyond the eager area goes to cells
 * (3 receivers reading one buffer with CMA on 2 cores read it from memory
 * three times; 16 MiB earlier: cells 2261 us against CMA 3525 us).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "decide.h"
#include "shm/shm.h"

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
    case NPI_COLL_ALLREDUCE:
        return over ? 256 * 1024 : 512 * 1024;
    default:
        return SIZE_MAX;
    }
}

/* Block size (bytes) below which eager wins when it fits the eager area,
 * with or without single copy: everywhere for the oversubscribed bcast,
 * gather and reduce; else up to where CMA takes over, and without CMA no
 * further than the sweep showed eager ahead of cells (2 ranks, 64 KiB:
 * bcast 8.4 us eager against 3.1 us cells, scatter 6.0 against 4.5). */
static size_t decide_eager_below(npi_coll c, bool over)
{
    switch (c) {
    case NPI_COLL_BCAST:
    case NPI_COLL_GATHER:
        return over ? SIZE_MAX : 16 * 1024;
    case NPI_COLL_SCATTER:
    case NPI_COLL_ALLTOALL:
        return over ? 64 * 1024 : 16 * 1024;
    case NPI_COLL_ALLGATHER:
        return over ? 256 * 1024 : 16 * 1024;
    case NPI_COLL_REDUCE:
        return over ? SIZE_MAX : 512 * 1024;
    case NPI_COLL_ALLREDUCE:
        return 512 * 1024;
    default:
        return 0;
    }
}

/* Blocks from which the root of a CMA broadcast writes 1/n of every
 * receiver's buffer itself (see npi_coll_root_share and bcast.c).  With
 * two ranks, best of six interleaved runs each, with and without:
 *   numpush-run -n 2 bench/bench_coll -c bcast -s 512K,1M,4M,16M,64M -b 0.15
 * 512 KiB 10.2 against 19.1 us, 1 MiB 20.2 against 54.6 us, 4 MiB 307
 * against 351 us; from 16 MiB the copies are bound by memory bandwidth
 * and both take the same time (1456 against 1443 us, 13.0 against 13.2 ms).
 * Scatter and gather gain nothing from it: their root already copies its
 * own block, which takes as long as a receiver's whole copy (4 MiB scatter
 * 655 us with a root share against 510 us without). */
#define DECIDE_ROOT_SHARE_MIN (256 * 1024)

size_t npi_decide_root_share(size_t bytes, int ranks, int cores)
{
    if (ranks < 2 || ranks > cores || bytes < DECIDE_ROOT_SHARE_MIN)
        return 0;
    /* With n ranks each copying, the root's (n-1) shares take as long as a
     * receiver's remaining bytes when the share is bytes / n.  Whole pages
     * keep both copies page-aligned in the source. */
    return bytes / (size_t)ranks / 4096 * 4096;
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
    if (in->bytes < decide_eager_below(in->coll, over) && decide_possible(in, NPI_ALG_EAGER))
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
    size_t eager = 1048576;
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
                size_t area = npi_shm_eager_size(eager, ranks[r]);
                npi_decide_in yes = {(npi_coll)c, sizes[i], ranks[r], true, area, 1, cores};
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
