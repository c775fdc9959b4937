/*
 * The tipc transport: TIPC stream sockets (AF_TIPC, SOCK_STREAM), one
 * connection per pair of peers, over the stream-socket engine that tcp.c
 * uses too (sock_common.c), so everything but the address family is
 * exercised by the tcp tests on kernels without TIPC.
 *
 * Addressing: each endpoint's listener binds a service address (type
 * NPI_TIPC_TYPE, a random instance, cluster scope) and publishes it through
 * the bootstrap store together with its socket address (node, port
 * reference) and cookie; peers connect by service address, which TIPC's
 * name table resolves anywhere in the cluster.  Dead peers: TIPC aborts the
 * connection when the peer's socket closes or its node's link supervision
 * fails, which the engine reports as NP_ERR_PEER.
 *
 * Many kernels lack TIPC (the module is not loaded or not built), so probe
 * tries socket(AF_TIPC, ...) and says why not when that fails; forcing
 * NUMPUSH_FABRIC=tipc there gives that message as NP_ERR_TRANSPORT.
 */
#include "config.h"

#include "sock_common.h"
#include "tipc_addr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/tipc.h>

/* ------------------------------------------------------------ addresses */

void npi_tipc_addr_encode(const npi_tipc_addr *a, uint8_t out[NPI_TIPC_ADDR_LEN])
{
    out[0] = 'T';
    out[1] = 1; /* version */
    out[2] = 0;
    out[3] = 0;
    npi_sk_put32(out + 4, a->type);
    npi_sk_put32(out + 8, a->instance);
    npi_sk_put32(out + 12, a->node);
    npi_sk_put32(out + 16, a->ref);
    npi_sk_put64(out + 20, a->cookie);
}

np_err npi_tipc_addr_decode(const void *in, size_t len, npi_tipc_addr *a)
{
    const uint8_t *p = in;
    if (len != NPI_TIPC_ADDR_LEN || p[0] != 'T' || p[1] != 1)
        return npi_error(NP_ERR_ARG,
                         "tipc: a published address is %zu bytes starting %02x %02x, "
                         "expected %d starting 'T' 01",
                         len, len > 0 ? p[0] : 0, len > 1 ? p[1] : 0, NPI_TIPC_ADDR_LEN);
    a->type = npi_sk_get32(p + 4);
    a->instance = npi_sk_get32(p + 8);
    a->node = npi_sk_get32(p + 12);
    a->ref = npi_sk_get32(p + 16);
    a->cookie = npi_sk_get64(p + 20);
    if (a->type < NPI_TIPC_TYPE_MIN)
        return npi_error(NP_ERR_ARG, "tipc: service type %u is reserved (below %u)", a->type,
                         NPI_TIPC_TYPE_MIN);
    return NP_OK;
}

np_err npi_tipc_probe_errno(int err)
{
    if (err == 0)
        return NP_OK;
    return npi_error(NP_ERR_TRANSPORT,
                     "tipc: this kernel has no TIPC (socket(AF_TIPC, SOCK_STREAM): %s); load it "
                     "with 'modprobe tipc' and enable a bearer ('tipc bearer enable media eth "
                     "dev IFACE'), or choose another transport with NUMPUSH_FABRIC",
                     strerror(err));
}

/* ------------------------------------------------------------ the family */

static np_err tp_listen_addr(struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_tipc *sa = (struct sockaddr_tipc *)ss;
    uint32_t inst = 0;
    if (getrandom(&inst, sizeof(inst), 0) != sizeof(inst))
        inst = (uint32_t)npi_now_ns() ^ (uint32_t)getpid();
    memset(ss, 0, sizeof(*ss));
    sa->family = AF_TIPC;
    sa->addrtype = TIPC_ADDR_NAMESEQ;
    sa->scope = TIPC_CLUSTER_SCOPE;
    sa->addr.nameseq.type = NPI_TIPC_TYPE;
    sa->addr.nameseq.lower = inst;
    sa->addr.nameseq.upper = inst;
    *len = sizeof(*sa);
    return NP_OK;
}

static void tp_tune(int fd, double timeout)
{
    /* Connection setup may wait for the name table to spread across the
     * cluster; give it the timeout. */
    unsigned int ms = (unsigned int)(timeout * 1000);
    setsockopt(fd, SOL_TIPC, TIPC_CONN_TIMEOUT, &ms, sizeof(ms));
    int buf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
}

/* The service name comes from the bind, the socket's node and reference
 * from getsockname. */
static np_err tp_encode(const struct sockaddr_storage *bound, const struct sockaddr_storage *named,
                        uint64_t cookie, void *out, size_t cap, size_t *out_len)
{
    const struct sockaddr_tipc *b = (const struct sockaddr_tipc *)bound;
    const struct sockaddr_tipc *sa = (const struct sockaddr_tipc *)named;
    if (cap < NPI_TIPC_ADDR_LEN)
        return npi_error(NP_ERR_TRUNCATE, "tipc: address needs %d bytes", NPI_TIPC_ADDR_LEN);
    npi_tipc_addr a = {
        .type = b->addr.nameseq.type, .instance = b->addr.nameseq.lower, .cookie = cookie};
    if (sa->addrtype == TIPC_ADDR_ID) {
        a.node = sa->addr.id.node;
        a.ref = sa->addr.id.ref;
    }
    npi_tipc_addr_encode(&a, out);
    *out_len = NPI_TIPC_ADDR_LEN;
    return NP_OK;
}

static np_err tp_decode(const void *in, size_t len, struct sockaddr_storage *ss, socklen_t *ss_len,
                        uint64_t *cookie)
{
    npi_tipc_addr a;
    np_err err = npi_tipc_addr_decode(in, len, &a);
    if (err != NP_OK)
        return err;
    struct sockaddr_tipc *sa = (struct sockaddr_tipc *)ss;
    memset(ss, 0, sizeof(*ss));
    sa->family = AF_TIPC;
    sa->addrtype = TIPC_ADDR_NAME;
    sa->addr.name.name.type = a.type;
    sa->addr.name.name.instance = a.instance;
    sa->addr.name.domain = 0;
    *ss_len = sizeof(*sa);
    *cookie = a.cookie;
    return NP_OK;
}

static void tp_describe(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    const struct sockaddr_tipc *sa = (const struct sockaddr_tipc *)ss;
    if (sa->addrtype == TIPC_ADDR_NAME)
        snprintf(buf, cap, "service {%u, %u}", sa->addr.name.name.type,
                 sa->addr.name.name.instance);
    else if (sa->addrtype == TIPC_ADDR_NAMESEQ)
        snprintf(buf, cap, "service {%u, %u}", sa->addr.nameseq.type, sa->addr.nameseq.lower);
    else
        snprintf(buf, cap, "socket <%x:%u>", sa->addr.id.node, sa->addr.id.ref);
}

static const npi_sk_family tp_family = {
    .name = "tipc",
    .domain = AF_TIPC,
    .listen_addr = tp_listen_addr,
    .tune = tp_tune,
    .encode = tp_encode,
    .decode = tp_decode,
    .describe = tp_describe,
    /* A TIPC connection is complete only when the peer's process accepts
     * it, which it does in its own progress, perhaps much later; the hello
     * in the request reaches it with the connection. */
    .hello_in_request = true,
};

/* ------------------------------------------------------------ ops */

static np_err tp_probe(void)
{
    int fd = socket(AF_TIPC, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return npi_tipc_probe_errno(errno ? errno : EAFNOSUPPORT);
    close(fd);
    return NP_OK;
}

static np_err tp_open(const npi_fab_attr *attr, npi_fab_ep **out)
{
    np_err err = tp_probe();
    if (err != NP_OK)
        return err;
    return npi_sk_open(&tp_family, attr, out);
}

const npi_fab_ops npi_fab_tipc_ops = {
    .size = sizeof(npi_fab_ops),
    .name = "tipc",
    .probe = tp_probe,
    .open = tp_open,
    .getname = npi_sk_getname,
    .connect = npi_sk_connect,
    .send = npi_sk_send,
    .progress = npi_sk_progress,
    .cancel = npi_sk_cancel,
    .disconnect = npi_sk_disconnect,
    .close = npi_sk_close,
    .redirect = npi_sk_redirect,
};
