/*
 * Whether a process still listens at a TCP address, asked of the kernel of
 * its host rather than of the process.
 *
 * ofi's heartbeats prove a peer alive once the provider can hand them
 * over; before any message has crossed, a provider connects only with the
 * peer's own progress, so a live peer computing outside numpush and a dead
 * one look the same (rxm and net keep retrying a refused connection).  Over
 * libfabric's TCP providers the peer's endpoint listens on the address it
 * published: a connect that the peer's kernel refuses (RST) means no
 * process listens there any more, while one the kernel completes (from its
 * listen backlog, without the process) means it does.  A connect that gets
 * no answer tells nothing (the link may be down or slow), and the caller
 * keeps waiting as before.
 */
#ifndef NUMPUSH_FABRIC_LISTEN_PROBE_H
#define NUMPUSH_FABRIC_LISTEN_PROBE_H

#include <stdint.h>
#include <sys/socket.h>

typedef enum {
    NPI_LISTEN_PENDING, /* no answer yet: ask again later */
    NPI_LISTEN_ALIVE,   /* something listens there */
    NPI_LISTEN_GONE,    /* the host refused: nothing listens there */
    NPI_LISTEN_UNKNOWN, /* no answer in time, or no way to ask */
} npi_listen_state;

typedef struct npi_listen_probe {
    struct sockaddr_storage addr;
    socklen_t len; /* 0: no IP address, nothing to ask */
    int fd;        /* connect under way, else -1 */
    uint64_t started_ns;
} npi_listen_probe;

/* Set up a probe of addr (a struct sockaddr_in or sockaddr_in6 as
 * libfabric's FI_SOCKADDR* formats give it, len bytes); any other address
 * leaves the probe unable to ask. */
void npi_listen_probe_init(npi_listen_probe *p, const void *addr, size_t len);

/* Start a connect if none is under way, else look (without waiting) at the
 * one that is.  A connect unanswered after limit_ns ends as
 * NPI_LISTEN_UNKNOWN.  Every state but PENDING leaves no socket open. */
npi_listen_state npi_listen_probe_ask(npi_listen_probe *p, uint64_t limit_ns);

/* Close a connect under way. */
void npi_listen_probe_close(npi_listen_probe *p);

#endif
