/*
 * Communicators whose ranks span nodes: shared memory inside each node,
 * one leader per node over the fabric between them (hier.c).
 *
 * comm.c calls the lifetime hooks; the public entry points of the
 * collectives and of point to point hand a spanning communicator to the
 * npi_hier_* forms, which take the same arguments.
 */
#ifndef NUMPUSH_COLL_HIER_H
#define NUMPUSH_COLL_HIER_H

#include "boot.h"
#include "core/comm.h"
#include "npi.h"

/* Open the job's fabric (collective over the job; np_init, when the world
 * spans nodes).  Every rank takes part, so any two ranks can talk. */
np_err npi_hier_open(npi_boot *b);
/* Close it (np_finalize), after every communicator is gone. */
void npi_hier_close(void);

/* Give comm (spanning nodes, no segment) its node-local sub-communicator
 * and leader tables.  Collective over comm's ranks of each node. */
np_err npi_hier_create(np_comm *comm);
void npi_hier_destroy(np_comm *comm);

np_err npi_hier_barrier(np_comm *comm);
np_err npi_hier_bcast(void *buf, size_t count, np_dtype dt, int root, np_comm *comm);
np_err npi_hier_scatter(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, int root,
                        np_comm *comm);
np_err npi_hier_scatterv(const void *sendbuf, const size_t *counts, const size_t *displs,
                         void *recvbuf, size_t recvcount, np_dtype dt, int root, np_comm *comm);
np_err npi_hier_gather(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, int root,
                       np_comm *comm);
np_err npi_hier_gatherv(const void *sendbuf, size_t sendcount, void *recvbuf, const size_t *counts,
                        const size_t *displs, np_dtype dt, int root, np_comm *comm);
np_err npi_hier_allreduce(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, np_op op,
                          np_comm *comm);
np_err npi_hier_reduce(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, np_op op,
                       int root, np_comm *comm);
np_err npi_hier_allgather(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt,
                          np_comm *comm);
np_err npi_hier_alltoall(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt,
                         np_comm *comm);

/* Point to point on a spanning communicator: every peer over the fabric
 * (same-node peers too, through the loopback), so that NP_ANY_SOURCE
 * needs to watch one place. */
np_err npi_hier_send(const void *buf, size_t bytes, np_dtype dt, size_t count, int dest, int tag,
                     np_comm *comm);
np_err npi_hier_recv(void *buf, size_t cap, np_dtype dt, int src, int tag, np_comm *comm,
                     np_status *st);

/* A failure between nodes that can leave ranks out of step breaks the
 * communicator (hier_broken.c): npi_hier_usable refuses a broken one,
 * npi_hier_after breaks it when err is such a failure and returns err.
 * NPI_HIER_COLL runs a collective's npi_hier_* form between the two. */
np_err npi_hier_usable(np_comm *comm, const char *who);
np_err npi_hier_after(np_comm *comm, np_err err);
/* Mark comm's node-local segment broken, waking its ranks (hier.c). */
void npi_hier_break_node(np_comm *comm);

#define NPI_HIER_COLL(comm, who, call)                                                             \
    do {                                                                                           \
        np_err hier_e_ = npi_hier_usable((comm), (who));                                           \
        return hier_e_ != NP_OK ? hier_e_ : npi_hier_after((comm), (call));                        \
    } while (0)

/* Whether the public entry points must hand comm to npi_hier_*. */
static inline bool npi_hier_spans(const np_comm *comm)
{
    return comm && comm->magic == NPI_COMM_MAGIC && comm->hier != NULL;
}

#endif
