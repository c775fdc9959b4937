/*
 * coll_loop.h: the one benchmark loop that numpush and the MPI references
 * share, so that both sides run literally the same code.
 *
 * The method is the OSU micro-benchmarks' one, described in
 * shared/BENCHMARKS.md and implemented here from that description: for each
 * collective and size, a few warm-up calls, then a timed loop in which each
 * iteration times exactly one call and a barrier separates iterations.  Each
 * rank averages its own times; the line printed carries the average of those
 * averages over ranks (avg_us) and their maximum (max_us).
 *
 * A program includes this file and then defines the adapter below for its
 * library (bench_coll.c for numpush, bench_coll_mpi.c for MPI).  Every
 * adapter function is static (declared here), so the compiler sees through
 * it and inlines the call into the timed region.
 *
 *   static int         bx_init(int *argc, char ***argv);   0 on success
 *   static void        bx_finalize(void);
 *   static void        bx_abort(int code);                 never returns
 *   static int         bx_rank(void), bx_size(void);
 *   static const char *bx_system(void);                    "numpush", "openmpi"...
 *   static double      bx_wtime(void);                     seconds
 *   static int         bx_barrier(void);
 *   static int         bx_bcast(void *buf, size_t bytes, int root);
 *   static int         bx_scatter(const void *s, void *r, size_t bytes, int root);
 *   static int         bx_gather(const void *s, void *r, size_t bytes, int root);
 *   static int         bx_allreduce_f64(const void *s, void *r, size_t count);  sum
 *   static int         bx_reduce_f64(const void *s, void *r, size_t count, int root);  sum
 *   static int         bx_allgather(const void *s, void *r, size_t bytes);
 *   static int         bx_alltoall(const void *s, void *r, size_t bytes);
 *   static int         bx_stats(double *vals, int n, int max);  allreduce in place,
 *                                                               sum (max == 0) or max
 *   static const char *bx_strerror(int rc);
 *   static int         bx_available(int coll);   0: skip this cl_coll (not built)
 *   static int         bx_unimplemented(int rc); nonzero: rc says "not implemented"
 *
 * Every call returns 0 on success and a library error code otherwise.  A
 * collective the library does not have (yet) is skipped with a note on
 * stderr, so the others still run.
 *
 * What "bytes" (the size column) means per collective:
 *   barrier    no data; reported once with bytes 0.
 *   bcast      the message root sends to every rank.
 *   scatter    the block each rank receives (root's send buffer is ranks*bytes).
 *   gather     the block each rank sends (root's receive buffer is ranks*bytes).
 *   allreduce  each rank's input vector (float64 elements, sum).
 *   reduce     as allreduce, result at root only.
 *   allgather  the block each rank contributes (each receives ranks*bytes).
 *   alltoall   the block one rank sends to one other (ranks*bytes each way).
 * This is OSU's convention, so the figures line up with published ones.
 */
#ifndef NUMPUSH_BENCH_COLL_LOOP_H
#define NUMPUSH_BENCH_COLL_LOOP_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "size_arg.h"

enum cl_coll {
    CL_BARRIER,
    CL_BCAST,
    CL_SCATTER,
    CL_GATHER,
    CL_ALLREDUCE,
    CL_REDUCE,
    CL_ALLGATHER,
    CL_ALLTOALL,
    CL_NCOLL
};

/* The adapter: defined by the including program, after this file. */
static int bx_init(int *argc, char ***argv);
static void bx_finalize(void);
static void bx_abort(int code);
static int bx_rank(void);
static int bx_size(void);
static const char *bx_system(void);
static double bx_wtime(void);
static int bx_barrier(void);
static int bx_bcast(void *buf, size_t bytes, int root);
static int bx_scatter(const void *s, void *r, size_t bytes, int root);
static int bx_gather(const void *s, void *r, size_t bytes, int root);
static int bx_allreduce_f64(const void *s, void *r, size_t count);
static int bx_reduce_f64(const void *s, void *r, size_t count, int root);
static int bx_allgather(const void *s, void *r, size_t bytes);
static int bx_alltoall(const void *s, void *r, size_t bytes);
static int bx_stats(double *vals, int n, int max);
static const char *bx_strerror(int rc);
static int bx_available(int coll);
static int bx_unimplemented(int rc);

static const char *const cl_coll_names[CL_NCOLL] = {
    "barrier", "bcast", "scatter", "gather", "allreduce", "reduce", "allgather", "alltoall",
};

/* The sizes of BENCHMARKS.md: 8 B to 64 MiB. */
static const size_t cl_default_sizes[] = {
    8,          64,       512,      4u << 10,  16u << 10, 64u << 10,
    256u << 10, 1u << 20, 4u << 20, 16u << 20, 64u << 20,
};
#define CL_NDEFAULT_SIZES (sizeof cl_default_sizes / sizeof cl_default_sizes[0])
#define CL_MAX_SIZES      64

struct cl_opts {
    int colls[CL_NCOLL]; /* nonzero: run this collective */
    size_t sizes[CL_MAX_SIZES];
    int nsizes;
    long iters;         /* timed iterations for sizes up to 8 KiB */
    long iters_large;   /* timed iterations above 8 KiB */
    long min_iters;     /* the budget never cuts below this */
    long warmup;        /* warm-up calls up to 8 KiB */
    long warmup_large;  /* warm-up calls above 8 KiB */
    double budget;      /* seconds of wall time per point (0: no limit) */
    int vary;           /* change the buffers' content before every iteration */
    int header;         /* print the CSV header first */
    const char *system; /* overrides bx_system() in the output */
};

static void cl_usage(FILE *f, const char *prog)
{
    fprintf(
        f,
        "usage: %s [options]\n"
        "  -c, --colls LIST    collectives, comma-separated (default all):\n"
        "                      barrier,bcast,scatter,gather,allreduce,reduce,allgather,alltoall\n"
        "  -s, --sizes LIST    bytes per rank's block, comma-separated, suffixes K M G\n"
        "                      (default 8,64,512,4K,16K,64K,256K,1M,4M,16M,64M)\n"
        "  -i, --iters N       timed iterations up to 8 KiB (default 1000)\n"
        "  -I, --iters-large N timed iterations above 8 KiB (default 100)\n"
        "      --min-iters N   the budget never cuts below N iterations (default 5)\n"
        "  -w, --warmup N      warm-up calls up to 8 KiB (default 100)\n"
        "  -W, --warmup-large N  warm-up calls above 8 KiB (default 10)\n"
        "  -b, --budget SEC    wall time per point; cuts the iterations of slow points\n"
        "                      (default 0.5; 0 = no limit)\n"
        "      --vary          new buffer content before every iteration\n"
        "      --header        print the CSV header line first\n"
        "      --system NAME   name in the system column\n"
        "output (rank 0, stdout): system,collective,ranks,bytes,avg_us,max_us,iters,mode\n",
        prog);
}

static int cl_parse_opts(int argc, char **argv, struct cl_opts *o)
{
    memset(o, 0, sizeof *o);
    o->iters = 1000;
    o->iters_large = 100;
    o->min_iters = 5;
    o->warmup = 100;
    o->warmup_large = 10;
    o->budget = 0.5;
    int any_coll = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define CL_NEEDVAL                                                                                 \
    do {                                                                                           \
        if (!val) {                                                                                \
            fprintf(stderr, "%s: %s needs a value\n", argv[0], a);                                 \
            return -1;                                                                             \
        }                                                                                          \
        i++;                                                                                       \
    } while (0)
        if (!strcmp(a, "-c") || !strcmp(a, "--colls")) {
            CL_NEEDVAL;
            char *copy = strdup(val), *save = NULL;
            memset(o->colls, 0, sizeof o->colls); /* the last --colls wins */
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                int k;
                for (k = 0; k < CL_NCOLL && strcmp(t, cl_coll_names[k]); k++)
                    ;
                if (!strcmp(t, "all")) {
                    for (k = 0; k < CL_NCOLL; k++)
                        o->colls[k] = 1;
                } else if (k == CL_NCOLL) {
                    fprintf(stderr, "%s: unknown collective '%s'\n", argv[0], t);
                    free(copy);
                    return -1;
                } else {
                    o->colls[k] = 1;
                }
                any_coll = 1;
            }
            free(copy);
        } else if (!strcmp(a, "-s") || !strcmp(a, "--sizes")) {
            CL_NEEDVAL;
            char *copy = strdup(val), *save = NULL;
            o->nsizes = 0;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (o->nsizes == CL_MAX_SIZES || bench_parse_size(t, &o->sizes[o->nsizes])) {
                    fprintf(stderr, "%s: bad size '%s'\n", argv[0], t);
                    free(copy);
                    return -1;
                }
                o->nsizes++;
            }
            free(copy);
        } else if (!strcmp(a, "-i") || !strcmp(a, "--iters")) {
            CL_NEEDVAL;
            o->iters = atol(val);
        } else if (!strcmp(a, "-I") || !strcmp(a, "--iters-large")) {
            CL_NEEDVAL;
            o->iters_large = atol(val);
        } else if (!strcmp(a, "-W") || !strcmp(a, "--warmup-large")) {
            CL_NEEDVAL;
            o->warmup_large = atol(val);
        } else if (!strcmp(a, "--min-iters")) {
            CL_NEEDVAL;
            o->min_iters = atol(val);
        } else if (!strcmp(a, "-w") || !strcmp(a, "--warmup")) {
            CL_NEEDVAL;
            o->warmup = atol(val);
        } else if (!strcmp(a, "-b") || !strcmp(a, "--budget")) {
            CL_NEEDVAL;
            o->budget = atof(val);
        } else if (!strcmp(a, "--system")) {
            CL_NEEDVAL;
            o->system = val;
        } else if (!strcmp(a, "--vary")) {
            o->vary = 1;
        } else if (!strcmp(a, "--header")) {
            o->header = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cl_usage(stdout, argv[0]);
            exit(0);
        } else {
            fprintf(stderr, "%s: unknown option '%s'\n", argv[0], a);
            cl_usage(stderr, argv[0]);
            return -1;
        }
#undef CL_NEEDVAL
    }
    if (!any_coll)
        for (int k = 0; k < CL_NCOLL; k++)
            o->colls[k] = 1;
    if (o->nsizes == 0) {
        for (size_t k = 0; k < CL_NDEFAULT_SIZES; k++)
            o->sizes[k] = cl_default_sizes[k];
        o->nsizes = (int)CL_NDEFAULT_SIZES;
    }
    if (o->iters < 1)
        o->iters = 1;
    if (o->iters_large < 1)
        o->iters_large = 1;
    if (o->min_iters < 1)
        o->min_iters = 1;
    if (o->warmup < 0)
        o->warmup = 0;
    if (o->warmup_large < 0)
        o->warmup_large = 0;
    return 0;
}

/* ------------------------------------------------------------ buffers */

/* The state of one run: where the data lives, who we are. */
struct cl_ctx {
    int rank, size;
    unsigned char *sbuf, *rbuf; /* page aligned, size * max bytes each */
    size_t cap;                 /* bytes in each of sbuf and rbuf */
    long seq;                   /* content generation for --vary */
    int bad;                    /* a check failed at this point */
};

/* The byte that block `block` carries in generation `gen`: never 0, which is
 * the poison of receive buffers, and different from one generation to the
 * next, so a call that moved nothing cannot pass the check. */
static unsigned char cl_byte(long gen, long block)
{
    return (unsigned char)(1 + (unsigned long)(gen * 31 + block * 7) % 255u);
}

/* The float64 value every element of rank r's reduction input holds in
 * generation gen; small integers, so sums are exact. */
static double cl_f64(long gen, int r)
{
    return (double)(gen % 64 + 1 + r);
}

static void cl_fill_f64(void *buf, size_t count, double v)
{
    double *d = (double *)buf;
    for (size_t i = 0; i < count; i++)
        d[i] = v;
}

/* Write this rank's inputs for generation gen. */
static void cl_fill(struct cl_ctx *c, enum cl_coll k, size_t bytes, long gen)
{
    int r = c->rank, n = c->size;
    switch (k) {
    case CL_BARRIER:
        break;
    case CL_BCAST:
        if (r == 0)
            memset(c->sbuf, cl_byte(gen, 0), bytes);
        break;
    case CL_SCATTER:
        if (r == 0)
            for (int j = 0; j < n; j++)
                memset(c->sbuf + (size_t)j * bytes, cl_byte(gen, j), bytes);
        break;
    case CL_GATHER:
    case CL_ALLGATHER:
        memset(c->sbuf, cl_byte(gen, r), bytes);
        break;
    case CL_ALLTOALL:
        for (int j = 0; j < n; j++)
            memset(c->sbuf + (size_t)j * bytes, cl_byte(gen, (long)r * n + j), bytes);
        break;
    case CL_ALLREDUCE:
    case CL_REDUCE:
        cl_fill_f64(c->sbuf, bytes / 8, cl_f64(gen, r));
        break;
    default:
        break;
    }
}

/* First and last byte of a block must hold v; cheap enough for every
 * iteration, strict enough to catch a call that did not move the data. */
static int cl_block_ok(const unsigned char *p, size_t bytes, unsigned char v)
{
    return bytes == 0 || (p[0] == v && p[bytes - 1] == v && p[bytes / 2] == v);
}

/* Check what this rank received in generation gen; 0 if right. */
static int cl_check(struct cl_ctx *c, enum cl_coll k, size_t bytes, long gen)
{
    int r = c->rank, n = c->size;
    switch (k) {
    case CL_BCAST:
        return !cl_block_ok(c->sbuf, bytes, cl_byte(gen, 0));
    case CL_SCATTER:
        return !cl_block_ok(c->rbuf, bytes, cl_byte(gen, r));
    case CL_GATHER:
        if (r != 0)
            return 0;
        /* fall through */
    case CL_ALLGATHER:
        for (int j = 0; j < n; j++)
            if (!cl_block_ok(c->rbuf + (size_t)j * bytes, bytes, cl_byte(gen, j)))
                return 1;
        return 0;
    case CL_ALLTOALL:
        for (int j = 0; j < n; j++)
            if (!cl_block_ok(c->rbuf + (size_t)j * bytes, bytes, cl_byte(gen, (long)j * n + r)))
                return 1;
        return 0;
    case CL_REDUCE:
        if (r != 0)
            return 0;
        /* fall through */
    case CL_ALLREDUCE: {
        double want = 0;
        for (int j = 0; j < n; j++)
            want += cl_f64(gen, j);
        size_t cnt = bytes / 8;
        const double *d = (const double *)c->rbuf;
        return !(d[0] == want && d[cnt - 1] == want && d[cnt / 2] == want);
    }
    default:
        return 0;
    }
}

/* Receive buffers start as zeros (never a valid cl_byte) before each point. */
static void cl_poison(struct cl_ctx *c, enum cl_coll k, size_t bytes)
{
    size_t span = (size_t)c->size * bytes;
    memset(c->rbuf, 0, span);
    if (k == CL_BCAST && c->rank != 0)
        memset(c->sbuf, 0, bytes);
}

/* ------------------------------------------------------------ the loop */

static int cl_call(struct cl_ctx *c, enum cl_coll k, size_t bytes)
{
    switch (k) {
    case CL_BARRIER:
        return bx_barrier();
    case CL_BCAST:
        return bx_bcast(c->sbuf, bytes, 0);
    case CL_SCATTER:
        return bx_scatter(c->sbuf, c->rbuf, bytes, 0);
    case CL_GATHER:
        return bx_gather(c->sbuf, c->rbuf, bytes, 0);
    case CL_ALLREDUCE:
        return bx_allreduce_f64(c->sbuf, c->rbuf, bytes / 8);
    case CL_REDUCE:
        return bx_reduce_f64(c->sbuf, c->rbuf, bytes / 8, 0);
    case CL_ALLGATHER:
        return bx_allgather(c->sbuf, c->rbuf, bytes);
    case CL_ALLTOALL:
        return bx_alltoall(c->sbuf, c->rbuf, bytes);
    default:
        return -1;
    }
}

static void cl_die(struct cl_ctx *c, enum cl_coll k, size_t bytes, const char *what, int rc)
{
    fprintf(stderr, "rank %d: %s %s %zu B failed: %s\n", c->rank, what, cl_coll_names[k], bytes,
            bx_strerror(rc));
    fflush(stderr);
    bx_abort(2);
}

#define CL_TRY(c, k, bytes, what, expr)                                                            \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != 0)                                                                              \
            cl_die((c), (k), (bytes), (what), rc_);                                                \
    } while (0)

/* The agreed maximum over ranks of v, so every rank takes the same decision. */
static double cl_max_over_ranks(struct cl_ctx *c, double v)
{
    double x = v;
    CL_TRY(c, CL_BARRIER, 0, "stats", bx_stats(&x, 1, 1));
    return x;
}

/* OSU's split: small messages get many calls, large ones (above 8 KiB) few;
 * the budget then trims the slow points. */
#define CL_LARGE 8192

/* One (collective, size) point: sets avg/max/iters, and c->bad on every rank
 * if any rank saw wrong data.  Returns nonzero if the library says the
 * collective is not implemented (every rank sees that on its first call). */
static int cl_point(struct cl_ctx *c, const struct cl_opts *o, enum cl_coll k, size_t bytes,
                    double *avg_us, double *max_us, long *iters_out)
{
    c->bad = 0;
    cl_poison(c, k, bytes);
    cl_fill(c, k, bytes, ++c->seq);

    /* One untimed call first: it touches every page and tells how long a
     * call takes here, so the warm-up and the timed loop fit the budget. */
    CL_TRY(c, k, bytes, "first", bx_barrier());
    double t0 = bx_wtime();
    int rc0 = cl_call(c, k, bytes);
    double one = bx_wtime() - t0;
    if (rc0 != 0 && bx_unimplemented(rc0))
        return 1;
    if (rc0 != 0)
        cl_die(c, k, bytes, "first", rc0);
    CL_TRY(c, k, bytes, "first", bx_barrier());
    if (cl_check(c, k, bytes, c->seq))
        c->bad = 1;
    one = cl_max_over_ranks(c, one);

    long warm = bytes > CL_LARGE ? o->warmup_large : o->warmup;
    if (o->budget > 0 && one > 0 && warm > 0) {
        long cap = (long)(0.2 * o->budget / one);
        if (warm > cap)
            warm = cap < 1 ? 1 : cap;
    }

    /* Warm-up: the same iteration shape as the timed loop, wall time of the
     * whole iteration measured so the budget also counts fills and barriers. */
    double w0 = bx_wtime();
    for (long i = 0; i < warm; i++) {
        if (o->vary)
            cl_fill(c, k, bytes, ++c->seq);
        CL_TRY(c, k, bytes, "warm-up", cl_call(c, k, bytes));
        if (o->vary && cl_check(c, k, bytes, c->seq))
            c->bad = 1;
        CL_TRY(c, k, bytes, "warm-up", bx_barrier());
    }
    double per_iter = warm > 0 ? (bx_wtime() - w0) / (double)warm : one;
    per_iter = cl_max_over_ranks(c, per_iter);

    long iters = bytes > CL_LARGE ? o->iters_large : o->iters;
    if (o->budget > 0 && per_iter > 0) {
        double fit = o->budget / per_iter;
        long floor_ = o->min_iters < iters ? o->min_iters : iters;
        if (fit < (double)iters)
            iters = fit < (double)floor_ ? floor_ : (long)fit;
    }

    /* The timed loop: one call per iteration inside the timer, everything
     * else (new content, the check, the barrier) outside it. */
    double total = 0;
    for (long i = 0; i < iters; i++) {
        if (o->vary)
            cl_fill(c, k, bytes, ++c->seq);
        double t = bx_wtime();
        int rc = cl_call(c, k, bytes);
        total += bx_wtime() - t;
        if (rc != 0)
            cl_die(c, k, bytes, "timed", rc);
        if (o->vary && cl_check(c, k, bytes, c->seq))
            c->bad = 1;
        CL_TRY(c, k, bytes, "timed", bx_barrier());
    }
    if (!o->vary && cl_check(c, k, bytes, c->seq))
        c->bad = 1;

    double mine = total / (double)iters;
    double v[3] = {mine, (double)c->bad, 0};
    double m[1] = {mine};
    CL_TRY(c, k, bytes, "stats", bx_stats(v, 2, 0));
    CL_TRY(c, k, bytes, "stats", bx_stats(m, 1, 1));
    *avg_us = v[0] / c->size * 1e6;
    *max_us = m[0] * 1e6;
    *iters_out = iters;
    c->bad = v[1] > 0;
    return 0;
}

static void *cl_alloc(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 4096, bytes ? bytes : 1) != 0)
        return NULL;
    memset(p, 0, bytes); /* fault every page in before any timing */
    return p;
}

/* The whole benchmark: parse options, run every selected point, print CSV.
 * Returns the process exit code. */
static int cl_main(int argc, char **argv)
{
    struct cl_opts o;
    if (bx_init(&argc, &argv) != 0) {
        fprintf(stderr, "%s: initialisation failed\n", argv[0]);
        return 1;
    }
    struct cl_ctx c;
    memset(&c, 0, sizeof c);
    c.rank = bx_rank();
    c.size = bx_size();
    if (cl_parse_opts(argc, argv, &o) != 0) {
        bx_finalize();
        return 2;
    }
    size_t maxb = 8;
    for (int s = 0; s < o.nsizes; s++) {
        /* Reductions work on whole float64 elements. */
        if (o.sizes[s] < 8)
            o.sizes[s] = 8;
        o.sizes[s] &= ~(size_t)7;
        if (o.sizes[s] > maxb)
            maxb = o.sizes[s];
    }
    c.cap = (size_t)c.size * maxb;
    c.sbuf = cl_alloc(c.cap);
    c.rbuf = cl_alloc(c.cap);
    if (!c.sbuf || !c.rbuf) {
        fprintf(stderr, "rank %d: cannot allocate 2 x %zu bytes\n", c.rank, c.cap);
        bx_abort(1);
    }
    const char *sys = o.system ? o.system : bx_system();
    const char *mode = o.vary ? "vary" : "fixed";
    if (c.rank == 0 && o.header)
        printf("system,collective,ranks,bytes,avg_us,max_us,iters,mode\n");
    int failures = 0;
    for (int k = 0; k < CL_NCOLL; k++) {
        if (!o.colls[k])
            continue;
        if (!bx_available(k)) {
            if (c.rank == 0)
                fprintf(stderr, "%s: %s is not in this build; skipped\n", sys, cl_coll_names[k]);
            continue;
        }
        for (int s = 0; s < o.nsizes; s++) {
            size_t bytes = k == CL_BARRIER ? 0 : o.sizes[s];
            double avg, mx;
            long iters;
            if (cl_point(&c, &o, (enum cl_coll)k, bytes, &avg, &mx, &iters)) {
                if (c.rank == 0)
                    fprintf(stderr, "%s: %s is not implemented; skipped\n", sys, cl_coll_names[k]);
                break;
            }
            if (c.rank == 0) {
                if (c.bad) {
                    fprintf(stderr,
                            "%s: %s %zu B with %d ranks delivered wrong data; point dropped\n", sys,
                            cl_coll_names[k], bytes, c.size);
                    fflush(stderr);
                } else {
                    printf("%s,%s,%d,%zu,%.3f,%.3f,%ld,%s\n", sys, cl_coll_names[k], c.size, bytes,
                           avg, mx, iters, mode);
                    fflush(stdout);
                }
            }
            failures += c.bad;
            if (k == CL_BARRIER)
                break;
        }
    }
    free(c.sbuf);
    free(c.rbuf);
    bx_finalize();
    return failures ? 3 : 0;
}

#endif
