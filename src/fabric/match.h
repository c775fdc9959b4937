/*
 * Point-to-point messages between ranks over the fabric, with MPI matching.
 *
 * This is the interface collective algorithms use between nodes; they never
 * see a transport.  Every message carries an envelope (src/core/envelope.h)
 * in front of its payload.  A receive matches on (comm id, source or
 * NP_ANY_SOURCE, tag or NP_ANY_TAG); messages that arrive before their
 * receive is posted are queued as unexpected; messages from one source are
 * matched in the order they were sent (MPI's non-overtaking rule).  Send
 * buffers are never copied: the transport reads the caller's buffer, which
 * must stay untouched until the send completes.  Payloads whose receive is
 * already posted go straight into the receive buffer where the transport
 * allows it (tcp); an unexpected message costs one copy when it is
 * matched.
 *
 * Ranks here are fabric peers: the bootstrap's global ranks (npi_boot.rank).
 * A communicator layer maps its own ranks to these.
 *
 * Not thread-safe: one thread drives a npi_fab at a time.  Progress happens
 * only inside these calls (test, wait, progress, and the blocking forms).
 *
 * Typical use by a collective:
 *
 *     npi_fab_req *r[2];
 *     uint64_t dl = npi_fab_deadline(fab);
 *     err = npi_fab_irecv(fab, left, comm_id, tag, rbuf, n, &r[0]);
 *     if (!err) err = npi_fab_isend(fab, right, comm_id, tag, sbuf, n, &r[1]);
 *     if (!err) err = npi_fab_waitall(fab, 2, r, dl, NULL);
 */
#ifndef NUMPUSH_FABRIC_MATCH_H
#define NUMPUSH_FABRIC_MATCH_H

#include "npi.h"
#include "boot.h"
#include "envelope.h"

typedef struct npi_fab npi_fab;
typedef struct npi_fab_req npi_fab_req;

/* What a completed request reports. */
typedef struct npi_fab_status {
    int source;       /* receives: the sender's fabric rank (sends: the destination) */
    int tag;          /* the message's tag */
    uint64_t bytes;   /* payload bytes received (or sent) */
    np_err error;     /* the request's own result */
    npi_envelope env; /* receives: the whole envelope, for collective signature checks */
} npi_fab_status;

/*
 * Open the fabric: collective over every rank of the bootstrap (each calls
 * it, since it fences the store).  Ranks with participate false publish
 * nothing and get *out NULL, so a job whose ranks share one node opens no
 * socket.  transport NULL means NUMPUSH_FABRIC, or if that is empty the first
 * transport of the default list whose probe succeeds.  Each participant
 * publishes its address under "fab.<transport>.<rank>", fences, then
 * connects to every other participant.  Blocking.
 * Errors: NP_ERR_TRANSPORT (unknown or unavailable transport), NP_ERR_CONFIG,
 * NP_ERR_BOOTSTRAP / NP_ERR_TIMEOUT (from the store), NP_ERR_SYSTEM,
 * NP_ERR_NOMEM.
 */
np_err npi_fab_open(npi_boot *boot, const char *transport, bool participate, npi_fab **out);

/* Close: pending requests complete with NP_ERR_PEER (their handles stay
 * valid only to be freed by npi_fab_req_free; better wait on them first),
 * queued sends get up to linger_ms to drain.  *fab becomes NULL. */
void npi_fab_close(npi_fab **fab, int linger_ms);

const char *npi_fab_transport_name(const npi_fab *fab);
int npi_fab_rank(const npi_fab *fab);
/* Why peer is gone, as its transport reported it; "" while it is alive. */
const char *npi_fab_peer_why(const npi_fab *fab, int peer);
int npi_fab_size(const npi_fab *fab);

/* now + NUMPUSH_TIMEOUT, in npi_now_ns() units: the usual deadline. */
uint64_t npi_fab_deadline(const npi_fab *fab);

/*
 * Post a send of bytes at buf to peer on comm_id with tag (0..INT32_MAX).
 * Nonblocking; buf is not copied and must stay unchanged until the request
 * completes.  A send completes when its bytes have left this process, not
 * when they are received.  Errors now: NP_ERR_RANK, NP_ERR_TAG, NP_ERR_NULL,
 * NP_ERR_PEER (peer known dead), NP_ERR_NOMEM.  Errors at completion:
 * NP_ERR_PEER, NP_ERR_PROTOCOL.
 */
np_err npi_fab_isend(npi_fab *fab, int peer, uint64_t comm_id, int tag, const void *buf,
                     size_t bytes, npi_fab_req **req);

/* As npi_fab_isend with a caller-filled envelope (kind, dtype, count,
 * collective, root, op, comm id, tag), for collectives that want receivers
 * to check signatures.  source, seq and payload_len are filled here. */
np_err npi_fab_isend_env(npi_fab *fab, int peer, const npi_envelope *env, const void *buf,
                         size_t bytes, npi_fab_req **req);

/*
 * Post a receive of at most cap bytes into buf from peer (or NP_ANY_SOURCE)
 * on comm_id with tag (or NP_ANY_TAG).  Nonblocking; buf belongs to the
 * fabric until the request completes.  A longer message completes the
 * request with NP_ERR_TRUNCATE (its bytes are discarded, status.bytes says
 * how many were sent).  Errors now: NP_ERR_RANK, NP_ERR_TAG, NP_ERR_NULL,
 * NP_ERR_PEER (peer known dead), NP_ERR_NOMEM.  Errors at completion:
 * NP_ERR_TRUNCATE, NP_ERR_PEER (the source, or for NP_ANY_SOURCE any peer,
 * died), NP_ERR_PROTOCOL (the source sent garbage).
 */
np_err npi_fab_irecv(npi_fab *fab, int peer, uint64_t comm_id, int tag, void *buf, size_t cap,
                     npi_fab_req **req);

/*
 * Make progress once, then report whether *req has completed.  If it has,
 * *done is true, *st (may be NULL) is filled, the request is freed, *req
 * becomes NULL, and the request's own result is returned.  Otherwise
 * NP_OK and *done false.  Nonblocking.
 */
np_err npi_fab_test(npi_fab *fab, npi_fab_req **req, bool *done, npi_fab_status *st);

/*
 * Progress until *req completes or deadline_ns (npi_now_ns() clock; 0: no
 * deadline) passes.  On completion as npi_fab_test.  On the deadline:
 * NP_ERR_TIMEOUT, and the request stays posted (*req unchanged) so the caller
 * may wait again or npi_fab_cancel it.  Blocks in the transport's poll, not
 * in a busy loop.
 */
np_err npi_fab_wait(npi_fab *fab, npi_fab_req **req, uint64_t deadline_ns, npi_fab_status *st);

/* Wait for all n requests (NULL entries are skipped).  Returns the first
 * error among them (NP_ERR_TIMEOUT if the deadline passed first, leaving
 * the unfinished ones posted); st, if not NULL, has n entries. */
np_err npi_fab_waitall(npi_fab *fab, int n, npi_fab_req **reqs, uint64_t deadline_ns,
                       npi_fab_status *st);

/* Withdraw a request and free it (*req becomes NULL).  A receive that has
 * not started is simply removed; one whose payload is arriving is dropped
 * and the payload discarded.  A send whose bytes began leaving forces the
 * transport to drop the connection to its peer (the stream cannot be
 * resynchronised), so later traffic with that peer fails with NP_ERR_PEER. */
np_err npi_fab_cancel(npi_fab *fab, npi_fab_req **req);

/* Drive the transport: wait up to timeout_ms (0: poll) for events. */
np_err npi_fab_progress(npi_fab *fab, int timeout_ms);

/* Blocking forms with the NUMPUSH_TIMEOUT deadline.  On a timeout the
 * request is cancelled before returning NP_ERR_TIMEOUT. */
np_err npi_fab_send(npi_fab *fab, int peer, uint64_t comm_id, int tag, const void *buf,
                    size_t bytes);
np_err npi_fab_recv(npi_fab *fab, int peer, uint64_t comm_id, int tag, void *buf, size_t cap,
                    npi_fab_status *st);

/* Whether the fabric has seen peer fail (and with what: NP_ERR_PEER or
 * NP_ERR_PROTOCOL); NP_OK for a live peer. */
np_err npi_fab_peer_state(const npi_fab *fab, int peer);

/* For the conformance tests: post a message whose header is hdr as given
 * (not an envelope built here), to check that receivers reject garbage.
 * Blocking until it has left; payload may be NULL when bytes is 0. */
np_err npi_fab_send_raw(npi_fab *fab, int peer, const void *hdr, size_t hdr_len,
                        const void *payload, size_t bytes);

/* For the conformance tests: the transport underneath. */
const struct npi_fab_ops *npi_fab_ops_of(const npi_fab *fab);
struct npi_fab_ep *npi_fab_ep_of(npi_fab *fab);

#endif
