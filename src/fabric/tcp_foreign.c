/*
 * Finding and tuning the TCP sockets a library opened for an endpoint
 * (tcp_foreign.h says why and which).
 */
#include "config.h"

#include "tcp_foreign.h"

#include "npi.h"
#include "tcp_link.h"

#include <dirent.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* How long to look for a new peer's sockets after its first transfer
 * starts (a provider connects within a round trip or two), and how often:
 * a look costs a few system calls per open descriptor.  Once a look has
 * found a connection (the listener does not count: it is there before any
 * peer connects), FOREIGN_QUIET looks that find nothing more end the period
 * early (a provider opens a connection or two per peer). */
#define FOREIGN_LOOK_NS  (1000ull * 1000 * 1000)
#define FOREIGN_EVERY_NS (5ull * 1000 * 1000)
#define FOREIGN_QUIET    10

struct npi_tcp_foreign {
    struct sockaddr_storage self;
    struct sockaddr_storage *peer; /* family 0: not known */
    bool *active;                  /* a transfer with the rank has started */
    int npeers;
    int sndbuf;
    double timeout; /* NUMPUSH_TIMEOUT for npi_fab_tcp_live_tune, 0: none */
    uint64_t look_until, next_look;
    bool found;     /* the current period found a connection */
    int quiet;      /* looks since it last found one */
    uint64_t *done; /* bitmap by descriptor: tuned already */
    int done_fds;   /* descriptors the bitmap covers */
    int tuned;
    int connections; /* of the tuned sockets, the connected ones */
};

/* Copy an IP socket address; false for anything else. */
static bool foreign_ip(struct sockaddr_storage *out, const void *addr, size_t len)
{
    memset(out, 0, sizeof(*out));
    if (len < sizeof(sa_family_t) || len > sizeof(*out))
        return false;
    memcpy(out, addr, len);
    if (out->ss_family == AF_INET)
        return len >= sizeof(struct sockaddr_in);
    if (out->ss_family == AF_INET6)
        return len >= sizeof(struct sockaddr_in6);
    return false;
}

/* Same port and address; an unspecified address in want (bound to every
 * interface) matches any. */
static bool foreign_same(const struct sockaddr_storage *want, const struct sockaddr_storage *got)
{
    if (want->ss_family != got->ss_family)
        return false;
    if (want->ss_family == AF_INET) {
        const struct sockaddr_in *w = (const void *)want, *g = (const void *)got;
        return w->sin_port == g->sin_port && (w->sin_addr.s_addr == htonl(INADDR_ANY) ||
                                              w->sin_addr.s_addr == g->sin_addr.s_addr);
    }
    const struct sockaddr_in6 *w = (const void *)want, *g = (const void *)got;
    return w->sin6_port == g->sin6_port &&
           (IN6_IS_ADDR_UNSPECIFIED(&w->sin6_addr) ||
            memcmp(&w->sin6_addr, &g->sin6_addr, sizeof(g->sin6_addr)) == 0);
}

npi_tcp_foreign *npi_tcp_foreign_new(const void *self, size_t self_len, int npeers, int sndbuf,
                                     double timeout)
{
    if ((!npi_fab_tcp_sets_congestion() && sndbuf <= 0 && timeout <= 0) || npeers <= 0)
        return NULL;
    npi_tcp_foreign *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->peer = calloc((size_t)npeers, sizeof(*t->peer));
    t->active = calloc((size_t)npeers, sizeof(*t->active));
    if (!t->peer || !t->active || !foreign_ip(&t->self, self, self_len)) {
        npi_tcp_foreign_free(t);
        return NULL;
    }
    t->npeers = npeers;
    t->sndbuf = sndbuf;
    t->timeout = timeout;
    return t;
}

void npi_tcp_foreign_peer(npi_tcp_foreign *t, int rank, const void *addr, size_t len)
{
    if (t && rank >= 0 && rank < t->npeers && !foreign_ip(&t->peer[rank], addr, len))
        t->peer[rank].ss_family = 0;
}

void npi_tcp_foreign_active(npi_tcp_foreign *t, int rank)
{
    if (!t || rank < 0 || rank >= t->npeers || t->active[rank])
        return;
    t->active[rank] = true;
    uint64_t now = npi_now_ns();
    t->look_until = now + FOREIGN_LOOK_NS;
    t->next_look = now; /* the provider may have connected already */
    t->found = false;
    t->quiet = 0;
}

static bool foreign_done(npi_tcp_foreign *t, int fd)
{
    return fd < t->done_fds && (t->done[fd / 64] >> (fd % 64) & 1);
}

static void foreign_mark(npi_tcp_foreign *t, int fd)
{
    if (fd >= t->done_fds) {
        int fds = (fd / 64 + 1) * 64 * 2;
        uint64_t *d = realloc(t->done, (size_t)fds / 64 * sizeof(*d));
        if (!d)
            return; /* tuned again at the next look: harmless */
        memset(d + t->done_fds / 64, 0, (size_t)(fds - t->done_fds) / 64 * sizeof(*d));
        t->done = d;
        t->done_fds = fds;
    }
    t->done[fd / 64] |= 1ull << (fd % 64);
}

/* Is fd a TCP socket of this endpoint's?  *connected tells a connection
 * from the listener. */
static bool foreign_ours(const npi_tcp_foreign *t, int fd, bool *connected)
{
    int proto = 0;
    socklen_t l = sizeof(proto);
    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l) != 0 || proto != IPPROTO_TCP)
        return false;
    struct sockaddr_storage a, peer;
    l = sizeof(peer);
    *connected = getpeername(fd, (struct sockaddr *)&peer, &l) == 0;
    l = sizeof(a);
    if (getsockname(fd, (struct sockaddr *)&a, &l) == 0 && foreign_same(&t->self, &a))
        return true; /* the listener (accepted sockets inherit), or accepted */
    if (!*connected)
        return false;
    for (int i = 0; i < t->npeers; i++)
        if (t->peer[i].ss_family && foreign_same(&t->peer[i], &peer))
            return true;
    return false;
}

static void foreign_look(npi_tcp_foreign *t)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end || end == e->d_name || fd == dirfd(d) || foreign_done(t, (int)fd))
            continue;
        bool connected = false;
        if (foreign_ours(t, (int)fd, &connected)) {
            npi_fab_tcp_bulk_tune((int)fd, t->sndbuf);
            if (t->timeout > 0)
                npi_fab_tcp_live_tune((int)fd, t->timeout);
            foreign_mark(t, (int)fd);
            t->tuned++;
            t->connections += connected;
        }
    }
    closedir(d);
}

void npi_tcp_foreign_poll(npi_tcp_foreign *t)
{
    if (!t || t->look_until == 0)
        return;
    uint64_t now = npi_now_ns();
    if (now < t->next_look)
        return;
    int before = t->connections;
    foreign_look(t);
    t->next_look = now + FOREIGN_EVERY_NS;
    if (t->connections > before) {
        t->found = true;
        t->quiet = 0;
    } else {
        t->quiet++;
    }
    if (now >= t->look_until || (t->found && t->quiet >= FOREIGN_QUIET))
        t->look_until = 0;
}

int npi_tcp_foreign_tuned(const npi_tcp_foreign *t)
{
    return t ? t->tuned : 0;
}

void npi_tcp_foreign_free(npi_tcp_foreign *t)
{
    if (!t)
        return;
    free(t->peer);
    free(t->active);
    free(t->done);
    free(t);
}
