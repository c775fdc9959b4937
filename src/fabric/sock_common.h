/*
 * The socket engine shared by the stream-socket transports (tcp.c, tipc.c):
 * one connection per pair of peers, a cookie-checked hello, the frame head
 * in front of every message, batched sendmsg, and receives placed straight
 * into the matching layer's buffer (sock_common.c says how).  A transport
 * adds only what depends on its address family: where to listen, how an
 * address is written into the bootstrap store and read back, and socket
 * options.  So the tcp tests exercise all of this code on behalf of tipc,
 * which most kernels here cannot run.
 */
#ifndef NUMPUSH_FABRIC_SOCK_COMMON_H
#define NUMPUSH_FABRIC_SOCK_COMMON_H

#include <stdbool.h>
#include <sys/socket.h>

#include "fabric.h"

/* What differs between address families.  Every slot is called with the
 * endpoint's family, never blocks, and reports failures with npi_error. */
typedef struct npi_sk_family {
    const char *name; /* "tcp", "tipc": prefixes every message */
    int domain;       /* AF_INET, AF_TIPC */
    /* The address to bind the listening socket to. */
    np_err (*listen_addr)(struct sockaddr_storage *sa, socklen_t *len);
    /* Options for a connected socket (both ends), given the timeout in
     * seconds that dead-peer detection must beat. */
    void (*tune)(int fd, double timeout);
    /* Write the listener's address and the endpoint's cookie into out (at
     * most cap bytes) for the bootstrap store: bound is what listen_addr
     * gave, named what getsockname reports after bind (the tcp port, the
     * tipc socket's node and reference). */
    np_err (*encode)(const struct sockaddr_storage *bound, const struct sockaddr_storage *named,
                     uint64_t cookie, void *out, size_t cap, size_t *out_len);
    /* Read a peer's published bytes back into a socket address and its
     * cookie; NP_ERR_ARG when they are malformed. */
    np_err (*decode)(const void *in, size_t len, struct sockaddr_storage *sa, socklen_t *sa_len,
                     uint64_t *cookie);
    /* A printable form of an address, for messages. */
    void (*describe)(const struct sockaddr_storage *sa, char *buf, size_t cap);
    /* Optional (NULL: the family's own supervision suffices).  Whether the
     * peer's host still acknowledges what was sent on the connection fd:
     * -1 when everything sent is acknowledged and no zero-window probe is
     * unanswered, else the milliseconds since the host last acknowledged
     * anything (sock_common.c's sk_watch_acks decides what is too long). */
    long (*unacked_ms)(int fd);
    /* Whether a connection request can carry data (TIPC's implied connect:
     * sendmsg to an address on an unconnected socket).  The hello then
     * travels in the request itself, so the peer knows who connected as
     * soon as it accepts, which for TIPC is also what completes the
     * connection; otherwise the hello is written once the connection is
     * made. */
    bool hello_in_request;
} npi_sk_family;

/* Little-endian helpers for wire formats. */
void npi_sk_put64(uint8_t *p, uint64_t v);
uint64_t npi_sk_get64(const uint8_t *p);
void npi_sk_put32(uint8_t *p, uint32_t v);
uint32_t npi_sk_get32(const uint8_t *p);

/* The fabric ops, shared: a transport's ops struct points its slots here,
 * except probe and open (which passes the family). */
np_err npi_sk_open(const npi_sk_family *fam, const npi_fab_attr *attr, npi_fab_ep **ep);
np_err npi_sk_getname(npi_fab_ep *ep, void *addr, size_t cap, size_t *len);
np_err npi_sk_connect(npi_fab_ep *ep, int peer, const void *addr, size_t len);
np_err npi_sk_send(npi_fab_ep *ep, int peer, const struct iovec *iov, int iovcnt, void *ctx);
np_err npi_sk_progress(npi_fab_ep *ep, int timeout_ms);
np_err npi_sk_cancel(npi_fab_ep *ep, void *ctx, np_err err);
np_err npi_sk_disconnect(npi_fab_ep *ep, int peer, np_err err);
np_err npi_sk_redirect(npi_fab_ep *ep, void *ctx, void *dst, uint64_t *placed);
void npi_sk_close(npi_fab_ep *ep, int linger_ms);

#endif
