/*
 * The tcp transport: plain nonblocking TCP sockets, one connection per pair
 * of peers (see fabric.h for the contract every transport keeps).
 *
 * The connection handling, framing and receive path are the stream-socket
 * engine in sock_common.c, shared with tipc.c; this file adds what is
 * particular to TCP/IPv4: which address to listen on (NUMPUSH_TCP_IF), how
 * that address is published (16 bytes: family tag 4, reserved, port and
 * IPv4 address in network order, then the listener's cookie), and socket
 * options (TCP_NODELAY, keepalives), and how a connection whose peer host
 * vanished is told from one whose peer is merely busy (tcp_unacked_ms): both
 * make a vanished host show as NP_ERR_PEER within the timeout.
 */
#include "config.h"

#include "sock_common.h"
#include "tcp_link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TCP_ADDR_LEN 16

/* ------------------------------------------------------------ addresses */

static bool tcp_in_cidr(struct in_addr a, struct in_addr net, int bits)
{
    uint32_t mask = bits == 0 ? 0 : htonl(~0u << (32 - bits));
    return (a.s_addr & mask) == (net.s_addr & mask);
}

np_err npi_fab_tcp_pick_addr(struct in_addr *out)
{
    const char *want = npi_config_get("NUMPUSH_TCP_IF", NULL);
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0)
        return npi_error(NP_ERR_SYSTEM, "tcp: getifaddrs: %s", strerror(errno));
    np_err err = NP_OK;
    bool found = false;
    if (want && *want) {
        struct in_addr net;
        int bits = 32;
        char buf[64];
        snprintf(buf, sizeof(buf), "%s", want);
        char *slash = strchr(buf, '/');
        if (slash) {
            *slash = '\0';
            bits = atoi(slash + 1);
        }
        bool is_addr = inet_pton(AF_INET, buf, &net) == 1 && bits >= 0 && bits <= 32;
        for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next) {
            if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
                continue;
            struct in_addr a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
            if (is_addr ? tcp_in_cidr(a, net, bits) : strcmp(i->ifa_name, want) == 0) {
                *out = a;
                found = true;
            }
        }
        if (!found)
            err = npi_error(NP_ERR_CONFIG,
                            "NUMPUSH_TCP_IF=%s: no IPv4 interface of this host matches", want);
        goto done;
    }
    char host[256];
    if (gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = '\0';
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
        if (getaddrinfo(host, NULL, &hints, &res) == 0) {
            for (struct addrinfo *r = res; r && !found; r = r->ai_next) {
                struct in_addr a = ((struct sockaddr_in *)r->ai_addr)->sin_addr;
                for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next)
                    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
                        ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == a.s_addr) {
                        *out = a;
                        found = true;
                    }
            }
            freeaddrinfo(res);
        }
    }
    if (!found)
        out->s_addr = htonl(INADDR_LOOPBACK);
done:
    freeifaddrs(ifs);
    return err;
}

/* ------------------------------------------------------------ the family */

/* NUMPUSH_TCP_SNDBUF, read when the endpoint opens (0: the kernel's). */
static int tcp_sndbuf;

np_err npi_fab_tcp_sndbuf(int *out)
{
    long snd = 0;
    np_err err = npi_config_long("NUMPUSH_TCP_SNDBUF", &snd);
    if (err != NP_OK)
        return err;
    if (snd < 0 || snd > INT_MAX / 2)
        return npi_error(NP_ERR_CONFIG,
                         "NUMPUSH_TCP_SNDBUF=%ld: expected 0 (the kernel's) to %d bytes", snd,
                         INT_MAX / 2);
    *out = (int)snd;
    return NP_OK;
}

bool npi_fab_tcp_sets_congestion(void)
{
    const char *list = npi_config_get("NUMPUSH_TCP_CONGESTION", NULL);
    return list && *list && strcmp(list, "system") != 0;
}

/* Congestion control: the first of NUMPUSH_TCP_CONGESTION the kernel lets
 * this socket use.  Where the system default is BBR, it paces every burst
 * at the rate it has estimated, which traffic of many small messages keeps
 * low: between two namespace hosts here a 64 KiB broadcast took 90 us and a
 * 1 MiB one 610 us under BBR, 21-24 and 129-149 us under cubic or reno
 * (streaming bandwidth is the same under all three: iperf3 -C 1.82-1.87
 * GB/s).  Reno comes first because cubic is slower when both directions
 * are busy, less so in long runs: a 256 KiB allreduce between two hosts
 * took 150-227 us under cubic over 100 iterations and 114-145 over 20000,
 * against 104-111 and 95-102 under reno; in five interleaved rounds of
 * bench/run, allreduce from 256 KiB to 16 MiB took 0.45-0.72x cubic's
 * time with 2 ranks and 0.77-1.04x with 4, broadcasts from 64 KiB
 * 0.77-1.01x.  Reno's cost is on links with long round trips, which a
 * cluster's are not.  Unprivileged processes may use only the kernel's
 * allowed list (reno and the default, often), hence the fallback; a
 * refusal leaves the system's choice, which still works. */
static void tcp_congestion(int fd)
{
    if (!npi_fab_tcp_sets_congestion())
        return;
    const char *list = npi_config_get("NUMPUSH_TCP_CONGESTION", NULL);
    char name[64];
    while (*list) {
        size_t n = strcspn(list, ",");
        if (n > 0 && n < sizeof(name)) {
            memcpy(name, list, n);
            name[n] = '\0';
            if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, (socklen_t)n) == 0)
                return;
        }
        list += n;
        if (*list == ',')
            list++;
    }
}

/* Keepalive probes on an idle connection: a host that vanished (link down,
 * namespace gone) sends no RST, and these end the connection within about
 * NUMPUSH_TIMEOUT.  The peer's kernel answers them, whatever its process
 * is doing. */
static void tcp_keepalive(int fd, double timeout)
{
    int one = 1;
    int idle = timeout >= 8 ? (int)(timeout / 4) : 1;
    int intvl = 1, cnt = timeout >= 8 ? 3 : 2;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

static void tcp_tune(int fd, double timeout)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    tcp_keepalive(fd, timeout);
    npi_fab_tcp_bulk_tune(fd, tcp_sndbuf);
    /* A large receive buffer lets a peer's burst land while this rank is
     * busy elsewhere; the send buffer stays small (NUMPUSH_TCP_SNDBUF):
     * with both directions busy, as in a ring, 4 MiB in flight each way
     * overran the veth links here and the retransmissions (12 000 per
     * 16 MiB allgather run) cost more than the larger window saved
     * (allreduce 64 MiB between two hosts: 62-66 ms with 4 MiB, 44-46 with
     * 256 KiB; bcast 64 MiB 11.1-11.4 against 11.9-12.7 ms). */
    int buf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
}

void npi_fab_tcp_live_tune(int fd, double timeout)
{
    /* A library's connection is not watched by sk_watch_acks, so the
     * kernel bounds unacknowledged data itself (TCP_USER_TIMEOUT).  That
     * also ends a connection whose window stays closed as long; libzmq
     * reads everything into its own queues, and ofi sends large payloads
     * only once their receive is posted, so neither leaves a window shut. */
    unsigned int uto = npi_fab_ack_limit_ms(timeout);
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof(uto));
    tcp_keepalive(fd, timeout);
}

/* sock_common's unacked_ms slot: see sock_common.h.  tcpi_last_ack_recv is
 * the time since any acknowledgement came, zero-window probes' answers
 * included, so a live receiver with a full buffer is not taken for gone. */
static long tcp_unacked_ms(int fd)
{
    struct tcp_info ti;
    socklen_t l = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) != 0)
        return -1;
    if (ti.tcpi_unacked == 0 && ti.tcpi_probes == 0)
        return -1;
    return (long)ti.tcpi_last_ack_recv;
}

void npi_fab_tcp_bulk_tune(int fd, int sndbuf)
{
    tcp_congestion(fd);
    if (sndbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
}

static np_err tcp_listen_addr(struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in *sa = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof(*ss));
    sa->sin_family = AF_INET;
    sa->sin_port = 0;
    *len = sizeof(*sa);
    return npi_fab_tcp_pick_addr(&sa->sin_addr);
}

static np_err tcp_encode(const struct sockaddr_storage *bound, const struct sockaddr_storage *named,
                         uint64_t cookie, void *addr, size_t cap, size_t *out_len)
{
    const struct sockaddr_in *sa = (const struct sockaddr_in *)named;
    if (cap < TCP_ADDR_LEN)
        return npi_error(NP_ERR_TRUNCATE, "tcp: address needs %d bytes", TCP_ADDR_LEN);
    uint8_t *p = addr;
    /* family tag, reserved, port and IPv4 address in network order, cookie */
    p[0] = 4;
    p[1] = 0;
    memcpy(p + 2, &sa->sin_port, 2);
    memcpy(p + 4, &sa->sin_addr.s_addr, 4);
    npi_sk_put64(p + 8, cookie);
    *out_len = TCP_ADDR_LEN;
    return NP_OK;
}

static np_err tcp_decode(const void *addr, size_t len, struct sockaddr_storage *ss,
                         socklen_t *ss_len, uint64_t *cookie)
{
    const uint8_t *p = addr;
    if (len != TCP_ADDR_LEN || p[0] != 4)
        return NP_ERR_ARG;
    struct sockaddr_in *sa = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof(*ss));
    sa->sin_family = AF_INET;
    memcpy(&sa->sin_port, p + 2, 2);
    memcpy(&sa->sin_addr.s_addr, p + 4, 4);
    *ss_len = sizeof(*sa);
    *cookie = npi_sk_get64(p + 8);
    return NP_OK;
}

static void tcp_describe(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    const struct sockaddr_in *sa = (const struct sockaddr_in *)ss;
    char a[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa->sin_addr, a, sizeof(a));
    snprintf(buf, cap, "%s:%d", a, ntohs(sa->sin_port));
}

static const npi_sk_family tcp_family = {
    .name = "tcp",
    .domain = AF_INET,
    .listen_addr = tcp_listen_addr,
    .tune = tcp_tune,
    .encode = tcp_encode,
    .decode = tcp_decode,
    .describe = tcp_describe,
    .unacked_ms = tcp_unacked_ms,
};

static np_err tcp_probe(void)
{
    return NP_OK;
}

static np_err tcp_open(const npi_fab_attr *attr, npi_fab_ep **out)
{
    np_err err = npi_fab_tcp_sndbuf(&tcp_sndbuf);
    if (err != NP_OK)
        return err;
    return npi_sk_open(&tcp_family, attr, out);
}

const npi_fab_ops npi_fab_tcp_ops = {
    .size = sizeof(npi_fab_ops),
    .name = "tcp",
    .probe = tcp_probe,
    .open = tcp_open,
    .getname = npi_sk_getname,
    .connect = npi_sk_connect,
    .send = npi_sk_send,
    .progress = npi_sk_progress,
    .cancel = npi_sk_cancel,
    .disconnect = npi_sk_disconnect,
    .close = npi_sk_close,
    .redirect = npi_sk_redirect,
};
