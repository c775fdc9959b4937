/*
 * The fabric: how ranks on different nodes exchange messages.
 *
 * One ops struct (npi_fab_ops) is filled by every transport, one file each
 * (tcp.c, zmq.c; ofi.c and tipc.c later).  A transport moves whole messages
 * between endpoints, reliably and in order per pair of endpoints (libfabric's
 * FI_EP_RDM semantics with FI_ORDER_SAS); it knows nothing of tags,
 * communicators or collectives.  Matching (match.c, match.h) sits on top of
 * any transport, and the collectives see only match.h.
 *
 * A message is a header (the msgpack envelope, at most NPI_FAB_HDR_MAX bytes)
 * and a payload of any length, including zero and beyond 2^32.  On receipt
 * the transport hands the header up through the incoming callback, which
 * answers where the payload should go (the user's buffer when a posted
 * receive matches, an unexpected-message buffer otherwise); the transport
 * then places the payload there, straight from the wire when it can.  That
 * shape fits the transports to come without changing this struct:
 *
 *  - libfabric tagged RDM endpoints: peek the header with FI_PEEK | FI_CLAIM
 *    (or receive eager messages into a multi-receive buffer), call incoming,
 *    then claim the message into {header scratch, dst}; the provider
 *    receives rendezvous-sized payloads straight into dst.
 *  - TIPC RDM sockets: recvmsg with MSG_PEEK for the header, then recvmsg
 *    into {header scratch, dst}, fragmenting payloads above TIPC's 66 kB
 *    message limit inside the transport.
 *
 * Peers are numbered 0..size-1 (the bootstrap's global ranks); an endpoint
 * learns a peer's address bytes through the bootstrap store and hands them
 * to connect.
 */
#ifndef NUMPUSH_FABRIC_H
#define NUMPUSH_FABRIC_H

#include <sys/uio.h>

#include "npi.h"

/* The largest message header a transport must carry (an encoded envelope is
 * at most NPI_ENVELOPE_MAX bytes; the rest is room for later fields). */
#define NPI_FAB_HDR_MAX 240

/* The largest address getname returns. */
#define NPI_FAB_ADDR_MAX 128

/* The most iovec entries send accepts (header + up to 3 payload pieces). */
#define NPI_FAB_IOV_MAX 4

typedef struct npi_fab_ep npi_fab_ep;

/*
 * Callbacks from the transport up to the matching layer.  All of them run
 * inside progress, cancel, disconnect or close (send_done also inside send,
 * when the bytes leave at once), on the thread that called it, never
 * from a transport's own thread, so the matching layer needs no locks.  A
 * callback must not call progress or close on the same endpoint.
 */
typedef struct npi_fab_upcalls {
    void *arg; /* first argument of every callback */

    /* A message from peer arrived: hdr/hdr_len is its header (valid only
     * during the call), payload_len the size of what follows.  Set *dst to a
     * buffer of at least payload_len bytes (any value when payload_len is 0),
     * or to NULL to have the payload discarded (a truncated receive), and
     * *ctx to what the matching recv_done call should carry.  The transport
     * then places the payload in *dst: straight from the wire where it can
     * (tcp), else by one copy out of its own buffer (zmq).  Returning an
     * error (a malformed header: NP_ERR_PROTOCOL) makes the transport drop
     * the peer's connection and report peer_error(peer, that error) without
     * calling recv_done. */
    np_err (*incoming)(void *arg, int peer, const void *hdr, size_t hdr_len, uint64_t payload_len,
                       void **dst, void **ctx);

    /* The payload announced by incoming has been placed in *dst (err NP_OK),
     * or could not be, because the peer died mid-message (NP_ERR_PEER) or
     * sent garbage (NP_ERR_PROTOCOL).  After this call the transport no
     * longer touches dst. */
    void (*recv_done)(void *arg, void *ctx, np_err err);

    /* A posted send has completed: the transport no longer touches its
     * buffers (NP_OK: the bytes left this process; an error: they may not
     * have, and the peer's connection is gone).  May be called before send
     * returns, when the bytes left at once. */
    void (*send_done)(void *arg, void *ctx, np_err err);

    /* The connection to peer is gone (it closed, reset, timed out, or sent
     * garbage) with error err (NP_ERR_PEER or NP_ERR_PROTOCOL).  Called
     * after the send_done / recv_done calls of everything pending on that
     * peer.  Later sends to the peer fail with err. */
    void (*peer_error)(void *arg, int peer, np_err err);
} npi_fab_upcalls;

/* What open needs to know. */
typedef struct npi_fab_attr {
    int rank; /* this endpoint's peer number */
    int size; /* number of peers, this one included */
    npi_fab_upcalls up;
    double timeout; /* seconds: connection setup and dead-peer detection */
} npi_fab_attr;

/*
 * The transport ops.  Fill by field name; begin with size so that slots can
 * be appended later and the caller can tell whether a transport has them
 * (libfabric's convention).  Every slot returns np_err and records a detail
 * message with npi_error on failure.  No slot is thread-safe: one thread
 * drives an endpoint at a time.
 */
typedef struct npi_fab_ops {
    size_t size;      /* sizeof(npi_fab_ops) as compiled into the transport */
    const char *name; /* "tcp", "zmq", "tipc", "ofi": the NUMPUSH_FABRIC value */

    /* Whether the transport can work in this process (library present,
     * kernel support, provider found).  Cheap, nonblocking, no state kept.
     * Errors: NP_ERR_TRANSPORT with a detail message saying why not. */
    np_err (*probe)(void);

    /* Open an endpoint: create its sockets or queues and start listening.
     * Blocking (briefly).  attr is copied.  Errors: NP_ERR_TRANSPORT,
     * NP_ERR_SYSTEM, NP_ERR_NOMEM, NP_ERR_CONFIG. */
    np_err (*open)(const npi_fab_attr *attr, npi_fab_ep **ep);

    /* Copy the endpoint's address (opaque bytes, at most NPI_FAB_ADDR_MAX)
     * into addr and its length into *len, for the bootstrap store.
     * Nonblocking.  Errors: NP_ERR_TRUNCATE if cap is too small. */
    np_err (*getname)(npi_fab_ep *ep, void *addr, size_t cap, size_t *len);

    /* Tell the endpoint peer's address (bytes from that peer's getname);
     * the transport may start connecting now or on first use.  Nonblocking:
     * a connection still being set up is finished by progress, and sends
     * posted before then wait for it.  addr is copied.  Errors: NP_ERR_ARG
     * (peer out of range or address malformed), NP_ERR_SYSTEM. */
    np_err (*connect)(npi_fab_ep *ep, int peer, const void *addr, size_t len);

    /* Post a message to peer: iov[0] is the header (1..NPI_FAB_HDR_MAX
     * bytes), iov[1..iovcnt-1] the payload (any length, entries may be 0
     * bytes).  Nonblocking.  Not copied: the caller keeps the header and
     * payload buffers alive and unchanged until send_done(ctx) (the iovec
     * array itself may be reused at once).  Messages posted to one peer
     * leave in posting order.  Errors (returned at once, no send_done
     * follows): NP_ERR_ARG, NP_ERR_PEER or NP_ERR_PROTOCOL (the peer's
     * connection is already gone), NP_ERR_NOMEM. */
    np_err (*send)(npi_fab_ep *ep, int peer, const struct iovec *iov, int iovcnt, void *ctx);

    /* Make progress: move bytes, accept connections, run the callbacks.
     * Waits up to timeout_ms (0: poll and return; -1: until something
     * happens) for the first event, then handles everything ready without
     * waiting again.  Errors: only fatal ones (NP_ERR_SYSTEM); a peer's
     * failure is reported through peer_error, not here. */
    np_err (*progress)(npi_fab_ep *ep, int timeout_ms);

    /* Withdraw a posted send.  If none of its bytes has left, it is removed
     * and send_done(ctx, err) is called now; otherwise the stream to peer
     * cannot be kept consistent, so the peer's connection is dropped as by
     * disconnect(peer, err).  Nonblocking.  Errors: NP_ERR_ARG if ctx is
     * not a pending send of this endpoint. */
    np_err (*cancel)(npi_fab_ep *ep, void *ctx, np_err err);

    /* Drop the connection to peer (used after an error above the
     * transport, such as a signature mismatch that leaves the stream in an
     * unknown state): everything pending on it completes with err, then
     * peer_error(peer, err).  Nonblocking.  Errors: NP_ERR_ARG. */
    np_err (*disconnect)(npi_fab_ep *ep, int peer, np_err err);

    /* Close the endpoint: pending operations complete with NP_ERR_PEER
     * through their callbacks, then every resource is released.  Blocking
     * for at most linger_ms while queued sends drain. */
    void (*close)(npi_fab_ep *ep, int linger_ms);

    /* Optional (NULL: not offered; check size first).  The payload of an
     * incoming message still arriving, whose incoming upcall set ctx, goes
     * to dst from now on (NULL: discard the rest).  The bytes not yet
     * placed land at dst + *placed, where *placed is how many the
     * transport had already put into the old destination; the caller moves
     * those itself.  recv_done(ctx) follows as before.  This is what lets a
     * receive posted just after its large message began to arrive take
     * the rest straight into the user's buffer instead of a copy at the
     * end.  Nonblocking.  Errors: NP_ERR_ARG if no payload of ctx is under
     * way (it completed already, or the transport placed it whole). */
    np_err (*redirect)(npi_fab_ep *ep, void *ctx, void *dst, uint64_t *placed);

    /* Optional (NULL: not offered; check size first).  The caller is about
     * to wait for a message from peer, or for a send to it to complete.  A
     * transport that watches only the peers it has exchanged messages with
     * (ofi: its heartbeats) or that are connected (zmq) watches this one
     * from now on too, so that a peer that died before its first message
     * fails the wait with NP_ERR_PEER rather than leaving it to
     * NUMPUSH_WAIT_TIMEOUT (a rank waiting around a ring for a neighbour
     * it has never heard from).  Nonblocking.  Errors: NP_ERR_ARG if peer
     * is out of range. */
    np_err (*expect)(npi_fab_ep *ep, int peer);
} npi_fab_ops;

/*
 * The transports built into this library, in default order: the first whose
 * probe succeeds is used unless NUMPUSH_FABRIC names one.
 *
 * Why tcp before zmq: it had the lower small-message latency and about twice
 * the large-message bandwidth in the one run that measured both next to
 * iperf3 (bench/bench_fabric.sh, 2-core AMD
 * EPYC VM shared with other builds, load average about 9, Debian 12, libzmq
 * 4.3.4; one-way latency from ping-pong, bandwidth from windows of sends):
 *
 *                    loopback                 veth pair between namespaces
 *                    tcp         zmq          tcp          zmq
 *   8 B latency      10.9 us     13.4 us      3.5 us       13.4 us
 *   4 KiB latency    10.2 us     13.2 us      18.6 us      14.5 us
 *   1 MiB latency    0.48 ms     0.68 ms      1.8 ms       1.1 ms
 *   64 MiB latency   48 ms       115 ms       67 ms        131 ms
 *   64 MiB bandwidth 1323 MB/s   572 MB/s     976 MB/s     478 MB/s
 *   iperf3 (same run, mean of before and after): 1528 MB/s loopback,
 *   746 MB/s veth; tcp reached 0.87x and 1.31x of it, zmq 0.37x and 0.64x.
 *
 * tcp receives payloads straight into the user's buffer and needs no helper
 * thread; zmq copies every received payload once more (out of its own
 * message) and passes every message through an I/O thread, which on two
 * cores costs both latency and, for large messages, a whole extra pass over
 * memory.  zmq's one win is small-message streaming bandwidth (its I/O
 * thread batches writes; tcp makes one sendmsg per message), which a
 * collective rarely depends on.  zmq also won the 4 KiB and 1 MiB
 * latencies on the veth pair in that run; the machine was loaded enough
 * (iperf3 moved by a third between its two runs) that mid-size figures
 * should be re-measured on a quiet machine before any threshold relies on
 * them.  ofi and tipc will be placed by the same
 * measurement when they land (issue 9).
 */
extern const npi_fab_ops npi_fab_tcp_ops;
#ifdef NPI_HAVE_ZMQ
extern const npi_fab_ops npi_fab_zmq_ops;
#endif

/* NULL-terminated default list (see above); defined in match.c. */
extern const npi_fab_ops *const npi_fab_transports[];

/* The built-in transport called name, or NULL. */
const npi_fab_ops *npi_fab_find(const char *name);

/* How long a transport's progress polls without sleeping before it sleeps
 * in its wait, as long as the shared-memory waits yield (WAIT_YIELD_NS): a
 * reply often comes within a round trip, and sleeping costs the wake-up of
 * an idle core, 35 to 60 us per message on the VMs here.  Without polling
 * tcp's 8 B ping-pong took 41-45 us instead of 4; with 50 us, waits that
 * just outlast it (a barrier waiting for a peer's 64 KiB receive) still
 * paid it, and a 64 KiB bcast between two namespace hosts flipped between
 * 20 and 65 us from run to run; with 200 us it stays at 20-26. */
#define NPI_FAB_SPIN_NS (200 * 1000)

/* The waiting half of a progress call: poll_once(arg, 0) until it reports
 * something (non-zero) or NPI_FAB_SPIN_NS pass, yielding the core between
 * polls to any rank (or library thread) that wants it; then, if still
 * nothing, poll_once(arg, timeout_ms), which may sleep.  timeout_ms 0
 * polls once.  Returns poll_once's last result. */
int npi_fab_poll_spin(int (*poll_once)(void *arg, int timeout_ms), void *arg, int timeout_ms);

/* How long sent data may wait for any acknowledgement from the peer's host
 * before the host counts as gone: half of NUMPUSH_TIMEOUT (timeout, in
 * seconds), at least a second, in milliseconds, so that the survivor
 * reports NP_ERR_PEER within the timeout. */
static inline unsigned int npi_fab_ack_limit_ms(double timeout)
{
    unsigned int ms = (unsigned int)(timeout * 500);
    return ms < 1000 ? 1000 : ms;
}

#endif
