/*
 * Whether a connected TCP socket is connected to itself.  A connect to a
 * port of this host on which nothing listens can meet itself when the
 * kernel picks that very port as the socket's own (TCP's simultaneous
 * open; ports above 32768 are the ephemeral ones).  Such a connection
 * reaches no server and no listener.  Header-only: the bootstrap store
 * (kvstore.c, also built into numpush-run) and the fabric use it.
 */
#ifndef NUMPUSH_CORE_SELF_CONNECT_H
#define NUMPUSH_CORE_SELF_CONNECT_H

#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

static inline bool npi_socket_self_connected(int fd)
{
    struct sockaddr_storage self, peer;
    socklen_t sl = sizeof(self), pl = sizeof(peer);
    return getsockname(fd, (struct sockaddr *)&self, &sl) == 0 &&
           getpeername(fd, (struct sockaddr *)&peer, &pl) == 0 && sl == pl &&
           memcmp(&self, &peer, sl) == 0;
}

#endif
