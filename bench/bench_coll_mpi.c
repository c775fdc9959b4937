/*
 * bench_coll_mpi: the MPI reference for bench_coll.  Same loop (coll_loop.h),
 * mapped onto MPI.  bench/run builds it twice, with mpicc.openmpi and
 * mpicc.mpich, and launches each with its own mpirun.  The system column says
 * which library it ran on (from MPI_Get_library_version) unless --system says.
 *
 * Reductions are MPI_DOUBLE sums, as numpush's are NP_FLOAT64 sums.
 */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "coll_loop.h"

static int bx_init(int *argc, char ***argv)
{
    return MPI_Init(argc, argv) != MPI_SUCCESS;
}
static void bx_finalize(void)
{
    MPI_Finalize();
}
static void bx_abort(int code)
{
    MPI_Abort(MPI_COMM_WORLD, code);
}

static int bx_rank(void)
{
    int r;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

static int bx_size(void)
{
    int n;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

static const char *bx_system(void)
{
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len;
    MPI_Get_library_version(v, &len);
    if (strstr(v, "Open MPI"))
        return "openmpi";
    if (strstr(v, "MPICH"))
        return "mpich";
    return "mpi";
}

static double bx_wtime(void)
{
    return MPI_Wtime();
}
static int bx_barrier(void)
{
    return MPI_Barrier(MPI_COMM_WORLD);
}

/* MPI counts are int; the benchmark's largest block is 64 MiB, far below. */
static int bx_bcast(void *buf, size_t bytes, int root)
{
    return MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD);
}

static int bx_scatter(const void *s, void *r, size_t bytes, int root)
{
    return MPI_Scatter(s, (int)bytes, MPI_BYTE, r, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD);
}

static int bx_gather(const void *s, void *r, size_t bytes, int root)
{
    return MPI_Gather(s, (int)bytes, MPI_BYTE, r, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD);
}

static int bx_allreduce_f64(const void *s, void *r, size_t count)
{
    return MPI_Allreduce(s, r, (int)count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

static int bx_reduce_f64(const void *s, void *r, size_t count, int root)
{
    return MPI_Reduce(s, r, (int)count, MPI_DOUBLE, MPI_SUM, root, MPI_COMM_WORLD);
}

static int bx_allgather(const void *s, void *r, size_t bytes)
{
    return MPI_Allgather(s, (int)bytes, MPI_BYTE, r, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
}

static int bx_alltoall(const void *s, void *r, size_t bytes)
{
    return MPI_Alltoall(s, (int)bytes, MPI_BYTE, r, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
}

static int bx_stats(double *vals, int n, int max)
{
    return MPI_Allreduce(MPI_IN_PLACE, vals, n, MPI_DOUBLE, max ? MPI_MAX : MPI_SUM,
                         MPI_COMM_WORLD);
}

static const char *bx_strerror(int rc)
{
    static char msg[MPI_MAX_ERROR_STRING];
    int len;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "MPI error %d", rc);
    return msg;
}

static int bx_available(int coll)
{
    return coll >= 0;
}
static int bx_unimplemented(int rc)
{
    return rc < 0;
}

int main(int argc, char **argv)
{
    return cl_main(argc, argv);
}
