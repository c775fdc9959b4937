/*
 * bench_coll: the collective benchmark over numpush.  The loop is
 * coll_loop.h, shared word for word with the MPI reference (bench_coll_mpi.c);
 * this file only maps the loop's calls onto numpush's API.
 *
 * Run: numpush-run -n 4 bench/bench_coll --colls bcast --sizes 8,1M --header
 */
#include <numpush/numpush.h>

#include <stdio.h>
#include <stdlib.h>

#include "coll_loop.h"

static np_comm *bx_world;

static int bx_init(int *argc, char ***argv)
{
    np_err e = np_init(argc, argv);
    if (e != NP_OK) {
        fprintf(stderr, "np_init: %s: %s\n", np_errname(e), np_last_error());
        return 1;
    }
    bx_world = np_comm_world();
    return 0;
}

static void bx_finalize(void)
{
    np_finalize();
}
static void bx_abort(int code)
{
    np_abort(bx_world, code);
}
static int bx_rank(void)
{
    return np_comm_rank(bx_world);
}
static int bx_size(void)
{
    return np_comm_size(bx_world);
}
static const char *bx_system(void)
{
    return "numpush";
}
static double bx_wtime(void)
{
    return np_wtime();
}
static int bx_barrier(void)
{
    return np_barrier(bx_world);
}

static int bx_bcast(void *buf, size_t bytes, int root)
{
    return np_bcast(buf, bytes, NP_BYTE, root, bx_world);
}

static int bx_scatter(const void *s, void *r, size_t bytes, int root)
{
    return np_scatter(s, r, bytes, NP_BYTE, root, bx_world);
}

static int bx_gather(const void *s, void *r, size_t bytes, int root)
{
    return np_gather(s, r, bytes, NP_BYTE, root, bx_world);
}

static int bx_allreduce_f64(const void *s, void *r, size_t count)
{
    return np_allreduce(s, r, count, NP_FLOAT64, NP_SUM, bx_world);
}

static int bx_reduce_f64(const void *s, void *r, size_t count, int root)
{
    return np_reduce(s, r, count, NP_FLOAT64, NP_SUM, root, bx_world);
}

static int bx_allgather(const void *s, void *r, size_t bytes)
{
    return np_allgather(s, r, bytes, NP_BYTE, bx_world);
}

static int bx_alltoall(const void *s, void *r, size_t bytes)
{
    return np_alltoall(s, r, bytes, NP_BYTE, bx_world);
}

/* The per-point statistics: sum or max of each value over the ranks. */
static int bx_stats(double *vals, int n, int max)
{
    return np_allreduce(NP_IN_PLACE, vals, (size_t)n, NP_FLOAT64, max ? NP_MAX : NP_SUM, bx_world);
}

/* Every collective of the public API exists; the MPI adapter has the same hook. */
static int bx_available(int coll)
{
    (void)coll;
    return 1;
}

static int bx_unimplemented(int rc)
{
    return rc == NP_ERR_NOT_IMPLEMENTED;
}

/* The numpush error name plus the detail of the failing call. */
static const char *bx_strerror(int rc)
{
    static char msg[512];
    snprintf(msg, sizeof msg, "%s (%s)", np_errname((np_err)rc), np_last_error());
    return msg;
}

int main(int argc, char **argv)
{
    return cl_main(argc, argv);
}
