/*
 * Collective algorithms over point to point between nodes.
 *
 * The participants of a net algorithm are the leaders of the nodes a
 * communicator spans (one rank per node), numbered 0 .. n-1 in node order.
 * An algorithm sees only an npi_net: who the participants are on the
 * fabric, which call this is, and the caller's signature.  It never sees a
 * transport.  Every message carries a collective envelope with the
 * caller's signature, and every receive compares the sender's signature
 * with the receiver's, so ranks that disagree fail with NP_ERR_MISMATCH
 * naming both calls instead of overrunning a buffer.
 *
 * All functions are blocking and return NP_OK, NP_ERR_MISMATCH, NP_ERR_PEER
 * (the transport found a participant dead or its link down, which each
 * transport does within NUMPUSH_TIMEOUT), NP_ERR_TIMEOUT (a live
 * participant did not come within NUMPUSH_WAIT_TIMEOUT, when that is set),
 * NP_ERR_PROTOCOL or NP_ERR_NOMEM.  A live participant that joins late, say
 * after a minute of its own work, is waited for, as within a node.
 */
#ifndef NUMPUSH_COLL_NET_H
#define NUMPUSH_COLL_NET_H

#include "core/envelope.h"
#include "fabric/match.h"
#include "npi.h"

typedef struct npi_net {
    npi_fab *fab;
    uint64_t cid;        /* fabric comm id of this communicator's collective traffic */
    int n, me;           /* participants, and the caller's index among them */
    const int *peer;     /* participant index -> fabric (bootstrap) rank */
    int32_t tagbase;     /* the call's sequence number, shifted; steps are added */
    npi_coll_sig sig;    /* the caller's call, carried by and checked on every message */
    const char *who;     /* "np_bcast" ... for messages */
    uint64_t deadline;   /* npi_now_ns() time to give up on live peers (0: never) */
    npi_fab_req **alarm; /* where the posted receive of a mismatch alarm is kept, or NULL */
    int32_t *alarm_why;  /* where that alarm's reason lands */
} npi_net;

/* The step of the alarm a participant sends every other one when it finds
 * that the ranks disagree, so that those waiting for a message the
 * disagreeing ones will never send fail with NP_ERR_MISMATCH at once. */
#define NPI_NET_ALARM 255

/* Tag of step s (0..255) of the call: steps keep the phases of one call
 * apart; messages of one phase between two participants match in order. */
static inline int npi_net_tag(const npi_net *g, int step)
{
    return g->tagbase | (step & 0xff);
}

/* First element of participant i's slice when count elements are cut into
 * n slices as evenly as possible. */
static inline size_t npi_net_slice_lo(size_t count, int n, int i)
{
    size_t q = count / (size_t)n, m = count % (size_t)n;
    return q * (size_t)i + ((size_t)i < m ? (size_t)i : m);
}

/* ---------------------------------------------------------------- net.c: messages */

np_err npi_net_isend(npi_net *g, int to, int step, const void *buf, size_t bytes,
                     npi_fab_req **req);
np_err npi_net_irecv(npi_net *g, int from, int step, void *buf, size_t cap, npi_fab_req **req);
/* Post the call's alarm receive (*slot keeps it, its reason lands in
 * *why; what *slot held before, if anything, is withdrawn first). */
np_err npi_net_arm(npi_net *g, npi_fab_req **slot, int32_t *why);
/* Whether the alarm receive *slot of an earlier call (reason in why)
 * has arrived since that call ended: NP_ERR_MISMATCH with a message
 * saying so, else NP_OK.  Does not block. */
np_err npi_net_alarm_late(npi_net *g, npi_fab_req **slot, int32_t why);
/* Tell every other participant that this call is a mismatch: why is
 * NP_ERR_MISMATCH when the ranks disagree, or the argument error
 * (NP_ERR_ROOT, NP_ERR_NULL ...) of the rank that sends it, which need not
 * be a participant.  Each send waits at most 200 ms. */
void npi_net_alarm(npi_net *g, np_err why);
/* Blocking forms: post one request and wait for it. */
np_err npi_net_send(npi_net *g, int to, int step, const void *buf, size_t bytes);
np_err npi_net_recv(npi_net *g, int from, int step, void *buf, size_t cap);
/* Wait for one request; checks the sender's signature on receives. */
np_err npi_net_wait(npi_net *g, npi_fab_req **req);
/* Wait for n requests (NULL entries skipped); on the first error the others
 * are cancelled. */
np_err npi_net_waitall(npi_net *g, int n, npi_fab_req **reqs);
/* Fold a participant count that is not a power of two, for the
 * recursive-doubling family: of the first 2*extra participants
 * (extra = n - p, p the largest power of two <= n), each even one sends its
 * acc to its odd neighbour, which reduces it in (tmp is scratch), and then
 * waits for the final result in acc (step final_step).  *p is set; *nr is
 * the caller's index among the p that go on, or -1 for one folded out,
 * whose acc holds the result on return.  step carries the folded data. */
np_err npi_net_fold_in(npi_net *g, void *acc, void *tmp, size_t count, np_dtype dt, np_op op,
                       int step, int final_step, int *p, int *nr);
/* The other half of npi_net_fold_in: an odd participant among the first
 * 2*extra hands the result in acc back to its folded-out neighbour. */
np_err npi_net_fold_out(npi_net *g, const void *acc, size_t bytes, int p, int final_step);
/* Send to one participant and receive from another at once. */
np_err npi_net_sendrecv(npi_net *g, int to, const void *sbuf, size_t sbytes, int from, void *rbuf,
                        size_t rbytes, int step);

/* ---------------------------------------------------------------- net_tree.c */

np_err npi_net_bcast_binomial(npi_net *g, void *buf, size_t bytes, int root);
np_err npi_net_reduce_binomial(npi_net *g, void *acc, void *tmp, size_t count, np_dtype dt,
                               np_op op, int root);

/* ---------------------------------------------------------------- net_knomial.c */

/* k: the radix, 2 or more (k = 2 is the binomial tree). */
np_err npi_net_bcast_knomial(npi_net *g, void *buf, size_t bytes, int root, int k);
np_err npi_net_reduce_knomial(npi_net *g, void *acc, void *tmp, size_t count, np_dtype dt, np_op op,
                              int root, int k);

/* ---------------------------------------------------------------- net_rabenseifner.c */

/* Needs a commutative op; tmp holds count elements. */
np_err npi_net_allreduce_rabenseifner(npi_net *g, void *acc, void *tmp, size_t count, np_dtype dt,
                                      np_op op);

/* ---------------------------------------------------------------- net_recdbl.c */

np_err npi_net_barrier_dissemination(npi_net *g);
np_err npi_net_allreduce_recdbl(npi_net *g, void *acc, void *tmp, size_t count, np_dtype dt,
                                np_op op);

/* ---------------------------------------------------------------- net_ring.c */

np_err npi_net_allreduce_ring(npi_net *g, void *acc, void *tmp, size_t count, np_dtype dt,
                              np_op op);
/* Participant i's block is at buf + off[i], len[i] bytes; on return every
 * participant has every block. */
np_err npi_net_allgatherv_ring(npi_net *g, void *buf, const size_t *off, const size_t *len);

/* ---------------------------------------------------------------- net_bcast.c */

/* Called by the pipelined chain for each chunk once it is at this
 * participant (and on its way to the next one). */
typedef np_err (*npi_net_chunk_fn)(void *arg, size_t off, size_t len);

np_err npi_net_bcast_chain(npi_net *g, void *buf, size_t bytes, int root, size_t chunk,
                           npi_net_chunk_fn fn, void *arg);
np_err npi_net_bcast_scatter_allgather(npi_net *g, void *buf, size_t bytes, int root);

/* ---------------------------------------------------------------- net_scatter_gather.c */

/* Root receives participant i's block of len[i] bytes at rbuf + off[i]; the
 * others send their sbuf (sbytes). */
np_err npi_net_gatherv_linear(npi_net *g, int root, const void *sbuf, size_t sbytes, void *rbuf,
                              const size_t *off, const size_t *len);
/* Root sends sbuf + off[i] (len[i] bytes) to participant i; the others
 * receive rbytes into rbuf.  Root's own block is not copied. */
np_err npi_net_scatterv_linear(npi_net *g, int root, const void *sbuf, const size_t *off,
                               const size_t *len, void *rbuf, size_t rbytes);
/* Binomial forms for equal blocks of b bytes (buf holds n blocks at the
 * root; tmp holds n blocks elsewhere), log2(n) steps instead of n-1. */
np_err npi_net_gather_binomial(npi_net *g, int root, const void *sbuf, void *rbuf, void *tmp,
                               size_t b);
np_err npi_net_scatter_binomial(npi_net *g, int root, const void *sbuf, void *rbuf, void *tmp,
                                size_t b);

/* ---------------------------------------------------------------- net_alltoall.c */

/* Block for participant j is at sbuf + soff[j] (slen[j] bytes); the block
 * from j lands at rbuf + roff[j] (rlen[j] bytes). */
np_err npi_net_alltoallv_pairwise(npi_net *g, const void *sbuf, const size_t *soff,
                                  const size_t *slen, void *rbuf, const size_t *roff,
                                  const size_t *rlen);

/* Equal blocks of b bytes in participant order in sbuf and rbuf. */
np_err npi_net_alltoall_bruck(npi_net *g, const void *sbuf, void *rbuf, size_t b);

#endif
