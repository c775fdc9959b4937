/*
 * numpush: collectives on typed buffers between processes.
 *
 * Conventions that hold for every function below unless its comment says
 * otherwise:
 *
 *  - Every call returns np_err; NP_OK is 0.  On any other value, nothing the
 *    caller owns was modified (bad input is checked before any data moves),
 *    and np_last_error() returns a sentence saying which rank, which call, and
 *    what was expected against what was seen.
 *  - Arguments follow MPI's order with the communicator last.  Counts are
 *    size_t (64-bit) and count elements per rank, as in MPI.
 *  - Buffers stay owned by the caller.  numpush never keeps a pointer to a
 *    user buffer after the call returns.
 *  - A NULL buffer is allowed only with a count of 0 (NP_ERR_NULL otherwise).
 *  - Collectives must be called by every rank of the communicator in the
 *    same order with matching arguments; ranks that disagree get
 *    NP_ERR_MISMATCH rather than a hang or an overrun.
 *  - Functions are thread-compatible: one thread per communicator at a time.
 */
#ifndef NUMPUSH_H
#define NUMPUSH_H

#include <stddef.h>
#include <stdint.h>

#include <numpush/errors.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NP_VERSION_MAJOR  0
#define NP_VERSION_MINOR  1
#define NP_VERSION_PATCH  0
#define NP_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------- errors */

/* Error codes, generated from NP_ERROR_LIST in <numpush/errors.h>. */
typedef enum np_err {
#define NP_ERR_ENUM_(name, value, text) NP_##name = value,
    NP_ERROR_LIST(NP_ERR_ENUM_)
#undef NP_ERR_ENUM_
        NP_ERR_LAST_
} np_err;

/* A fixed English description of e ("invalid argument"); never NULL, also for
 * values outside the enum.  The string is static. */
const char *np_strerror(np_err e);

/* The symbolic name of e without the prefix ("ERR_ARG", "OK"); "UNKNOWN" for
 * values outside the enum.  The string is static. */
const char *np_errname(np_err e);

/* The detail message of the last error raised on the calling thread
 * ("rank 2: np_bcast: root 7 out of range for a communicator of size 4"), or
 * "" if none has been raised.  The string belongs to numpush and stays valid
 * until the calling thread's next numpush call. */
const char *np_last_error(void);

/* ---------------------------------------------------------------- dtypes */

/* Element types.  Values are stable (they travel in envelopes). */
typedef enum np_dtype {
    NP_INT8 = 0,
    NP_INT16 = 1,
    NP_INT32 = 2,
    NP_INT64 = 3,
    NP_UINT8 = 4,
    NP_UINT16 = 5,
    NP_UINT32 = 6,
    NP_UINT64 = 7,
    NP_FLOAT32 = 8,
    NP_FLOAT64 = 9,
    NP_COMPLEX64 = 10,  /* two float32: real, imaginary */
    NP_COMPLEX128 = 11, /* two float64: real, imaginary */
    NP_BOOL = 12,       /* one byte, 0 or 1 */
    NP_BYTE = 13,       /* opaque byte: moves, never reduces */
    NP_DTYPE_COUNT_ = 14
} np_dtype;

/* Size in bytes of one element of dt, or 0 if dt is not a valid dtype. */
size_t np_dtype_size(np_dtype dt);

/* Lower-case name of dt ("float64"), or NULL if dt is not a valid dtype. */
const char *np_dtype_name(np_dtype dt);

/* ---------------------------------------------------------------- ops */

/* Reduction operations.  Built-in ops are the constants below; user ops get
 * handles from np_op_create().  Which (dtype, op) pairs are valid:
 *   SUM, PROD: integers, floats and complex (not bool or byte);
 *   MIN, MAX: integers and floats, not complex;
 *   LAND, LOR, LXOR: integers and bool (as in MPI, not floats);
 *   BAND, BOR, BXOR: integers, bool and byte.
 * Any other pair gives NP_ERR_OP. */
typedef int32_t np_op;
enum {
    NP_SUM = 0,
    NP_PROD = 1,
    NP_MIN = 2,
    NP_MAX = 3,
    NP_LAND = 4,
    NP_LOR = 5,
    NP_LXOR = 6,
    NP_BAND = 7,
    NP_BOR = 8,
    NP_BXOR = 9,
    NP_OP_BUILTIN_COUNT_ = 10
};
#define NP_OP_NULL ((np_op)-1)

/* A user reduction: combine count elements of in into inout
 * (inout[i] = in[i] (op) inout[i]).  It must not keep the pointers. */
typedef void (*np_user_fn)(const void *in, void *inout, size_t count, np_dtype dt);

/* Register fn as a reduction op.  commutative != 0 lets numpush reorder
 * operands; with 0 the result is combined in rank order.  On success *op
 * is a new handle.  Errors: NP_ERR_NULL (fn or op NULL), NP_ERR_NOMEM when
 * the op table is full. */
np_err np_op_create(np_user_fn fn, int commutative, np_op *op);

/* Release a user op and set *op to NP_OP_NULL.  Errors: NP_ERR_ARG for a
 * built-in op or a handle that is not live, NP_ERR_NULL for a NULL op. */
np_err np_op_free(np_op *op);

/* Name of a built-in op ("sum"), "user" for a live user op, NULL otherwise. */
const char *np_op_name(np_op op);

/* Local reduction, like MPI_Reduce_local: inout[i] = in[i] (op) inout[i]
 * for i < count.  Errors: NP_ERR_DTYPE, NP_ERR_OP (invalid pair or handle),
 * NP_ERR_NULL.  Floating-point results are computed left to right in a fixed
 * order, so the same inputs give the same bits every time. */
np_err np_reduce_local(const void *in, void *inout, size_t count, np_dtype dt, np_op op);

/* ---------------------------------------------------------------- constants */

/* Pass as sendbuf where MPI allows MPI_IN_PLACE. */
#define NP_IN_PLACE   ((const void *)(intptr_t)-1)
#define NP_ANY_SOURCE (-1)
#define NP_ANY_TAG    (-1)
#define NP_UNDEFINED  (-32766) /* color for np_comm_split: not in any new comm */
#define NP_TAG_MAX    0x3fffffff

/* Split types for np_comm_split_type. */
enum { NP_COMM_TYPE_NODE = 1 };

typedef struct np_comm np_comm;

/* Status of a completed receive. */
typedef struct np_status {
    int source;   /* rank the message came from */
    int tag;      /* its tag */
    size_t count; /* elements received */
    np_err error;
} np_status;

/* ---------------------------------------------------------------- lifetime */

/* Start numpush: bootstrap from whichever launcher started the process
 * (numpush-run, PMIx, PMI-1, env://, or none: a singleton).  argc/argv may be
 * NULL.  Errors: NP_ERR_INIT if already initialised, NP_ERR_BOOTSTRAP when
 * the launcher's environment is inconsistent or unreachable. */
np_err np_init(int *argc, char ***argv);

/* Finish: release every communicator and shared segment.  Collective over
 * the world.  Errors: NP_ERR_NOT_INIT. */
np_err np_finalize(void);

/* Nonzero between a successful np_init and np_finalize. */
int np_initialized(void);

/* Terminate the whole job with exit code code (never returns). */
void np_abort(np_comm *comm, int code);

/* Seconds since an arbitrary fixed point in the past (monotonic clock). */
double np_wtime(void);

/* ---------------------------------------------------------------- communicators */

/* The communicator of every rank of the job, or NULL before np_init. */
np_comm *np_comm_world(void);

/* Rank of the caller in comm, or -1 if comm is NULL. */
int np_comm_rank(const np_comm *comm);

/* Number of ranks in comm, or -1 if comm is NULL. */
int np_comm_size(const np_comm *comm);

/* Collective over comm: ranks with the same color form a new communicator,
 * ordered by key then by rank in comm.  color NP_UNDEFINED gives *out NULL.
 * Errors: NP_ERR_COMM, NP_ERR_NULL, NP_ERR_ARG (negative color other than
 * NP_UNDEFINED), NP_ERR_NOMEM. */
np_err np_comm_split(np_comm *comm, int color, int key, np_comm **out);

/* Collective over comm: split by type; NP_COMM_TYPE_NODE groups the ranks
 * that share a node (and so can share memory). */
np_err np_comm_split_type(np_comm *comm, int type, int key, np_comm **out);

/* Collective over comm: a new communicator with the same ranks whose
 * messages never mix with comm's. */
np_err np_comm_dup(np_comm *comm, np_comm **out);

/* Collective over *comm: release it and set *comm to NULL.  The world cannot
 * be freed (NP_ERR_COMM). */
np_err np_comm_free(np_comm **comm);

/* ---------------------------------------------------------------- collectives */

/* Block until every rank of comm has entered the barrier. */
np_err np_barrier(np_comm *comm);

/* Copy count elements of buf at root into buf at every other rank. */
np_err np_bcast(void *buf, size_t count, np_dtype dt, int root, np_comm *comm);

/* Root's sendbuf holds size*count elements; rank i receives the i-th block of
 * count into recvbuf.  sendbuf is read only at root.  At root, recvbuf may be
 * NP_IN_PLACE (its block stays in sendbuf). */
np_err np_scatter(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, int root,
                  np_comm *comm);

/* Every rank's count elements land in block i of root's recvbuf (size*count
 * elements, used only at root).  At root, sendbuf may be NP_IN_PLACE (its
 * block is already in place in recvbuf). */
np_err np_gather(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, int root,
                 np_comm *comm);

/* recvbuf at every rank gets the elementwise reduction over all ranks.
 * sendbuf may be NP_IN_PLACE (input taken from recvbuf). */
np_err np_allreduce(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, np_op op,
                    np_comm *comm);

/* As np_allreduce with the result only at root (recvbuf ignored elsewhere). */
np_err np_reduce(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, np_op op, int root,
                 np_comm *comm);

/* recvbuf (size*count elements) at every rank gets every rank's sendbuf in
 * rank order.  sendbuf may be NP_IN_PLACE (own block already in recvbuf). */
np_err np_allgather(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, np_comm *comm);

/* Block j of rank i's sendbuf lands in block i of rank j's recvbuf; blocks
 * are count elements.  sendbuf may be NP_IN_PLACE. */
np_err np_alltoall(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, np_comm *comm);

/* Scatter with a count and a displacement (in elements) per rank, read at
 * root only.  recvcount must equal counts[rank] (else NP_ERR_MISMATCH). */
np_err np_scatterv(const void *sendbuf, const size_t *counts, const size_t *displs, void *recvbuf,
                   size_t recvcount, np_dtype dt, int root, np_comm *comm);

/* Gather with a count and displacement per rank, read at root only.
 * sendcount must equal counts[rank] (else NP_ERR_MISMATCH). */
np_err np_gatherv(const void *sendbuf, size_t sendcount, void *recvbuf, const size_t *counts,
                  const size_t *displs, np_dtype dt, int root, np_comm *comm);

/* ---------------------------------------------------------------- point to point */

/* Blocking send of count elements to dest with tag (0..NP_TAG_MAX).
 * Returns once buf may be reused. */
np_err np_send(const void *buf, size_t count, np_dtype dt, int dest, int tag, np_comm *comm);

/* Blocking receive of at most count elements from src (or NP_ANY_SOURCE)
 * with tag (or NP_ANY_TAG).  Messages from one source with one tag arrive
 * in the order sent.  st may be NULL.  A longer message is NP_ERR_TRUNCATE. */
np_err np_recv(void *buf, size_t count, np_dtype dt, int src, int tag, np_comm *comm,
               np_status *st);

/* ---------------------------------------------------------------- shared memory */

typedef struct np_shm_win np_shm_win;

/* Collective over comm, whose ranks must share a node: allocate size bytes
 * per rank of one node-shared segment; *ptr is the caller's part.
 * Errors: NP_ERR_COMM (ranks on several nodes), NP_ERR_NOMEM, NP_ERR_SYSTEM. */
np_err np_shm_alloc(size_t size, np_comm *comm, void **ptr, np_shm_win **win);

/* Locate rank's part of win: its address in the caller's mapping and size. */
np_err np_shm_query(np_shm_win *win, int rank, void **ptr, size_t *size);

/* Collective: release win and set *win to NULL. */
np_err np_shm_free(np_shm_win **win);

#ifdef __cplusplus
}
#endif
#endif
