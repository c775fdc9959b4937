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
 * KiB (alltoall 43.5 against 63.2 us eager)
 * or 256 KiB (allgather 149 against 185 us eager, allreduce 86 against 93
 * eager and 119 cells).  A broadcast beyond the eager area goes to cells
 * (3 receivers reading one buffer with CMA on 2 cores read it from memory
 * three times; 16 MiB earlier: cells 2261 us against CMA 3525 us).
 *
 * A later sweep moved the oversubscribed scatter to eager wherever its n
 * blocks fit the eager area: its root, like a broadcast's, publishes and
 * leaves, where with CMA it waits for every receiver's copy.  Medians of
 * three interleaved runs of
 *   NUMPUSH_SCATTER_ALG={eager,} numpush-run -n 4 bench/bench_coll \
 *     -c scatter -s 64K,128K,256K -b 0.2
 * (eager against CMA): 64 KiB 8.2 against 13.0 us, 128 KiB 12.7 against
 * 23.8, 256 KiB 42.4 against 53.5 (Open MPI 64 KiB: 6.9 us).
 * A sweep on 2026-11-25 (three interleaved runs of the same command with
 * -s 32K,64K,128K,256K,512K, after the CMA pull changes) found the opposite
 * from 64 KiB: eager 14.4-15.9 / 22.4-23.8 / 60.5-64.5 us at 64 / 128 /
 * 256 KiB against CMA 8.5-12.5 / 14.3-23.2 / 30.9-34.2 (Open MPI in a
 * bench/run of the same hour: 10.6 and 35.4 us at 64 and 256 KiB); 32 and
 * 512 KiB were a tie.  So the oversubscribed scatter is eager below 64 KiB
 * and CMA from there, as the alltoall.
 *
 * With ranks bound to their own cores (numpush-run's default), bcast,
 * scatter and gather take CMA from 4 KiB: three interleaved runs each of
 *   NUMPUSH_{BCAST,SCATTER,GATHER}_ALG={eager,cma} numpush-run -n 2 \
 *     bench/bench_coll -c C -s 2K,4K,8K,16K -b 0.15
 * (eager against CMA, us) at 4 / 8 KiB: bcast 1.13-1.18 / 1.53-1.57
 * against 1.02-1.15 / 1.15-1.26; scatter 1.14-1.19 / 1.54-1.62 against
 * 0.96-0.98 / 1.06-1.30; gather 1.13-1.20 / 1.79-1.90 against 0.93-1.05 /
 * 1.04-1.11; at 2 KiB eager still wins (0.58-0.95 against 0.91-1.09).
 * MPICH in the same hour: bcast 0.79-0.85 / 1.18-1.33.  Allgather and
 * alltoall stay at 16 KiB (at 8 KiB the two were within the noise).
 *
 * The 2-rank reduce moved to CMA from 16 KiB once numpush-run bound ranks
 * to separate cores: eager then makes the root fetch the rewritten eager
 * area from the other core's cache every call (the reduce figures above
 * came from runs where both ranks shared a core).  Bound, three runs of
 *   NUMPUSH_REDUCE_ALG={eager,cma} numpush-run -n 2 bench/bench_coll \
 *     -c reduce -s 4K,16K,64K,256K -b 0.1
 * (eager against CMA, the root pulling every input; reduce.c): 4 KiB 1.0-1.2
 * against 0.9-1.0 us, 16 KiB 2.8 against 1.7, 64 KiB 8.7 against 5.1,
 * 256 KiB 21 against 14.5-16 (reduce-scatter form).  Open MPI: 1.86, 4.4,
 * 13.8 us.
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
    case NPI_COLL_GATHER:
        return over ? 64 * 1024 : 4 * 1024;
    case NPI_COLL_SCATTERV:
    case NPI_COLL_GATHERV:
    case NPI_COLL_ALLTOALL:
        return over ? 64 * 1024 : 16 * 1024;
    case NPI_COLL_ALLGATHER:
        return over ? 256 * 1024 : 16 * 1024;
    case NPI_COLL_REDUCE:
        return over ? 256 * 1024 : 16 * 1024;
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
        return over ? SIZE_MAX : 4 * 1024;
    case NPI_COLL_SCATTER:
        return over ? 64 * 1024 : 4 * 1024;
    case NPI_COLL_ALLTOALL:
        return over ? 64 * 1024 : 16 * 1024;
    case NPI_COLL_ALLGATHER:
        return over ? 256 * 1024 : 16 * 1024;
    case NPI_COLL_REDUCE:
        return over ? SIZE_MAX : 16 * 1024;
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
 * 655 us with a root share against 510 us without).  With two ranks it
 * pays from 64 KiB already: six interleaved runs of -s 32K,64K,128K -b 0.4
 * -I 3000, with and without, gave 2.2-3.3 against 2.4-3.6 us at 32 KiB (a
 * tie), 3.5-5.1 against 3.9-5.7 at 64 KiB and 5.3-6.2 against 6.8-9.3 at
 * 128 KiB; at 16 KiB it lost (2.3 against 1.6).  More ranks keep the
 * larger threshold, where each share is still 16 KiB or more with up to
 * 16 ranks (the root writes one share per receiver, a system call each);
 * this machine cannot measure them bound. */
#define DECIDE_ROOT_SHARE_MIN      (256 * 1024)
#define DECIDE_ROOT_SHARE_MIN_PAIR (64 * 1024)

size_t npi_decide_root_share(size_t bytes, int ranks, int cores)
{
    size_t from = ranks == 2 ? DECIDE_ROOT_SHARE_MIN_PAIR : DECIDE_ROOT_SHARE_MIN;
    if (ranks < 2 || ranks > cores || bytes < from)
        return 0;
    /* With n ranks each copying, the root's (n-1) shares take as long as a
     * receiver's remaining bytes when the share is bytes / n.  Whole pages
     * keep both copies page-aligned in the source. */
    return bytes / (size_t)ranks / 4096 * 4096;
}

/* Claims (npi_coll_exchange_cma: alltoall and allgather by cma): with more
 * ranks than cores, a rank that runs copies the blocks of a rank waiting
 * for a core.  Medians of 3-4 interleaved runs on 2 cores, claims against
 * pulls alone:
 *   NUMPUSH_ALLTOALL_ALG=cma numpush-run -n 3|4 bench/bench_coll -c alltoall
 * alltoall, 3 ranks, 256 KiB / 1 MiB / 4 MiB blocks: 103 / 545 / 2004 us
 * against 141 / 638 / 2551; 4 ranks, 256 KiB and 1 MiB, a tie (210 / 848
 * against 220 / 870); 64 KiB, 40 against 37 us, so not below 256 KiB.
 * allgather, 3 ranks, 1 / 4 MiB: 503 / 1950 against 578 / 2329; 4 ranks a
 * tie.  With a core per rank every receiver is running anyway (2 ranks:
 * 189 against 200 us at 1 MiB, within the noise), so claims stay off. */
#define DECIDE_CLAIMS_MIN (256 * 1024)

static npi_claims decide_claims_setting = NPI_CLAIMS_PULL_FIRST;
static bool decide_claims_forced;

npi_claims npi_decide_claims(size_t bytes, int ranks, int cores)
{
    if (ranks < 2 || ranks > NPI_CLAIM_MAX)
        return NPI_CLAIMS_NONE;
    if (decide_claims_forced)
        return decide_claims_setting;
    return ranks > cores && bytes >= DECIDE_CLAIMS_MIN ? NPI_CLAIMS_PULL_FIRST : NPI_CLAIMS_NONE;
}

static np_err decide_claims_load(void)
{
    const char *v = npi_config_get("NUMPUSH_CMA_CLAIMS", NULL);
    decide_claims_forced = true;
    if (v == NULL)
        v = "auto";
    if (strcmp(v, "pull") == 0)
        decide_claims_setting = NPI_CLAIMS_NONE;
    else if (strcmp(v, "push") == 0)
        decide_claims_setting = NPI_CLAIMS_PUSH_FIRST;
    else if (strcmp(v, "auto") == 0 || v[0] == '\0')
        decide_claims_forced = false;
    else
        return npi_error(NP_ERR_CONFIG, "NUMPUSH_CMA_CLAIMS=%s: expected auto, pull or push", v);
    return NP_OK;
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

static np_err decide_net_load(void);

np_err npi_decide_load(void)
{
    np_err err = decide_net_load();
    if (err == NP_OK)
        err = decide_claims_load();
    if (err != NP_OK)
        return err;
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

/* ---------------------------------------------------------------- between nodes */

/*
 * Between nodes the leaders pay a network latency per round (about 30 us
 * between the namespaces here, against 1 us for a node-local round) and a
 * per-message send cost of a few microseconds, so:
 *   - small broadcasts and reductions go by binomial tree (log2 n rounds);
 *     a k-nomial tree has log_k n rounds but sends k-1 messages per round
 *     from one leader, and wins once nodes are many (8 and more: 2 rounds
 *     of 3 sends with k = 4 against 3 rounds of 1);
 *   - large broadcasts go down a pipelined chain (each link carries the
 *     message once); from 256 KiB on the measured 64 MiB bcast, 2 hosts:
 *     chain and binomial tie, 3 hosts: chain 1.6x faster (see hier.c);
 *   - allreduce: recursive doubling below 64 KiB (log2 n rounds of the
 *     whole vector); above, Rabenseifner where nodes are 4 or more (2 log2 n
 *     rounds, 2N(n-1)/n bytes) and the ring where they are fewer (same
 *     bytes in 2(n-1) rounds, but each round streams, which pays with 2 or
 *     3 nodes) or the vector exceeds 4 MiB (bandwidth alone counts there,
 *     and the ring's segments overlap reduction with transfer);
 *   - alltoall: pairwise exchange (n-1 rounds, each block once), except
 *     for blocks of 1 KiB or less among 8 or more nodes, where Bruck's
 *     log2(n) rounds cost less than n-1 latencies despite sending each
 *     block up to log2(n) times.
 * These cut-offs follow from the cost model and the 2- and 3-host runs of
 * tests/coll_netns.sh and bench/; the 8-node ones are not measured here.
 */
#define DECIDE_NET_KNOMIAL_NODES         8
#define DECIDE_NET_KNOMIAL_BELOW         (8 * 1024)
#define DECIDE_NET_CHAIN_FROM            (256 * 1024)
#define DECIDE_NET_RING_FROM             (64 * 1024)
#define DECIDE_NET_RABENSEIFNER_NODES    4
#define DECIDE_NET_RABENSEIFNER_BELOW    (4 * 1024 * 1024)
#define DECIDE_NET_BRUCK_NODES           8
#define DECIDE_NET_BRUCK_UPTO            1024
#define DECIDE_NET_BINOMIAL_GATHER_NODES 4
#define DECIDE_NET_BINOMIAL_GATHER_UPTO  (64 * 1024)

static const char *const decide_net_names[NPI_NET_COUNT_] = {
    "binomial",     "knomial",  "chain", "sag",    "recdbl",       "ring",
    "rabenseifner", "pairwise", "bruck", "linear", "dissemination"};

const char *npi_net_alg_name(npi_net_alg a)
{
    return (unsigned)a < NPI_NET_COUNT_ ? decide_net_names[a] : "unknown";
}

npi_net_alg npi_decide_net_table(const npi_decide_net_in *in)
{
    switch (in->coll) {
    case NPI_COLL_BARRIER:
        return NPI_NET_DISSEMINATION;
    case NPI_COLL_BCAST:
        if (in->bytes < DECIDE_NET_CHAIN_FROM || in->nodes == 2)
            return in->nodes >= DECIDE_NET_KNOMIAL_NODES && in->bytes < DECIDE_NET_KNOMIAL_BELOW
                       ? NPI_NET_KNOMIAL
                       : NPI_NET_BINOMIAL;
        return NPI_NET_CHAIN;
    case NPI_COLL_REDUCE:
        return in->nodes >= DECIDE_NET_KNOMIAL_NODES && in->bytes < DECIDE_NET_KNOMIAL_BELOW
                   ? NPI_NET_KNOMIAL
                   : NPI_NET_BINOMIAL;
    case NPI_COLL_ALLREDUCE:
        if (in->bytes < DECIDE_NET_RING_FROM || !in->commutative || in->count < (size_t)in->nodes)
            return NPI_NET_RECDBL;
        if (in->nodes >= DECIDE_NET_RABENSEIFNER_NODES && in->bytes < DECIDE_NET_RABENSEIFNER_BELOW)
            return NPI_NET_RABENSEIFNER;
        return NPI_NET_RING;
    case NPI_COLL_ALLGATHER:
        return NPI_NET_RING;
    case NPI_COLL_ALLTOALL:
        return in->even && in->nodes >= DECIDE_NET_BRUCK_NODES && in->bytes <= DECIDE_NET_BRUCK_UPTO
                   ? NPI_NET_BRUCK
                   : NPI_NET_PAIRWISE;
    case NPI_COLL_GATHER:
    case NPI_COLL_SCATTER:
        return in->even && in->nodes >= DECIDE_NET_BINOMIAL_GATHER_NODES &&
                       in->bytes <= DECIDE_NET_BINOMIAL_GATHER_UPTO
                   ? NPI_NET_BINOMIAL
                   : NPI_NET_LINEAR;
    default:
        return NPI_NET_LINEAR;
    }
}

static bool decide_net_possible(const npi_decide_net_in *in, npi_net_alg a)
{
    switch (in->coll) {
    case NPI_COLL_BCAST:
        return a == NPI_NET_BINOMIAL || a == NPI_NET_KNOMIAL || a == NPI_NET_CHAIN ||
               a == NPI_NET_SAG;
    case NPI_COLL_REDUCE:
        return a == NPI_NET_BINOMIAL || a == NPI_NET_KNOMIAL;
    case NPI_COLL_ALLREDUCE:
        /* The ring and Rabenseifner combine slices in an order that depends
         * on the participant, so they need a commutative op, and one
         * element per participant at least. */
        return a == NPI_NET_RECDBL || ((a == NPI_NET_RING || a == NPI_NET_RABENSEIFNER) &&
                                       in->commutative && in->count >= (size_t)in->nodes);
    case NPI_COLL_ALLTOALL:
        return a == NPI_NET_PAIRWISE || (a == NPI_NET_BRUCK && in->even);
    default:
        return false;
    }
}

/* The forced algorithm between nodes per collective (-1: none) and the
 * k-nomial radix, read by npi_decide_load. */
static int decide_net_forced[NPI_COLL_COUNT_] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
static int decide_knomial_k = 4;
/* Whether the bcast override came from NUMPUSH_NET_BCAST_ALG (else from
 * NUMPUSH_HIER_BCAST, which forces sag only where the chain would run). */
static bool decide_net_bcast_named;

static const char *const decide_net_vars[NPI_COLL_COUNT_] = {
    [NPI_COLL_BCAST] = "NUMPUSH_NET_BCAST_ALG",
    [NPI_COLL_REDUCE] = "NUMPUSH_NET_REDUCE_ALG",
    [NPI_COLL_ALLREDUCE] = "NUMPUSH_NET_ALLREDUCE_ALG",
    [NPI_COLL_ALLTOALL] = "NUMPUSH_NET_ALLTOALL_ALG",
};

static const char *const decide_net_choices[NPI_COLL_COUNT_] = {
    [NPI_COLL_BCAST] = "binomial, knomial, chain or sag",
    [NPI_COLL_REDUCE] = "binomial or knomial",
    [NPI_COLL_ALLREDUCE] = "recdbl, ring or rabenseifner",
    [NPI_COLL_ALLTOALL] = "pairwise or bruck",
};

static np_err decide_net_load(void)
{
    long k = 4;
    if (npi_config_long("NUMPUSH_NET_KNOMIAL_K", &k) != NP_OK || k < 2 || k > 16)
        return npi_error(NP_ERR_CONFIG, "NUMPUSH_NET_KNOMIAL_K=%s: expected 2 to 16",
                         npi_config_get("NUMPUSH_NET_KNOMIAL_K", NULL));
    decide_knomial_k = (int)k;
    for (int c = 0; c < NPI_COLL_COUNT_; c++) {
        decide_net_forced[c] = -1;
        if (!decide_net_vars[c])
            continue;
        const char *forced = npi_config_get(decide_net_vars[c], NULL);
        if (c == NPI_COLL_BCAST)
            decide_net_bcast_named = forced && forced[0];
        /* NUMPUSH_HIER_BCAST=sag, the older name, still forces sag. */
        if ((!forced || !forced[0]) && c == NPI_COLL_BCAST)
            forced = npi_config_get("NUMPUSH_HIER_BCAST", NULL);
        if (forced == NULL || forced[0] == '\0')
            continue;
        npi_decide_net_in probe = {(npi_coll)c, 0, SIZE_MAX, 2, true, true};
        for (int f = 0; f < NPI_NET_COUNT_; f++)
            if (strcmp(forced, decide_net_names[f]) == 0 &&
                decide_net_possible(&probe, (npi_net_alg)f))
                decide_net_forced[c] = f;
        if (decide_net_forced[c] < 0)
            return npi_error(NP_ERR_CONFIG, "%s=%s: expected %s", decide_net_vars[c], forced,
                             decide_net_choices[c]);
    }
    return NP_OK;
}

npi_net_alg npi_decide_net(const npi_decide_net_in *in)
{
    npi_net_alg a = npi_decide_net_table(in);
    if ((unsigned)in->coll >= NPI_COLL_COUNT_ || decide_net_forced[in->coll] < 0)
        return a;
    npi_net_alg f = (npi_net_alg)decide_net_forced[in->coll];
    /* NUMPUSH_HIER_BCAST=sag only ever replaced the chain. */
    if (in->coll == NPI_COLL_BCAST && f == NPI_NET_SAG && a != NPI_NET_CHAIN &&
        !decide_net_bcast_named)
        return a;
    return decide_net_possible(in, f) ? f : a;
}

int npi_decide_knomial_k(void)
{
    return decide_knomial_k;
}

/* The table between nodes, for numpush-info. */
static void decide_net_print(FILE *out, const size_t *sizes, size_t nsizes)
{
    static const int nodes[] = {2, 4, 8};
    static const npi_coll colls[] = {NPI_COLL_BARRIER,   NPI_COLL_BCAST,   NPI_COLL_REDUCE,
                                     NPI_COLL_ALLREDUCE, NPI_COLL_GATHER,  NPI_COLL_SCATTER,
                                     NPI_COLL_ALLGATHER, NPI_COLL_ALLTOALL};
    fprintf(out,
            "  between nodes (node leaders over the fabric; NUMPUSH_NET_*_ALG applied; k-nomial "
            "k = %d):\n  bytes: the vector (bcast, reductions), one node's block (gather, "
            "scatter),\n  the block one node sends another (alltoall); equal nodes, commutative "
            "op\n",
            decide_knomial_k);
    fprintf(out, "  %-10s %5s", "collective", "nodes");
    for (size_t i = 0; i < nsizes; i++)
        fprintf(out, " %13zu", sizes[i]);
    fprintf(out, "\n");
    for (size_t c = 0; c < sizeof colls / sizeof colls[0]; c++) {
        for (size_t r = 0; r < sizeof nodes / sizeof nodes[0]; r++) {
            fprintf(out, "  %-10s %5d", npi_coll_name(colls[c]), nodes[r]);
            for (size_t i = 0; i < nsizes; i++) {
                npi_decide_net_in in = {colls[c], sizes[i], sizes[i] / 8, nodes[r], true, true};
                fprintf(out, " %13s", npi_net_alg_name(npi_decide_net(&in)));
            }
            fprintf(out, "\n");
        }
    }
    fprintf(out, "  scatterv and gatherv go linear; a bcast above 2 NUMPUSH_HIER_CHUNK with "
                 "several ranks\n  on a node is a chain pipelined with the node-local "
                 "broadcast.\n");
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
    decide_net_print(out, sizes, sizeof sizes / sizeof sizes[0]);
}

/* The hook numpush-info looks for (see src/run/numpush_info.c). */
void npi_info_decisions(FILE *out)
{
    npi_decide_print(out);
}
