/*
 * The stream-socket engine behind the tcp and tipc transports: nonblocking
 * sockets, one connection per pair of peers (see fabric.h for the contract
 * every transport keeps, sock_common.h for what a transport adds).
 *
 * Connections: the lower rank connects to the higher one and opens with a
 * hello (magic, its rank, and the cookie from the listener's published
 * address).  The cookie is a random number known only through the bootstrap
 * store, so a stray or hostile connection to the listening port cannot pose
 * as a rank; it is closed without touching any peer's state.  One
 * connection per pair, chosen by rank, means there is never a crossing pair
 * to tie-break and every message between two ranks travels one stream, which
 * gives per-pair order for free.
 *
 * Framing: a 12-byte frame head ("NP", version, header length, payload
 * length as little-endian uint64), the header (the envelope), the payload.
 * Sends go out with one sendmsg over {frame head, header, payload} (several
 * queued messages per call when they are small), never copying the payload.
 * Receives read into a 64 KiB staging buffer while parsing frame heads and
 * headers; once the matching layer has said where a payload goes, whatever
 * the staging buffer already holds is copied and the rest is read straight
 * into the destination, so a large message that matches a posted receive
 * moves from the kernel into the user's buffer with no copy in between.
 *
 * Failure: EOF, reset, or an expiry of the family's own supervision (tcp:
 * TCP_USER_TIMEOUT and keepalives; tipc: link supervision) on a peer's
 * connection fails everything pending on it with NP_ERR_PEER; a frame head
 * that is not ours, or a header the matching layer rejects, drops the
 * connection with NP_ERR_PROTOCOL.
 */
#include "config.h"

#include "sock_common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define SK_FRAME_HEAD 12
#define SK_STAGE      (64 * 1024)
/* Payload remainders at least this large are read straight into the
 * destination; smaller ones go through the staging buffer, which lets one
 * recv pick up the following small messages too. */
#define SK_DIRECT_MIN  (16 * 1024)
#define SK_HELLO_LEN   16
#define SK_HELLO_MAGIC 0x4e505448u /* "NPTH" */
#define SK_WRITEV_MAX  64
/* How long connect waits for a connection to be made before it leaves the
 * rest to progress (npi_sk_connect says why it waits at all). */
#define SK_CONNECT_WAIT_MS 200

/* A queued send: frame head + caller's header and payload pieces. */
typedef struct sk_send {
    struct sk_send *next;
    void *ctx;
    uint8_t head[SK_FRAME_HEAD];
    struct iovec iov[NPI_FAB_IOV_MAX + 1];
    int iovcnt;
    int cur;      /* first iov not fully written */
    size_t off;   /* bytes of iov[cur] already written */
    bool started; /* some byte has left */
} sk_send;

enum {
    SK_CONN_NONE,       /* no socket */
    SK_CONN_CONNECTING, /* connect() in progress */
    SK_CONN_READY,      /* usable */
    SK_CONN_DEAD,       /* failed; err says why */
};

enum { SK_RX_HEAD, SK_RX_PAYLOAD };

typedef struct sk_conn {
    int fd;
    int state;
    np_err err;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    uint64_t cookie; /* the peer listener's cookie, sent in our hello */
    sk_send *sq_head, *sq_tail;
    bool watch_acks;   /* bytes written since the kernel last had all acknowledged */
    uint64_t watch_ns; /* when watch_acks was last set */
    /* Receive side. */
    int rx_state;
    uint8_t *stage;
    size_t spos, slen; /* unread staged bytes are stage[spos .. slen) */
    uint8_t *dst;      /* payload destination (NULL: discard) */
    uint8_t *dst_base; /* where the payload's first byte went */
    uint64_t rx_left;  /* payload bytes still to place */
    void *rx_ctx;
} sk_conn;

/* Accepted sockets that have not said who they are yet, beyond one per
 * peer, that the endpoint keeps before it closes the oldest: a silent
 * stranger costs a descriptor, so strangers are bounded by number.  Never
 * by age: a peer's hello may come arbitrarily late (a rank sends it at its
 * first progress call when its connection was not made at once, and it
 * may have no fabric traffic for minutes), and a real peer's connection
 * dropped for lateness is a job that fails for nothing. */
#define SK_STRANGERS_MAX 64

/* An accepted socket that has not said who it is yet. */
typedef struct sk_pending {
    struct sk_pending *next;
    int fd;
    uint8_t hello[SK_HELLO_LEN];
    size_t got;
} sk_pending;

struct npi_fab_ep {
    const npi_sk_family *fam;
    npi_fab_attr attr;
    int lfd;
    struct sockaddr_storage baddr; /* as bound */
    struct sockaddr_storage laddr; /* as getsockname reports it */
    socklen_t laddr_len;
    uint64_t cookie;
    sk_conn *conns;      /* per peer */
    sk_pending *pending; /* newest first */
    int npending;
    struct pollfd *pfd;
    int *pfd_peer; /* which peer each pollfd is (-1 listener, -2 pending) */
    size_t pfd_cap;
    long rejected;          /* stray connections closed */
    uint64_t next_ack_look; /* when sk_watch_acks looks next */
};

static void sk_connected(npi_fab_ep *ep, int peer);

/* ------------------------------------------------------------ wire helpers */

void npi_sk_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t npi_sk_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void npi_sk_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t npi_sk_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ------------------------------------------------------------ sockets */

/* Fail everything pending on peer's connection and close it. */
static void sk_fail(npi_fab_ep *ep, int peer, np_err err)
{
    sk_conn *c = &ep->conns[peer];
    if (c->state == SK_CONN_DEAD)
        return;
    c->state = SK_CONN_DEAD;
    c->err = err;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    sk_send *s = c->sq_head;
    c->sq_head = c->sq_tail = NULL;
    while (s) {
        sk_send *next = s->next;
        if (s->ctx)
            ep->attr.up.send_done(ep->attr.up.arg, s->ctx, err);
        else
            free(s->iov[1].iov_base); /* an unsent hello's cookie block */
        free(s);
        s = next;
    }
    if (c->rx_state == SK_RX_PAYLOAD) {
        c->rx_state = SK_RX_HEAD;
        ep->attr.up.recv_done(ep->attr.up.arg, c->rx_ctx, err);
    }
    free(c->stage);
    c->stage = NULL;
    ep->attr.up.peer_error(ep->attr.up.arg, peer, err);
}

np_err npi_sk_open(const npi_sk_family *fam, const npi_fab_attr *attr, npi_fab_ep **out)
{
    np_err err = NP_OK;
    npi_fab_ep *ep = calloc(1, sizeof(*ep));
    if (!ep)
        return npi_error(NP_ERR_NOMEM, "%s: no memory", fam->name);
    ep->fam = fam;
    ep->attr = *attr;
    ep->lfd = -1;
    ep->conns = calloc(attr->size, sizeof(sk_conn));
    if (!ep->conns) {
        err = npi_error(NP_ERR_NOMEM, "%s: no memory", fam->name);
        goto fail;
    }
    for (int i = 0; i < attr->size; i++)
        ep->conns[i].fd = -1;
    if (getrandom(&ep->cookie, sizeof(ep->cookie), 0) != sizeof(ep->cookie))
        ep->cookie = npi_now_ns() ^ ((uint64_t)getpid() << 32);
    err = fam->listen_addr(&ep->laddr, &ep->laddr_len);
    if (err != NP_OK)
        goto fail;
    struct sockaddr_storage bound = ep->laddr;
    ep->lfd = socket(fam->domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ep->lfd >= 0) {
        /* Accepted sockets inherit the buffer size, which must be set
         * before the handshake to get a large enough window scale. */
        int buf = 4 << 20;
        setsockopt(ep->lfd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    }
    socklen_t alen = sizeof(ep->laddr);
    if (ep->lfd < 0 || bind(ep->lfd, (struct sockaddr *)&ep->laddr, ep->laddr_len) != 0 ||
        listen(ep->lfd, 128) != 0 ||
        getsockname(ep->lfd, (struct sockaddr *)&ep->laddr, &alen) != 0) {
        char a[128];
        int e = errno;
        fam->describe(&ep->laddr, a, sizeof(a));
        err = npi_error(NP_ERR_SYSTEM, "%s: cannot listen on %s: %s", fam->name, a, strerror(e));
        goto fail;
    }
    ep->laddr_len = alen;
    ep->baddr = bound;
    *out = ep;
    return NP_OK;
fail:
    if (ep->lfd >= 0)
        close(ep->lfd);
    free(ep->conns);
    free(ep);
    return err;
}

np_err npi_sk_getname(npi_fab_ep *ep, void *addr, size_t cap, size_t *len)
{
    return ep->fam->encode(&ep->baddr, &ep->laddr, ep->cookie, addr, cap, len);
}

np_err npi_sk_connect(npi_fab_ep *ep, int peer, const void *addr, size_t len)
{
    if (peer < 0 || peer >= ep->attr.size || peer == ep->attr.rank)
        return npi_error(NP_ERR_ARG, "%s: cannot connect to rank %d", ep->fam->name, peer);
    sk_conn *c = &ep->conns[peer];
    np_err err = ep->fam->decode(addr, len, &c->addr, &c->addr_len, &c->cookie);
    if (err != NP_OK)
        return npi_error(err, "%s: rank %d published a malformed address", ep->fam->name, peer);
    c->stage = malloc(SK_STAGE);
    if (!c->stage)
        return npi_error(NP_ERR_NOMEM, "%s: no memory", ep->fam->name);
    /* The higher rank waits for the lower one to connect (see the top). */
    if (peer < ep->attr.rank)
        return NP_OK;
    c->fd = socket(ep->fam->domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return npi_error(NP_ERR_SYSTEM, "%s: socket: %s", ep->fam->name, strerror(errno));
    ep->fam->tune(c->fd, ep->attr.timeout);
    /* The hello: magic, this rank, the cookie from the peer's address. */
    uint8_t hello[SK_HELLO_LEN];
    npi_sk_put32(hello, SK_HELLO_MAGIC);
    npi_sk_put32(hello + 4, (uint32_t)ep->attr.rank);
    npi_sk_put64(hello + 8, c->cookie);
    int rc;
    if (ep->fam->hello_in_request) {
        struct iovec iov = {.iov_base = hello, .iov_len = sizeof(hello)};
        struct msghdr m = {
            .msg_name = &c->addr, .msg_namelen = c->addr_len, .msg_iov = &iov, .msg_iovlen = 1};
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        rc = w == (ssize_t)sizeof(hello) ? 0 : -1;
        if (w >= 0 && rc != 0)
            errno = EPROTO; /* a request that took only part of 16 bytes */
    } else {
        rc = connect(c->fd, (struct sockaddr *)&c->addr, c->addr_len);
        if (rc != 0 && errno == EINPROGRESS)
            rc = 0;
    }
    if (rc != 0) {
        char a[128];
        int e = errno;
        ep->fam->describe(&c->addr, a, sizeof(a));
        npi_error(NP_ERR_PEER, "%s: connect to rank %d at %s: %s", ep->fam->name, peer, a,
                  strerror(e));
        sk_fail(ep, peer, NP_ERR_PEER);
        return NP_OK;
    }
    c->state = SK_CONN_CONNECTING;
    if (!ep->fam->hello_in_request) {
        /* The hello is the first thing on the stream; queue it as a send
         * with no owner so that it goes out, in order, with everything
         * else.  The cookie follows in a small heap block it owns. */
        sk_send *h = calloc(1, sizeof(*h));
        uint8_t *cookie = malloc(8);
        if (!h || !cookie) {
            free(h);
            free(cookie);
            return npi_error(NP_ERR_NOMEM, "%s: no memory", ep->fam->name);
        }
        memcpy(h->head, hello, 8);
        memcpy(cookie, hello + 8, 8);
        h->iov[0].iov_base = h->head;
        h->iov[0].iov_len = 8;
        h->iov[1].iov_base = cookie;
        h->iov[1].iov_len = 8;
        h->iovcnt = 2;
        h->ctx = NULL;
        c->sq_head = c->sq_tail = h;
    }
    /* Send the hello now if the connection is made at once (the peer's
     * kernel completes it from the listener's backlog), rather than at
     * this rank's first progress call, which may come much later: a rank
     * that talks to this peer only on some split communicator calls
     * progress with it only then.  Until the hello arrives the peer cannot
     * tell this connection from a stranger's, nor see this rank die. */
    struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
    if (poll(&pfd, 1, SK_CONNECT_WAIT_MS) == 1)
        sk_connected(ep, peer);
    return NP_OK;
}

/* ------------------------------------------------------------ sending */

/* Write as much of peer's queue as the socket takes.  Completed sends are
 * reported at once. */
static void sk_flush(npi_fab_ep *ep, int peer)
{
    sk_conn *c = &ep->conns[peer];
    while (c->state == SK_CONN_READY && c->sq_head) {
        struct iovec iov[SK_WRITEV_MAX];
        int n = 0;
        size_t offered = 0;
        for (sk_send *s = c->sq_head; s && n < SK_WRITEV_MAX; s = s->next) {
            for (int i = s->cur; i < s->iovcnt && n < SK_WRITEV_MAX; i++) {
                size_t skip = i == s->cur ? s->off : 0;
                if (s->iov[i].iov_len - skip == 0)
                    continue;
                iov[n].iov_base = (uint8_t *)s->iov[i].iov_base + skip;
                iov[n].iov_len = s->iov[i].iov_len - skip;
                offered += iov[n].iov_len;
                n++;
            }
        }
        ssize_t w = 0;
        if (n > 0) {
            struct msghdr m = {.msg_iov = iov, .msg_iovlen = n};
            w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                    return;
                npi_error(NP_ERR_PEER, "%s: sending to rank %d: %s", ep->fam->name, peer,
                          strerror(errno));
                sk_fail(ep, peer, NP_ERR_PEER);
                return;
            }
        }
        if (w > 0 && !c->watch_acks) {
            c->watch_acks = true;
            c->watch_ns = npi_now_ns();
        }
        /* Advance through the queue by the bytes written, completing whole
         * messages. */
        size_t left = (size_t)w;
        while (c->sq_head) {
            sk_send *s = c->sq_head;
            if (left > 0)
                s->started = true;
            while (s->cur < s->iovcnt) {
                size_t rem = s->iov[s->cur].iov_len - s->off;
                if (rem > left) {
                    s->off += left;
                    left = 0;
                    break;
                }
                left -= rem;
                s->cur++;
                s->off = 0;
            }
            if (s->cur < s->iovcnt)
                break;
            c->sq_head = s->next;
            if (!c->sq_head)
                c->sq_tail = NULL;
            if (s->ctx)
                ep->attr.up.send_done(ep->attr.up.arg, s->ctx, NP_OK);
            else
                free(s->iov[1].iov_base); /* the hello's cookie block */
            free(s);
        }
        /* A short write means the socket buffer is full: wait for POLLOUT.
         * Otherwise more may be queued beyond the pieces offered. */
        if ((size_t)w < offered)
            return;
    }
}

np_err npi_sk_send(npi_fab_ep *ep, int peer, const struct iovec *iov, int iovcnt, void *ctx)
{
    if (peer < 0 || peer >= ep->attr.size || peer == ep->attr.rank || iovcnt < 1 ||
        iovcnt > NPI_FAB_IOV_MAX || iov[0].iov_len == 0 || iov[0].iov_len > NPI_FAB_HDR_MAX)
        return npi_error(NP_ERR_ARG, "%s: bad send to rank %d (%d pieces)", ep->fam->name, peer,
                         iovcnt);
    sk_conn *c = &ep->conns[peer];
    if (c->state == SK_CONN_DEAD)
        return npi_error(c->err, "%s: rank %d is gone (%s)", ep->fam->name, peer,
                         np_errname(c->err));
    if (!c->stage)
        return npi_error(NP_ERR_PEER, "%s: rank %d has no address", ep->fam->name, peer);
    sk_send *s = calloc(1, sizeof(*s));
    if (!s)
        return npi_error(NP_ERR_NOMEM, "%s: no memory", ep->fam->name);
    uint64_t plen = 0;
    for (int i = 1; i < iovcnt; i++)
        plen += iov[i].iov_len;
    s->head[0] = 'N';
    s->head[1] = 'P';
    s->head[2] = 1;
    s->head[3] = (uint8_t)iov[0].iov_len;
    npi_sk_put64(s->head + 4, plen);
    s->iov[0].iov_base = s->head;
    s->iov[0].iov_len = SK_FRAME_HEAD;
    memcpy(s->iov + 1, iov, iovcnt * sizeof(*iov));
    s->iovcnt = iovcnt + 1;
    s->ctx = ctx;
    if (c->sq_tail)
        c->sq_tail->next = s;
    else
        c->sq_head = s;
    c->sq_tail = s;
    /* Writing now, rather than at the next progress, saves a poll round
     * trip for every small message. */
    if (c->sq_head == s)
        sk_flush(ep, peer);
    return NP_OK;
}

np_err npi_sk_cancel(npi_fab_ep *ep, void *ctx, np_err err)
{
    for (int p = 0; p < ep->attr.size; p++) {
        sk_conn *c = &ep->conns[p];
        sk_send *prev = NULL;
        for (sk_send *s = c->sq_head; s; prev = s, s = s->next) {
            if (s->ctx != ctx)
                continue;
            if (s->started) {
                npi_error(err, "%s: a send to rank %d was withdrawn half-written", ep->fam->name,
                          p);
                sk_fail(ep, p, err);
                return NP_OK;
            }
            if (prev)
                prev->next = s->next;
            else
                c->sq_head = s->next;
            if (c->sq_tail == s)
                c->sq_tail = prev;
            ep->attr.up.send_done(ep->attr.up.arg, ctx, err);
            free(s);
            return NP_OK;
        }
    }
    return npi_error(NP_ERR_ARG, "%s: cancel of an unknown send", ep->fam->name);
}

np_err npi_sk_redirect(npi_fab_ep *ep, void *ctx, void *dst, uint64_t *placed)
{
    for (int p = 0; p < ep->attr.size; p++) {
        sk_conn *c = &ep->conns[p];
        if (c->rx_state != SK_RX_PAYLOAD || c->rx_ctx != ctx || c->state == SK_CONN_DEAD)
            continue;
        if (!c->dst)
            break; /* discarding already: nothing to redirect */
        uint64_t done = (uint64_t)(c->dst - c->dst_base);
        *placed = done;
        c->dst_base = dst;
        c->dst = dst ? (uint8_t *)dst + done : NULL;
        return NP_OK;
    }
    return npi_error(NP_ERR_ARG, "%s: redirect of a payload not under way", ep->fam->name);
}

np_err npi_sk_disconnect(npi_fab_ep *ep, int peer, np_err err)
{
    if (peer < 0 || peer >= ep->attr.size || peer == ep->attr.rank)
        return npi_error(NP_ERR_ARG, "%s: disconnect from rank %d", ep->fam->name, peer);
    sk_fail(ep, peer, err);
    return NP_OK;
}

/* ------------------------------------------------------------ receiving */

/* Reads from one socket per sk_read call.  A peer that streams without
 * pause (a non-root looping over gathers) must not hold the progress loop:
 * the other sockets (a dead peer's hangup among them) and the caller's
 * deadline come next, and poll reports this socket again. */
#define SK_READ_BUDGET 64

/* Parse and place whatever the staging buffer holds, reading more as the
 * socket allows.  Returns when the socket has nothing more or the budget of
 * reads is spent; only ever before a read, so nothing already read waits
 * for the socket to become readable again. */
static void sk_read(npi_fab_ep *ep, int peer)
{
    sk_conn *c = &ep->conns[peer];
    int budget = SK_READ_BUDGET;
    /* A recv that returned less than it asked for emptied the socket: the
     * next would most likely say EAGAIN, a system call per message wasted
     * on the latency path.  Whatever comes later, poll reports. */
    bool drained = false;
    for (;;) {
        if (c->state != SK_CONN_READY)
            return;
        if (c->rx_state == SK_RX_PAYLOAD) {
            size_t have = c->slen - c->spos;
            if (have > 0) {
                size_t n = have < c->rx_left ? have : (size_t)c->rx_left;
                if (c->dst)
                    memcpy(c->dst, c->stage + c->spos, n);
                if (c->dst)
                    c->dst += n;
                c->spos += n;
                c->rx_left -= n;
            }
            if (c->rx_left > 0 && c->rx_left >= SK_DIRECT_MIN && c->dst) {
                if (drained || budget-- == 0)
                    return;
                size_t want = c->rx_left > (1u << 30) ? (1u << 30) : (size_t)c->rx_left;
                ssize_t r = recv(c->fd, c->dst, want, MSG_DONTWAIT);
                if (r > 0) {
                    c->dst += r;
                    c->rx_left -= (uint64_t)r;
                    drained = (size_t)r < want;
                    continue;
                }
                if (r == 0)
                    errno = 0;
                if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
                    goto lost;
                return;
            }
            if (c->rx_left == 0) {
                c->rx_state = SK_RX_HEAD;
                ep->attr.up.recv_done(ep->attr.up.arg, c->rx_ctx, NP_OK);
                continue;
            }
        } else if (c->slen - c->spos >= SK_FRAME_HEAD) {
            const uint8_t *h = c->stage + c->spos;
            size_t hlen = h[3];
            uint64_t plen = npi_sk_get64(h + 4);
            if (h[0] != 'N' || h[1] != 'P' || h[2] != 1 || hlen == 0 || hlen > NPI_FAB_HDR_MAX ||
                plen > ((uint64_t)1 << 56)) {
                npi_error(NP_ERR_PROTOCOL,
                          "%s: rank %d sent a frame that is not numpush's; dropping it",
                          ep->fam->name, peer);
                sk_fail(ep, peer, NP_ERR_PROTOCOL);
                return;
            }
            if (c->slen - c->spos >= SK_FRAME_HEAD + hlen) {
                void *dst = NULL, *ctx = NULL;
                np_err err = ep->attr.up.incoming(ep->attr.up.arg, peer, h + SK_FRAME_HEAD, hlen,
                                                  plen, &dst, &ctx);
                if (err != NP_OK) {
                    sk_fail(ep, peer, err);
                    return;
                }
                c->spos += SK_FRAME_HEAD + hlen;
                c->rx_state = SK_RX_PAYLOAD;
                c->dst = dst;
                c->dst_base = dst;
                c->rx_left = plen;
                c->rx_ctx = ctx;
                continue;
            }
        }
        /* Need more bytes in the staging buffer. */
        if (c->spos > 0) {
            memmove(c->stage, c->stage + c->spos, c->slen - c->spos);
            c->slen -= c->spos;
            c->spos = 0;
        }
        if (drained || budget-- == 0)
            return;
        size_t room = SK_STAGE - c->slen;
        ssize_t r = recv(c->fd, c->stage + c->slen, room, MSG_DONTWAIT);
        if (r > 0) {
            c->slen += (size_t)r;
            drained = (size_t)r < room;
            continue;
        }
        if (r == 0)
            errno = 0;
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            goto lost;
        return;
    }
lost:
    npi_error(NP_ERR_PEER, "%s: connection to rank %d lost (%s)", ep->fam->name, peer,
              errno ? strerror(errno) : "closed by the peer");
    sk_fail(ep, peer, NP_ERR_PEER);
}

/* ------------------------------------------------------------ connections */

static void sk_accept(npi_fab_ep *ep)
{
    for (;;) {
        int fd = accept4(ep->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        sk_pending *p = calloc(1, sizeof(*p));
        if (!p) {
            close(fd);
            return;
        }
        p->fd = fd;
        p->next = ep->pending;
        ep->pending = p;
        if (++ep->npending > ep->attr.size + SK_STRANGERS_MAX) {
            sk_pending **oldest = &ep->pending;
            while ((*oldest)->next)
                oldest = &(*oldest)->next;
            ep->rejected++;
            close((*oldest)->fd);
            free(*oldest);
            *oldest = NULL;
            ep->npending--;
        }
    }
}

/* Read an accepted socket's hello; adopt it as its peer's connection or
 * close it.  Returns true when p is finished with (and freed). */
static bool sk_hello(npi_fab_ep *ep, sk_pending *p)
{
    ssize_t r = recv(p->fd, p->hello + p->got, SK_HELLO_LEN - p->got, MSG_DONTWAIT);
    if (r > 0)
        p->got += (size_t)r;
    else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        goto reject;
    if (p->got < SK_HELLO_LEN)
        return false;
    uint32_t magic = npi_sk_get32(p->hello);
    uint32_t rank = npi_sk_get32(p->hello + 4);
    uint64_t cookie = npi_sk_get64(p->hello + 8);
    if (magic != SK_HELLO_MAGIC || cookie != ep->cookie || rank >= (uint32_t)ep->attr.rank)
        goto reject;
    sk_conn *c = &ep->conns[rank];
    if (c->state != SK_CONN_NONE || !c->stage)
        goto reject;
    c->fd = p->fd;
    c->state = SK_CONN_READY;
    ep->fam->tune(c->fd, ep->attr.timeout);
    free(p);
    sk_flush(ep, (int)rank);
    sk_read(ep, (int)rank);
    return true;
reject:
    /* A stranger, a port scanner or garbage: close it quietly.  No peer's
     * state changes, so the job goes on. */
    ep->rejected++;
    close(p->fd);
    free(p);
    return true;
}

static void sk_connected(npi_fab_ep *ep, int peer)
{
    sk_conn *c = &ep->conns[peer];
    int e = 0;
    socklen_t l = sizeof(e);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l);
    if (e != 0) {
        npi_error(NP_ERR_PEER, "%s: connect to rank %d: %s", ep->fam->name, peer, strerror(e));
        sk_fail(ep, peer, NP_ERR_PEER);
        return;
    }
    c->state = SK_CONN_READY;
    sk_flush(ep, peer);
}

/* ------------------------------------------------------------ progress */

typedef struct sk_poll_set {
    struct pollfd *pfd;
    nfds_t n;
} sk_poll_set;

static int sk_poll_once(void *arg, int timeout_ms)
{
    sk_poll_set *ps = arg;
    return poll(ps->pfd, ps->n, timeout_ms);
}

/* How often sk_watch_acks looks, while a connection has bytes out. */
#define SK_ACK_LOOK_MS 100

/*
 * A peer's host that vanished (link down, no RST) must be noticed within
 * NUMPUSH_TIMEOUT.  On an idle connection the keepalives that tune set do
 * it; with data out, the family's unacked_ms() asks the kernel whether any
 * acknowledgement came lately.  TCP_USER_TIMEOUT would do that too, but
 * since Linux 5.11 it also aborts a connection whose window stays closed
 * that long: a live receiver that joins a 64 MiB broadcast a few seconds
 * late (its buffers full meanwhile) would be taken for dead.  Its kernel
 * answers the zero-window probes, which unacked_ms() counts as alive.  The
 * silence must also outlast the wait itself: a connection idle for a minute
 * last heard an acknowledgement a minute ago, and the first bytes written
 * after that have not had a round trip yet.
 */
static void sk_watch_acks(npi_fab_ep *ep)
{
    if (!ep->fam->unacked_ms)
        return;
    uint64_t now = npi_now_ns();
    if (now < ep->next_ack_look)
        return;
    ep->next_ack_look = now + (uint64_t)SK_ACK_LOOK_MS * 1000000;
    double limit_ms = npi_fab_ack_limit_ms(ep->attr.timeout);
    for (int i = 0; i < ep->attr.size; i++) {
        sk_conn *c = &ep->conns[i];
        if (!c->watch_acks || c->state != SK_CONN_READY || c->fd < 0)
            continue;
        long ms = ep->fam->unacked_ms(c->fd);
        if (ms < 0) {
            if (!c->sq_head)
                c->watch_acks = false; /* all out and acknowledged */
        } else if ((double)ms > limit_ms && (double)(now - c->watch_ns) / 1e6 > limit_ms) {
            npi_error(NP_ERR_PEER,
                      "%s: rank %d's host acknowledged nothing for %.1f s (link down or host "
                      "gone)",
                      ep->fam->name, i, (double)ms / 1e3);
            sk_fail(ep, i, NP_ERR_PEER);
        }
    }
}

np_err npi_sk_progress(npi_fab_ep *ep, int timeout_ms)
{
    size_t need = 1 + (size_t)ep->attr.size;
    for (sk_pending *p = ep->pending; p; p = p->next)
        need++;
    if (need > ep->pfd_cap) {
        free(ep->pfd);
        free(ep->pfd_peer);
        ep->pfd = malloc(need * 2 * sizeof(*ep->pfd));
        ep->pfd_peer = malloc(need * 2 * sizeof(int));
        if (!ep->pfd || !ep->pfd_peer) {
            ep->pfd_cap = 0;
            return npi_error(NP_ERR_NOMEM, "%s: no memory", ep->fam->name);
        }
        ep->pfd_cap = need * 2;
    }
    nfds_t n = 0;
    ep->pfd[n] = (struct pollfd){.fd = ep->lfd, .events = POLLIN};
    ep->pfd_peer[n++] = -1;
    for (int i = 0; i < ep->attr.size; i++) {
        sk_conn *c = &ep->conns[i];
        if (c->fd < 0 || c->state == SK_CONN_DEAD)
            continue;
        short ev = POLLIN;
        if (c->state == SK_CONN_CONNECTING || c->sq_head)
            ev |= POLLOUT;
        if (c->state == SK_CONN_CONNECTING)
            ev = POLLOUT;
        ep->pfd[n] = (struct pollfd){.fd = c->fd, .events = ev};
        ep->pfd_peer[n++] = i;
        /* Wake in time for sk_watch_acks's next look. */
        if (c->watch_acks && c->state == SK_CONN_READY && ep->fam->unacked_ms &&
            (timeout_ms < 0 || timeout_ms > SK_ACK_LOOK_MS))
            timeout_ms = SK_ACK_LOOK_MS;
    }
    for (sk_pending *p = ep->pending; p; p = p->next) {
        ep->pfd[n] = (struct pollfd){.fd = p->fd, .events = POLLIN};
        ep->pfd_peer[n++] = -2;
    }
    sk_poll_set ps = {ep->pfd, n};
    int r = npi_fab_poll_spin(sk_poll_once, &ps, timeout_ms);
    if (r < 0) {
        if (errno == EINTR)
            return NP_OK;
        return npi_error(NP_ERR_SYSTEM, "%s: poll: %s", ep->fam->name, strerror(errno));
    }
    for (nfds_t i = 0; i < n && r > 0; i++) {
        short re = ep->pfd[i].revents;
        if (!re)
            continue;
        int who = ep->pfd_peer[i];
        if (who == -1) {
            sk_accept(ep);
        } else if (who >= 0) {
            sk_conn *c = &ep->conns[who];
            if (c->state == SK_CONN_CONNECTING) {
                sk_connected(ep, who);
            } else {
                if (re & (POLLIN | POLLHUP | POLLERR))
                    sk_read(ep, who);
                if ((re & (POLLOUT | POLLERR | POLLHUP)) && c->state == SK_CONN_READY)
                    sk_flush(ep, who);
            }
        }
    }
    /* Hellos: poll told us which pending sockets are readable, but the list
     * may have grown since; trying each is cheap (they are rare). */
    sk_pending **pp = &ep->pending;
    while (*pp) {
        sk_pending *p = *pp;
        sk_pending *next = p->next;
        if (sk_hello(ep, p)) {
            *pp = next;
            ep->npending--;
        } else {
            pp = &p->next;
        }
    }
    sk_watch_acks(ep);
    return NP_OK;
}

void npi_sk_close(npi_fab_ep *ep, int linger_ms)
{
    /* Let queued sends drain for a while, so that a rank that sends and
     * then finalizes does not cut its own last message off. */
    uint64_t until = npi_now_ns() + (uint64_t)linger_ms * 1000000;
    for (;;) {
        bool queued = false;
        for (int i = 0; i < ep->attr.size; i++)
            if (ep->conns[i].sq_head && ep->conns[i].state != SK_CONN_DEAD)
                queued = true;
        if (!queued || npi_now_ns() >= until)
            break;
        npi_sk_progress(ep, 10);
    }
    for (int i = 0; i < ep->attr.size; i++) {
        sk_conn *c = &ep->conns[i];
        if (c->state != SK_CONN_DEAD && (c->fd >= 0 || c->sq_head || c->stage))
            sk_fail(ep, i, NP_ERR_PEER);
        free(c->stage);
    }
    while (ep->pending) {
        sk_pending *p = ep->pending;
        ep->pending = p->next;
        close(p->fd);
        free(p);
    }
    if (ep->lfd >= 0)
        close(ep->lfd);
    free(ep->pfd);
    free(ep->pfd_peer);
    free(ep->conns);
    free(ep);
}
