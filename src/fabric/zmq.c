/*
 * The zmq transport: libzmq PUSH/PULL sockets (see fabric.h for the
 * contract every transport keeps).
 *
 * Each endpoint binds one PULL socket that every peer's messages arrive on,
 * and connects one PUSH socket to each peer.  One PUSH socket per peer keeps
 * each pair's messages in one ordered pipe, and lets a full or unconnected
 * pipe hold back only that peer.  A message is multipart: part 0 is the
 * sender's rank (4 bytes, little-endian) followed by the header; the other
 * parts are the payload pieces.  libzmq delivers multipart messages whole or
 * not at all, so a sender that dies mid-message leaves no partial message.
 *
 * Payload pieces of ZQ_ZEROCOPY_MIN bytes or more are handed to libzmq
 * without a copy (zmq_msg_init_data); libzmq calls our free function from
 * its I/O thread once the bytes are written, and that is when the send
 * completes.  The free function only bumps an atomic counter and writes an
 * eventfd that progress polls, so every upcall still runs on the caller's
 * thread.  Smaller pieces are copied, which libzmq's own documentation
 * advises (the bookkeeping of a zero-copy message costs more than copying a
 * few kilobytes).  Received payloads are copied once out of libzmq's
 * message into the destination: libzmq has no way to receive into a buffer
 * chosen after the header is seen.
 *
 * Dead peers: a socket monitor on each PUSH socket reports the connection's
 * loss (ZMQ_EVENT_DISCONNECTED after ZMQ_EVENT_CONNECTED), which fails the
 * peer with NP_ERR_PEER.  A peer that died before its connection was made
 * never connects: libzmq retries for ever.  A peer this rank waits for
 * (zq_expect) that is still unconnected after ZQ_UNMET_NS is asked about
 * through its host's kernel (listen_probe.h), since libzmq's I/O thread
 * accepts connections for a live one whatever its owner is doing.  Bytes
 * that are not ZMTP never reach us: libzmq drops such connections itself.
 */
#include "config.h"

#include "fabric.h"
#include "listen_probe.h"
#include "tcp_foreign.h"
#include "tcp_link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#define ZQ_ZEROCOPY_MIN (64 * 1024)
#define ZQ_PARTS_MAX    8

typedef struct zq_send {
    struct zq_send *next;
    void *ctx;
    struct iovec iov[NPI_FAB_IOV_MAX];
    int iovcnt;
    uint8_t part0[4 + NPI_FAB_HDR_MAX];
    size_t part0_len;
    atomic_int zc_left; /* zero-copy parts libzmq still holds */
    bool handed;        /* given to libzmq */
    int peer;
    npi_fab_ep *ep;
} zq_send;

typedef struct zq_peer {
    void *push;
    void *mon;
    bool connected, dead;
    np_err err;
    uint64_t lost_ns;         /* when its connection dropped; 0 while up */
    zq_send *q_head, *q_tail; /* not yet handed to libzmq */
    uint64_t awaited_ns;      /* since when a wait involves it (zq_expect), 0: never */
    npi_listen_probe listen;  /* its PULL socket's listener */
} zq_peer;

/* A peer's messages to us travel on its own connection to our PULL socket,
 * not on the one the monitor watches, so its last messages may still be in
 * libzmq's I/O thread when the disconnection is seen.  A lost peer is failed
 * only after this grace period of reading, so that a rank which sends and
 * then exits normally is never reported dead before its last words land. */
#define ZQ_LOST_GRACE_NS (250u * 1000u * 1000u)

/* How long a peer waited for may stay unconnected before its host is
 * asked whether it still listens: a live peer's libzmq connects within
 * milliseconds, and this leaves the answer well inside NUMPUSH_TIMEOUT. */
#define ZQ_UNMET_NS (500u * 1000u * 1000u)

struct npi_fab_ep {
    npi_fab_attr attr;
    void *ctx;
    void *pull;
    char addr[NPI_FAB_ADDR_MAX];
    zq_peer *peers;
    zq_send *inflight; /* handed over with zero-copy parts outstanding */
    int efd;           /* written by the free function */
    zmq_pollitem_t *items;
    int *item_peer;
    zmq_msg_t parts[ZQ_PARTS_MAX];
    npi_tcp_foreign *foreign; /* libzmq's TCP sockets, given tcp's settings */
};

static np_err zq_probe(void)
{
    return NP_OK;
}

static np_err zq_fail_errno(const char *what)
{
    return npi_error(NP_ERR_TRANSPORT, "zmq: %s: %s", what, zmq_strerror(zmq_errno()));
}

/* "tcp://a.b.c.d:port" as a socket address; false for anything else. */
static bool zq_sockaddr(const char *s, struct sockaddr_in *out)
{
    char ip[INET_ADDRSTRLEN];
    const char *colon = strrchr(s, ':');
    if (strncmp(s, "tcp://", 6) != 0 || !colon || colon - (s + 6) >= (long)sizeof(ip))
        return false;
    memcpy(ip, s + 6, (size_t)(colon - (s + 6)));
    ip[colon - (s + 6)] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    return *end == '\0' && port > 0 && port < 65536 && inet_pton(AF_INET, ip, &out->sin_addr) == 1;
}

static np_err zq_open(const npi_fab_attr *attr, npi_fab_ep **out)
{
    np_err err = NP_OK;
    npi_fab_ep *ep = calloc(1, sizeof(*ep));
    if (!ep)
        return npi_error(NP_ERR_NOMEM, "zmq: no memory");
    ep->attr = *attr;
    ep->efd = -1;
    ep->peers = calloc(attr->size, sizeof(zq_peer));
    for (int i = 0; ep->peers && i < attr->size; i++)
        npi_listen_probe_init(&ep->peers[i].listen, NULL, 0);
    ep->items = calloc(2 + 2 * (size_t)attr->size, sizeof(zmq_pollitem_t));
    ep->item_peer = calloc(2 + 2 * (size_t)attr->size, sizeof(int));
    if (!ep->peers || !ep->items || !ep->item_peer) {
        err = npi_error(NP_ERR_NOMEM, "zmq: no memory");
        goto fail;
    }
    ep->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ep->ctx = zmq_ctx_new();
    if (ep->efd < 0 || !ep->ctx) {
        err = npi_error(NP_ERR_SYSTEM, "zmq: cannot create a context");
        goto fail;
    }
    struct in_addr a;
    err = npi_fab_tcp_pick_addr(&a);
    if (err != NP_OK)
        goto fail;
    char ip[INET_ADDRSTRLEN], ep_str[64];
    inet_ntop(AF_INET, &a, ip, sizeof(ip));
    snprintf(ep_str, sizeof(ep_str), "tcp://%s:*", ip);
    ep->pull = zmq_socket(ep->ctx, ZMQ_PULL);
    int zero = 0;
    if (!ep->pull || zmq_setsockopt(ep->pull, ZMQ_RCVHWM, &zero, sizeof(zero)) != 0 ||
        zmq_bind(ep->pull, ep_str) != 0) {
        err = zq_fail_errno(ep_str);
        goto fail;
    }
    size_t len = sizeof(ep->addr);
    if (zmq_getsockopt(ep->pull, ZMQ_LAST_ENDPOINT, ep->addr, &len) != 0) {
        err = zq_fail_errno("ZMQ_LAST_ENDPOINT");
        goto fail;
    }
    /* libzmq opens its connections itself; they get the tcp transport's
     * congestion control and send buffer once they exist (under this
     * machine's BBR a 1 MiB bcast between two hosts took 4x tcp's time). */
    int sndbuf = 0;
    struct sockaddr_in self;
    err = npi_fab_tcp_sndbuf(&sndbuf);
    if (err != NP_OK)
        goto fail;
    if (zq_sockaddr(ep->addr, &self))
        ep->foreign = npi_tcp_foreign_new(&self, sizeof(self), attr->size, sndbuf, attr->timeout);
    *out = ep;
    return NP_OK;
fail:
    if (ep->pull)
        zmq_close(ep->pull);
    if (ep->ctx)
        zmq_ctx_term(ep->ctx);
    if (ep->efd >= 0)
        close(ep->efd);
    for (int i = 0; ep->peers && i < ep->attr.size; i++)
        npi_listen_probe_close(&ep->peers[i].listen);
    free(ep->peers);
    free(ep->items);
    free(ep->item_peer);
    free(ep);
    return err;
}

static np_err zq_getname(npi_fab_ep *ep, void *addr, size_t cap, size_t *len)
{
    size_t n = strlen(ep->addr) + 1;
    if (cap < n)
        return npi_error(NP_ERR_TRUNCATE, "zmq: address needs %zu bytes", n);
    memcpy(addr, ep->addr, n);
    *len = n;
    return NP_OK;
}

static np_err zq_connect(npi_fab_ep *ep, int peer, const void *addr, size_t len)
{
    if (peer < 0 || peer >= ep->attr.size || peer == ep->attr.rank)
        return npi_error(NP_ERR_ARG, "zmq: cannot connect to rank %d", peer);
    const char *s = addr;
    if (len < 7 || len > NPI_FAB_ADDR_MAX || s[len - 1] != '\0' || strncmp(s, "tcp://", 6) != 0)
        return npi_error(NP_ERR_ARG, "zmq: rank %d published a malformed address", peer);
    zq_peer *p = &ep->peers[peer];
    p->push = zmq_socket(ep->ctx, ZMQ_PUSH);
    int zero = 0, one = 1;
    /* No high-water mark: numpush's own queue decides what is in flight.
     * ZMQ_IMMEDIATE keeps messages out of a pipe with no connection yet, so
     * "not connected" shows as EAGAIN and the message stays in our queue. */
    /* Heartbeats make a vanished host (link down, no FIN or RST) show as a
     * disconnection within about half the timeout. */
    int hb_ivl = 1000, hb_to = (int)(ep->attr.timeout * 500);
    if (hb_to < 1000)
        hb_to = 1000;
    if (!p->push || zmq_setsockopt(p->push, ZMQ_SNDHWM, &zero, sizeof(zero)) != 0 ||
        zmq_setsockopt(p->push, ZMQ_IMMEDIATE, &one, sizeof(one)) != 0 ||
        zmq_setsockopt(p->push, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof(hb_ivl)) != 0 ||
        zmq_setsockopt(p->push, ZMQ_HEARTBEAT_TIMEOUT, &hb_to, sizeof(hb_to)) != 0)
        return zq_fail_errno("PUSH socket");
    char mon[64];
    snprintf(mon, sizeof(mon), "inproc://numpush-mon-%d", peer);
    if (zmq_socket_monitor(p->push, mon, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) != 0)
        return zq_fail_errno("zmq_socket_monitor");
    p->mon = zmq_socket(ep->ctx, ZMQ_PAIR);
    if (!p->mon || zmq_connect(p->mon, mon) != 0)
        return zq_fail_errno("monitor socket");
    if (zmq_connect(p->push, s) != 0)
        return zq_fail_errno(s);
    struct sockaddr_in sa;
    if (zq_sockaddr(s, &sa)) {
        npi_tcp_foreign_peer(ep->foreign, peer, &sa, sizeof(sa));
        npi_listen_probe_init(&p->listen, &sa, sizeof(sa));
    }
    return NP_OK;
}

/* libzmq's free function for zero-copy parts; runs on libzmq's I/O thread. */
static void zq_free(void *data, void *hint)
{
    zq_send *s = hint;
    uint64_t one = 1;
    int efd = s->ep->efd;
    if (atomic_fetch_sub(&s->zc_left, 1) == 1) {
        ssize_t r = write(efd, &one, sizeof(one));
        (void)r;
    }
}

/* Hand the queued messages of peer to libzmq until it pushes back. */
static void zq_flush(npi_fab_ep *ep, int peer)
{
    zq_peer *p = &ep->peers[peer];
    while (p->q_head && !p->dead) {
        zq_send *s = p->q_head;
        zmq_msg_t m;
        zmq_msg_init_size(&m, s->part0_len);
        memcpy(zmq_msg_data(&m), s->part0, s->part0_len);
        int more = s->iovcnt > 1 ? ZMQ_SNDMORE : 0;
        if (zmq_msg_send(&m, p->push, ZMQ_DONTWAIT | more) < 0) {
            zmq_msg_close(&m);
            if (zmq_errno() == EAGAIN || zmq_errno() == EINTR)
                return;
            npi_error(NP_ERR_PEER, "zmq: send to rank %d: %s", peer, zmq_strerror(zmq_errno()));
            return;
        }
        /* The first part is in, so libzmq takes the rest without blocking
         * (multipart messages are atomic). */
        int zc = 0;
        for (int i = 1; i < s->iovcnt; i++)
            if (s->iov[i].iov_len >= ZQ_ZEROCOPY_MIN)
                zc++;
        atomic_store(&s->zc_left, zc + 1);
        for (int i = 1; i < s->iovcnt; i++) {
            int fl = i + 1 < s->iovcnt ? ZMQ_SNDMORE : 0;
            if (s->iov[i].iov_len >= ZQ_ZEROCOPY_MIN) {
                zmq_msg_init_data(&m, s->iov[i].iov_base, s->iov[i].iov_len, zq_free, s);
            } else {
                zmq_msg_init_size(&m, s->iov[i].iov_len);
                memcpy(zmq_msg_data(&m), s->iov[i].iov_base, s->iov[i].iov_len);
            }
            if (zmq_msg_send(&m, p->push, fl) < 0)
                zmq_msg_close(&m);
        }
        s->handed = true;
        p->q_head = s->next;
        if (!p->q_head)
            p->q_tail = NULL;
        /* Drop our own reference; what is left is libzmq's. */
        if (atomic_fetch_sub(&s->zc_left, 1) == 1) {
            ep->attr.up.send_done(ep->attr.up.arg, s->ctx, NP_OK);
            free(s);
        } else {
            s->next = ep->inflight;
            ep->inflight = s;
        }
    }
}

static np_err zq_send_msg(npi_fab_ep *ep, int peer, const struct iovec *iov, int iovcnt, void *ctx)
{
    if (peer < 0 || peer >= ep->attr.size || peer == ep->attr.rank || iovcnt < 1 ||
        iovcnt > NPI_FAB_IOV_MAX || iov[0].iov_len == 0 || iov[0].iov_len > NPI_FAB_HDR_MAX)
        return npi_error(NP_ERR_ARG, "zmq: bad send to rank %d", peer);
    zq_peer *p = &ep->peers[peer];
    if (p->dead)
        return npi_error(p->err, "zmq: rank %d is gone (%s)", peer, np_errname(p->err));
    if (!p->push)
        return npi_error(NP_ERR_PEER, "zmq: rank %d has no address", peer);
    npi_tcp_foreign_active(ep->foreign, peer);
    zq_send *s = calloc(1, sizeof(*s));
    if (!s)
        return npi_error(NP_ERR_NOMEM, "zmq: no memory");
    s->ep = ep;
    s->peer = peer;
    s->ctx = ctx;
    uint32_t r = (uint32_t)ep->attr.rank;
    for (int i = 0; i < 4; i++)
        s->part0[i] = (uint8_t)(r >> (8 * i));
    memcpy(s->part0 + 4, iov[0].iov_base, iov[0].iov_len);
    s->part0_len = 4 + iov[0].iov_len;
    memcpy(s->iov, iov, iovcnt * sizeof(*iov));
    s->iovcnt = iovcnt;
    if (p->q_tail)
        p->q_tail->next = s;
    else
        p->q_head = s;
    p->q_tail = s;
    if (p->q_head == s)
        zq_flush(ep, peer);
    return NP_OK;
}

/* Report zero-copy sends whose parts libzmq has let go of. */
static void zq_reap(npi_fab_ep *ep)
{
    uint64_t v;
    ssize_t r = read(ep->efd, &v, sizeof(v));
    (void)r;
    zq_send **pp = &ep->inflight;
    while (*pp) {
        zq_send *s = *pp;
        if (atomic_load(&s->zc_left) == 0) {
            *pp = s->next;
            ep->attr.up.send_done(ep->attr.up.arg, s->ctx, NP_OK);
            free(s);
        } else {
            pp = &s->next;
        }
    }
}

static void zq_fail(npi_fab_ep *ep, int peer, np_err err)
{
    zq_peer *p = &ep->peers[peer];
    if (p->dead)
        return;
    p->dead = true;
    p->err = err;
    npi_listen_probe_close(&p->listen);
    zq_send *s = p->q_head;
    p->q_head = p->q_tail = NULL;
    while (s) {
        zq_send *next = s->next;
        ep->attr.up.send_done(ep->attr.up.arg, s->ctx, err);
        free(s);
        s = next;
    }
    /* Sends already handed over complete when libzmq frees their parts
     * (closing the socket discards its pipe), reaped by progress. */
    if (p->push) {
        int zero = 0;
        zmq_setsockopt(p->push, ZMQ_LINGER, &zero, sizeof(zero));
    }
    ep->attr.up.peer_error(ep->attr.up.arg, peer, err);
}

/* Receive whole messages from the PULL socket while there are any. */
/* Messages taken per zq_read: a peer that streams without pause must not
 * hold the progress loop from the monitors and the caller's deadline; the
 * pull socket stays readable for the next round. */
#define ZQ_READ_BUDGET 64

static void zq_read(npi_fab_ep *ep)
{
    for (int budget = ZQ_READ_BUDGET; budget > 0; budget--) {
        int nparts = 0;
        bool over = false;
        for (;;) {
            zmq_msg_t *m = &ep->parts[nparts < ZQ_PARTS_MAX ? nparts : ZQ_PARTS_MAX - 1];
            if (nparts >= ZQ_PARTS_MAX) {
                zmq_msg_close(m);
                over = true;
            }
            zmq_msg_init(m);
            if (zmq_msg_recv(m, ep->pull, nparts == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(m);
                if (nparts == 0)
                    return;
                break;
            }
            if (nparts < ZQ_PARTS_MAX)
                nparts++;
            if (!zmq_msg_more(m))
                break;
        }
        const uint8_t *h = zmq_msg_data(&ep->parts[0]);
        size_t hl = zmq_msg_size(&ep->parts[0]);
        uint32_t src = hl >= 4 ? (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
                                     (uint32_t)h[3] << 24
                               : UINT32_MAX;
        uint64_t plen = 0;
        for (int i = 1; i < nparts; i++)
            plen += zmq_msg_size(&ep->parts[i]);
        if (src < (uint32_t)ep->attr.size && (int)src != ep->attr.rank && !ep->peers[src].dead) {
            void *dst = NULL, *ctx = NULL;
            np_err err = NP_OK;
            if (over || hl < 5 || hl > 4 + NPI_FAB_HDR_MAX)
                err = npi_error(NP_ERR_PROTOCOL, "zmq: rank %u sent a malformed message", src);
            else
                err = ep->attr.up.incoming(ep->attr.up.arg, (int)src, h + 4, hl - 4, plen, &dst,
                                           &ctx);
            if (err != NP_OK) {
                zq_fail(ep, (int)src, err);
            } else {
                uint8_t *d = dst;
                for (int i = 1; i < nparts && d; i++) {
                    memcpy(d, zmq_msg_data(&ep->parts[i]), zmq_msg_size(&ep->parts[i]));
                    d += zmq_msg_size(&ep->parts[i]);
                }
                ep->attr.up.recv_done(ep->attr.up.arg, ctx, NP_OK);
            }
        }
        for (int i = 0; i < nparts; i++)
            zmq_msg_close(&ep->parts[i]);
    }
}

static void zq_monitor(npi_fab_ep *ep, int peer)
{
    zq_peer *p = &ep->peers[peer];
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, p->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return;
        }
        uint16_t ev = 0;
        if (zmq_msg_size(&m) >= 2)
            memcpy(&ev, zmq_msg_data(&m), 2);
        bool more = zmq_msg_more(&m);
        zmq_msg_close(&m);
        /* The second frame is the endpoint string; not needed. */
        while (more) {
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, p->mon, 0) < 0)
                more = false;
            else
                more = zmq_msg_more(&m);
            zmq_msg_close(&m);
        }
        if (ev == ZMQ_EVENT_CONNECTED) {
            p->connected = true;
            zq_flush(ep, peer);
        } else if (ev == ZMQ_EVENT_DISCONNECTED && p->connected) {
            /* Keep reading for a grace period (see ZQ_LOST_GRACE_NS);
             * zq_progress fails the peer when it has passed. */
            p->connected = false;
            p->lost_ns = npi_now_ns();
        }
    }
}

/* Fail the peers waited for that never connected and whose host refuses
 * connections to their listener; bound the next poll so that they are
 * asked about in time. */
static void zq_check_unmet(npi_fab_ep *ep, int *timeout_ms)
{
    uint64_t now = npi_now_ns();
    for (int i = 0; i < ep->attr.size; i++) {
        zq_peer *p = &ep->peers[i];
        if (!p->awaited_ns || p->connected || p->lost_ns || p->dead)
            continue;
        if (now - p->awaited_ns < ZQ_UNMET_NS) {
            if (*timeout_ms < 0 || *timeout_ms > 100)
                *timeout_ms = 100;
            continue;
        }
        npi_listen_state st = npi_listen_probe_ask(&p->listen, ZQ_UNMET_NS);
        if (st == NPI_LISTEN_GONE) {
            npi_error(NP_ERR_PEER,
                      "zmq: rank %d is gone: its host refuses connections to its endpoint, and "
                      "it never connected",
                      i);
            zq_fail(ep, i, NP_ERR_PEER);
        } else if (st == NPI_LISTEN_PENDING) {
            if (*timeout_ms < 0 || *timeout_ms > 10)
                *timeout_ms = 10;
        } else {
            p->awaited_ns = now; /* alive or no answer: ask again later */
        }
    }
}

/* Fail the peers whose grace period after a lost connection has passed,
 * and bound the next poll so that the others are failed in time. */
static void zq_expire_lost(npi_fab_ep *ep, int *timeout_ms)
{
    uint64_t now = npi_now_ns();
    for (int i = 0; i < ep->attr.size; i++) {
        zq_peer *p = &ep->peers[i];
        if (!p->lost_ns || p->dead)
            continue;
        if (now - p->lost_ns >= ZQ_LOST_GRACE_NS) {
            zq_read(ep);
            npi_error(NP_ERR_PEER, "zmq: connection to rank %d lost", i);
            zq_fail(ep, i, NP_ERR_PEER);
        } else if (*timeout_ms < 0 || *timeout_ms > 10) {
            *timeout_ms = 10;
        }
    }
}

typedef struct zq_poll_set {
    zmq_pollitem_t *items;
    int n;
} zq_poll_set;

static int zq_poll_once(void *arg, int timeout_ms)
{
    zq_poll_set *ps = arg;
    return zmq_poll(ps->items, ps->n, timeout_ms);
}

static np_err zq_progress(npi_fab_ep *ep, int timeout_ms)
{
    zq_expire_lost(ep, &timeout_ms);
    zq_check_unmet(ep, &timeout_ms);
    npi_tcp_foreign_poll(ep->foreign);
    int n = 0;
    ep->items[n] = (zmq_pollitem_t){.socket = ep->pull, .events = ZMQ_POLLIN};
    ep->item_peer[n++] = -1;
    ep->items[n] = (zmq_pollitem_t){.fd = ep->efd, .events = ZMQ_POLLIN};
    ep->item_peer[n++] = -2;
    for (int i = 0; i < ep->attr.size; i++) {
        zq_peer *p = &ep->peers[i];
        if (!p->push)
            continue;
        if (p->mon) {
            ep->items[n] = (zmq_pollitem_t){.socket = p->mon, .events = ZMQ_POLLIN};
            ep->item_peer[n++] = i;
        }
        if (p->q_head && !p->dead) {
            ep->items[n] = (zmq_pollitem_t){.socket = p->push, .events = ZMQ_POLLOUT};
            ep->item_peer[n++] = i;
        }
    }
    /* Between polls the core goes to libzmq's I/O thread, which moves the
     * bytes. */
    zq_poll_set ps = {ep->items, n};
    int r = npi_fab_poll_spin(zq_poll_once, &ps, timeout_ms);
    if (r < 0) {
        if (zmq_errno() == EINTR)
            return NP_OK;
        return zq_fail_errno("zmq_poll");
    }
    /* Messages first, so that a peer's last messages are delivered before
     * its disconnection is noticed. */
    if (ep->items[0].revents)
        zq_read(ep);
    if (ep->items[1].revents || ep->inflight)
        zq_reap(ep);
    for (int i = 2; i < n; i++) {
        if (!ep->items[i].revents)
            continue;
        int peer = ep->item_peer[i];
        if (ep->items[i].socket == ep->peers[peer].mon)
            zq_monitor(ep, peer);
        else
            zq_flush(ep, peer);
    }
    return NP_OK;
}

static np_err zq_expect(npi_fab_ep *ep, int peer)
{
    if (peer < 0 || peer >= ep->attr.size)
        return npi_error(NP_ERR_ARG, "zmq: no rank %d to expect", peer);
    zq_peer *p = &ep->peers[peer];
    if (peer != ep->attr.rank && !p->awaited_ns)
        p->awaited_ns = npi_now_ns();
    return NP_OK;
}

static np_err zq_cancel(npi_fab_ep *ep, void *ctx, np_err err)
{
    for (int i = 0; i < ep->attr.size; i++) {
        zq_peer *p = &ep->peers[i];
        zq_send *prev = NULL;
        for (zq_send *s = p->q_head; s; prev = s, s = s->next) {
            if (s->ctx != ctx)
                continue;
            if (prev)
                prev->next = s->next;
            else
                p->q_head = s->next;
            if (p->q_tail == s)
                p->q_tail = prev;
            ep->attr.up.send_done(ep->attr.up.arg, ctx, err);
            free(s);
            return NP_OK;
        }
    }
    for (zq_send *s = ep->inflight; s; s = s->next) {
        if (s->ctx != ctx)
            continue;
        /* libzmq owns the parts; closing the peer's socket discards its
         * pipe, after which libzmq frees them.  Wait briefly for that so the
         * caller's buffer is really ours again when we return. */
        zq_peer *p = &ep->peers[s->peer];
        zq_fail(ep, s->peer, err);
        if (p->push) {
            zmq_socket_monitor(p->push, NULL, 0);
            zmq_close(p->push);
            p->push = NULL;
        }
        uint64_t until = npi_now_ns() + 1000000000ull;
        while (atomic_load(&s->zc_left) > 0 && npi_now_ns() < until)
            usleep(1000);
        zq_reap(ep);
        return NP_OK;
    }
    return npi_error(NP_ERR_ARG, "zmq: cancel of an unknown send");
}

static np_err zq_disconnect(npi_fab_ep *ep, int peer, np_err err)
{
    if (peer < 0 || peer >= ep->attr.size || peer == ep->attr.rank)
        return npi_error(NP_ERR_ARG, "zmq: disconnect from rank %d", peer);
    zq_fail(ep, peer, err);
    return NP_OK;
}

static void zq_close(npi_fab_ep *ep, int linger_ms)
{
    uint64_t until = npi_now_ns() + (uint64_t)linger_ms * 1000000;
    for (;;) {
        bool busy = ep->inflight != NULL;
        for (int i = 0; i < ep->attr.size; i++)
            if (ep->peers[i].q_head && !ep->peers[i].dead)
                busy = true;
        if (!busy || npi_now_ns() >= until)
            break;
        zq_progress(ep, 10);
    }
    for (int i = 0; i < ep->attr.size; i++) {
        zq_peer *p = &ep->peers[i];
        if (p->push) {
            zq_fail(ep, i, NP_ERR_PEER);
            int zero = 0;
            zmq_setsockopt(p->push, ZMQ_LINGER, &zero, sizeof(zero));
            zmq_socket_monitor(p->push, NULL, 0);
            zmq_close(p->push);
        }
        if (p->mon)
            zmq_close(p->mon);
    }
    int zero = 0;
    zmq_setsockopt(ep->pull, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_close(ep->pull);
    /* zmq_ctx_term waits until libzmq has freed every zero-copy part, so
     * after it every in-flight send can be reported. */
    zmq_ctx_term(ep->ctx);
    zq_send *s = ep->inflight;
    while (s) {
        zq_send *next = s->next;
        ep->attr.up.send_done(ep->attr.up.arg, s->ctx,
                              atomic_load(&s->zc_left) == 0 ? NP_OK : NP_ERR_PEER);
        free(s);
        s = next;
    }
    close(ep->efd);
    npi_tcp_foreign_free(ep->foreign);
    for (int i = 0; ep->peers && i < ep->attr.size; i++)
        npi_listen_probe_close(&ep->peers[i].listen);
    free(ep->peers);
    free(ep->items);
    free(ep->item_peer);
    free(ep);
}

const npi_fab_ops npi_fab_zmq_ops = {
    .size = sizeof(npi_fab_ops),
    .name = "zmq",
    .probe = zq_probe,
    .open = zq_open,
    .getname = zq_getname,
    .connect = zq_connect,
    .send = zq_send_msg,
    .progress = zq_progress,
    .cancel = zq_cancel,
    .disconnect = zq_disconnect,
    .close = zq_close,
    .expect = zq_expect,
};
