/*
 * The ofi transport: libfabric tagged messages on reliable-datagram (RDM)
 * endpoints (see fabric.h for the contract every transport keeps).
 *
 * Provider: NUMPUSH_OFI_PROVIDER if set, else whatever FI_PROVIDER lets
 * fi_getinfo return (libfabric applies that filter itself), else the first
 * provider libfabric offers for FI_TAGGED | FI_MSG on FI_EP_RDM with
 * send-after-send ordering that is not node-local (shm reaches only this
 * host, and the fabric exists to leave it).  For providers addressed by IP
 * (tcp;ofi_rxm, sockets) the endpoint is bound to the address the tcp
 * transport would listen on (NUMPUSH_TCP_IF), so traffic takes the same link.
 *
 * Protocol, on two kinds of tags:
 *
 *  - Header messages (tag 0) land in a pool of bounce buffers that stay
 *    posted with any source.  Each starts with a 40-byte frame head (magic,
 *    kind, sender rank, per-pair sequence, the receiver's cookie, payload
 *    length, data id) followed by the envelope.  An eager message (payload
 *    up to OFIT_EAGER bytes) carries its payload right after the envelope:
 *    the sender copies it into a registered send slot, so the send completes
 *    at once, and the receiver copies it out of the bounce buffer.  Copying
 *    16 KiB costs less than a second round trip would.
 *  - Larger payloads go rendezvous-style: the header message is a request to
 *    send naming a data id, and the sender posts the payload at once as a
 *    tagged send on tag (1 << 63 | sender << 40 | id), in chunks of at most
 *    1 MiB.  When the header reaches the matching layer, the receiver posts
 *    an fi_trecv for that exact tag straight into the destination.  If the
 *    data got there first the provider holds it as unexpected; providers
 *    run their own rendezvous for large messages (rxm does), so the user's
 *    buffers are read and written in place, with no copy in numpush.  On
 *    providers without one (net, sockets) payloads from OFIT_CTS_MIN wait
 *    for a clear-to-send header message, which the receiver sends once its
 *    receives are posted.
 *
 * Order: header messages from one sender carry a sequence number and are
 * delivered in it, held back if the completion queue reports them out of
 * order.  The cookie (random per endpoint, published with its address)
 * makes stray traffic from outside the job harmless: it is dropped.
 *
 * Failure: RDM endpoints have no connections to lose, so three things stand
 * in for them.  A completion error on a send to a peer (a refused or reset
 * connection underneath) fails the peer.  A peer that closes or drops us
 * says so with a BYE header.  And while this rank waits, every quiet peer
 * it has exchanged messages with gets a heartbeat every tenth of
 * NUMPUSH_TIMEOUT, sent with a completion: a heartbeat that has not left
 * within 0.6 of the timeout (the provider could not hand it to the peer's
 * host) fails the peer with NP_ERR_PEER.  Whether the peer answers does not count: a live peer may
 * compute for minutes before it joins a call, and must not be taken for
 * dead.  Over libfabric's TCP providers the kernel then decides whether the
 * peer's host is there, so their sockets get the tcp transport's bounds on
 * noticing a dead link (tcp_foreign.h); a connection the kernel aborted
 * makes the provider fail or hold every later send, heartbeats included.
 * Before any message has crossed, a heartbeat proves nothing either way
 * (the provider may need the peer's progress to connect), so a peer never
 * proven alive whose heartbeat has not left within 0.6 of the timeout is
 * asked about through its host's kernel instead (ofit_stranger_gone,
 * listen_probe.h); peers this rank waits to hear from are watched too
 * (ofit_expect), not only those it has exchanged messages with.
 *
 * Progress: fi_cq_read, then sleep on the CQ's wait fd.  With a provider
 * that moves data only inside fi_cq_read (FI_PROGRESS_MANUAL: rxm), a wait
 * first polls for NPI_FAB_SPIN_NS (fabric.h), yielding the core between polls, since a
 * wake-up from the fd cost tens of microseconds per message here.  Header
 * messages that fit the provider's inject size (rxm grants one as large as
 * a send slot when asked) go with fi_tinject: no send completion to reap.
 *
 * Memory registration: when the provider asks for it (FI_MR_LOCAL), or when
 * NUMPUSH_OFI_MR=always, the bounce buffers are registered once, and user
 * buffers through a small cache of page-aligned registrations, reused while
 * they cover a later buffer; never one registration per message.
 */
#include "config.h"

#include "fabric.h"
#include "listen_probe.h"
#include "ofi_lib.h"
#include "tcp_foreign.h"
#include "tcp_link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_tagged.h>

#define OFIT_VERSION FI_VERSION(1, 10)
#define OFIT_HEAD    40
/* Payloads up to this size travel inside the header message.  With the
 * frame head and envelope that stays under rxm's 16 KiB eager buffers;
 * beyond them rxm segments a message, which cost 16 KiB messages three
 * times the latency of 4 KiB ones in bench_fabric. */
#define OFIT_EAGER (8 * 1024)
#define OFIT_SLOT  (OFIT_HEAD + NPI_FAB_HDR_MAX + OFIT_EAGER)
/* rxm's bounce buffer size, asked for when the user has not set it: room
 * for a 64 KiB payload and rxm's own packet header (ofit_size_rxm_buffers). */
#define OFIT_RXM_BUFFER (65 * 1024)
#define OFIT_NRX        64 /* bounce buffers kept posted */
#define OFIT_NTX        64 /* send slots */
/* Rendezvous payloads travel in pieces of at most this size, posted as far
 * as the provider takes them.  Each piece that completes proves the peer
 * alive, which heartbeats alone cannot while a gigabyte holds the pipe
 * ahead of the reply.  Smaller pieces pipeline the provider's own
 * rendezvous: 64 MiB bcast between two namespace hosts over tcp;ofi_rxm
 * took 25 ms in 16 MiB pieces and 11-12 ms in 1 MiB ones (tcp: 9-11). */
#define OFIT_CHUNK ((uint64_t)1 << 20)
/* From this size, on providers that carry data over plain sockets with no
 * rendezvous of their own (net, sockets), the sender posts the payload only
 * once the receiver says its receives are posted (a clear-to-send header
 * message): data that arrives before its receive is read out of the socket
 * into a buffer of the provider's and copied again later. */
#define OFIT_CTS_MIN   ((uint64_t)256 << 10)
#define OFIT_DATA      ((uint64_t)1 << 63)
#define OFIT_ID_MAX    ((uint64_t)1 << 40)
#define OFIT_MRC       64 /* registration cache entries */
#define OFIT_ADDR_HEAD 14

enum { OFIT_K_EAGER = 1, OFIT_K_RTS, OFIT_K_PING, OFIT_K_PONG, OFIT_K_BYE, OFIT_K_CTS };

/* What a provider context belongs to (the field after the fi_context2). */
enum { OFIT_OP_RX = 1, OFIT_OP_TX, OFIT_OP_CHUNK };

/* A registration, shared by every buffer it covers. */
typedef struct ofit_mr {
    uintptr_t base;
    size_t len;
    struct fid_mr *mr;
    void *desc;
    int refs;
    uint64_t used; /* a clock for least-recently-used eviction */
    bool temp;     /* outside the cache: closed when its last user is done */
} ofit_mr;

/* A bounce buffer for header messages. */
typedef struct ofit_rx {
    struct fi_context2 fctx; /* first: the provider's per-operation space */
    int op;
    struct ofit_rx *next; /* in a peer's held list */
    size_t len;           /* bytes received */
    uint32_t seq;
    uint8_t *buf;
} ofit_rx;

/* A send slot: a registered buffer a header message is copied into. */
typedef struct ofit_tx {
    struct fi_context2 fctx;
    int op;
    int peer;
    bool probe;           /* a heartbeat whose completion ofit_liveness waits for */
    struct ofit_tx *next; /* free list */
    uint8_t *buf;
} ofit_tx;

typedef struct ofit_xfer ofit_xfer;

/* One tagged operation on a piece of a rendezvous payload. */
typedef struct ofit_chunk {
    struct fi_context2 fctx;
    int op;
    bool posted, done;
    ofit_xfer *parent;
    ofit_mr *mr;
} ofit_chunk;

/*
 * A message in flight: a send (from its post until the provider has
 * finished with the caller's buffers) or the payload side of a rendezvous
 * receive.  Freed once it has been reported upward and the provider has
 * returned every chunk.
 */
struct ofit_xfer {
    bool is_send;
    bool reported; /* send_done / recv_done called */
    bool hdr_sent; /* sends: the header message is out */
    int peer;
    void *ctx;
    np_err err;
    uint32_t seq;
    uint8_t *dst; /* receives: the destination, NULL to discard */
    uint64_t plen, id;
    int nchunks, nposted, nlive;
    struct iovec iov[NPI_FAB_IOV_MAX]; /* sends: header, payload pieces */
    int iovcnt;
    ofit_xfer *next, *prev; /* all transfers */
    ofit_xfer *qnext;       /* the queue of transfers waiting to post */
    bool queued;
    bool await_cts; /* sends: the payload waits for the receiver's CTS */
    bool cts_due;   /* receives: send a CTS once every chunk is posted */
    ofit_chunk chunk[];
};

typedef struct ofit_peer {
    bool known; /* connect gave an address */
    np_err err; /* NP_OK while alive */
    fi_addr_t fa;
    uint64_t cookie; /* the peer's, sent in every frame to it */
    uint32_t tx_seq, rx_seq;
    uint64_t tx_id;
    ofit_rx *held; /* header messages that arrived early */
    int busy;      /* transfers under way with this peer */
    uint64_t heard_ns, pinged_ns;
    uint64_t probe_ns;       /* when the heartbeat under way was due; 0: none */
    bool probe_posted;       /* the provider took it (else it is offered again) */
    bool proven;             /* a message came from it or a send to it completed */
    bool said_bye;           /* it ended the connection itself */
    bool awaited;            /* a wait involved it (ofit_expect) */
    npi_listen_probe listen; /* its endpoint's listener, for IP providers */
} ofit_peer;

struct npi_fab_ep {
    npi_fab_attr attr;
    struct fi_info *info;
    struct fid_fabric *fabric;
    struct fid_domain *domain;
    struct fid_av *av;
    struct fid_cq *cq;
    struct fid_ep *ep;
    int wait_fd; /* -1: no wait object, sleep instead */
    bool mr_needed;
    uint64_t cookie;
    uint32_t prov_hash;
    size_t inject;
    uint64_t chunk;
    size_t iov_limit;
    uint8_t *pool; /* OFIT_NRX + OFIT_NTX slots */
    struct fid_mr *pool_mr;
    void *pool_desc;
    ofit_rx rx[OFIT_NRX];
    ofit_tx tx[OFIT_NTX];
    ofit_tx *tx_free;
    ofit_rx *rx_idle; /* bounce buffers waiting to be posted again */
    ofit_peer *peers;
    ofit_xfer *xfers;           /* every live transfer */
    ofit_xfer *q_head, *q_tail; /* transfers waiting for resources, in order */
    ofit_mr mrc[OFIT_MRC];
    uint64_t mr_clock;
    uint64_t mr_key; /* the last requested key handed out */
    uint64_t hb_ns, dead_ns;
    uint8_t name[NPI_FAB_ADDR_MAX];
    size_t name_len;
    long rejected;            /* stray header messages dropped */
    uint64_t spin_ns;         /* poll this long before sleeping; 0: sleep at once */
    bool lost_peer;           /* a peer failed without saying goodbye */
    bool cts;                 /* large payloads wait for a clear-to-send */
    npi_tcp_foreign *foreign; /* the provider's TCP sockets, if any */
};

/* ------------------------------------------------------------ helpers */

static void ofit_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t ofit_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void ofit_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t ofit_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t ofit_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; s && *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static uint64_t ofit_data_tag(int sender, uint64_t id)
{
    return OFIT_DATA | (uint64_t)sender << 40 | (id & (OFIT_ID_MAX - 1));
}

static bool ofit_ip_based(uint32_t fmt)
{
    return fmt == FI_SOCKADDR || fmt == FI_SOCKADDR_IN || fmt == FI_SOCKADDR_IN6;
}

/* ------------------------------------------------------------ provider choice */

/* The hints every query shares; prov may be NULL. */
static struct fi_info *ofit_hints(const char *prov)
{
    struct fi_info *h = npi_ofi.dupinfo(NULL);
    if (!h)
        return NULL;
    h->caps = FI_TAGGED | FI_MSG;
    h->mode = FI_CONTEXT | FI_CONTEXT2;
    h->ep_attr->type = FI_EP_RDM;
    h->tx_attr->msg_order = FI_ORDER_SAS;
    h->rx_attr->msg_order = FI_ORDER_SAS;
    h->domain_attr->threading = FI_THREAD_DOMAIN;
    h->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_VIRT_ADDR;
    h->domain_attr->av_type = FI_AV_TABLE;
    if (prov && *prov)
        h->fabric_attr->prov_name = strdup(prov);
    return h;
}

/* The provider name to ask for: NUMPUSH_OFI_PROVIDER, else NULL (and then
 * FI_PROVIDER filters inside libfabric). */
static const char *ofit_wanted(void)
{
    const char *p = npi_config_get("NUMPUSH_OFI_PROVIDER", NULL);
    return p && *p ? p : NULL;
}

static bool ofit_node_local(const struct fi_info *i)
{
    const char *n = i->fabric_attr->prov_name;
    return n && (strcmp(n, "shm") == 0 || strncmp(n, "shm;", 4) == 0);
}

/* The entry of list to use: with a provider asked for, the one of exactly
 * that name where there is one (asking for "net" also lists "net;ofi_rxm",
 * rxm layered over net's message endpoints, first; the native RDM endpoint
 * is the one asked for, and 2 us faster per message here); without, the
 * first that reaches beyond this node. */
static struct fi_info *ofit_pick(struct fi_info *list, const char *want)
{
    struct fi_info *first = NULL;
    for (struct fi_info *i = list; i; i = i->next) {
        if (want && strcmp(i->fabric_attr->prov_name, want) == 0)
            return i;
        if (!first && (want || !ofit_node_local(i)))
            first = i;
    }
    return first;
}

/* rxm sends a message in one piece only up to its bounce buffers' size
 * (16 KiB unless told); beyond, it segments it or runs its own
 * rendezvous.  With 65 KiB buffers a rendezvous payload (OFIT_EAGER to
 * 64 KiB) goes in one piece: a 64 KiB ping-pong over tcp;ofi_rxm took
 * 21-25 us instead of 40 in bench_fabric here (tcp: 20-21).  rxm keeps
 * 4096 of its receive buffers posted over TCP, which at this size would
 * be 270 MB per process, so it gets 128: a process then took 142 MB in
 * all, against 95 MB with the defaults, and 215 MB after bench_fabric's
 * bandwidth windows (117 MB).  A sender finding them all taken waits in
 * TCP's flow control; nothing is lost, and every payload in them has its
 * receive posted as soon as its header arrives.  libfabric reads these
 * variables when its providers first load, at the process's first
 * fi_getinfo, so they are set before it; a user's own setting wins
 * (messages then still arrive, segmented). */
static void ofit_size_rxm_buffers(void)
{
    char v[32];
    snprintf(v, sizeof(v), "%d", OFIT_RXM_BUFFER);
    setenv("FI_OFI_RXM_BUFFER_SIZE", v, 0);
    setenv("FI_OFI_RXM_EAGER_LIMIT", v, 0);
    setenv("FI_OFI_RXM_MSG_RX_SIZE", "128", 0);
}

/* Pick the provider and the info to open it with; *out is the caller's to
 * free with fi_freeinfo. */
static np_err ofit_choose(struct fi_info **out, bool bind_ip)
{
    np_err lerr = npi_ofi_lib_load();
    if (lerr != NP_OK)
        return lerr;
    ofit_size_rxm_buffers();
    const char *want = ofit_wanted();
    const char *env = getenv("FI_PROVIDER");
    struct fi_info *hints = ofit_hints(want), *list = NULL, *pick = NULL;
    if (!hints)
        return npi_error(NP_ERR_NOMEM, "ofi: no memory");
    int rc = npi_ofi.getinfo(OFIT_VERSION, NULL, NULL, 0, hints, &list);
    if (rc == 0)
        pick = ofit_pick(list, want);
    if (!pick) {
        np_err err = npi_error(NP_ERR_TRANSPORT,
                               "ofi: no libfabric provider offers tagged RDM endpoints with "
                               "ordered sends here (NUMPUSH_OFI_PROVIDER=%s, FI_PROVIDER=%s): %s",
                               want ? want : "", env ? env : "",
                               rc ? npi_ofi_strerror(-rc) : "only node-local providers found");
        npi_ofi_freeinfo(hints);
        npi_ofi_freeinfo(list);
        return err;
    }
    if (!bind_ip || !ofit_ip_based(pick->addr_format)) {
        *out = npi_ofi.dupinfo(pick);
        npi_ofi_freeinfo(hints);
        npi_ofi_freeinfo(list);
        return *out ? NP_OK : npi_error(NP_ERR_NOMEM, "ofi: no memory");
    }
    /* An IP-addressed provider: ask again for the same provider bound to
     * the address the tcp transport would use, so traffic takes that link. */
    char prov[128];
    snprintf(prov, sizeof(prov), "%s", pick->fabric_attr->prov_name);
    npi_ofi_freeinfo(list);
    npi_ofi_freeinfo(hints);
    list = NULL;
    struct in_addr a;
    np_err err = npi_fab_tcp_pick_addr(&a);
    if (err != NP_OK)
        return err;
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, ip, sizeof(ip));
    /* Ask for injects as large as a send slot first (rxm grants up to its
     * eager size; sockets refuses over 255 bytes, and then the provider's
     * default stands). */
    struct fi_info *exact = NULL;
    for (int pass = 0; pass < 2 && !exact; pass++) {
        hints = ofit_hints(prov);
        if (!hints)
            return npi_error(NP_ERR_NOMEM, "ofi: no memory");
        hints->addr_format = FI_SOCKADDR_IN;
        if (pass == 0)
            hints->tx_attr->inject_size = OFIT_SLOT;
        npi_ofi_freeinfo(list);
        list = NULL;
        rc = npi_ofi.getinfo(OFIT_VERSION, ip, NULL, FI_SOURCE, hints, &list);
        npi_ofi_freeinfo(hints);
        /* The provider picked above, not another that the name also
         * matches (a native endpoint refuses the large inject size that
         * its rxm layering grants). */
        for (struct fi_info *i = rc == 0 ? list : NULL; i && !exact; i = i->next)
            if (strcmp(i->fabric_attr->prov_name, prov) == 0)
                exact = i;
    }
    if (!exact) {
        npi_ofi_freeinfo(list);
        return npi_error(NP_ERR_TRANSPORT, "ofi: provider %s cannot bind to %s: %s", prov, ip,
                         rc ? npi_ofi_strerror(-rc) : "no match");
    }
    *out = npi_ofi.dupinfo(exact);
    npi_ofi_freeinfo(list);
    return *out ? NP_OK : npi_error(NP_ERR_NOMEM, "ofi: no memory");
}

static np_err ofit_probe(void)
{
    struct fi_info *i = NULL;
    np_err err = ofit_choose(&i, false);
    npi_ofi_freeinfo(i);
    return err;
}

/* ------------------------------------------------------------ registration */

static bool ofit_mr_always(void)
{
    const char *v = npi_config_get("NUMPUSH_OFI_MR", NULL);
    return v && strcmp(v, "always") == 0;
}

/* A registration covering [p, p+n), from the cache or new.  NULL with
 * *desc NULL when the provider needs none. */
static np_err ofit_mr_get(npi_fab_ep *ep, const void *p, size_t n, ofit_mr **out)
{
    *out = NULL;
    if (!ep->mr_needed || n == 0)
        return NP_OK;
    uintptr_t a = (uintptr_t)p;
    ofit_mr *victim = NULL;
    for (int i = 0; i < OFIT_MRC; i++) {
        ofit_mr *m = &ep->mrc[i];
        if (m->mr && a >= m->base && a + n <= m->base + m->len) {
            m->refs++;
            m->used = ++ep->mr_clock;
            *out = m;
            return NP_OK;
        }
        if (m->refs == 0 && (!victim || !m->mr || (victim->mr && m->used < victim->used)))
            victim = m;
    }
    if (!victim) {
        /* Every cached registration is in use (hundreds of transfers in
         * flight): register this one on its own rather than stall. */
        victim = calloc(1, sizeof(*victim));
        if (!victim)
            return npi_error(NP_ERR_NOMEM, "ofi: no memory");
        victim->temp = true;
    }
    if (victim->mr)
        fi_close(&victim->mr->fid);
    victim->mr = NULL;
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t base = a & ~(uintptr_t)(pg - 1);
    size_t len = ((a + n + pg - 1) & ~(uintptr_t)(pg - 1)) - base;
    /* Providers that do not pick keys (no FI_MR_PROV_KEY) want each
     * registration's requested key to be unique. */
    int rc = fi_mr_reg(ep->domain, (void *)base, len, FI_SEND | FI_RECV, 0, ++ep->mr_key, 0,
                       &victim->mr, NULL);
    if (rc != 0) {
        victim->mr = NULL;
        if (victim->temp)
            free(victim);
        return npi_error(NP_ERR_SYSTEM, "ofi: registering %zu bytes: %s", len,
                         npi_ofi_strerror(-rc));
    }
    victim->base = base;
    victim->len = len;
    victim->desc = fi_mr_desc(victim->mr);
    victim->refs = 1;
    victim->used = ++ep->mr_clock;
    *out = victim;
    return NP_OK;
}

static void ofit_mr_put(ofit_mr *m)
{
    if (m && --m->refs == 0 && m->temp) {
        fi_close(&m->mr->fid);
        free(m);
    }
}

/* ------------------------------------------------------------ transfers */

static void ofit_xfer_unlink(npi_fab_ep *ep, ofit_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        ep->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
}

/* Free x if it has been reported and the provider holds none of it. */
static void ofit_xfer_maybe_free(npi_fab_ep *ep, ofit_xfer *x)
{
    if (!x->reported || x->nlive > 0 || x->queued)
        return;
    for (int i = 0; i < x->nchunks; i++)
        ofit_mr_put(x->chunk[i].mr);
    ofit_xfer_unlink(ep, x);
    free(x);
}

static void ofit_report(npi_fab_ep *ep, ofit_xfer *x, np_err err)
{
    if (x->reported)
        return;
    x->reported = true;
    ep->peers[x->peer].busy--;
    if (x->is_send)
        ep->attr.up.send_done(ep->attr.up.arg, x->ctx, err);
    else
        ep->attr.up.recv_done(ep->attr.up.arg, x->ctx, err);
}

static ofit_xfer *ofit_xfer_new(npi_fab_ep *ep, int peer, uint64_t plen)
{
    int n = plen == 0 ? 0 : (int)((plen + ep->chunk - 1) / ep->chunk);
    ofit_xfer *x = calloc(1, sizeof(*x) + (size_t)n * sizeof(ofit_chunk));
    if (!x)
        return NULL;
    x->peer = peer;
    x->plen = plen;
    x->nchunks = n;
    for (int i = 0; i < n; i++) {
        x->chunk[i].op = OFIT_OP_CHUNK;
        x->chunk[i].parent = x;
    }
    x->next = ep->xfers;
    if (ep->xfers)
        ep->xfers->prev = x;
    ep->xfers = x;
    ofit_peer *p = &ep->peers[peer];
    if (p->busy++ == 0)
        p->heard_ns = npi_now_ns(); /* the silence clock starts now */
    return x;
}

static void ofit_enqueue(npi_fab_ep *ep, ofit_xfer *x)
{
    x->queued = true;
    x->qnext = NULL;
    if (ep->q_tail)
        ep->q_tail->qnext = x;
    else
        ep->q_head = x;
    ep->q_tail = x;
}

/* ------------------------------------------------------------ header messages */

static void ofit_frame(npi_fab_ep *ep, uint8_t *h, int kind, int peer, uint32_t seq, size_t hlen,
                       uint64_t plen, uint64_t id)
{
    memset(h, 0, OFIT_HEAD);
    h[0] = 'N';
    h[1] = 'F';
    h[2] = 1;
    h[3] = (uint8_t)kind;
    h[4] = (uint8_t)hlen;
    ofit_put32(h + 8, (uint32_t)ep->attr.rank);
    ofit_put32(h + 12, seq);
    ofit_put64(h + 16, ep->peers[peer].cookie);
    ofit_put64(h + 24, plen);
    ofit_put64(h + 32, id);
}

/* Post len bytes of slot t (already filled) to peer.  Returns 0, or
 * -FI_EAGAIN (the slot is back on the free list), or another error. */
static int ofit_tx_post(npi_fab_ep *ep, ofit_tx *t, int peer, size_t len)
{
    ofit_peer *p = &ep->peers[peer];
    t->peer = peer;
    int rc;
    /* Until the path to the peer is proven (ofit_liveness), sends ask for a
     * completion, which is the proof: a rank that only ever sends to a
     * peer, as around a ring, has no other. */
    if (len <= ep->inject && p->proven) {
        rc = (int)fi_tinject(ep->ep, t->buf, len, p->fa, 0);
        if (rc == 0) {
            t->next = ep->tx_free;
            ep->tx_free = t;
            return 0;
        }
    } else {
        rc = (int)fi_tsend(ep->ep, t->buf, len, ep->pool_desc, p->fa, 0, t);
        if (rc == 0)
            return 0;
    }
    t->next = ep->tx_free;
    ep->tx_free = t;
    return rc;
}

/* A control header (ping, pong, bye) to peer: best effort, never queued.
 * An ordered one (the goodbye of close) takes its place in the sequence,
 * after every message sent before it; the others act on arrival. */
static void ofit_control(npi_fab_ep *ep, int peer, int kind, bool ordered, np_err err)
{
    ofit_tx *t = ep->tx_free;
    ofit_peer *p = &ep->peers[peer];
    if (!t || !p->known)
        return;
    ep->tx_free = t->next;
    ofit_frame(ep, t->buf, kind, peer, ordered ? p->tx_seq++ : 0, 0, 0, (uint64_t)err);
    t->buf[5] = ordered;
    ofit_tx_post(ep, t, peer, OFIT_HEAD);
}

static void ofit_repost(npi_fab_ep *ep, ofit_rx *r)
{
    /* A provider short of resources refuses for now; the buffer waits on
     * the idle list and progress posts it again. */
    int rc = (int)fi_trecv(ep->ep, r->buf, OFIT_SLOT, ep->pool_desc, FI_ADDR_UNSPEC, 0, 0, r);
    if (rc != 0) {
        r->next = ep->rx_idle;
        ep->rx_idle = r;
    }
}

/* ------------------------------------------------------------ failure */

static void ofit_fail(npi_fab_ep *ep, int peer, np_err err, bool tell)
{
    ofit_peer *p = &ep->peers[peer];
    if (p->err != NP_OK)
        return;
    if (tell)
        ofit_control(ep, peer, OFIT_K_BYE, false, err);
    p->err = err;
    npi_listen_probe_close(&p->listen);
    if (!p->said_bye)
        ep->lost_peer = true;
    /* Queued transfers that never reached the provider leave the queue. */
    ofit_xfer **qp = &ep->q_head;
    ep->q_tail = NULL;
    while (*qp) {
        ofit_xfer *x = *qp;
        if (x->peer == peer) {
            *qp = x->qnext;
            x->queued = false;
        } else {
            ep->q_tail = x;
            qp = &x->qnext;
        }
    }
    /* Chunks with the provider are withdrawn where it allows; whatever it
     * still reports for them later is ignored. */
    for (ofit_xfer *x = ep->xfers, *next; x; x = next) {
        next = x->next;
        if (x->peer != peer)
            continue;
        for (int i = 0; i < x->nchunks; i++)
            if (x->chunk[i].posted && !x->chunk[i].done)
                fi_cancel(&ep->ep->fid, &x->chunk[i]);
        ofit_report(ep, x, err);
        ofit_xfer_maybe_free(ep, x);
    }
    while (p->held) {
        ofit_rx *r = p->held;
        p->held = r->next;
        ofit_repost(ep, r);
    }
    ep->attr.up.peer_error(ep->attr.up.arg, peer, err);
}

/* ------------------------------------------------------------ sending */

/* Post what x still needs: its header message, then its chunks.  Returns 0
 * when everything is posted, -FI_EAGAIN to retry later, or an error. */
static int ofit_xfer_post(npi_fab_ep *ep, ofit_xfer *x)
{
    ofit_peer *p = &ep->peers[x->peer];
    if (x->is_send && !x->hdr_sent) {
        ofit_tx *t = ep->tx_free;
        if (!t)
            return -FI_EAGAIN;
        ep->tx_free = t->next;
        bool eager = x->nchunks == 0 || x->plen <= OFIT_EAGER;
        size_t hlen = x->iov[0].iov_len;
        ofit_frame(ep, t->buf, eager ? OFIT_K_EAGER : OFIT_K_RTS, x->peer, x->seq, hlen, x->plen,
                   x->id);
        memcpy(t->buf + OFIT_HEAD, x->iov[0].iov_base, hlen);
        size_t len = OFIT_HEAD + hlen;
        if (eager)
            for (int i = 1; i < x->iovcnt; i++) {
                memcpy(t->buf + len, x->iov[i].iov_base, x->iov[i].iov_len);
                len += x->iov[i].iov_len;
            }
        int rc = ofit_tx_post(ep, t, x->peer, len);
        if (rc != 0)
            return rc;
        x->hdr_sent = true;
        if (eager) {
            /* The bytes are ours now: the caller's buffers are free. */
            x->nchunks = 0;
            ofit_report(ep, x, NP_OK);
            return 0;
        }
    }
    if (x->is_send && x->await_cts)
        return 0; /* posted further when the CTS comes (ofit_rx_done) */
    while (x->nposted < x->nchunks) {
        int k = x->nposted;
        ofit_chunk *c = &x->chunk[k];
        uint64_t off = (uint64_t)k * ep->chunk;
        size_t n = (size_t)(x->plen - off < ep->chunk ? x->plen - off : ep->chunk);
        uint64_t tag = ofit_data_tag(x->is_send ? ep->attr.rank : x->peer, x->id + (uint64_t)k);
        int rc;
        if (x->is_send) {
            /* The chunk's pieces of the caller's payload iovec. */
            struct iovec iov[NPI_FAB_IOV_MAX];
            void *desc[NPI_FAB_IOV_MAX];
            size_t cnt = 0, pos = 0, want = n;
            for (int i = 1; i < x->iovcnt && want > 0; i++) {
                size_t l = x->iov[i].iov_len;
                if (pos + l <= off) {
                    pos += l;
                    continue;
                }
                size_t skip = off > pos ? (size_t)(off - pos) : 0;
                size_t take = l - skip < want ? l - skip : want;
                iov[cnt].iov_base = (uint8_t *)x->iov[i].iov_base + skip;
                iov[cnt].iov_len = take;
                desc[cnt] = NULL;
                cnt++;
                want -= take;
                pos += l;
                off = pos;
            }
            if (cnt > ep->iov_limit)
                return -FI_EINVAL;
            if (ep->mr_needed) {
                if (cnt != 1)
                    return -FI_EINVAL;
                if (!c->mr && ofit_mr_get(ep, iov[0].iov_base, iov[0].iov_len, &c->mr) != NP_OK)
                    return -FI_ENOMEM;
                desc[0] = c->mr ? c->mr->desc : NULL;
            }
            rc = (int)fi_tsendv(ep->ep, iov, desc, cnt, p->fa, tag, c);
        } else {
            void *buf = x->dst ? x->dst + off : NULL;
            size_t len = x->dst ? n : 0;
            if (ep->mr_needed && buf && !c->mr && ofit_mr_get(ep, buf, len, &c->mr) != NP_OK)
                return -FI_ENOMEM;
            rc = (int)fi_trecv(ep->ep, buf, len, c->mr ? c->mr->desc : NULL, p->fa, tag, 0, c);
        }
        if (rc != 0)
            return rc;
        c->posted = true;
        x->nposted++;
        x->nlive++;
    }
    if (x->cts_due) {
        /* Every receive of the payload is posted: the sender may go. */
        ofit_tx *t = ep->tx_free;
        if (!t)
            return -FI_EAGAIN;
        ep->tx_free = t->next;
        ofit_frame(ep, t->buf, OFIT_K_CTS, x->peer, 0, 0, x->plen, x->id);
        int rc = ofit_tx_post(ep, t, x->peer, OFIT_HEAD);
        if (rc != 0)
            return rc;
        x->cts_due = false;
    }
    return 0;
}

/* Post queued transfers, in order, until one must wait. */
static void ofit_kick(npi_fab_ep *ep)
{
    while (ep->rx_idle) {
        ofit_rx *r = ep->rx_idle;
        if (fi_trecv(ep->ep, r->buf, OFIT_SLOT, ep->pool_desc, FI_ADDR_UNSPEC, 0, 0, r) != 0)
            break;
        ep->rx_idle = r->next;
    }
    while (ep->q_head) {
        ofit_xfer *x = ep->q_head;
        int rc = ofit_xfer_post(ep, x);
        if (rc == -FI_EAGAIN)
            return;
        ep->q_head = x->qnext;
        if (!ep->q_head)
            ep->q_tail = NULL;
        x->queued = false;
        int peer = x->peer;
        if (rc != 0) {
            /* A failed registration has recorded its own message. */
            if (rc != -FI_ENOMEM)
                npi_error(NP_ERR_PEER, "ofi: posting to rank %d: %s", peer, npi_ofi_strerror(-rc));
            ofit_report(ep, x, NP_ERR_PEER);
        }
        /* Freed before failing the peer, which may free it too. */
        ofit_xfer_maybe_free(ep, x);
        if (rc != 0)
            ofit_fail(ep, peer, NP_ERR_PEER, true);
    }
}

static np_err ofit_send(npi_fab_ep *ep, int peer, const struct iovec *iov, int iovcnt, void *ctx)
{
    if (peer < 0 || peer >= ep->attr.size || peer == ep->attr.rank || iovcnt < 1 ||
        iovcnt > NPI_FAB_IOV_MAX || iov[0].iov_len == 0 || iov[0].iov_len > NPI_FAB_HDR_MAX)
        return npi_error(NP_ERR_ARG, "ofi: bad send to rank %d (%d pieces)", peer, iovcnt);
    ofit_peer *p = &ep->peers[peer];
    if (p->err != NP_OK)
        return npi_error(p->err, "ofi: rank %d is gone (%s)", peer, np_errname(p->err));
    if (!p->known)
        return npi_error(NP_ERR_PEER, "ofi: rank %d has no address", peer);
    uint64_t plen = 0;
    for (int i = 1; i < iovcnt; i++)
        plen += iov[i].iov_len;
    npi_tcp_foreign_active(ep->foreign, peer);
    ofit_xfer *x = ofit_xfer_new(ep, peer, plen > OFIT_EAGER ? plen : 0);
    if (!x)
        return npi_error(NP_ERR_NOMEM, "ofi: no memory");
    x->is_send = true;
    x->ctx = ctx;
    x->plen = plen;
    x->await_cts = ep->cts && plen >= OFIT_CTS_MIN;
    x->seq = p->tx_seq++;
    memcpy(x->iov, iov, (size_t)iovcnt * sizeof(*iov));
    x->iovcnt = iovcnt;
    if (x->nchunks > 0) {
        x->id = p->tx_id;
        p->tx_id += (uint64_t)x->nchunks;
    }
    /* Behind anything already waiting, so that order per peer holds. */
    ofit_enqueue(ep, x);
    if (ep->q_head == x)
        ofit_kick(ep);
    return NP_OK;
}

/* ------------------------------------------------------------ receiving */

/* Hand one in-sequence header message up. */
static void ofit_deliver(npi_fab_ep *ep, int peer, ofit_rx *r)
{
    const uint8_t *h = r->buf;
    int kind = h[3];
    size_t hlen = h[4];
    uint64_t plen = ofit_get64(h + 24);
    ofit_peer *p = &ep->peers[peer];
    p->rx_seq++;
    if (kind == OFIT_K_BYE) {
        np_err why = (np_err)ofit_get64(h + 32);
        npi_error(NP_ERR_PEER, "ofi: rank %d closed its endpoint or dropped us (%s)", peer,
                  np_errname(why));
        p->said_bye = true;
        ofit_fail(ep, peer, NP_ERR_PEER, false);
        return;
    }
    void *dst = NULL, *ctx = NULL;
    np_err err = ep->attr.up.incoming(ep->attr.up.arg, peer, h + OFIT_HEAD, hlen, plen, &dst, &ctx);
    if (err != NP_OK) {
        ofit_fail(ep, peer, err, true);
        return;
    }
    if (kind == OFIT_K_EAGER) {
        if (dst && plen > 0)
            memcpy(dst, h + OFIT_HEAD + hlen, plen);
        ep->attr.up.recv_done(ep->attr.up.arg, ctx, NP_OK);
        return;
    }
    ofit_xfer *x = ofit_xfer_new(ep, peer, plen);
    if (!x) {
        ep->attr.up.recv_done(ep->attr.up.arg, ctx,
                              npi_error(NP_ERR_NOMEM, "ofi: no memory for a receive"));
        ofit_fail(ep, peer, NP_ERR_NOMEM, true);
        return;
    }
    x->ctx = ctx;
    x->dst = dst;
    x->id = ofit_get64(h + 32);
    x->cts_due = ep->cts && plen >= OFIT_CTS_MIN;
    ofit_enqueue(ep, x);
    if (ep->q_head == x)
        ofit_kick(ep);
}

/* A bounce buffer completed with len bytes. */
static void ofit_rx_done(npi_fab_ep *ep, ofit_rx *r, size_t len)
{
    const uint8_t *h = r->buf;
    if (len < OFIT_HEAD || h[0] != 'N' || h[1] != 'F' || h[2] != 1 ||
        ofit_get64(h + 16) != ep->cookie) {
        ep->rejected++; /* not from this job */
        ofit_repost(ep, r);
        return;
    }
    uint32_t peer = ofit_get32(h + 8);
    if (peer >= (uint32_t)ep->attr.size || peer == (uint32_t)ep->attr.rank) {
        ep->rejected++;
        ofit_repost(ep, r);
        return;
    }
    ofit_peer *p = &ep->peers[peer];
    if (p->err != NP_OK) {
        ofit_repost(ep, r);
        return;
    }
    p->heard_ns = npi_now_ns();
    p->proven = true;
    int kind = h[3];
    size_t hlen = h[4];
    uint64_t plen = ofit_get64(h + 24);
    bool ok = true;
    if (kind == OFIT_K_BYE && !h[5]) {
        ofit_repost(ep, r);
        npi_error(NP_ERR_PEER, "ofi: rank %d dropped us (%s)", peer,
                  np_errname((np_err)ofit_get64(h + 32)));
        ep->peers[peer].said_bye = true;
        ofit_fail(ep, (int)peer, NP_ERR_PEER, false);
        return;
    }
    if (kind == OFIT_K_PING || kind == OFIT_K_PONG) {
        if (kind == OFIT_K_PING)
            ofit_control(ep, (int)peer, OFIT_K_PONG, false, NP_OK);
        ofit_repost(ep, r);
        return;
    } else if (kind == OFIT_K_CTS && len == OFIT_HEAD) {
        /* The receiver posted its receives: queue the payload (progress
         * posts it next).  None waiting: a send withdrawn since. */
        uint64_t id = ofit_get64(h + 32);
        ofit_repost(ep, r);
        for (ofit_xfer *x = ep->xfers; x; x = x->next)
            if (x->is_send && x->await_cts && x->peer == (int)peer && x->id == id) {
                x->await_cts = false;
                ofit_enqueue(ep, x);
                break;
            }
        return;
    } else if (kind == OFIT_K_EAGER) {
        ok = hlen > 0 && hlen <= NPI_FAB_HDR_MAX && plen <= OFIT_EAGER &&
             len == OFIT_HEAD + hlen + plen;
    } else if (kind == OFIT_K_RTS) {
        ok = hlen > 0 && hlen <= NPI_FAB_HDR_MAX && plen > OFIT_EAGER && len == OFIT_HEAD + hlen;
    } else if (kind != OFIT_K_BYE) {
        ok = false;
    }
    if (!ok) {
        ofit_repost(ep, r);
        npi_error(NP_ERR_PROTOCOL, "ofi: rank %d sent a frame that is not numpush's; dropping it",
                  peer);
        ofit_fail(ep, (int)peer, NP_ERR_PROTOCOL, true);
        return;
    }
    r->len = len;
    r->seq = ofit_get32(h + 12);
    if (r->seq != p->rx_seq) {
        /* Early: hold it until the ones before it have come. */
        r->next = p->held;
        p->held = r;
        return;
    }
    ofit_deliver(ep, (int)peer, r);
    ofit_repost(ep, r);
    for (bool more = true; more && p->err == NP_OK;) {
        more = false;
        for (ofit_rx **rp = &p->held; *rp; rp = &(*rp)->next) {
            if ((*rp)->seq != p->rx_seq)
                continue;
            ofit_rx *e = *rp;
            *rp = e->next;
            ofit_deliver(ep, (int)peer, e);
            ofit_repost(ep, e);
            more = true;
            break;
        }
    }
}

/* ------------------------------------------------------------ completions */

static void ofit_chunk_done(npi_fab_ep *ep, ofit_chunk *c, np_err err)
{
    ofit_xfer *x = c->parent;
    int peer = x->peer;
    bool failed = false;
    c->done = true;
    x->nlive--;
    if (err != NP_OK && x->err == NP_OK)
        x->err = err;
    if (err == NP_OK)
        ep->peers[peer].proven = true;
    if (!x->reported) {
        if (err == NP_OK)
            ep->peers[peer].heard_ns = npi_now_ns();
        if (x->err != NP_OK) {
            failed = true;
            ofit_report(ep, x, x->err);
        } else if (x->nlive == 0 && x->nposted == x->nchunks && !x->queued) {
            ofit_report(ep, x, NP_OK);
        }
    }
    /* Freed before failing the peer, which may free it too. */
    np_err e = x->err;
    ofit_xfer_maybe_free(ep, x);
    if (failed)
        ofit_fail(ep, peer, e, true);
}

/* A send slot the provider has finished with, well or not: back to the free
 * list; a heartbeat's ends its peer's wait for one (ofit_liveness). */
static void ofit_tx_done(npi_fab_ep *ep, ofit_tx *t)
{
    if (t->probe) {
        t->probe = false;
        ep->peers[t->peer].probe_ns = 0;
        ep->peers[t->peer].probe_posted = false;
    }
    t->next = ep->tx_free;
    ep->tx_free = t;
}

static void ofit_completion(npi_fab_ep *ep, void *op_ctx, size_t len)
{
    int op = *(int *)((uint8_t *)op_ctx + sizeof(struct fi_context2));
    if (op == OFIT_OP_RX) {
        ofit_rx_done(ep, op_ctx, len);
    } else if (op == OFIT_OP_TX) {
        ofit_tx_done(ep, op_ctx);
        ep->peers[((ofit_tx *)op_ctx)->peer].proven = true;
    } else {
        ofit_chunk_done(ep, op_ctx, NP_OK);
    }
}

static void ofit_cq_error(npi_fab_ep *ep)
{
    struct fi_cq_err_entry e = {0};
    if (fi_cq_readerr(ep->cq, &e, 0) != 1 || !e.op_context)
        return;
    int op = *(int *)((uint8_t *)e.op_context + sizeof(struct fi_context2));
    if (op == OFIT_OP_RX) {
        ofit_rx *r = e.op_context;
        if (e.err != FI_ECANCELED)
            ofit_repost(ep, r); /* an oversized stray message */
    } else if (op == OFIT_OP_TX) {
        ofit_tx *t = e.op_context;
        ofit_tx_done(ep, t);
        if (e.err != FI_ECANCELED) {
            npi_error(NP_ERR_PEER, "ofi: sending to rank %d: %s", t->peer, npi_ofi_strerror(e.err));
            ofit_fail(ep, t->peer, NP_ERR_PEER, false);
        }
    } else {
        ofit_chunk *c = e.op_context;
        ofit_xfer *x = c->parent;
        if (e.err == FI_ETRUNC && !x->is_send && !x->dst) {
            ofit_chunk_done(ep, c, NP_OK); /* a discarded payload, as asked */
        } else if (e.err == FI_ECANCELED) {
            ofit_chunk_done(ep, c, NP_ERR_PEER);
        } else {
            npi_error(NP_ERR_PEER, "ofi: %s rank %d: %s",
                      x->is_send ? "sending to" : "receiving from", x->peer,
                      npi_ofi_strerror(e.err));
            ofit_chunk_done(ep, c, NP_ERR_PEER);
        }
    }
}

/* Completion-queue reads per ofit_poll (16 entries each): a peer that
 * streams without pause must not hold the progress loop from the liveness
 * checks and the caller's deadline.  Entries left stay for the next poll
 * (and make fi_trywait refuse to sleep). */
#define OFIT_POLL_BUDGET 16

/* Read the completion queue until it is empty or the budget is spent;
 * returns how many entries were handled, or a negative libfabric error. */
static int ofit_poll(npi_fab_ep *ep)
{
    int total = 0;
    for (int budget = OFIT_POLL_BUDGET; budget > 0; budget--) {
        struct fi_cq_tagged_entry ent[16];
        ssize_t n = fi_cq_read(ep->cq, ent, 16);
        if (n == -FI_EAGAIN)
            return total;
        if (n == -FI_EAVAIL) {
            ofit_cq_error(ep);
            total++;
            continue;
        }
        if (n < 0)
            return (int)n;
        for (ssize_t i = 0; i < n; i++)
            ofit_completion(ep, ent[i].op_context, ent[i].len);
        total += (int)n;
        /* Fewer entries than asked for: the queue was empty.  Asking again
         * would only run the provider's progress once more (an epoll_wait
         * under net and rxm), a system call per message for nothing. */
        if (n < 16)
            return total;
    }
    return total;
}

/* Offer peer's due heartbeat to the provider, never injected: its
 * completion is the proof that the provider handed it to the peer's host (a
 * socket's kernel, an RDMA adapter), which holds whether or not the peer's
 * process is in numpush.  A provider that refuses it for now (no
 * connection: rxm answers -FI_EAGAIN while it cannot reach a dead peer) is
 * asked again at the next look; the clock runs from when it was due. */
static void ofit_heartbeat(npi_fab_ep *ep, int peer)
{
    ofit_tx *t = ep->tx_free;
    ofit_peer *p = &ep->peers[peer];
    if (!t || !p->known)
        return;
    ep->tx_free = t->next;
    ofit_frame(ep, t->buf, OFIT_K_PING, peer, 0, 0, 0, NP_OK);
    t->buf[5] = 0; /* not ordered: acted on when it arrives */
    t->peer = peer;
    t->probe = true;
    if (fi_tsend(ep->ep, t->buf, OFIT_HEAD, ep->pool_desc, p->fa, 0, t) != 0) {
        t->probe = false;
        t->next = ep->tx_free;
        ep->tx_free = t;
        return;
    }
    p->probe_posted = true;
}

/* Whether progress watches peer's liveness: transfers with it are under
 * way, or messages went either way before.  The second matters because a
 * receive the matching layer has posted is not known here until its header
 * comes: a rank waiting in a ring for its left neighbour, which died, has
 * nothing under way with it. */
static bool ofit_watched(const ofit_peer *p)
{
    return p->known && p->err == NP_OK &&
           (p->busy > 0 || p->tx_seq > 0 || p->rx_seq > 0 || p->awaited);
}

/* Whether peer, never proven alive, whose heartbeat has not left for
 * dead_ns, is gone: its host refuses connections to the address its
 * endpoint listens on (listen_probe.h).  A host that completes the connect
 * has the endpoint still open, and the heartbeat's clock starts again; one
 * that does not answer tells nothing, and neither does a provider that is
 * not addressed by IP: the wait goes on as before. */
static bool ofit_stranger_gone(npi_fab_ep *ep, int peer)
{
    ofit_peer *p = &ep->peers[peer];
    switch (npi_listen_probe_ask(&p->listen, ep->dead_ns)) {
    case NPI_LISTEN_PENDING:
        return false;
    case NPI_LISTEN_GONE:
        npi_error(NP_ERR_PEER,
                  "ofi: rank %d is gone: its host refuses connections to its endpoint, and no "
                  "message has crossed with it",
                  peer);
        return true;
    default:
        p->probe_ns = npi_now_ns();
        return false;
    }
}

/* Heartbeats to quiet watched peers while this rank waits in progress;
 * give up on a peer whose heartbeat cannot leave. */
static void ofit_liveness(npi_fab_ep *ep)
{
    uint64_t now = npi_now_ns();
    for (int i = 0; i < ep->attr.size; i++) {
        ofit_peer *p = &ep->peers[i];
        if (!ofit_watched(p))
            continue;
        /* Before any message has gone either way the provider may still be
         * connecting, which takes the peer's own progress: a peer that has
         * not yet called into numpush holds every send, heartbeats too, and
         * must not be taken for dead for that. */
        if (p->probe_ns && p->proven && now - p->probe_ns > ep->dead_ns) {
            npi_error(NP_ERR_PEER,
                      "ofi: a heartbeat to rank %d has not left in %.1f s (it died, or its "
                      "host or the link to it is down)",
                      i, (now - p->probe_ns) / 1e9);
            ofit_fail(ep, i, NP_ERR_PEER, true);
        } else if (p->probe_ns && now - p->probe_ns > ep->dead_ns && ofit_stranger_gone(ep, i)) {
            ofit_fail(ep, i, NP_ERR_PEER, false);
        } else if (p->probe_ns && !p->probe_posted) {
            ofit_heartbeat(ep, i);
        } else if (!p->probe_ns && now - p->heard_ns > ep->hb_ns &&
                   now - p->pinged_ns > ep->hb_ns) {
            p->probe_ns = p->pinged_ns = now;
            ofit_heartbeat(ep, i);
        }
    }
}

static bool ofit_any_watched(npi_fab_ep *ep)
{
    for (int i = 0; i < ep->attr.size; i++)
        if (ofit_watched(&ep->peers[i]))
            return true;
    return false;
}

static np_err ofit_progress(npi_fab_ep *ep, int timeout_ms)
{
    uint64_t until = timeout_ms > 0 ? npi_now_ns() + (uint64_t)timeout_ms * 1000000 : 0;
    int sleep_us = 20;
    uint64_t start = npi_now_ns();
    for (;;) {
        int n = ofit_poll(ep);
        if (n < 0)
            return npi_error(NP_ERR_SYSTEM, "ofi: reading the completion queue: %s",
                             npi_ofi_strerror(-n));
        ofit_kick(ep);
        ofit_liveness(ep);
        npi_tcp_foreign_poll(ep->foreign);
        if (n > 0 || timeout_ms == 0)
            return NP_OK;
        uint64_t now = npi_now_ns();
        if (until && now >= until)
            return NP_OK;
        /* A reply often comes within a round trip: keep polling that long,
         * yielding the core to any rank that wants it, rather than pay a
         * wake-up from the wait fd (tens of us on a loaded machine). */
        if (now - start < ep->spin_ns) {
            sched_yield();
            continue;
        }
        /* Sleep no longer than a heartbeat while peers are watched. */
        long ms = until ? (long)((until - now + 999999) / 1000000) : 1000;
        if (ofit_any_watched(ep) && ms > (long)(ep->hb_ns / 1000000))
            ms = (long)(ep->hb_ns / 1000000) + 1;
        if (ep->wait_fd >= 0) {
            struct fid *f = &ep->cq->fid;
            if (fi_trywait(ep->fabric, &f, 1) == FI_SUCCESS) {
                struct pollfd pfd = {.fd = ep->wait_fd, .events = POLLIN};
                poll(&pfd, 1, (int)ms);
            }
        } else {
            /* No wait object: back off from 20 us to 1 ms between polls. */
            struct timespec ts = {0, (long)sleep_us * 1000};
            nanosleep(&ts, NULL);
            if (sleep_us < 1000)
                sleep_us *= 2;
        }
    }
}

/* ------------------------------------------------------------ open / close */

static np_err ofit_open(const npi_fab_attr *attr, npi_fab_ep **out)
{
    np_err err = NP_OK;
    int rc = 0;
    const char *what = "";
    npi_fab_ep *ep = calloc(1, sizeof(*ep));
    if (!ep)
        return npi_error(NP_ERR_NOMEM, "ofi: no memory");
    ep->attr = *attr;
    ep->wait_fd = -1;
    ep->peers = calloc((size_t)attr->size, sizeof(ofit_peer));
    for (int i = 0; ep->peers && i < attr->size; i++)
        npi_listen_probe_init(&ep->peers[i].listen, NULL, 0);
    ep->pool = aligned_alloc(4096, ((size_t)(OFIT_NRX + OFIT_NTX) * OFIT_SLOT + 4095) & ~4095ul);
    if (!ep->peers || !ep->pool) {
        err = npi_error(NP_ERR_NOMEM, "ofi: no memory");
        goto fail;
    }
    if (getrandom(&ep->cookie, sizeof(ep->cookie), 0) != sizeof(ep->cookie))
        ep->cookie = npi_now_ns() ^ ((uint64_t)getpid() << 32);
    double t = attr->timeout > 0 ? attr->timeout : 10;
    ep->hb_ns = (uint64_t)(t * 1e8);
    ep->dead_ns = (uint64_t)(t * 6e8);
    err = ofit_choose(&ep->info, true);
    if (err != NP_OK)
        goto fail;
    struct fi_info *fi = ep->info;
    ep->prov_hash = ofit_hash(fi->fabric_attr->prov_name);
    ep->inject = fi->tx_attr->inject_size;
    /* Where the provider moves data inside fi_cq_read (rxm), and where its
     * automatic progress needs no core of its own (net: 8 B 6.7 -> 5.3 us
     * with polling).  sockets runs progress threads that need the core a
     * poller would take (17 us to 2 ms per 8 B message when polling). */
    if (fi->domain_attr->data_progress == FI_PROGRESS_MANUAL ||
        strcmp(fi->fabric_attr->prov_name, "sockets") != 0)
        ep->spin_ns = NPI_FAB_SPIN_NS;
    /* Providers over plain sockets without a rendezvous of their own. */
    ep->cts = strcmp(fi->fabric_attr->prov_name, "net") == 0 ||
              strcmp(fi->fabric_attr->prov_name, "tcp") == 0 ||
              strcmp(fi->fabric_attr->prov_name, "sockets") == 0;
    ep->iov_limit = fi->tx_attr->iov_limit ? fi->tx_attr->iov_limit : 1;
    ep->chunk = fi->ep_attr->max_msg_size < OFIT_CHUNK ? fi->ep_attr->max_msg_size : OFIT_CHUNK;
    ep->mr_needed = (fi->domain_attr->mr_mode & FI_MR_LOCAL) || ofit_mr_always();
    if (fi->ep_attr->max_msg_size < OFIT_SLOT) {
        err = npi_error(NP_ERR_TRANSPORT, "ofi: provider %s carries only %zu-byte messages",
                        fi->fabric_attr->prov_name, fi->ep_attr->max_msg_size);
        goto fail;
    }
    what = "fi_fabric";
    if ((rc = npi_ofi.fabric(fi->fabric_attr, &ep->fabric, NULL)) != 0)
        goto fi_fail;
    what = "fi_domain";
    if ((rc = fi_domain(ep->fabric, fi, &ep->domain, NULL)) != 0)
        goto fi_fail;
    struct fi_av_attr av_attr = {.type = FI_AV_TABLE, .count = (size_t)attr->size};
    what = "fi_av_open";
    if ((rc = fi_av_open(ep->domain, &av_attr, &ep->av, NULL)) != 0)
        goto fi_fail;
    struct fi_cq_attr cq_attr = {
        .format = FI_CQ_FORMAT_TAGGED, .size = 4 * (OFIT_NRX + OFIT_NTX), .wait_obj = FI_WAIT_FD};
    what = "fi_cq_open";
    if (fi_cq_open(ep->domain, &cq_attr, &ep->cq, NULL) == 0) {
        if (fi_control(&ep->cq->fid, FI_GETWAIT, &ep->wait_fd) != 0)
            ep->wait_fd = -1;
    } else {
        /* No file descriptor to sleep on: progress polls with back-off. */
        cq_attr.wait_obj = FI_WAIT_NONE;
        if ((rc = fi_cq_open(ep->domain, &cq_attr, &ep->cq, NULL)) != 0)
            goto fi_fail;
    }
    what = "fi_endpoint";
    if ((rc = fi_endpoint(ep->domain, fi, &ep->ep, NULL)) != 0)
        goto fi_fail;
    what = "binding the endpoint";
    if ((rc = fi_ep_bind(ep->ep, &ep->av->fid, 0)) != 0 ||
        (rc = fi_ep_bind(ep->ep, &ep->cq->fid, FI_TRANSMIT | FI_RECV)) != 0)
        goto fi_fail;
    what = "fi_enable";
    if ((rc = fi_enable(ep->ep)) != 0)
        goto fi_fail;
    size_t nlen = sizeof(ep->name) - OFIT_ADDR_HEAD;
    what = "fi_getname";
    if ((rc = fi_getname(&ep->ep->fid, ep->name + OFIT_ADDR_HEAD, &nlen)) != 0)
        goto fi_fail;
    ep->name[0] = 'O';
    ep->name[1] = (uint8_t)nlen;
    ofit_put64(ep->name + 2, ep->cookie);
    ofit_put32(ep->name + 10, ep->prov_hash);
    ep->name_len = OFIT_ADDR_HEAD + nlen;
    /* Providers over TCP (net, tcp;ofi_rxm, sockets) open their own
     * sockets: they get the tcp transport's settings once they exist. */
    if (ofit_ip_based(fi->addr_format)) {
        int sndbuf = 0;
        err = npi_fab_tcp_sndbuf(&sndbuf);
        if (err != NP_OK)
            goto fail;
        ep->foreign =
            npi_tcp_foreign_new(ep->name + OFIT_ADDR_HEAD, nlen, attr->size, sndbuf, attr->timeout);
    }
    if (ep->mr_needed) {
        what = "registering the bounce buffers";
        if ((rc = fi_mr_reg(ep->domain, ep->pool, (size_t)(OFIT_NRX + OFIT_NTX) * OFIT_SLOT,
                            FI_SEND | FI_RECV, 0, ++ep->mr_key, 0, &ep->pool_mr, NULL)) != 0)
            goto fi_fail;
        ep->pool_desc = fi_mr_desc(ep->pool_mr);
    }
    for (int i = 0; i < OFIT_NTX; i++) {
        ep->tx[i].op = OFIT_OP_TX;
        ep->tx[i].buf = ep->pool + (size_t)(OFIT_NRX + i) * OFIT_SLOT;
        ep->tx[i].next = ep->tx_free;
        ep->tx_free = &ep->tx[i];
    }
    what = "posting receives";
    for (int i = 0; i < OFIT_NRX; i++) {
        ep->rx[i].op = OFIT_OP_RX;
        ep->rx[i].buf = ep->pool + (size_t)i * OFIT_SLOT;
        rc = (int)fi_trecv(ep->ep, ep->rx[i].buf, OFIT_SLOT, ep->pool_desc, FI_ADDR_UNSPEC, 0, 0,
                           &ep->rx[i]);
        if (rc != 0)
            goto fi_fail;
    }
    *out = ep;
    return NP_OK;
fi_fail:
    err = npi_error(NP_ERR_TRANSPORT, "ofi: %s (provider %s): %s", what,
                    ep->info ? ep->info->fabric_attr->prov_name : "?", npi_ofi_strerror(-rc));
fail:
    if (ep->ep)
        fi_close(&ep->ep->fid);
    if (ep->pool_mr)
        fi_close(&ep->pool_mr->fid);
    if (ep->cq)
        fi_close(&ep->cq->fid);
    if (ep->av)
        fi_close(&ep->av->fid);
    if (ep->domain)
        fi_close(&ep->domain->fid);
    if (ep->fabric)
        fi_close(&ep->fabric->fid);
    npi_ofi_freeinfo(ep->info);
    npi_tcp_foreign_free(ep->foreign);
    free(ep->pool);
    for (int i = 0; ep->peers && i < ep->attr.size; i++)
        npi_listen_probe_close(&ep->peers[i].listen);
    free(ep->peers);
    free(ep);
    return err;
}

static np_err ofit_getname(npi_fab_ep *ep, void *addr, size_t cap, size_t *len)
{
    if (cap < ep->name_len)
        return npi_error(NP_ERR_TRUNCATE, "ofi: address needs %zu bytes", ep->name_len);
    memcpy(addr, ep->name, ep->name_len);
    *len = ep->name_len;
    return NP_OK;
}

static np_err ofit_connect(npi_fab_ep *ep, int peer, const void *addr, size_t len)
{
    if (peer < 0 || peer >= ep->attr.size || peer == ep->attr.rank)
        return npi_error(NP_ERR_ARG, "ofi: cannot connect to rank %d", peer);
    const uint8_t *a = addr;
    if (len < OFIT_ADDR_HEAD || a[0] != 'O' || (size_t)a[1] + OFIT_ADDR_HEAD != len)
        return npi_error(NP_ERR_ARG, "ofi: rank %d published a malformed address", peer);
    if (ofit_get32(a + 10) != ep->prov_hash)
        return npi_error(NP_ERR_TRANSPORT,
                         "ofi: rank %d chose another libfabric provider than this rank (%s); set "
                         "NUMPUSH_OFI_PROVIDER the same on every rank",
                         peer, ep->info->fabric_attr->prov_name);
    ofit_peer *p = &ep->peers[peer];
    int rc = fi_av_insert(ep->av, a + OFIT_ADDR_HEAD, 1, &p->fa, 0, NULL);
    if (rc != 1)
        return npi_error(NP_ERR_ARG, "ofi: rank %d's address was refused by the provider: %s", peer,
                         rc < 0 ? npi_ofi_strerror(-rc) : "not inserted");
    p->cookie = ofit_get64(a + 2);
    p->known = true;
    if (ofit_ip_based(ep->info->addr_format))
        npi_listen_probe_init(&p->listen, a + OFIT_ADDR_HEAD, len - OFIT_ADDR_HEAD);
    npi_tcp_foreign_peer(ep->foreign, peer, a + OFIT_ADDR_HEAD, len - OFIT_ADDR_HEAD);
    return NP_OK;
}

static np_err ofit_expect(npi_fab_ep *ep, int peer)
{
    if (peer < 0 || peer >= ep->attr.size)
        return npi_error(NP_ERR_ARG, "ofi: no rank %d to expect", peer);
    if (peer != ep->attr.rank)
        ep->peers[peer].awaited = true;
    return NP_OK;
}

static np_err ofit_cancel(npi_fab_ep *ep, void *ctx, np_err err)
{
    for (ofit_xfer *x = ep->xfers; x; x = x->next) {
        if (!x->is_send || x->ctx != ctx || x->reported)
            continue;
        int peer = x->peer;
        if (!x->hdr_sent) {
            /* Still queued, so nothing of it left: it goes quietly, and the
             * sends queued behind it to the same peer (none of which left
             * either) move up one sequence number. */
            ofit_xfer **qp = &ep->q_head;
            ep->q_tail = NULL;
            while (*qp) {
                if (*qp == x) {
                    *qp = x->qnext;
                } else {
                    if ((*qp)->is_send && (*qp)->peer == peer && (*qp)->seq > x->seq)
                        (*qp)->seq--;
                    ep->q_tail = *qp;
                    qp = &(*qp)->qnext;
                }
            }
            x->queued = false;
            ep->peers[peer].tx_seq--;
            if (x->nchunks > 0 && ep->peers[peer].tx_id == x->id + (uint64_t)x->nchunks)
                ep->peers[peer].tx_id = x->id;
            ofit_report(ep, x, err);
            ofit_xfer_maybe_free(ep, x);
            return NP_OK;
        }
        npi_error(err, "ofi: a send to rank %d was withdrawn half-sent", peer);
        ofit_report(ep, x, err);
        ofit_xfer_maybe_free(ep, x);
        ofit_fail(ep, peer, err, true);
        return NP_OK;
    }
    return npi_error(NP_ERR_ARG, "ofi: cancel of an unknown send");
}

static np_err ofit_disconnect(npi_fab_ep *ep, int peer, np_err err)
{
    if (peer < 0 || peer >= ep->attr.size || peer == ep->attr.rank)
        return npi_error(NP_ERR_ARG, "ofi: disconnect from rank %d", peer);
    ofit_fail(ep, peer, err, true);
    return NP_OK;
}

/* Cancel every transfer still with the provider, report it and free what
 * numpush alone owns; ep itself, its pool and the provider's objects stay. */
static void ofit_abandon(npi_fab_ep *ep)
{
    ep->q_head = ep->q_tail = NULL;
    while (ep->xfers) {
        ofit_xfer *x = ep->xfers;
        for (int i = 0; i < x->nchunks; i++)
            if (x->chunk[i].posted && !x->chunk[i].done)
                fi_cancel(&ep->ep->fid, &x->chunk[i]);
        ofit_report(ep, x, NP_ERR_PEER);
        ofit_xfer_unlink(ep, x);
        free(x);
    }
}

static void ofit_close(npi_fab_ep *ep, int linger_ms)
{
    /* Let sends drain, then say goodbye to every live peer so that it does
     * not wait for us until its timeout. */
    uint64_t until = npi_now_ns() + (uint64_t)linger_ms * 1000000;
    for (;;) {
        bool sending = false;
        for (ofit_xfer *x = ep->xfers; x; x = x->next)
            if (x->is_send && !x->reported && ep->peers[x->peer].err == NP_OK)
                sending = true;
        if (!sending || npi_now_ns() >= until)
            break;
        ofit_progress(ep, 10);
    }
    for (int i = 0; i < ep->attr.size; i++)
        if (ep->peers[i].known && ep->peers[i].err == NP_OK)
            ofit_control(ep, i, OFIT_K_BYE, true, NP_ERR_PEER);
    /* The goodbyes are sent when their slots come back. */
    uint64_t bye_until = npi_now_ns() + 200000000ull;
    for (;;) {
        int out = 0;
        for (ofit_tx *t = ep->tx_free; t; t = t->next)
            out++;
        if (out == OFIT_NTX || npi_now_ns() >= bye_until)
            break;
        ofit_poll(ep);
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    /* libfabric's rxm can crash inside fi_close after a connection failed
     * under it: it flushes that connection's completions, whose buffers it
     * has freed already (seen here 1 run in 20 after a link went down; the
     * same flush is ofiwg/libfabric#11828, open in 2.4).  After such a
     * failure the endpoint is withdrawn from instead: every operation with
     * the provider cancelled and reported, the provider's objects and the
     * bounce buffers they may still hold left to the process's exit. */
    if (ep->lost_peer && strstr(ep->info->fabric_attr->prov_name, "ofi_rxm")) {
        ofit_abandon(ep);
        npi_tcp_foreign_free(ep->foreign);
        ep->foreign = NULL;
        return;
    }
    /* Closing the endpoint makes the provider let go of every buffer; only
     * then are the pending operations reported. */
    fi_close(&ep->ep->fid);
    ep->q_head = ep->q_tail = NULL;
    while (ep->xfers) {
        ofit_xfer *x = ep->xfers;
        ofit_report(ep, x, NP_ERR_PEER);
        for (int i = 0; i < x->nchunks; i++)
            ofit_mr_put(x->chunk[i].mr);
        ofit_xfer_unlink(ep, x);
        free(x);
    }
    for (int i = 0; i < OFIT_MRC; i++)
        if (ep->mrc[i].mr)
            fi_close(&ep->mrc[i].mr->fid);
    if (ep->pool_mr)
        fi_close(&ep->pool_mr->fid);
    fi_close(&ep->cq->fid);
    fi_close(&ep->av->fid);
    fi_close(&ep->domain->fid);
    fi_close(&ep->fabric->fid);
    npi_ofi_freeinfo(ep->info);
    npi_tcp_foreign_free(ep->foreign);
    free(ep->pool);
    for (int i = 0; ep->peers && i < ep->attr.size; i++)
        npi_listen_probe_close(&ep->peers[i].listen);
    free(ep->peers);
    free(ep);
}

const npi_fab_ops npi_fab_ofi_ops = {
    .size = sizeof(npi_fab_ops),
    .name = "ofi",
    .probe = ofit_probe,
    .open = ofit_open,
    .getname = ofit_getname,
    .connect = ofit_connect,
    .send = ofit_send,
    .progress = ofit_progress,
    .cancel = ofit_cancel,
    .disconnect = ofit_disconnect,
    .close = ofit_close,
    .expect = ofit_expect,
};
