/*
 * What the tcp transport shares with the other transports that end up on
 * TCP: zmq (whose connections libzmq opens) and ofi over libfabric's
 * socket providers (net, tcp;ofi_rxm, sockets; ofi_sockets.c).  One place
 * decides which address a job's traffic leaves from and how a connection
 * that carries bulk data is set up, so every transport on the same link is
 * measured under the same settings.
 */
#ifndef NUMPUSH_FABRIC_TCP_LINK_H
#define NUMPUSH_FABRIC_TCP_LINK_H

#include <netinet/in.h>
#include <stdbool.h>

#include <numpush/errors.h>

/* The address to listen on, from NUMPUSH_TCP_IF: an interface name
 * ("eth0"), an IPv4 address, or a network ("198.18.0.0/15": the first local
 * address inside it).  Empty: the address the host name resolves to if it
 * is one of this host's, else 127.0.0.1. */
np_err npi_fab_tcp_pick_addr(struct in_addr *out);

/* NUMPUSH_TCP_SNDBUF, checked: the send buffer of a bulk connection in
 * bytes, 0 for the kernel's autotuning. */
np_err npi_fab_tcp_sndbuf(int *out);

/* Whether NUMPUSH_TCP_CONGESTION names algorithms to set ("system", or
 * empty, keeps the system's). */
bool npi_fab_tcp_sets_congestion(void);

/* Congestion control (NUMPUSH_TCP_CONGESTION) and send buffer (sndbuf, 0:
 * leave it) of a connected TCP socket; best effort, a refusal leaves the
 * system's choice.  Works on a socket already carrying data. */
void npi_fab_tcp_bulk_tune(int fd, int sndbuf);

/* How long a connection to a host that vanished (link down, no RST) goes
 * unnoticed: TCP_USER_TIMEOUT on unacknowledged data and keepalive probes
 * on an idle connection, both within about half of timeout (NUMPUSH_TIMEOUT,
 * seconds), after which the kernel aborts the connection.  The peer's
 * kernel answers both, so a live peer that stays out of numpush for
 * minutes is not taken for dead. */
void npi_fab_tcp_live_tune(int fd, double timeout);

#endif
