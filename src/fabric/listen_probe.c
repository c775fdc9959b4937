/* Whether a process still listens at a TCP address (listen_probe.h). */
#include "config.h"

#include "listen_probe.h"

#include "npi.h"
#include "self_connect.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

void npi_listen_probe_init(npi_listen_probe *p, const void *addr, size_t len)
{
    memset(p, 0, sizeof(*p));
    p->fd = -1;
    if (len < sizeof(struct sockaddr_in) || len > sizeof(p->addr))
        return;
    sa_family_t family;
    memcpy(&family, addr, sizeof(family));
    if (family == AF_INET || (family == AF_INET6 && len >= sizeof(struct sockaddr_in6))) {
        memcpy(&p->addr, addr, len);
        p->len = (socklen_t)len;
    }
}

void npi_listen_probe_close(npi_listen_probe *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
}

/* The state a finished connect of fd, with error err, means.  A socket
 * connected to itself (npi_socket_self_connected) found nothing listening
 * there. */
static npi_listen_state listen_verdict(int fd, int err)
{
    if (err != 0)
        return err == ECONNREFUSED ? NPI_LISTEN_GONE : NPI_LISTEN_UNKNOWN;
    return npi_socket_self_connected(fd) ? NPI_LISTEN_GONE : NPI_LISTEN_ALIVE;
}

npi_listen_state npi_listen_probe_ask(npi_listen_probe *p, uint64_t limit_ns)
{
    if (p->len == 0)
        return NPI_LISTEN_UNKNOWN;
    if (p->fd < 0) {
        p->fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (p->fd < 0)
            return NPI_LISTEN_UNKNOWN;
        p->started_ns = npi_now_ns();
        int rc = connect(p->fd, (const struct sockaddr *)&p->addr, p->len);
        if (rc == 0 || errno != EINPROGRESS) {
            npi_listen_state s = listen_verdict(p->fd, rc == 0 ? 0 : errno);
            npi_listen_probe_close(p);
            return s;
        }
    }
    struct pollfd pfd = {.fd = p->fd, .events = POLLOUT};
    if (poll(&pfd, 1, 0) == 1) {
        int err = 0;
        socklen_t elen = sizeof(err);
        if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
            err = errno;
        npi_listen_state s = listen_verdict(p->fd, err);
        npi_listen_probe_close(p);
        return s;
    }
    if (npi_now_ns() - p->started_ns > limit_ns) {
        npi_listen_probe_close(p);
        return NPI_LISTEN_UNKNOWN;
    }
    return NPI_LISTEN_PENDING;
}
