/*
 * The rendezvous key-value store: server (one thread, one poll loop) and
 * client (one blocking connection per rank).  See kvstore.h for the protocol.
 *
 * The server never blocks on a client: sockets are non-blocking, requests are
 * parsed from per-connection input buffers and replies queued in output
 * buffers, so a client that stops reading cannot stall the others.  A GET for
 * a missing key and a FENCE simply park the connection until a PUT or the
 * last fence arrival answers it; clients send one request at a time.
 */
#include "config.h"

#include "kvstore.h"
#include "self_connect.h"

#include <signal.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define KV_REQ_HDR   12
#define KV_REP_HDR   8
#define KV_BUCKETS   1024
#define KV_MAX_CONNS 4096

/* ------------------------------------------------------------ server */

typedef struct kv_item {
    char *key;
    unsigned char *val;
    uint32_t len;
    struct kv_item *next;
} kv_item;

typedef struct kv_conn {
    int fd;
    unsigned char *in, *out;
    size_t in_len, in_cap, out_len, out_off, out_cap;
    char *wait_key; /* parked GET */
    bool in_fence;
    bool authed;
    bool closing; /* close once the output is flushed */
} kv_conn;

struct npi_kvs {
    int lfd, port, size;
    int wake[2];
    pthread_t thread;
    char secret[NPI_KV_SECRET_MAX + 1];
    size_t secret_len;
    npi_kvs_abort_fn on_abort;
    void *arg;
    kv_item *buckets[KV_BUCKETS];
    kv_conn **conns;
    int nconns, conns_cap;
    int fence_count;
    pthread_mutex_t lock; /* guards the counters read by other threads */
    int open_authed, ever_authed;
    long refused;
};

static uint32_t kv_hash(const char *s)
{
    /* FNV-1a: keys are short and few; anything cheap spreads them enough. */
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static kv_item *kv_find(npi_kvs *s, const char *key)
{
    for (kv_item *it = s->buckets[kv_hash(key) % KV_BUCKETS]; it; it = it->next)
        if (!strcmp(it->key, key))
            return it;
    return NULL;
}

static int kv_store(npi_kvs *s, const char *key, const unsigned char *val, uint32_t len)
{
    kv_item *it = kv_find(s, key);
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, val, len);
    if (it) {
        free(it->val);
    } else {
        it = calloc(1, sizeof *it);
        if (!it || !(it->key = strdup(key))) {
            free(it);
            free(copy);
            return -ENOMEM;
        }
        uint32_t b = kv_hash(key) % KV_BUCKETS;
        it->next = s->buckets[b];
        s->buckets[b] = it;
    }
    it->val = copy;
    it->len = len;
    return 0;
}

static int kv_reserve(unsigned char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    unsigned char *b = realloc(*buf, c);
    if (!b)
        return -ENOMEM;
    *buf = b;
    *cap = c;
    return 0;
}

static void kv_reply(kv_conn *c, int status, const void *val, uint32_t len)
{
    if (kv_reserve(&c->out, &c->out_cap, c->out_len + KV_REP_HDR + len)) {
        c->closing = true;
        return;
    }
    unsigned char *p = c->out + c->out_len;
    uint32_t st = htonl((uint32_t)status), l = htonl(len);
    memcpy(p, &st, 4);
    memcpy(p + 4, &l, 4);
    if (len)
        memcpy(p + KV_REP_HDR, val, len);
    c->out_len += KV_REP_HDR + len;
}

/* Constant-time comparison, so the reply time does not leak how much of a
 * guessed secret was right. */
static bool kv_secret_ok(const npi_kvs *s, const unsigned char *sec, size_t len)
{
    unsigned char diff = (unsigned char)(len != s->secret_len);
    for (size_t i = 0; i < s->secret_len; i++)
        diff |= (unsigned char)(s->secret[i] ^ (i < len ? sec[i] : 0));
    return diff == 0;
}

static void kv_set_authed(npi_kvs *s, kv_conn *c)
{
    if (c->authed)
        return;
    c->authed = true;
    pthread_mutex_lock(&s->lock);
    s->open_authed++;
    s->ever_authed++;
    pthread_mutex_unlock(&s->lock);
}

/* Handle one complete request at the head of c->in; returns its size, 0 if
 * incomplete, or -1 to drop the connection. */
static long kv_handle(npi_kvs *s, kv_conn *c)
{
    if (c->in_len < KV_REQ_HDR)
        return 0;
    unsigned char *p = c->in;
    int op = p[0];
    uint32_t seclen = p[1];
    uint32_t keylen = ((uint32_t)p[2] << 8) | p[3];
    uint32_t vallen;
    memcpy(&vallen, p + 4, 4);
    vallen = ntohl(vallen);
    if (keylen > NPI_KV_KEY_MAX || vallen > NPI_KV_VAL_MAX || seclen > NPI_KV_SECRET_MAX) {
        kv_reply(c, NPI_KV_EBADREQ, NULL, 0);
        c->closing = true;
        return -1;
    }
    /* The secret is checked as soon as it has arrived, so a stranger cannot
     * make the server buffer a large value first. */
    if (c->in_len < KV_REQ_HDR + seclen)
        return 0;
    if (!kv_secret_ok(s, p + KV_REQ_HDR, seclen)) {
        pthread_mutex_lock(&s->lock);
        s->refused++;
        pthread_mutex_unlock(&s->lock);
        kv_reply(c, NPI_KV_EAUTH, NULL, 0);
        c->closing = true;
        return -1;
    }
    size_t total = KV_REQ_HDR + seclen + keylen + vallen;
    if (c->in_len < total)
        return 0;
    kv_set_authed(s, c);
    char key[NPI_KV_KEY_MAX + 1];
    memcpy(key, p + KV_REQ_HDR + seclen, keylen);
    key[keylen] = '\0';
    const unsigned char *val = p + KV_REQ_HDR + seclen + keylen;
    switch (op) {
    case NPI_KV_PUT:
        if (kv_store(s, key, val, vallen)) {
            c->closing = true;
            return -1;
        }
        kv_reply(c, NPI_KV_OK, NULL, 0);
        for (int i = 0; i < s->nconns; i++) {
            kv_conn *w = s->conns[i];
            if (w->wait_key && !strcmp(w->wait_key, key)) {
                kv_reply(w, NPI_KV_OK, val, vallen);
                free(w->wait_key);
                w->wait_key = NULL;
            }
        }
        break;
    case NPI_KV_GET: {
        kv_item *it = kv_find(s, key);
        if (it) {
            kv_reply(c, NPI_KV_OK, it->val, it->len);
        } else if (!(c->wait_key = strdup(key))) {
            c->closing = true;
            return -1;
        }
        break;
    }
    case NPI_KV_FENCE:
        c->in_fence = true;
        if (++s->fence_count >= s->size) {
            for (int i = 0; i < s->nconns; i++) {
                if (s->conns[i]->in_fence) {
                    s->conns[i]->in_fence = false;
                    kv_reply(s->conns[i], NPI_KV_OK, NULL, 0);
                }
            }
            s->fence_count = 0;
        }
        break;
    case NPI_KV_ABORT: {
        int rank = -1, code = 1;
        char msg[64];
        snprintf(msg, sizeof msg, "%.*s", (int)(vallen < 63 ? vallen : 63), (const char *)val);
        sscanf(msg, "%d %d", &rank, &code);
        kv_reply(c, NPI_KV_OK, NULL, 0);
        if (s->on_abort)
            s->on_abort(s->arg, rank, code);
        break;
    }
    default:
        kv_reply(c, NPI_KV_EBADREQ, NULL, 0);
        c->closing = true;
        return -1;
    }
    return (long)total;
}

static void kv_conn_free(npi_kvs *s, int idx)
{
    kv_conn *c = s->conns[idx];
    if (c->in_fence)
        s->fence_count--;
    if (c->authed) {
        pthread_mutex_lock(&s->lock);
        s->open_authed--;
        pthread_mutex_unlock(&s->lock);
    }
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c->wait_key);
    free(c);
    s->conns[idx] = s->conns[--s->nconns];
}

static void kv_accept(npi_kvs *s)
{
    int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (s->nconns >= KV_MAX_CONNS) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (s->nconns == s->conns_cap) {
        int cap = s->conns_cap ? s->conns_cap * 2 : 64;
        kv_conn **v = realloc(s->conns, (size_t)cap * sizeof *v);
        if (!v) {
            close(fd);
            return;
        }
        s->conns = v;
        s->conns_cap = cap;
    }
    kv_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->fd = fd;
    s->conns[s->nconns++] = c;
}

/* Read what is there and answer every complete request; false drops c. */
static bool kv_conn_input(npi_kvs *s, kv_conn *c)
{
    for (;;) {
        if (kv_reserve(&c->in, &c->in_cap, c->in_len + 65536))
            return false;
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n == 0)
            return false;
        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
        c->in_len += (size_t)n;
        for (;;) {
            /* A parked request must be answered before the next is read. */
            if (c->wait_key || c->in_fence || c->closing)
                break;
            long used = kv_handle(s, c);
            if (used < 0) {
                c->in_len = 0;
                return true;
            }
            if (used == 0)
                break;
            memmove(c->in, c->in + used, c->in_len - (size_t)used);
            c->in_len -= (size_t)used;
        }
    }
}

static bool kv_conn_output(kv_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    return !c->closing;
}

static void *kv_serve(void *arg)
{
    npi_kvs *s = arg;
    struct pollfd *pfd = NULL;
    int pcap = 0;
    for (;;) {
        if (pcap < s->nconns + 2) {
            pcap = s->nconns + 66;
            struct pollfd *np = realloc(pfd, (size_t)pcap * sizeof *np);
            if (!np)
                break;
            pfd = np;
        }
        pfd[0] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
        for (int i = 0; i < s->nconns; i++) {
            kv_conn *c = s->conns[i];
            pfd[i + 2] = (struct pollfd){.fd = c->fd, .events = POLLIN};
            if (c->out_len > c->out_off)
                pfd[i + 2].events |= POLLOUT;
        }
        int nc = s->nconns;
        if (poll(pfd, (nfds_t)nc + 2, -1) < 0 && errno != EINTR)
            break;
        if (pfd[0].revents)
            break;
        /* Walk backwards: dropping a connection moves the last one into its slot. */
        for (int i = nc - 1; i >= 0; i--) {
            kv_conn *c = s->conns[i];
            bool keep = true;
            if (pfd[i + 2].revents & (POLLIN | POLLHUP | POLLERR))
                keep = kv_conn_input(s, c);
            /* Input may have answered parked requests of other connections;
             * their output goes out on the next round (POLLOUT). */
            if (keep && (c->out_len > c->out_off || c->closing))
                keep = kv_conn_output(c);
            if (!keep)
                kv_conn_free(s, i);
        }
        /* Replies queued for connections handled earlier in this round. */
        for (int i = s->nconns - 1; i >= 0; i--)
            if (s->conns[i]->out_len > s->conns[i]->out_off && !kv_conn_output(s->conns[i]))
                kv_conn_free(s, i);
        if (pfd[1].revents & POLLIN)
            kv_accept(s);
    }
    free(pfd);
    return NULL;
}

int npi_kvs_start(npi_kvs **out, const char *bind_addr, int port, const char *secret, int size,
                  npi_kvs_abort_fn on_abort, void *arg, char *err, size_t errlen)
{
    *out = NULL;
    npi_kvs *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->lfd = -1;
    s->wake[0] = s->wake[1] = -1;
    s->size = size;
    s->on_abort = on_abort;
    s->arg = arg;
    s->secret_len = strlen(secret ? secret : "");
    if (s->secret_len > NPI_KV_SECRET_MAX)
        s->secret_len = NPI_KV_SECRET_MAX;
    memcpy(s->secret, secret ? secret : "", s->secret_len);
    pthread_mutex_init(&s->lock, NULL);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind_addr && inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "'%s' is not an IPv4 address", bind_addr);
        goto fail;
    }
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (s->lfd < 0 || setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(s->lfd, (struct sockaddr *)&sa, sizeof sa) || listen(s->lfd, 1024)) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", bind_addr ? bind_addr : "*", port,
                 strerror(errno));
        goto fail;
    }
    socklen_t sl = sizeof sa;
    getsockname(s->lfd, (struct sockaddr *)&sa, &sl);
    s->port = ntohs(sa.sin_port);
    if (pipe2(s->wake, O_CLOEXEC)) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    /* The thread must not take signals meant for the launcher or the rank. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&s->thread, NULL, kv_serve, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        snprintf(err, errlen, "pthread_create: %s", strerror(rc));
        goto fail;
    }
    *out = s;
    return 0;
fail:
    if (s->lfd >= 0)
        close(s->lfd);
    if (s->wake[0] >= 0) {
        close(s->wake[0]);
        close(s->wake[1]);
    }
    free(s);
    return -EINVAL;
}

int npi_kvs_port(const npi_kvs *s)
{
    return s->port;
}

void npi_kvs_clients(npi_kvs *s, int *open_now, int *ever)
{
    pthread_mutex_lock(&s->lock);
    *open_now = s->open_authed;
    *ever = s->ever_authed;
    pthread_mutex_unlock(&s->lock);
}

long npi_kvs_refused(npi_kvs *s)
{
    pthread_mutex_lock(&s->lock);
    long r = s->refused;
    pthread_mutex_unlock(&s->lock);
    return r;
}

void npi_kvs_stop(npi_kvs *s)
{
    if (!s)
        return;
    if (write(s->wake[1], "x", 1) != 1) {
        /* A pipe with room for one byte cannot fail here. */
    }
    pthread_join(s->thread, NULL);
    while (s->nconns > 0)
        kv_conn_free(s, s->nconns - 1);
    free(s->conns);
    for (int b = 0; b < KV_BUCKETS; b++) {
        for (kv_item *it = s->buckets[b], *next; it; it = next) {
            next = it->next;
            free(it->key);
            free(it->val);
            free(it);
        }
    }
    close(s->lfd);
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ------------------------------------------------------------ client */

struct npi_kvc {
    int fd;
    bool broken;
    char secret[NPI_KV_SECRET_MAX + 1];
    pthread_mutex_t lock; /* one request at a time per connection */
};

static long long kv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connect to one address with a deadline; the socket is left blocking. */
static int kv_connect_one(const char *host, const char *port, int timeout_ms)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) || !ai)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = -1;
    if (fd >= 0 && (!connect(fd, ai->ai_addr, ai->ai_addrlen) || errno == EINPROGRESS)) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t el = sizeof err;
        if (poll(&p, 1, timeout_ms) == 1 && !getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) &&
            err == 0)
            rc = 0;
    }
    freeaddrinfo(ai);
    /* A rank retrying until rank 0's store listens can connect to itself
     * (npi_socket_self_connected), then "talks to the store" and reads its
     * own request back as the answer (CI saw an env:// job fail so, with
     * "get of npi.jobid failed: Unknown error 33554441").  Such a
     * connection is no server's: drop it and retry. */
    if (rc == 0 && npi_socket_self_connected(fd))
        rc = -1;
    if (rc) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int npi_kvc_connect(npi_kvc **out, const char *addrs, const char *secret, int timeout_ms)
{
    *out = NULL;
    if (!addrs || !*addrs)
        return -EINVAL;
    char *list = strdup(addrs);
    if (!list)
        return -ENOMEM;
    const char *port = strrchr(list, ':');
    if (!port) {
        free(list);
        return -EINVAL;
    }
    port++;
    long long deadline = kv_now_ms() + timeout_ms;
    int fd = -1, delay_ms = 2;
    while (fd < 0) {
        char *copy = strdup(list), *save = NULL;
        if (!copy)
            break;
        for (char *item = strtok_r(copy, ",", &save); item && fd < 0;
             item = strtok_r(NULL, ",", &save)) {
            char *colon = strrchr(item, ':');
            const char *p = port;
            if (colon) {
                *colon = '\0';
                p = colon + 1;
            }
            fd = kv_connect_one(item, p, 1000);
        }
        free(copy);
        if (fd >= 0 || kv_now_ms() >= deadline)
            break;
        /* The server may not be listening yet (env://: rank 0 starts late). */
        usleep((useconds_t)delay_ms * 1000);
        if (delay_ms < 100)
            delay_ms *= 2;
    }
    free(list);
    if (fd < 0)
        return -ETIMEDOUT;
    npi_kvc *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    c->fd = fd;
    snprintf(c->secret, sizeof c->secret, "%s", secret ? secret : "");
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return 0;
}

void npi_kvc_close(npi_kvc *c)
{
    if (!c)
        return;
    close(c->fd);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static int kv_send_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -ECONNRESET;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int kv_recv_all(int fd, void *buf, size_t n, long long deadline)
{
    char *p = buf;
    while (n > 0) {
        int wait = -1;
        if (deadline >= 0) {
            long long left = deadline - kv_now_ms();
            if (left <= 0)
                return -ETIMEDOUT;
            wait = (int)left;
        }
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int rc = poll(&pf, 1, wait);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc == 0)
            return -ETIMEDOUT;
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -ECONNRESET;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* One round trip.  On success returns the status and leaves the reply's
 * value (up to cap bytes) in val with its full length in *len. */
static int kv_call(npi_kvc *c, int op, const char *secret, const char *key, const void *val,
                   size_t vlen, void *out, size_t cap, size_t *len, int timeout_ms)
{
    size_t klen = key ? strlen(key) : 0, slen = strlen(secret);
    if (klen > NPI_KV_KEY_MAX || vlen > NPI_KV_VAL_MAX || slen > NPI_KV_SECRET_MAX)
        return -EINVAL;
    pthread_mutex_lock(&c->lock);
    int rc = -ECONNRESET;
    if (c->broken)
        goto out;
    unsigned char hdr[KV_REQ_HDR] = {(unsigned char)op, (unsigned char)slen,
                                     (unsigned char)(klen >> 8), (unsigned char)klen};
    uint32_t nl = htonl((uint32_t)vlen);
    memcpy(hdr + 4, &nl, 4);
    /* One buffer, one send: small requests should be one segment. */
    size_t total = sizeof hdr + slen + klen + vlen;
    unsigned char *req = malloc(total);
    if (!req) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(req, hdr, sizeof hdr);
    memcpy(req + sizeof hdr, secret, slen);
    memcpy(req + sizeof hdr + slen, key, klen);
    if (vlen)
        memcpy(req + sizeof hdr + slen + klen, val, vlen);
    rc = kv_send_all(c->fd, req, total);
    free(req);
    if (rc)
        goto broken;
    long long deadline = timeout_ms < 0 ? -1 : kv_now_ms() + timeout_ms;
    unsigned char rep[KV_REP_HDR];
    if ((rc = kv_recv_all(c->fd, rep, sizeof rep, deadline)))
        goto broken;
    uint32_t st, rl;
    memcpy(&st, rep, 4);
    memcpy(&rl, rep + 4, 4);
    st = ntohl(st);
    rl = ntohl(rl);
    if (rl > NPI_KV_VAL_MAX) {
        rc = -EPROTO;
        goto broken;
    }
    unsigned char *body = malloc(rl ? rl : 1);
    if (!body) {
        rc = -ENOMEM;
        goto broken;
    }
    if ((rc = kv_recv_all(c->fd, body, rl, deadline))) {
        free(body);
        goto broken;
    }
    if (out)
        memcpy(out, body, rl < cap ? rl : cap);
    if (len)
        *len = rl;
    free(body);
    rc = (int)st;
    if (st == NPI_KV_EAUTH || st == NPI_KV_EBADREQ)
        c->broken = true; /* the server closes such connections */
    goto out;
broken:
    /* A reply may still come later and would answer the wrong request. */
    c->broken = true;
out:
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static int kv_status_errno(int rc)
{
    if (rc == NPI_KV_OK)
        return 0;
    if (rc == NPI_KV_EAUTH)
        return -EACCES;
    if (rc == NPI_KV_EBADREQ)
        return -EPROTO;
    return rc;
}

int npi_kvc_put(npi_kvc *c, const char *key, const void *val, size_t len)
{
    return kv_status_errno(kv_call(c, NPI_KV_PUT, c->secret, key, val, len, NULL, 0, NULL, -1));
}

int npi_kvc_get(npi_kvc *c, const char *key, void *val, size_t cap, size_t *len, int timeout_ms)
{
    return kv_status_errno(
        kv_call(c, NPI_KV_GET, c->secret, key, NULL, 0, val, cap, len, timeout_ms));
}

int npi_kvc_fence(npi_kvc *c, int timeout_ms)
{
    return kv_status_errno(
        kv_call(c, NPI_KV_FENCE, c->secret, "", NULL, 0, NULL, 0, NULL, timeout_ms));
}

int npi_kvc_abort(npi_kvc *c, int rank, int code)
{
    char msg[48];
    int n = snprintf(msg, sizeof msg, "%d %d", rank, code);
    return kv_status_errno(
        kv_call(c, NPI_KV_ABORT, c->secret, "", msg, (size_t)n, NULL, 0, NULL, 2000));
}

int npi_kvc_raw(npi_kvc *c, int op, const char *secret, const char *key, const void *val,
                size_t len, int timeout_ms)
{
    char buf[256];
    size_t rl;
    return kv_call(c, op, secret ? secret : "", key ? key : "", val, len, buf, sizeof buf, &rl,
                   timeout_ms);
}
