/*
 * MPI-style matching over any fabric transport (see match.h for the API and
 * fabric.h for the transport contract).
 *
 * Posted receives and unexpected messages are two FIFO lists.  Matching
 * happens when a message's header arrives (the transport delivers headers in
 * order per peer), which is what makes MPI's non-overtaking rule hold: an
 * incoming message takes the oldest posted receive that fits, and a new
 * receive takes the oldest unexpected message that fits.  A per-peer
 * sequence number in every envelope lets the receiver prove that order and
 * reject a stream that repeated or reordered a message.  A forward gap is
 * legitimate: a send cancelled before its first byte left (a collective
 * that failed on the sender's side) keeps the number it was given, and the
 * sender's next message to that peer comes with a higher one.
 *
 * The lists are linear.  Collectives between node leaders keep a handful of
 * requests outstanding, so a hash by (comm, source, tag) would cost more than
 * it saves; revisit if a profile ever shows the scan.
 */
#include "config.h"

#include "match.h"
#include "fabric.h"

#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The transports of issue 9 (ofi.c, tipc.c), each built when its library
 * or header was found. */
#ifdef NPI_HAVE_OFI
extern const npi_fab_ops npi_fab_ofi_ops;
#endif
#ifdef NPI_HAVE_TIPC
extern const npi_fab_ops npi_fab_tipc_ops;
#endif

/* Built-in transports in default order; the reason for tcp before zmq and
 * the figures behind it are in fabric.h.
 *
 * ofi after both.  Medians of three runs of bench/bench_fabric.sh on this
 * 2-core VM (2026-11-25), every transport polling 200 us before sleeping
 * (docs/transports.md has the whole table):
 *
 *                       loopback                    veth pair
 *                       tcp     ofi/rxm  ofi/net    tcp     ofi/rxm  ofi/net
 *   8 B latency (us)    4.0     6.8      4.6        3.9     6.7      4.6
 *   4 KiB latency (us)  5.1     7.9      5.9        4.8     8.0      5.7
 *   64 MiB bw (MB/s)    2626    2988     3104       2018    1808     1981
 *   iperf3 (MB/s)       2264                        2111
 *
 * tcp has the shortest small-message path (libfabric's own fi_pingpong
 * takes 9.05 us per 8 B transfer over tcp;ofi_rxm here, 2.83 over net);
 * large messages are a tie within the noise.  So tcp stays first, and ofi
 * pays where its provider reaches hardware tcp cannot (verbs, efa, psm3),
 * where NUMPUSH_FABRIC=ofi chooses it.
 * Once the providers' sockets got tcp's settings too (tcp_foreign.c), one
 * run over veth gave 64 MiB at tcp 6680, ofi/net 5515, ofi/rxm 5569 and zmq
 * 1426 MB/s, 8 B at 3.6, 4.9, 6.7 and 29.5 us.  ofi still comes after zmq:
 * with no provider named it takes libfabric's first RDM provider, which on
 * another machine may open and then crawl (sockets: 17 us at 8 B here),
 * while zmq behaves the same everywhere.
 * tipc last: no kernel here has it, so it was never measured; its probe
 * fails quickly where AF_TIPC is missing, so it is chosen only where
 * nothing before it works or NUMPUSH_FABRIC=tipc asks for it.
 */
const npi_fab_ops *const npi_fab_transports[] = {
    &npi_fab_tcp_ops,
#ifdef NPI_HAVE_ZMQ
    &npi_fab_zmq_ops,
#endif
#ifdef NPI_HAVE_OFI
    &npi_fab_ofi_ops,
#endif
#ifdef NPI_HAVE_TIPC
    &npi_fab_tipc_ops,
#endif
    NULL,
};

int npi_fab_poll_spin(int (*poll_once)(void *arg, int timeout_ms), void *arg, int timeout_ms)
{
    int r = poll_once(arg, 0);
    if (r != 0 || timeout_ms == 0)
        return r;
    uint64_t start = npi_now_ns();
    while (r == 0 && npi_now_ns() - start < NPI_FAB_SPIN_NS) {
        sched_yield();
        r = poll_once(arg, 0);
    }
    return r != 0 ? r : poll_once(arg, timeout_ms);
}

const npi_fab_ops *npi_fab_find(const char *name)
{
    for (int i = 0; npi_fab_transports[i]; i++)
        if (strcmp(npi_fab_transports[i]->name, name) == 0)
            return npi_fab_transports[i];
    return NULL;
}

/* A request and an unexpected message both travel through the transport as
 * the ctx of a callback; their first field tells them apart. */
enum { MATCH_SEND = 1, MATCH_RECV, MATCH_UNEX };

/* Payloads below this are copied at the end rather than redirected: the
 * copy costs less than a scan of the transport's connections. */
#define MATCH_REDIRECT_MIN (64 * 1024)
/* Room for a transport's sentence on why a peer is gone. */
#define MATCH_WHY_LEN 256

enum { MATCH_POSTED, MATCH_ACTIVE, MATCH_DONE };

struct npi_fab_req {
    int kind; /* MATCH_SEND or MATCH_RECV */
    int state;
    bool orphan; /* cancelled while the transport held it: free on completion */
    npi_fab_req *next, *prev;
    int peer; /* destination, or source / NP_ANY_SOURCE */
    uint64_t comm_id;
    int tag;
    void *buf;
    uint64_t cap;
    npi_fab_status st;
    uint8_t hdr[NPI_FAB_HDR_MAX]; /* sends: the encoded envelope */
};

typedef struct match_unex {
    int kind; /* MATCH_UNEX */
    struct match_unex *next, *prev;
    int peer;
    npi_envelope env;
    void *data;           /* malloc'd copy of the payload */
    bool complete;        /* payload fully arrived */
    np_err err;           /* why the payload could not arrive */
    npi_fab_req *waiting; /* a receive that matched before the payload finished */
    bool discard;         /* its receive was cancelled: free it when it completes */
    bool redirected;      /* the rest of the payload goes straight to waiting's buffer */
} match_unex;

/* Doubly linked FIFO lists with a dummy-free head/tail pair. */
typedef struct match_list {
    void *head, *tail;
} match_list;

struct npi_fab {
    const npi_fab_ops *ops;
    npi_fab_ep *ep;
    int rank, size;
    double timeout;
    uint64_t *tx_seq; /* next sequence number to each peer */
    uint64_t *rx_seq; /* next sequence number expected from each peer */
    np_err *peer_err; /* NP_OK, or why the peer is gone */
    /* The transport's own words for why, kept for every later error about
     * that peer: "rank 3 is gone" alone sends the user to the logs. */
    char (*peer_why)[MATCH_WHY_LEN];
    npi_fab_req *posted_head, *posted_tail;
    match_unex *unex_head, *unex_tail;
};

/* ------------------------------------------------------------ lists */

#define MATCH_APPEND(headp, tailp, x)                                                              \
    do {                                                                                           \
        (x)->next = NULL;                                                                          \
        (x)->prev = *(tailp);                                                                      \
        if (*(tailp))                                                                              \
            (*(tailp))->next = (x);                                                                \
        else                                                                                       \
            *(headp) = (x);                                                                        \
        *(tailp) = (x);                                                                            \
    } while (0)

#define MATCH_UNLINK(headp, tailp, x)                                                              \
    do {                                                                                           \
        if ((x)->prev)                                                                             \
            (x)->prev->next = (x)->next;                                                           \
        else                                                                                       \
            *(headp) = (x)->next;                                                                  \
        if ((x)->next)                                                                             \
            (x)->next->prev = (x)->prev;                                                           \
        else                                                                                       \
            *(tailp) = (x)->prev;                                                                  \
        (x)->next = (x)->prev = NULL;                                                              \
    } while (0)

static bool match_fits(const npi_fab_req *r, int peer, const npi_envelope *env)
{
    return r->comm_id == env->comm_id && (r->peer == NP_ANY_SOURCE || r->peer == peer) &&
           (r->tag == NP_ANY_TAG || r->tag == env->tag);
}

static void match_fill_status(npi_fab_req *r, int peer, const npi_envelope *env)
{
    r->st.source = peer;
    r->st.tag = env->tag;
    r->st.bytes = env->payload_len;
    r->st.env = *env;
}

static void match_complete(npi_fab_req *r, np_err err)
{
    if (err != NP_OK && r->st.error == NP_OK)
        r->st.error = err;
    r->state = MATCH_DONE;
    if (r->orphan)
        free(r);
}

/* Hand a fully arrived unexpected message to the receive that matched it. */
static void match_deliver_unex(npi_fab *fab, match_unex *u, npi_fab_req *r)
{
    match_fill_status(r, u->peer, &u->env);
    np_err err = u->err;
    if (err == NP_OK && u->env.payload_len > r->cap)
        err = npi_error(NP_ERR_TRUNCATE,
                        "fabric receive: rank %d sent %" PRIu64 " bytes (tag %d) to a %" PRIu64
                        "-byte buffer",
                        u->peer, u->env.payload_len, u->env.tag, r->cap);
    else if (err == NP_OK && u->env.payload_len > 0 && !u->redirected)
        memcpy(r->buf, u->data, u->env.payload_len);
    free(u->data);
    free(u);
    match_complete(r, err);
}

/* ------------------------------------------------------------ upcalls */

static np_err match_incoming(void *arg, int peer, const void *hdr, size_t hdr_len,
                             uint64_t payload_len, void **dst, void **ctx)
{
    npi_fab *fab = arg;
    npi_envelope env;
    np_err err = npi_envelope_decode(hdr, hdr_len, &env);
    if (err != NP_OK) {
        /* The decoder's detail is the thread's current message, which
         * npi_error is about to overwrite: copy it first. */
        char why[256];
        snprintf(why, sizeof(why), "%s", np_last_error());
        return npi_error(NP_ERR_PROTOCOL, "fabric: malformed envelope from rank %d: %s", peer, why);
    }
    if (env.source != peer || env.payload_len != payload_len)
        return npi_error(NP_ERR_PROTOCOL,
                         "fabric: rank %d sent an envelope claiming source %d and %" PRIu64
                         " bytes, but the transport framed %" PRIu64 " bytes",
                         peer, env.source, env.payload_len, payload_len);
    if (env.seq < fab->rx_seq[peer])
        return npi_error(NP_ERR_PROTOCOL,
                         "fabric: expected message %" PRIu64
                         " or later from rank %d but saw %" PRIu64 " again",
                         fab->rx_seq[peer], peer, env.seq);
    fab->rx_seq[peer] = env.seq + 1;

    for (npi_fab_req *r = fab->posted_head; r; r = r->next) {
        if (!match_fits(r, peer, &env))
            continue;
        MATCH_UNLINK(&fab->posted_head, &fab->posted_tail, r);
        match_fill_status(r, peer, &env);
        r->state = MATCH_ACTIVE;
        if (payload_len > r->cap) {
            r->st.error = npi_error(NP_ERR_TRUNCATE,
                                    "fabric receive: rank %d sent %" PRIu64
                                    " bytes (tag %d) to a %" PRIu64 "-byte buffer",
                                    peer, payload_len, env.tag, r->cap);
            *dst = NULL;
        } else {
            *dst = r->buf;
        }
        *ctx = r;
        return NP_OK;
    }

    match_unex *u = calloc(1, sizeof(*u));
    if (!u)
        return npi_error(NP_ERR_NOMEM, "fabric: no memory for an unexpected message");
    u->kind = MATCH_UNEX;
    u->peer = peer;
    u->env = env;
    if (payload_len > 0) {
        u->data = malloc(payload_len);
        if (!u->data)
            u->err = npi_error(NP_ERR_NOMEM,
                               "fabric: no memory for an unexpected %" PRIu64
                               "-byte message from rank %d",
                               payload_len, peer);
    }
    MATCH_APPEND(&fab->unex_head, &fab->unex_tail, u);
    *dst = u->data;
    *ctx = u;
    return NP_OK;
}

static void match_recv_done(void *arg, void *ctx, np_err err)
{
    npi_fab *fab = arg;
    int kind = *(int *)ctx;
    if (kind == MATCH_RECV) {
        match_complete(ctx, err);
        return;
    }
    match_unex *u = ctx;
    u->complete = true;
    if (err != NP_OK && u->err == NP_OK)
        u->err = err;
    if (u->discard) {
        MATCH_UNLINK(&fab->unex_head, &fab->unex_tail, u);
        free(u->data);
        free(u);
    } else if (u->waiting) {
        npi_fab_req *r = u->waiting;
        MATCH_UNLINK(&fab->unex_head, &fab->unex_tail, u);
        match_deliver_unex(fab, u, r);
    }
}

static void match_send_done(void *arg, void *ctx, np_err err)
{
    match_complete(ctx, err);
}

static void match_peer_error(void *arg, int peer, np_err err)
{
    npi_fab *fab = arg;
    if (fab->peer_err[peer] == NP_OK) {
        fab->peer_err[peer] = err;
        /* Transports record the cause with npi_error just before they
         * report it here; its "rank R: " prefix is this rank's own. */
        const char *why = np_last_error();
        int skip = 0;
        if (sscanf(why, "rank %*d: %n", &skip) == 0 && skip > 0)
            why += skip;
        snprintf(fab->peer_why[peer], MATCH_WHY_LEN, "%s", *why ? why : np_errname(err));
    }
    /* Receives that can only be satisfied by this peer fail now; so do
     * wildcard ones, as in MPI's fault-tolerance proposal (ULFM), because a
     * wildcard receive that waits for a dead rank would otherwise hang. */
    npi_fab_req *r = fab->posted_head;
    while (r) {
        npi_fab_req *next = r->next;
        if (r->peer == peer || r->peer == NP_ANY_SOURCE) {
            MATCH_UNLINK(&fab->posted_head, &fab->posted_tail, r);
            r->st.source = peer;
            match_complete(r, npi_error(err,
                                        "fabric: rank %d is gone (%s) while a receive from "
                                        "rank %d (tag %d) was pending",
                                        peer, fab->peer_why[peer], r->peer, r->tag));
        }
        r = next;
    }
}

/* ------------------------------------------------------------ open / close */

static np_err match_pick(const char *want, const npi_fab_ops **out)
{
    if (want && *want) {
        const npi_fab_ops *ops = npi_fab_find(want);
        if (!ops) {
            char have[128] = "";
            for (int i = 0; npi_fab_transports[i]; i++)
                snprintf(have + strlen(have), sizeof(have) - strlen(have), " %s",
                         npi_fab_transports[i]->name);
            return npi_error(NP_ERR_TRANSPORT,
                             "NUMPUSH_FABRIC=%s: no such transport in this build (have:%s)", want,
                             have);
        }
        np_err err = ops->probe();
        if (err != NP_OK)
            return err;
        *out = ops;
        return NP_OK;
    }
    for (int i = 0; npi_fab_transports[i]; i++) {
        if (npi_fab_transports[i]->probe() == NP_OK) {
            *out = npi_fab_transports[i];
            return NP_OK;
        }
    }
    return npi_error(NP_ERR_TRANSPORT, "fabric: no transport works here");
}

np_err npi_fab_open(npi_boot *boot, const char *transport, bool participate, npi_fab **out)
{
    np_err err = NP_OK;
    npi_fab *fab = NULL;
    *out = NULL;
    if (!transport)
        transport = npi_config_get("NUMPUSH_FABRIC", NULL);
    const npi_fab_ops *ops = NULL;
    if (participate) {
        err = match_pick(transport, &ops);
        if (err != NP_OK)
            goto fence_only;
        fab = calloc(1, sizeof(*fab));
        if (!fab) {
            err = npi_error(NP_ERR_NOMEM, "fabric: no memory");
            goto fence_only;
        }
        fab->ops = ops;
        fab->rank = boot->rank;
        fab->size = boot->size;
        fab->tx_seq = calloc(boot->size, sizeof(uint64_t));
        fab->rx_seq = calloc(boot->size, sizeof(uint64_t));
        fab->peer_err = calloc(boot->size, sizeof(np_err));
        fab->peer_why = calloc(boot->size, sizeof(*fab->peer_why));
        if (!fab->tx_seq || !fab->rx_seq || !fab->peer_err || !fab->peer_why) {
            err = npi_error(NP_ERR_NOMEM, "fabric: no memory");
            goto fence_only;
        }
        err = npi_config_double("NUMPUSH_TIMEOUT", &fab->timeout);
        if (err != NP_OK)
            goto fence_only;
        npi_fab_attr attr = {
            .rank = boot->rank,
            .size = boot->size,
            .timeout = fab->timeout,
            .up = {.arg = fab,
                   .incoming = match_incoming,
                   .recv_done = match_recv_done,
                   .send_done = match_send_done,
                   .peer_error = match_peer_error},
        };
        err = ops->open(&attr, &fab->ep);
        if (err != NP_OK)
            goto fence_only;
        uint8_t addr[NPI_FAB_ADDR_MAX];
        size_t len = 0;
        char key[64];
        err = ops->getname(fab->ep, addr, sizeof(addr), &len);
        if (err == NP_OK) {
            snprintf(key, sizeof(key), "fab.%s.%d", ops->name, boot->rank);
            err = boot->ops->put(boot, key, addr, len);
        }
    }
fence_only:;
    /* Every rank fences, even one that failed above, so the others do not
     * wait for it in the fence; its failure then shows as a missing key. */
    np_err ferr = boot->ops->fence(boot);
    if (err == NP_OK)
        err = ferr;
    if (err != NP_OK || !participate)
        goto fail;
    for (int p = 0; p < boot->size; p++) {
        if (p == boot->rank)
            continue;
        char key[64];
        uint8_t addr[NPI_FAB_ADDR_MAX];
        size_t len = 0;
        snprintf(key, sizeof(key), "fab.%s.%d", ops->name, p);
        /* Ranks that do not take part publish nothing; only ranks that the
         * caller will talk to need an address, so a missing one is left
         * unconnected (sends to it then fail with NP_ERR_PEER). */
        np_err gerr = boot->ops->get(boot, key, addr, sizeof(addr), &len);
        if (gerr != NP_OK) {
            fab->peer_err[p] = NP_ERR_PEER;
            snprintf(fab->peer_why[p], MATCH_WHY_LEN,
                     "it published no %s address: it left or failed before the fence", ops->name);
            continue;
        }
        err = ops->connect(fab->ep, p, addr, len);
        if (err != NP_OK)
            goto fail;
    }
    /* Which transport carries the traffic between nodes is otherwise
     * invisible; tests/tipc_vm.sh looks for this line. */
    const char *dbg = npi_config_get("NUMPUSH_DEBUG", NULL);
    if (dbg && atoi(dbg) > 0)
        fprintf(stderr, "numpush: rank %d: fabric %s\n", boot->rank, ops->name);
    *out = fab;
    return NP_OK;
fail:
    if (fab) {
        if (fab->ep)
            ops->close(fab->ep, 0);
        free(fab->tx_seq);
        free(fab->rx_seq);
        free(fab->peer_err);
        free(fab->peer_why);
        free(fab);
    }
    return err;
}

void npi_fab_close(npi_fab **pfab, int linger_ms)
{
    npi_fab *fab = *pfab;
    if (!fab)
        return;
    *pfab = NULL;
    fab->ops->close(fab->ep, linger_ms);
    /* Receives still posted never matched: the transport had no hold on
     * them, so complete them here. */
    for (npi_fab_req *r = fab->posted_head; r;) {
        npi_fab_req *next = r->next;
        match_complete(r, NP_ERR_PEER);
        r = next;
    }
    for (match_unex *u = fab->unex_head; u;) {
        match_unex *next = u->next;
        free(u->data);
        free(u);
        u = next;
    }
    free(fab->tx_seq);
    free(fab->rx_seq);
    free(fab->peer_err);
    free(fab->peer_why);
    free(fab);
}

const char *npi_fab_transport_name(const npi_fab *fab)
{
    return fab->ops->name;
}

const char *npi_fab_peer_why(const npi_fab *fab, int peer)
{
    if (peer < 0 || peer >= fab->size || fab->peer_err[peer] == NP_OK)
        return "";
    return fab->peer_why[peer];
}

int npi_fab_rank(const npi_fab *fab)
{
    return fab->rank;
}

int npi_fab_size(const npi_fab *fab)
{
    return fab->size;
}

uint64_t npi_fab_deadline(const npi_fab *fab)
{
    return npi_now_ns() + (uint64_t)(fab->timeout * 1e9);
}

np_err npi_fab_peer_state(const npi_fab *fab, int peer)
{
    if (peer < 0 || peer >= fab->size)
        return NP_ERR_RANK;
    return fab->peer_err[peer];
}

const npi_fab_ops *npi_fab_ops_of(const npi_fab *fab)
{
    return fab->ops;
}

npi_fab_ep *npi_fab_ep_of(npi_fab *fab)
{
    return fab->ep;
}

/* ------------------------------------------------------------ send and receive */

static np_err match_check_peer(npi_fab *fab, const char *who, int peer, bool any_ok)
{
    if (any_ok && peer == NP_ANY_SOURCE)
        return NP_OK;
    if (peer < 0 || peer >= fab->size)
        return npi_error(NP_ERR_RANK, "%s: rank %d is not in 0..%d", who, peer, fab->size - 1);
    return NP_OK;
}

/* A message to oneself: match it on the spot, copying the payload if no
 * receive waits for it, and complete the send at once. */
static np_err match_self(npi_fab *fab, npi_fab_req *r, const void *buf, uint64_t bytes)
{
    void *dst = NULL, *ctx = NULL;
    size_t hlen = 0;
    np_err err = npi_envelope_encode(&r->st.env, r->hdr, sizeof(r->hdr), &hlen);
    if (err == NP_OK)
        err = match_incoming(fab, fab->rank, r->hdr, hlen, bytes, &dst, &ctx);
    if (err != NP_OK)
        return err;
    if (dst && bytes > 0)
        memcpy(dst, buf, bytes);
    match_recv_done(fab, ctx, NP_OK);
    match_complete(r, NP_OK);
    return NP_OK;
}

np_err npi_fab_isend_env(npi_fab *fab, int peer, const npi_envelope *env, const void *buf,
                         size_t bytes, npi_fab_req **req)
{
    static const char who[] = "fabric send";
    *req = NULL;
    np_err err = match_check_peer(fab, who, peer, false);
    if (err != NP_OK)
        return err;
    if (env->tag < 0)
        return npi_error(NP_ERR_TAG, "%s: tag %d is negative", who, env->tag);
    if (!buf && bytes > 0)
        return npi_error(NP_ERR_NULL, "%s: NULL buffer with %zu bytes", who, bytes);
    if (fab->peer_err[peer] != NP_OK)
        return npi_error(fab->peer_err[peer], "%s: rank %d is gone (%s)", who, peer,
                         fab->peer_why[peer]);
    npi_fab_req *r = calloc(1, sizeof(*r));
    if (!r)
        return npi_error(NP_ERR_NOMEM, "%s: no memory", who);
    r->kind = MATCH_SEND;
    r->state = MATCH_ACTIVE;
    r->peer = peer;
    r->comm_id = env->comm_id;
    r->tag = env->tag;
    r->buf = (void *)buf;
    r->cap = bytes;
    r->st.source = peer;
    r->st.tag = env->tag;
    r->st.bytes = bytes;
    r->st.env = *env;
    r->st.env.source = fab->rank;
    r->st.env.seq = fab->tx_seq[peer];
    r->st.env.payload_len = bytes;
    if (peer == fab->rank) {
        fab->tx_seq[peer]++;
        err = match_self(fab, r, buf, bytes);
        if (err != NP_OK) {
            free(r);
            return err;
        }
        *req = r;
        return NP_OK;
    }
    size_t hlen = 0;
    err = npi_envelope_encode(&r->st.env, r->hdr, sizeof(r->hdr), &hlen);
    if (err != NP_OK) {
        free(r);
        return err;
    }
    struct iovec iov[2] = {{r->hdr, hlen}, {(void *)buf, bytes}};
    err = fab->ops->send(fab->ep, peer, iov, bytes ? 2 : 1, r);
    if (err != NP_OK) {
        free(r);
        return err;
    }
    fab->tx_seq[peer]++;
    *req = r;
    return NP_OK;
}

np_err npi_fab_isend(npi_fab *fab, int peer, uint64_t comm_id, int tag, const void *buf,
                     size_t bytes, npi_fab_req **req)
{
    npi_envelope env = {
        .kind = NPI_ENV_P2P,
        .comm_id = comm_id,
        .tag = tag,
        .dtype = NP_BYTE,
        .count = bytes,
        .coll = NPI_COLL_COUNT_,
        .root = -1,
        .op = NP_OP_NULL,
    };
    return npi_fab_isend_env(fab, peer, &env, buf, bytes, req);
}

/* A receive matched a message whose payload is still arriving into an
 * unexpected buffer: where the transport allows it, the rest goes straight
 * into the receive's buffer, and only what had arrived is copied, instead
 * of the whole payload once it is complete (a 64 MiB broadcast whose
 * receive was posted a few microseconds late spent about 6 ms in that
 * copy).  Without redirect the copy at the end stays. */
static void match_redirect(npi_fab *fab, match_unex *u, npi_fab_req *r)
{
    uint64_t placed = 0;
    if (fab->ops->size < offsetof(npi_fab_ops, redirect) + sizeof(fab->ops->redirect) ||
        !fab->ops->redirect || !u->data || u->err != NP_OK || u->env.payload_len > r->cap ||
        u->env.payload_len < MATCH_REDIRECT_MIN)
        return;
    if (fab->ops->redirect(fab->ep, u, r->buf, &placed) != NP_OK) {
        npi_error_clear(); /* not under way after all: the copy at the end does it */
        return;
    }
    memcpy(r->buf, u->data, placed);
    free(u->data);
    u->data = NULL;
    u->redirected = true;
}

np_err npi_fab_irecv(npi_fab *fab, int peer, uint64_t comm_id, int tag, void *buf, size_t cap,
                     npi_fab_req **req)
{
    static const char who[] = "fabric receive";
    *req = NULL;
    np_err err = match_check_peer(fab, who, peer, true);
    if (err != NP_OK)
        return err;
    if (tag < 0 && tag != NP_ANY_TAG)
        return npi_error(NP_ERR_TAG, "%s: tag %d is neither >= 0 nor NP_ANY_TAG", who, tag);
    if (!buf && cap > 0)
        return npi_error(NP_ERR_NULL, "%s: NULL buffer with capacity %zu", who, cap);
    npi_fab_req *r = calloc(1, sizeof(*r));
    if (!r)
        return npi_error(NP_ERR_NOMEM, "%s: no memory", who);
    r->kind = MATCH_RECV;
    r->peer = peer;
    r->comm_id = comm_id;
    r->tag = tag;
    r->buf = buf;
    r->cap = cap;
    r->st.source = peer;
    r->st.tag = tag;
    *req = r;

    for (match_unex *u = fab->unex_head; u; u = u->next) {
        if (!match_fits(r, u->peer, &u->env) || u->waiting || u->discard)
            continue;
        if (u->complete) {
            MATCH_UNLINK(&fab->unex_head, &fab->unex_tail, u);
            match_deliver_unex(fab, u, r);
        } else {
            /* Its payload is still arriving: finish when it has. */
            u->waiting = r;
            r->state = MATCH_ACTIVE;
            match_redirect(fab, u, r);
        }
        return NP_OK;
    }
    if (peer != NP_ANY_SOURCE && fab->peer_err[peer] != NP_OK) {
        *req = NULL;
        free(r);
        return npi_error(fab->peer_err[peer], "%s: rank %d is gone (%s)", who, peer,
                         fab->peer_why[peer]);
    }
    r->state = MATCH_POSTED;
    MATCH_APPEND(&fab->posted_head, &fab->posted_tail, r);
    return NP_OK;
}

/* ------------------------------------------------------------ completion */

np_err npi_fab_progress(npi_fab *fab, int timeout_ms)
{
    return fab->ops->progress(fab->ep, timeout_ms);
}

static np_err match_finish(npi_fab_req **req, npi_fab_status *st)
{
    npi_fab_req *r = *req;
    np_err err = r->st.error;
    if (st)
        *st = r->st;
    free(r);
    *req = NULL;
    return err;
}

np_err npi_fab_test(npi_fab *fab, npi_fab_req **req, bool *done, npi_fab_status *st)
{
    *done = false;
    if ((*req)->state != MATCH_DONE) {
        np_err err = fab->ops->progress(fab->ep, 0);
        if (err != NP_OK)
            return err;
    }
    if ((*req)->state != MATCH_DONE)
        return NP_OK;
    *done = true;
    return match_finish(req, st);
}

/* How long one progress call may block before the deadline. */
static int match_wait_ms(uint64_t deadline_ns)
{
    if (deadline_ns == 0)
        return 1000;
    uint64_t now = npi_now_ns();
    if (now >= deadline_ns)
        return 0;
    uint64_t ms = (deadline_ns - now + 999999) / 1000000;
    return ms > 1000 ? 1000 : (int)ms;
}

/* Tell the transport, where it asks (npi_fab_ops.expect), which peer a
 * request about to be waited for is with: the source of a receive, the
 * destination of a send. */
static void match_expect(npi_fab *fab, const npi_fab_req *r)
{
    if (r->peer < 0 || r->state == MATCH_DONE ||
        fab->ops->size < offsetof(npi_fab_ops, expect) + sizeof(fab->ops->expect) ||
        !fab->ops->expect)
        return;
    fab->ops->expect(fab->ep, r->peer);
}

np_err npi_fab_wait(npi_fab *fab, npi_fab_req **req, uint64_t deadline_ns, npi_fab_status *st)
{
    npi_fab_req *r = *req;
    match_expect(fab, r);
    while (r->state != MATCH_DONE) {
        if (deadline_ns && npi_now_ns() >= deadline_ns)
            return npi_error(NP_ERR_TIMEOUT,
                             "fabric: %s %s rank %d (tag %d) did not complete within the "
                             "deadline",
                             r->kind == MATCH_SEND ? "send" : "receive",
                             r->kind == MATCH_SEND ? "to" : "from", r->peer, r->tag);
        np_err err = fab->ops->progress(fab->ep, match_wait_ms(deadline_ns));
        if (err != NP_OK)
            return err;
    }
    return match_finish(req, st);
}

np_err npi_fab_waitall(npi_fab *fab, int n, npi_fab_req **reqs, uint64_t deadline_ns,
                       npi_fab_status *st)
{
    np_err first = NP_OK;
    for (int i = 0; i < n; i++) {
        if (!reqs[i])
            continue;
        np_err err = npi_fab_wait(fab, &reqs[i], deadline_ns, st ? &st[i] : NULL);
        if (err != NP_OK && first == NP_OK)
            first = err;
        if (err == NP_ERR_TIMEOUT)
            break;
    }
    return first;
}

np_err npi_fab_cancel(npi_fab *fab, npi_fab_req **req)
{
    npi_fab_req *r = *req;
    if (!r)
        return NP_OK;
    *req = NULL;
    if (r->state == MATCH_DONE) {
        free(r);
        return NP_OK;
    }
    if (r->kind == MATCH_RECV && r->state == MATCH_POSTED) {
        MATCH_UNLINK(&fab->posted_head, &fab->posted_tail, r);
        free(r);
        return NP_OK;
    }
    if (r->kind == MATCH_RECV) {
        for (match_unex *u = fab->unex_head; u; u = u->next) {
            if (u->waiting == r) {
                /* The payload goes into the unexpected buffer, not the
                 * caller's (a redirected one is discarded from here on), so
                 * the caller can simply walk away; the message is consumed
                 * when it finishes, as a cancelled MPI receive that had
                 * matched would be. */
                uint64_t placed;
                if (u->redirected && fab->ops->redirect(fab->ep, u, NULL, &placed) != NP_OK)
                    break; /* not under way: cannot happen while !complete */
                u->waiting = NULL;
                u->discard = true;
                free(r);
                return NP_OK;
            }
        }
    }
    /* The transport holds the request (a send under way, or a receive whose
     * payload is arriving in the caller's buffer): only dropping the peer's
     * connection gets it back. */
    r->orphan = true;
    np_err err;
    if (r->kind == MATCH_SEND)
        err = fab->ops->cancel(fab->ep, r, NP_ERR_TIMEOUT);
    else
        err = fab->ops->disconnect(fab->ep, r->st.source, NP_ERR_TIMEOUT);
    /* The transport completed the request synchronously, which freed it
     * as an orphan. */
    return err;
}

np_err npi_fab_send(npi_fab *fab, int peer, uint64_t comm_id, int tag, const void *buf,
                    size_t bytes)
{
    npi_fab_req *r;
    np_err err = npi_fab_isend(fab, peer, comm_id, tag, buf, bytes, &r);
    if (err != NP_OK)
        return err;
    err = npi_fab_wait(fab, &r, npi_fab_deadline(fab), NULL);
    if (err == NP_ERR_TIMEOUT)
        npi_fab_cancel(fab, &r);
    return err;
}

np_err npi_fab_recv(npi_fab *fab, int peer, uint64_t comm_id, int tag, void *buf, size_t cap,
                    npi_fab_status *st)
{
    npi_fab_req *r;
    np_err err = npi_fab_irecv(fab, peer, comm_id, tag, buf, cap, &r);
    if (err != NP_OK)
        return err;
    err = npi_fab_wait(fab, &r, npi_fab_deadline(fab), st);
    if (err == NP_ERR_TIMEOUT)
        npi_fab_cancel(fab, &r);
    return err;
}

np_err npi_fab_send_raw(npi_fab *fab, int peer, const void *hdr, size_t hdr_len,
                        const void *payload, size_t bytes)
{
    np_err err = match_check_peer(fab, "fabric raw send", peer, false);
    if (err != NP_OK)
        return err;
    if (hdr_len == 0 || hdr_len > NPI_FAB_HDR_MAX || peer == fab->rank)
        return npi_error(NP_ERR_ARG, "fabric raw send: bad header length or peer");
    npi_fab_req *r = calloc(1, sizeof(*r));
    if (!r)
        return npi_error(NP_ERR_NOMEM, "fabric raw send: no memory");
    r->kind = MATCH_SEND;
    r->state = MATCH_ACTIVE;
    r->peer = peer;
    memcpy(r->hdr, hdr, hdr_len);
    struct iovec iov[2] = {{r->hdr, hdr_len}, {(void *)payload, bytes}};
    err = fab->ops->send(fab->ep, peer, iov, bytes ? 2 : 1, r);
    if (err != NP_OK) {
        free(r);
        return err;
    }
    fab->tx_seq[peer]++;
    return npi_fab_wait(fab, &r, npi_fab_deadline(fab), NULL);
}
