/*
 * TCP settings for connections that a library opens on numpush's behalf
 * (libzmq under zmq, libfabric's socket providers under ofi), which numpush
 * cannot set when they are made.  The tcp transport gives its connections
 * reno congestion control and a bounded send buffer (tcp.c says why: under
 * this machine's default, BBR, a 1 MiB broadcast between two hosts took 4
 * times as long); a library's sockets kept the system's settings, and ofi
 * over `net` and zmq moved 1-64 MiB at a third to a quarter of tcp's rate
 * on the same link.
 *
 * They also get the tcp transport's bounds on how long a dead link goes
 * unnoticed (TCP_USER_TIMEOUT, keepalives): without them a library's
 * connection to a host whose link went down retransmits for many minutes.
 *
 * The library's sockets are found afterwards: this process's TCP sockets
 * (/proc/self/fd) whose local address is the endpoint's own (its listener
 * and the connections it accepted) or whose remote address is a peer's
 * published endpoint (connections it made).  No other socket of the
 * process is touched.  Connections appear around the first transfer with a
 * peer, so the sockets are looked for, now and then, for a while after
 * each peer's first transfer starts.
 */
#ifndef NUMPUSH_FABRIC_TCP_FOREIGN_H
#define NUMPUSH_FABRIC_TCP_FOREIGN_H

#include <stddef.h>
#include <stdint.h>

typedef struct npi_tcp_foreign npi_tcp_foreign;

/* A tuner for the sockets of an endpoint whose address is self (a struct
 * sockaddr_in or sockaddr_in6, as libfabric's FI_SOCKADDR* formats give it)
 * and whose peers are npeers ranks; sndbuf as npi_fab_tcp_sndbuf gave it;
 * timeout (NUMPUSH_TIMEOUT, seconds; 0: none) bounds how long a vanished
 * peer host goes unnoticed (npi_fab_tcp_live_tune), so the library reports
 * a dead link as an error.  NULL when self is no IP address, when there is
 * nothing to set (NUMPUSH_TCP_CONGESTION "system", sndbuf 0, timeout 0) or
 * without memory: then nothing is tuned. */
npi_tcp_foreign *npi_tcp_foreign_new(const void *self, size_t self_len, int npeers, int sndbuf,
                                     double timeout);

/* Peer rank's published endpoint address (same format as self). */
void npi_tcp_foreign_peer(npi_tcp_foreign *t, int rank, const void *addr, size_t len);

/* A transfer with rank starts: the first time, look for new sockets for
 * the next while. */
void npi_tcp_foreign_active(npi_tcp_foreign *t, int rank);

/* From the transport's progress: look if it is time to. */
void npi_tcp_foreign_poll(npi_tcp_foreign *t);

/* How many sockets were tuned so far (tests and messages). */
int npi_tcp_foreign_tuned(const npi_tcp_foreign *t);

void npi_tcp_foreign_free(npi_tcp_foreign *t);

#endif
