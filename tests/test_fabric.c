/*
 * The fabric conformance suite: every case runs once per transport, with its
 * ranks as separate processes that meet through a test-only file store
 * (tests/fab_store.h), so no launcher is needed.
 *
 *   test_fabric                       every case, every transport built in
 *   test_fabric -t tcp -c ordering    one transport, one case
 *   test_fabric -t ofi -c lazy        only the checks that libfabric loads
 *                                     when ofi is wanted, and fails clearly
 *   numpush-run -n N test_fabric --boot -t T -c C
 *                                     one case under a launcher's bootstrap
 *   test_fabric --rank R --size N --dir D -t T -c C
 *                                     run one rank of one case (the network
 *                                     namespace test starts each rank in
 *                                     its own namespace this way)
 *
 * Each case is a function run by every rank; it returns 0 on success and
 * prints what it expected and what it saw otherwise.  The parent gives every
 * case a deadline and kills its ranks (by pid) if they overrun, so a hang
 * shows as a failure, not a stuck build.
 */
#include "config.h"

#include "fabric/fabric.h"
#include "fabric/match.h"
#include "fab_store.h"
#ifdef NPI_HAVE_TIPC
#include "fabric/tipc_addr.h"
#include <linux/tipc.h>
#endif

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define COMM 7u

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "rank %d: %s:%d: ", rank, __FILE__, __LINE__);                         \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, " [%s]\n", np_last_error());                                           \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

#define OK(call)                                                                                   \
    do {                                                                                           \
        np_err e_ = (call);                                                                        \
        CHECK(e_ == NP_OK, "%s gave %s", #call, np_errname(e_));                                   \
    } while (0)

typedef struct tf_ctx {
    npi_fab *fab;
    npi_boot *boot;
    int rank, size;
    const char *transport;
} tf_ctx;

/* The byte at offset i of message m: payloads are checkable, not zero. */
static uint8_t tf_byte(uint64_t m, uint64_t i)
{
    return (uint8_t)(m * 131 + i * 7 + (i >> 12));
}

static void tf_fill(uint8_t *b, size_t n, uint64_t m)
{
    for (size_t i = 0; i < n; i++)
        b[i] = tf_byte(m, i);
}

static int tf_check(const uint8_t *b, size_t n, uint64_t m)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != tf_byte(m, i))
            return (int)i + 1;
    return 0;
}

/* ------------------------------------------------------------ cases */

/* Messages from one source with one tag arrive in sending order, whatever
 * their sizes (small ones batched, large ones received straight into the
 * buffer), including through a wildcard receive; rank 2 (if any) sends
 * too, so wildcards interleave two streams while each stays ordered. */
static int case_ordering(tf_ctx *t)
{
    int rank = t->rank;
    enum { N = 300 };
    static const size_t sizes[] = {0, 1, 8, 100, 4096, 70000, 300000};
    size_t ns = sizeof(sizes) / sizeof(sizes[0]);
    uint8_t *buf = malloc(300000);
    CHECK(buf, "malloc");
    if (rank != 0) {
        for (int i = 0; i < N; i++) {
            size_t n = sizes[i % ns];
            tf_fill(buf, n, (uint64_t)i * 10 + rank);
            memcpy(buf, &i, n >= 4 ? 4 : 0);
            OK(npi_fab_send(t->fab, 0, COMM, 5, buf, n));
        }
    } else {
        int next[16] = {0};
        for (int k = 0; k < N * (t->size - 1); k++) {
            npi_fab_status st;
            OK(npi_fab_recv(t->fab, NP_ANY_SOURCE, COMM, NP_ANY_TAG, buf, 300000, &st));
            int src = st.source, i = next[src]++;
            size_t n = sizes[i % ns];
            CHECK(st.bytes == n, "message %d from %d: %" PRIu64 " bytes, expected %zu", i, src,
                  st.bytes, n);
            CHECK(st.env.seq == (uint64_t)i, "sequence %" PRIu64 " expected %d", st.env.seq, i);
            if (n >= 4) {
                int got;
                memcpy(&got, buf, 4);
                CHECK(got == i, "from %d: message %d arrived where %d was due", src, got, i);
                /* The index overwrote the pattern's first bytes. */
                uint8_t ref[4];
                tf_fill(ref, 4, (uint64_t)i * 10 + src);
                memcpy(buf, ref, 4);
                CHECK(tf_check(buf, n, (uint64_t)i * 10 + src) == 0, "payload %d corrupt", i);
            }
        }
    }
    free(buf);
    return 0;
}

/* Messages that arrive before their receive: sent with tags 0..N-1, taken in
 * reverse tag order after a pause; one of them is large, one empty. */
static int case_unexpected(tf_ctx *t)
{
    int rank = t->rank;
    enum { N = 40, BIG = 3 << 20 };
    uint8_t *buf = malloc(BIG);
    CHECK(buf, "malloc");
    if (rank == 1) {
        npi_fab_req *r[N];
        uint8_t *bufs[N];
        for (int i = 0; i < N; i++) {
            size_t n = i == 7 ? BIG : i == 9 ? 0 : 1000 + i;
            bufs[i] = malloc(n + 1);
            tf_fill(bufs[i], n, i);
            OK(npi_fab_isend(t->fab, 0, COMM, i, bufs[i], n, &r[i]));
        }
        OK(npi_fab_waitall(t->fab, N, r, npi_fab_deadline(t->fab), NULL));
        for (int i = 0; i < N; i++)
            free(bufs[i]);
        /* A message on another communicator must not match comm COMM. */
        OK(npi_fab_send(t->fab, 0, COMM + 1, 3, "x", 1));
    } else if (rank == 0) {
        usleep(300000);
        /* Let everything arrive first. */
        for (int k = 0; k < 20; k++)
            npi_fab_progress(t->fab, 10);
        char x = 0;
        npi_fab_status st;
        OK(npi_fab_recv(t->fab, 1, COMM + 1, NP_ANY_TAG, &x, 1, &st));
        CHECK(x == 'x' && st.tag == 3, "comm %u message wrong", COMM + 1);
        for (int i = N - 1; i >= 0; i--) {
            size_t n = i == 7 ? BIG : i == 9 ? 0 : 1000 + i;
            OK(npi_fab_recv(t->fab, 1, COMM, i, buf, BIG, &st));
            CHECK(st.bytes == n && st.tag == i, "tag %d: %" PRIu64 " bytes tag %d", i, st.bytes,
                  st.tag);
            CHECK(tf_check(buf, n, i) == 0, "tag %d payload corrupt", i);
        }
    }
    free(buf);
    return 0;
}

/* A receive posted while its large message is half-way in (the first
 * part went to an unexpected buffer): the payload must come out whole and
 * in order, whether the transport redirects the rest into the receive's
 * buffer (tcp, tipc) or copies it all at the end. */
static int case_midway(tf_ctx *t)
{
    int rank = t->rank;
    enum { BIG = 256 << 20 };
    uint8_t *big = malloc(BIG);
    CHECK(big, "malloc");
    if (rank == 1) {
        tf_fill(big, BIG, 5);
        OK(npi_fab_send(t->fab, 0, COMM, 0, NULL, 0));
        OK(npi_fab_send(t->fab, 0, COMM, 1, big, BIG));
        OK(npi_fab_recv(t->fab, 0, COMM, 2, NULL, 0, NULL));
    } else {
        memset(big, 0, BIG);
        OK(npi_fab_recv(t->fab, 1, COMM, 0, NULL, 0, NULL));
        /* Let the message start arriving with no receive posted. */
        uint64_t until = npi_now_ns() + 3 * 1000 * 1000;
        while (npi_now_ns() < until)
            OK(npi_fab_progress(t->fab, 1));
        npi_fab_status st;
        OK(npi_fab_recv(t->fab, 1, COMM, 1, big, BIG, &st));
        CHECK(st.bytes == BIG, "%" PRIu64 " bytes", st.bytes);
        int bad = tf_check(big, BIG, 5);
        CHECK(bad == 0, "payload differs at byte %d", bad - 1);
        OK(npi_fab_send(t->fab, 1, COMM, 2, NULL, 0));
    }
    free(big);
    return 0;
}

/* As midway, but the receive is cancelled before the payload has all
 * arrived and its buffer is unmapped at once: the rest of the payload must
 * not land in it (a crash here), and the stream goes on with the next
 * message. */
static int case_midway_cancel(tf_ctx *t)
{
    int rank = t->rank;
    enum { BIG = 256 << 20, SMALL = 64 };
    uint8_t small[SMALL];
    if (rank == 1) {
        uint8_t *big = malloc(BIG);
        CHECK(big, "malloc");
        tf_fill(big, BIG, 6);
        OK(npi_fab_send(t->fab, 0, COMM, 0, NULL, 0));
        OK(npi_fab_send(t->fab, 0, COMM, 1, big, BIG));
        tf_fill(small, SMALL, 7);
        OK(npi_fab_send(t->fab, 0, COMM, 3, small, SMALL));
        OK(npi_fab_recv(t->fab, 0, COMM, 2, NULL, 0, NULL));
        free(big);
    } else {
        uint8_t *big = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(big != MAP_FAILED, "mmap");
        OK(npi_fab_recv(t->fab, 1, COMM, 0, NULL, 0, NULL));
        uint64_t until = npi_now_ns() + 3 * 1000 * 1000;
        while (npi_now_ns() < until)
            OK(npi_fab_progress(t->fab, 1));
        npi_fab_req *r;
        OK(npi_fab_irecv(t->fab, 1, COMM, 1, big, BIG, &r));
        OK(npi_fab_cancel(t->fab, &r));
        CHECK(munmap(big, BIG) == 0, "munmap");
        npi_fab_status st;
        OK(npi_fab_recv(t->fab, 1, COMM, 3, small, SMALL, &st));
        CHECK(st.bytes == SMALL && tf_check(small, SMALL, 7) == 0,
              "the message after the cancelled one is corrupt");
        OK(npi_fab_send(t->fab, 1, COMM, 2, NULL, 0));
    }
    return 0;
}

/* A send withdrawn before its first byte left (queued behind a large one
 * the receiver is not yet reading), as a failed collective withdraws its
 * sends: the stream goes on.  The next message arrives intact and is not
 * taken for a stream that skipped a message; the withdrawn one may arrive
 * or not, depending on how far the transport had taken it. */
static int case_withdrawn(tf_ctx *t)
{
    int rank = t->rank;
    enum { BIG = 32 << 20, SMALL = 64 };
    uint8_t *big = malloc(BIG), small[SMALL], got[SMALL];
    CHECK(big, "malloc");
    if (rank == 1) {
        tf_fill(big, BIG, 1);
        tf_fill(small, SMALL, 2);
        npi_fab_req *rb, *rw;
        OK(npi_fab_isend(t->fab, 0, COMM, 1, big, BIG, &rb));
        OK(npi_fab_isend(t->fab, 0, COMM, 2, small, SMALL, &rw));
        OK(npi_fab_cancel(t->fab, &rw));
        tf_fill(small, SMALL, 3);
        OK(npi_fab_send(t->fab, 0, COMM, 3, small, SMALL));
        OK(npi_fab_wait(t->fab, &rb, npi_fab_deadline(t->fab), NULL));
        OK(npi_fab_recv(t->fab, 0, COMM, 4, NULL, 0, NULL));
    } else {
        usleep(200 * 1000); /* the large send fills the socket meanwhile */
        npi_fab_status st;
        OK(npi_fab_recv(t->fab, 1, COMM, 1, big, BIG, &st));
        CHECK(st.bytes == BIG && tf_check(big, BIG, 1) == 0, "large message corrupt");
        OK(npi_fab_recv(t->fab, 1, COMM, 3, got, SMALL, &st));
        CHECK(st.bytes == SMALL && tf_check(got, SMALL, 3) == 0,
              "the message after the withdrawn one is corrupt");
        OK(npi_fab_send(t->fab, 1, COMM, 4, NULL, 0));
    }
    free(big);
    return 0;
}

/* Empty messages, NULL buffers, both directions, expected and not; and a
 * receive too small for its message (NP_ERR_TRUNCATE, the stream survives);
 * and a message to oneself. */
static int case_zero(tf_ctx *t)
{
    int rank = t->rank, peer = 1 - rank;
    npi_fab_status st;
    npi_fab_req *r;
    if (rank > 1)
        return 0;
    OK(npi_fab_irecv(t->fab, peer, COMM, 1, NULL, 0, &r));
    OK(npi_fab_send(t->fab, peer, COMM, 1, NULL, 0));
    OK(npi_fab_wait(t->fab, &r, npi_fab_deadline(t->fab), &st));
    CHECK(st.bytes == 0 && st.source == peer, "empty message: %" PRIu64 " bytes from %d", st.bytes,
          st.source);
    OK(npi_fab_send(t->fab, peer, COMM, 2, NULL, 0));
    usleep(100000);
    OK(npi_fab_recv(t->fab, peer, COMM, 2, NULL, 0, &st));
    char big[100] = {0}, small[10];
    OK(npi_fab_send(t->fab, peer, COMM, 3, big, sizeof(big)));
    np_err e = npi_fab_recv(t->fab, peer, COMM, 3, small, sizeof(small), &st);
    CHECK(e == NP_ERR_TRUNCATE && st.bytes == 100, "truncation gave %s, %" PRIu64 " bytes",
          np_errname(e), st.bytes);
    OK(npi_fab_send(t->fab, peer, COMM, 4, "ok", 3));
    OK(npi_fab_recv(t->fab, peer, COMM, 4, small, sizeof(small), &st));
    CHECK(strcmp(small, "ok") == 0, "message after a truncation lost");
    OK(npi_fab_send(t->fab, rank, COMM, 5, "me", 3));
    OK(npi_fab_recv(t->fab, rank, COMM, 5, small, sizeof(small), &st));
    CHECK(strcmp(small, "me") == 0 && st.source == rank, "message to self");
    return 0;
}

/* Every rank posts many receives and sends to every other at once, large
 * enough that socket buffers fill in both directions: nothing deadlocks and
 * every message lands in its own buffer. */
static int case_many(tf_ctx *t)
{
    int rank = t->rank;
    enum { M = 200, SZ = 40000 };
    int np = t->size - 1;
    npi_fab_req **r = calloc(2 * M * np, sizeof(*r));
    uint8_t *sbuf = malloc((size_t)SZ * M), *rbuf = malloc((size_t)SZ * M * np);
    CHECK(r && sbuf && rbuf, "malloc");
    for (int i = 0; i < M; i++)
        tf_fill(sbuf + (size_t)i * SZ, SZ, (uint64_t)i + 1000 * rank);
    int k = 0, q = 0;
    for (int p = 0; p < t->size; p++) {
        if (p == rank)
            continue;
        for (int i = 0; i < M; i++)
            OK(npi_fab_irecv(t->fab, p, COMM, i, rbuf + ((size_t)q * M + i) * SZ, SZ, &r[k++]));
        q++;
    }
    for (int p = 0; p < t->size; p++) {
        if (p == rank)
            continue;
        for (int i = 0; i < M; i++)
            OK(npi_fab_isend(t->fab, p, COMM, i, sbuf + (size_t)i * SZ, SZ, &r[k++]));
    }
    OK(npi_fab_waitall(t->fab, k, r, npi_fab_deadline(t->fab), NULL));
    q = 0;
    for (int p = 0; p < t->size; p++) {
        if (p == rank)
            continue;
        for (int i = 0; i < M; i++)
            CHECK(tf_check(rbuf + ((size_t)q * M + i) * SZ, SZ, (uint64_t)i + 1000 * p) == 0,
                  "message %d from %d corrupt", i, p);
        q++;
    }
    free(r);
    free(sbuf);
    free(rbuf);
    return 0;
}

/* One message over 2^31 bytes (2 ranks), received into a posted buffer. */
static int case_huge(tf_ctx *t)
{
    int rank = t->rank;
    const size_t n = ((size_t)1 << 31) + ((size_t)1 << 20) + 3;
    if (rank > 1)
        return 0;
    uint64_t *b = malloc(n + 8);
    CHECK(b, "cannot allocate %zu bytes", n);
    size_t words = n / 8;
    npi_fab_status st;
    if (rank == 1) {
        memset(b, 0, n);
        npi_fab_req *r;
        OK(npi_fab_irecv(t->fab, 0, COMM, 1, b, n, &r));
        OK(npi_fab_send(t->fab, 0, COMM, 0, NULL, 0));
        OK(npi_fab_wait(t->fab, &r, npi_now_ns() + 120000000000ull, &st));
        CHECK(st.bytes == n, "huge message: %" PRIu64 " bytes", st.bytes);
        for (size_t i = 0; i < words; i++)
            CHECK(b[i] == i * 0x9e3779b97f4a7c15ull, "word %zu wrong", i);
        CHECK(((uint8_t *)b)[n - 1] == 0xab, "last byte wrong");
    } else {
        for (size_t i = 0; i < words; i++)
            b[i] = i * 0x9e3779b97f4a7c15ull;
        ((uint8_t *)b)[n - 1] = 0xab;
        OK(npi_fab_recv(t->fab, 1, COMM, 0, NULL, 0, &st));
        npi_fab_req *r;
        OK(npi_fab_isend(t->fab, 1, COMM, 1, b, n, &r));
        OK(npi_fab_wait(t->fab, &r, npi_now_ns() + 120000000000ull, &st));
    }
    free(b);
    return 0;
}

/* Rank 1 dies with a large message half sent: rank 0's posted receive
 * fails with NP_ERR_PEER before the deadline (NP_ERR_TIMEOUT would mean a
 * hang bounded only by the timeout), and later traffic with rank 1 fails at
 * once. */
static int case_death(tf_ctx *t)
{
    int rank = t->rank;
    const size_t n = 256u << 20;
    if (rank > 1)
        return 0;
    uint8_t *b = malloc(n);
    CHECK(b, "malloc");
    npi_fab_status st;
    if (rank == 1) {
        memset(b, 1, n);
        OK(npi_fab_recv(t->fab, 0, COMM, 0, NULL, 0, &st));
        npi_fab_req *r;
        OK(npi_fab_isend(t->fab, 0, COMM, 1, b, n, &r));
        for (int i = 0; i < 5; i++)
            npi_fab_progress(t->fab, 2);
        _exit(0); /* mid-message, without closing anything */
    }
    npi_fab_req *r;
    OK(npi_fab_irecv(t->fab, 1, COMM, 1, b, n, &r));
    OK(npi_fab_send(t->fab, 1, COMM, 0, NULL, 0));
    uint64_t t0 = npi_now_ns();
    np_err e = npi_fab_wait(t->fab, &r, npi_fab_deadline(t->fab), &st);
    double s = (npi_now_ns() - t0) / 1e9;
    CHECK(e == NP_ERR_PEER, "receive from a dead rank gave %s after %.2f s", np_errname(e), s);
    e = npi_fab_send(t->fab, 1, COMM, 2, "x", 1);
    CHECK(e == NP_ERR_PEER, "send to a dead rank gave %s", np_errname(e));
    e = npi_fab_recv(t->fab, 1, COMM, 2, b, 1, &st);
    CHECK(e == NP_ERR_PEER, "receive from a dead rank gave %s", np_errname(e));
    free(b);
    return 0;
}

/* Ranks that rank 0 has never exchanged a message with: ranks 1 and 3
 * die at once, rank 2 stays out of the fabric for 7 s (NUMPUSH_TIMEOUT is
 * 5) and then sends.  Waiting for a message from rank 1, or for a send to
 * rank 3, fails with NP_ERR_PEER within the timeout (a transport that
 * watches only the peers it has heard from or is connected to would wait
 * forever: ofi and zmq, before their expect ops); waiting for rank 2 gets
 * its message, however long it was quiet. */
static int case_stranger(tf_ctx *t)
{
    int rank = t->rank;
    if (rank == 1 || rank == 3)
        _exit(0); /* before any message, without closing anything */
    uint64_t msg = 0x5ea1ed0fu;
    if (rank == 2) {
        struct timespec ts = {7, 0};
        nanosleep(&ts, NULL);
        OK(npi_fab_send(t->fab, 0, COMM, 1, &msg, sizeof(msg)));
        return 0;
    }
    if (rank != 0)
        return 0;
    struct timespec ts = {0, 300000000};
    nanosleep(&ts, NULL); /* rank 1 is surely gone */
    npi_fab_status st;
    uint64_t got = 0;
    npi_fab_req *r = NULL;
    /* tcp may know already: its connection to rank 1 was refused. */
    uint64_t t0 = npi_now_ns();
    np_err e = npi_fab_irecv(t->fab, 1, COMM, 1, &got, sizeof(got), &r);
    if (e == NP_OK)
        e = npi_fab_wait(t->fab, &r, t0 + 20000000000ull, &st);
    double s = (npi_now_ns() - t0) / 1e9;
    CHECK(e == NP_ERR_PEER && s < 5.5, "waiting for a rank that died unheard gave %s after %.2f s",
          np_errname(e), s);
    /* A send to one, rather than a receive: the same, as soon as posted
     * (tcp's connection was refused) or within the timeout. */
    t0 = npi_now_ns();
    e = npi_fab_isend(t->fab, 3, COMM, 1, &msg, sizeof(msg), &r);
    if (e == NP_OK)
        e = npi_fab_wait(t->fab, &r, t0 + 20000000000ull, &st);
    s = (npi_now_ns() - t0) / 1e9;
    CHECK(e == NP_ERR_PEER && s < 5.5, "a send to a rank that died unheard gave %s after %.2f s",
          np_errname(e), s);
    OK(npi_fab_irecv(t->fab, 2, COMM, 1, &got, sizeof(got), &r));
    e = npi_fab_wait(t->fab, &r, npi_now_ns() + 20000000000ull, &st);
    CHECK(e == NP_OK && got == msg && st.bytes == sizeof(msg),
          "the message of a rank quiet for 7 s: %s, %#" PRIx64 ", %" PRIu64 " bytes", np_errname(e),
          got, st.bytes);
    return 0;
}

/* Open a connection to the listener of rank peer (its address from the
 * store: TCP, or TIPC for tipc) and write junk; returns the socket. */
static int tf_junk(tf_ctx *t, int peer, const void *junk, size_t n)
{
    char key[64];
    uint8_t addr[NPI_FAB_ADDR_MAX + 1];
    size_t len = 0;
    snprintf(key, sizeof(key), "fab.%s.%d", t->transport, peer);
    if (t->boot->ops->get(t->boot, key, addr, NPI_FAB_ADDR_MAX, &len) != NP_OK)
        return -1;
    struct sockaddr_storage ss;
    socklen_t ss_len = sizeof(struct sockaddr_in);
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (strcmp(t->transport, "tcp") == 0) {
        memcpy(&sa.sin_port, addr + 2, 2);
        memcpy(&sa.sin_addr, addr + 4, 4);
    } else if (strcmp(t->transport, "ofi") == 0) {
        /* ofi.c: 'O', length, cookie, provider hash, then the provider's
         * own address, a sockaddr_in for the IP-based providers. */
        struct sockaddr_in in;
        if (len < 14 + sizeof(in))
            return -1;
        memcpy(&in, addr + 14, sizeof(in));
        if (in.sin_family != AF_INET)
            return -1;
        sa = in;
    } else if (strcmp(t->transport, "tipc") == 0) {
#ifdef NPI_HAVE_TIPC
        /* tipc.c: the listener's service name, which peers connect to. */
        npi_tipc_addr ta;
        if (npi_tipc_addr_decode(addr, len, &ta) != NP_OK)
            return -1;
        struct sockaddr_tipc *st = (struct sockaddr_tipc *)&ss;
        st->family = AF_TIPC;
        st->addrtype = TIPC_ADDR_NAME;
        st->addr.name.name.type = ta.type;
        st->addr.name.name.instance = ta.instance;
        ss_len = sizeof(*st);
#else
        return -1;
#endif
    } else {
        addr[len] = 0;
        char *colon = strrchr((char *)addr, ':');
        if (!colon)
            return -1;
        *colon = 0;
        inet_pton(AF_INET, (char *)addr + 6, &sa.sin_addr);
        sa.sin_port = htons((uint16_t)atoi(colon + 1));
    }
    if (ss.ss_family == 0)
        memcpy(&ss, &sa, sizeof(sa));
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, ss_len) != 0)
        return -1;
    if (n && write(fd, junk, n) != (ssize_t)n) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Strangers connect to rank 0's listening port and send junk (random
 * bytes, a hello with a wrong cookie, nothing at all); rank 0 drops them
 * and goes on talking to rank 1. */
static int case_garbage(tf_ctx *t)
{
    int rank = t->rank;
    if (rank > 1)
        return 0;
    npi_fab_status st;
    char msg[32];
    if (rank == 1) {
        uint8_t junk[4096];
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (uint8_t)(i * 37 + 11);
        uint8_t hello[16] = {0x48, 0x54, 0x50, 0x4e, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
        int fds[3];
        fds[0] = tf_junk(t, 0, junk, sizeof(junk));
        fds[1] = tf_junk(t, 0, hello, sizeof(hello));
        fds[2] = tf_junk(t, 0, NULL, 0);
        for (int i = 0; i < 3; i++)
            CHECK(fds[i] >= 0, "could not reach rank 0's port");
        OK(npi_fab_send(t->fab, 0, COMM, 1, "after junk", 11));
        OK(npi_fab_recv(t->fab, 0, COMM, 2, msg, sizeof(msg), &st));
        CHECK(strcmp(msg, "still here") == 0, "reply corrupt");
        for (int i = 0; i < 3; i++)
            close(fds[i]);
    } else {
        for (int k = 0; k < 50; k++)
            npi_fab_progress(t->fab, 5);
        OK(npi_fab_recv(t->fab, 1, COMM, 1, msg, sizeof(msg), &st));
        CHECK(strcmp(msg, "after junk") == 0, "message corrupt");
        OK(npi_fab_send(t->fab, 1, COMM, 2, "still here", 11));
        CHECK(npi_fab_peer_state(t->fab, 1) == NP_OK, "rank 1 marked failed");
    }
    return 0;
}

/* A rank sends a malformed envelope: the receiver fails what it waits for
 * from that rank with NP_ERR_PROTOCOL and drops it, while a third rank is
 * unaffected. */
static int case_protocol(tf_ctx *t)
{
    int rank = t->rank;
    npi_fab_status st;
    char msg[32];
    if (rank == 1) {
        static const uint8_t bad[] = {0x9c, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1,
                                      0xc1, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1};
        OK(npi_fab_send_raw(t->fab, 0, bad, sizeof(bad), "payload", 7));
        /* Rank 0 hangs up on us. */
        np_err e = npi_fab_recv(t->fab, 0, COMM, 9, msg, sizeof(msg), &st);
        CHECK(e == NP_ERR_PEER || e == NP_ERR_PROTOCOL, "after garbage: %s", np_errname(e));
    } else if (rank == 0) {
        np_err e = npi_fab_recv(t->fab, 1, COMM, 1, msg, sizeof(msg), &st);
        CHECK(e == NP_ERR_PROTOCOL, "garbage envelope gave %s", np_errname(e));
        CHECK(npi_fab_peer_state(t->fab, 1) == NP_ERR_PROTOCOL, "rank 1 not dropped");
        if (t->size > 2) {
            OK(npi_fab_send(t->fab, 2, COMM, 3, "fine", 5));
            OK(npi_fab_recv(t->fab, 2, COMM, 4, msg, sizeof(msg), &st));
            CHECK(strcmp(msg, "fine too") == 0, "rank 2 reply corrupt");
        }
    } else if (rank == 2) {
        OK(npi_fab_recv(t->fab, 0, COMM, 3, msg, sizeof(msg), &st));
        OK(npi_fab_send(t->fab, 0, COMM, 4, "fine too", 9));
    }
    return 0;
}

/* A receive whose peer is alive but silent times out with NP_ERR_TIMEOUT at
 * the deadline, and a later message still arrives. */
static int case_timeout(tf_ctx *t)
{
    int rank = t->rank;
    npi_fab_status st;
    char msg[8];
    if (rank > 1)
        return 0;
    if (rank == 0) {
        npi_fab_req *r;
        OK(npi_fab_irecv(t->fab, 1, COMM, 1, msg, sizeof(msg), &r));
        np_err e = npi_fab_wait(t->fab, &r, npi_now_ns() + 200000000ull, &st);
        CHECK(e == NP_ERR_TIMEOUT && r, "silent peer gave %s", np_errname(e));
        OK(npi_fab_send(t->fab, 1, COMM, 2, NULL, 0));
        OK(npi_fab_wait(t->fab, &r, npi_fab_deadline(t->fab), &st));
        CHECK(strcmp(msg, "late") == 0, "late message corrupt");
    } else {
        OK(npi_fab_recv(t->fab, 0, COMM, 2, NULL, 0, &st));
        OK(npi_fab_send(t->fab, 0, COMM, 1, "late", 5));
    }
    return 0;
}

/* Sleep ns without calling into the fabric. */
static void tf_nap(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
                          .tv_nsec = (long)(ns % 1000000000ull)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* The lower rank, which makes the connection, makes no fabric call for
 * 3 timeouts after opening; the higher one makes none for half a timeout
 * (so that it does not accept while the connecting rank still waits at
 * open), then keeps progressing.  Then they talk.  A transport must not
 * take a peer that is merely busy before its first word for a stranger:
 * this failed over tipc, whose connection is completed only by the peer's
 * accept, when the hello went out at the connecting rank's first progress
 * call and the acceptor dropped the silent connection after a timeout.
 * (tf_rank opens this case's fabric with a 1 s timeout.) */
static int case_idle(tf_ctx *t)
{
    int rank = t->rank;
    npi_fab_status st;
    char msg[8];
    if (rank == 0) {
        tf_nap(3000000000ull);
        OK(npi_fab_send(t->fab, 1, COMM, 1, "awake", 6));
        OK(npi_fab_recv(t->fab, 1, COMM, 2, msg, sizeof(msg), &st));
        CHECK(strcmp(msg, "fine") == 0, "reply corrupt");
    } else {
        tf_nap(500000000ull);
        uint64_t until = npi_now_ns() + 2500000000ull;
        while (npi_now_ns() < until)
            npi_fab_progress(t->fab, 10);
        CHECK(npi_fab_peer_state(t->fab, 0) == NP_OK, "rank 0 marked failed while idle");
        OK(npi_fab_recv(t->fab, 0, COMM, 1, msg, sizeof(msg), &st));
        CHECK(strcmp(msg, "awake") == 0, "message corrupt");
        OK(npi_fab_send(t->fab, 0, COMM, 2, "fine", 5));
    }
    return 0;
}

/* Across network namespaces only (the script sets NPF_LINK for rank 0):
 * rank 0 takes its end of the link down while waiting for rank 1, which is
 * alive but now unreachable.  No FIN or RST can arrive, so the survivor must
 * notice through keepalives or heartbeats: NP_ERR_PEER within about the
 * timeout, or at worst NP_ERR_TIMEOUT at the deadline, never a hang. */
static int case_linkdown(tf_ctx *t)
{
    int rank = t->rank;
    const char *link = getenv("NPF_LINK");
    npi_fab_status st;
    char msg[8];
    if (rank > 1)
        return 0;
    if (rank == 1) {
        OK(npi_fab_send(t->fab, 0, COMM, 1, "ready", 6));
        np_err e = npi_fab_recv(t->fab, 0, COMM, 2, msg, sizeof(msg), &st);
        CHECK(e == NP_ERR_PEER || e == NP_ERR_TIMEOUT || e == NP_OK, "rank 1 saw %s",
              np_errname(e));
        return 0;
    }
    OK(npi_fab_recv(t->fab, 1, COMM, 1, msg, sizeof(msg), &st));
    if (!link) {
        OK(npi_fab_send(t->fab, 1, COMM, 2, NULL, 0));
        return 0;
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "ip link set dev %s down", link);
    CHECK(system(cmd) == 0, "%s failed", cmd);
    uint64_t t0 = npi_now_ns();
    np_err e = npi_fab_recv(t->fab, 1, COMM, 3, msg, sizeof(msg), &st);
    double s = (npi_now_ns() - t0) / 1e9;
    printf("%s/linkdown: %s after %.2f s\n", t->transport, np_errname(e), s);
    CHECK(e == NP_ERR_PEER || e == NP_ERR_TIMEOUT, "link down gave %s", np_errname(e));
    CHECK(s < 8, "link down noticed only after %.2f s", s);
    return 0;
}

typedef struct tf_case {
    const char *name;
    int (*fn)(tf_ctx *);
    int ranks;
    int seconds; /* the parent's deadline */
} tf_case;

/* One case per line. */
/* clang-format off */
static const tf_case tf_cases[] = {
    {"ordering", case_ordering, 3, 30},
    {"unexpected", case_unexpected, 2, 20},
    {"zero", case_zero, 2, 20},
    {"many", case_many, 3, 40},
    {"timeout", case_timeout, 2, 20},
    {"idle", case_idle, 2, 20},
    {"garbage", case_garbage, 2, 20},
    {"protocol", case_protocol, 3, 20},
    {"death", case_death, 2, 20},
    {"linkdown", case_linkdown, 2, 20},
    {"huge", case_huge, 2, 120},
    {"withdrawn", case_withdrawn, 2, 20},
    {"midway", case_midway, 2, 30},
    {"midway-cancel", case_midway_cancel, 2, 30},
    {"stranger", case_stranger, 4, 40},
};
/* clang-format on */

/* ------------------------------------------------------------ driver */

static int tf_rank(const char *transport, const tf_case *c, const char *dir, int rank, int size)
{
    npi_boot boot;
    fst_impl impl;
    if (dir) {
        fst_init(&boot, &impl, dir, rank, size);
    } else {
        /* Started by a launcher (numpush-run, mpirun): its store. */
        np_err e = npi_boot_init(&boot);
        if (e != NP_OK) {
            fprintf(stderr, "npi_boot_init: %s: %s\n", np_errname(e), np_last_error());
            return 1;
        }
        rank = boot.rank;
        size = boot.size;
    }
    npi_error_set_rank(rank);
    tf_ctx t = {.boot = &boot, .rank = rank, .size = size, .transport = transport};
    if (c->fn == case_idle)
        setenv("NUMPUSH_TIMEOUT", "1", 1);
    np_err e = npi_fab_open(&boot, transport, true, &t.fab);
    if (e != NP_OK) {
        fprintf(stderr, "rank %d: npi_fab_open(%s): %s: %s\n", rank, transport, np_errname(e),
                np_last_error());
        return 1;
    }
    int rc = c->fn(&t);
    /* Every rank has finished sending before anyone closes, so no rank sees
     * its peer vanish with messages in flight (except where a case wants
     * that). */
    if (rc == 0 && strcmp(c->name, "death") != 0 && strcmp(c->name, "stranger") != 0 &&
        strcmp(c->name, "protocol") != 0 && strcmp(c->name, "linkdown") != 0)
        boot.ops->fence(&boot);
    npi_fab_close(&t.fab, 2000);
    if (!dir)
        npi_boot_finalize(&boot);
    return rc;
}

/* A job of one rank, booted from a fresh file store, for the cases that
 * run in the test's own process. */
typedef struct tf_alone {
    char dir[64];
    npi_boot boot;
    fst_impl impl;
} tf_alone;

static int tf_alone_init(tf_alone *a)
{
    if (fst_mkdir(a->dir, sizeof(a->dir)) != 0)
        return -1;
    fst_init(&a->boot, &a->impl, a->dir, 0, 1);
    return 0;
}

/* One process, no fork: an unknown transport is NP_ERR_TRANSPORT with a
 * message, not a crash; a job of one rank opens and talks to itself. */
static int tf_single(const char *transport)
{
    int rank = 0;
    tf_alone a;
    CHECK(tf_alone_init(&a) == 0, "mkdtemp");
    npi_fab *fab = NULL;
    np_err e = npi_fab_open(&a.boot, "carrier-pigeon", true, &fab);
    CHECK(e == NP_ERR_TRANSPORT && !fab, "unknown transport gave %s", np_errname(e));
    CHECK(strstr(np_last_error(), "carrier-pigeon"), "message does not name the transport");
    /* ofi sizes rxm's buffers for 64 KiB payloads before libfabric loads
     * its providers, unless the user has sized them (ofit_size_rxm_buffers). */
    const char *rxm_var = "FI_OFI_RXM_BUFFER_SIZE";
    char rxm_before[32] = "";
    if (getenv(rxm_var))
        snprintf(rxm_before, sizeof(rxm_before), "%s", getenv(rxm_var));
    OK(npi_fab_open(&a.boot, transport, false, &fab));
    CHECK(fab == NULL, "a non-participant got a fabric");
    OK(npi_fab_open(&a.boot, transport, true, &fab));
    if (strcmp(transport, "ofi") == 0) {
        const char *now = getenv(rxm_var);
        const char *want = rxm_before[0] ? rxm_before : "66560";
        CHECK(now && strcmp(now, want) == 0, "%s is %s, expected %s", rxm_var, now ? now : "unset",
              want);
    }
    char msg[8];
    npi_fab_status st;
    OK(npi_fab_send(fab, 0, COMM, 1, "self", 5));
    OK(npi_fab_recv(fab, NP_ANY_SOURCE, COMM, NP_ANY_TAG, msg, sizeof(msg), &st));
    CHECK(strcmp(msg, "self") == 0 && st.tag == 1 && st.bytes == 5, "message to self");
    e = npi_fab_send(fab, 1, COMM, 1, "x", 1);
    CHECK(e == NP_ERR_RANK, "send to rank 1 of 1 gave %s", np_errname(e));
    npi_fab_close(&fab, 0);
    fst_cleanup(a.dir);
    printf("PASS: %s/single (1 rank)\n", transport);
    return 0;
}

/* Whether libfabric is mapped into this process (/proc/self/maps). */
static bool tf_libfabric_mapped(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, "/libfabric.so") != NULL;
    fclose(f);
    return found;
}

/* libnumpush loads libfabric only when ofi is wanted (src/fabric/ofi_lib.h:
 * loading it costs 0.2 s here, and tcp needs none of it): not before,
 * nor for any other transport, and once ofi's probe has run, it is. */
static int tf_lazy_libfabric(void)
{
#ifdef NPI_HAVE_OFI
    int rank = 0; /* for CHECK */
    CHECK(!tf_libfabric_mapped(), "libfabric is mapped before any transport was wanted");
    tf_alone a;
    CHECK(tf_alone_init(&a) == 0, "mkdtemp");
    npi_fab *fab = NULL;
    OK(npi_fab_open(&a.boot, "tcp", true, &fab));
    npi_fab_close(&fab, 0);
    fst_cleanup(a.dir);
    CHECK(!tf_libfabric_mapped(), "the tcp transport loaded libfabric");
    /* Whether or not a provider works here, the probe needs the library. */
    np_err e = npi_fab_find("ofi")->probe();
    CHECK(e == NP_OK || !strstr(np_last_error(), "cannot load libfabric"),
          "ofi's probe could not load libfabric");
    CHECK(tf_libfabric_mapped(), "ofi's probe did not load libfabric");
    printf("PASS: libfabric loaded only when ofi is wanted\n");
#endif
    return 0;
}

/* In a child (the library is loaded once per process): with
 * NUMPUSH_OFI_LIBRARY naming lib, ofi's probe and open fail with
 * NP_ERR_TRANSPORT and a message containing want, and nothing crashes. */
static int tf_nolib_child(const char *lib, const char *want)
{
    int rank = 0; /* for CHECK */
    setenv("NUMPUSH_OFI_LIBRARY", lib, 1);
    np_err e = npi_fab_find("ofi")->probe();
    CHECK(e == NP_ERR_TRANSPORT, "probe with %s gave %s", lib, np_errname(e));
    CHECK(strstr(np_last_error(), "cannot load libfabric") && strstr(np_last_error(), want),
          "probe with %s: message does not say %s", lib, want);
    tf_alone a;
    CHECK(tf_alone_init(&a) == 0, "mkdtemp");
    npi_fab *fab = NULL;
    e = npi_fab_open(&a.boot, "ofi", true, &fab);
    fst_cleanup(a.dir);
    CHECK(e == NP_ERR_TRANSPORT && !fab, "open with %s gave %s", lib, np_errname(e));
    CHECK(strstr(np_last_error(), want), "open with %s: message does not say %s", lib, want);
    return 0;
}

/* A libfabric that cannot be loaded, or is no libfabric, is a clear error
 * of the transport, not a crash. */
static int tf_nolib(void)
{
#ifdef NPI_HAVE_OFI
    int rank = 0; /* for CHECK */
    static const char *const cases[][2] = {
        {"/nonexistent/libfabric.so.1", "/nonexistent/libfabric.so.1"},
        {"libc.so.6", "libc.so.6 has no fi_getinfo"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fflush(stdout);
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0)
            _exit(tf_nolib_child(cases[i][0], cases[i][1]));
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "NUMPUSH_OFI_LIBRARY=%s: child %s %d",
              cases[i][0], WIFEXITED(status) ? "exited with" : "died of signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    }
    printf("PASS: a libfabric that cannot be loaded is NP_ERR_TRANSPORT with the reason\n");
#endif
    return 0;
}

static const tf_case *tf_find(const char *name)
{
    for (size_t i = 0; i < sizeof(tf_cases) / sizeof(tf_cases[0]); i++)
        if (strcmp(tf_cases[i].name, name) == 0)
            return &tf_cases[i];
    return NULL;
}

/* Fork the case's ranks, wait for them under a deadline. */
static int tf_run(const char *transport, const tf_case *c)
{
    char dir[64];
    if (fst_mkdir(dir, sizeof(dir)) != 0)
        return 1;
    pid_t pids[8];
    for (int r = 0; r < c->ranks; r++) {
        pids[r] = fork();
        if (pids[r] == 0)
            _exit(tf_rank(transport, c, dir, r, c->ranks));
    }
    uint64_t t0 = npi_now_ns(), until = t0 + (uint64_t)c->seconds * 1000000000ull;
    int failed = 0, left = c->ranks;
    while (left > 0) {
        int status;
        pid_t p = waitpid(-1, &status, WNOHANG);
        if (p > 0) {
            left--;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                failed = 1;
            for (int r = 0; r < c->ranks; r++)
                if (pids[r] == p)
                    pids[r] = 0;
            continue;
        }
        if (npi_now_ns() > until) {
            fprintf(stderr, "%s/%s: ranks still running after %d s: killing them\n", transport,
                    c->name, c->seconds);
            for (int r = 0; r < c->ranks; r++)
                if (pids[r] > 0)
                    kill(pids[r], SIGKILL);
            failed = 1;
            until = UINT64_MAX;
        }
        usleep(2000);
    }
    fst_cleanup(dir);
    printf("%s: %s/%s (%d ranks, %.2f s)\n", failed ? "FAIL" : "PASS", transport, c->name, c->ranks,
           (npi_now_ns() - t0) / 1e9);
    fflush(stdout);
    return failed;
}

int main(int argc, char **argv)
{
    const char *only_t = NULL, *only_c = NULL, *dir = NULL;
    int rank = -1, size = 0;
    bool boot_mode = argc > 1 && strcmp(argv[1], "--boot") == 0;
    for (int i = boot_mode ? 2 : 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-t"))
            only_t = argv[i + 1];
        else if (!strcmp(argv[i], "-c"))
            only_c = argv[i + 1];
        else if (!strcmp(argv[i], "--rank"))
            rank = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--size"))
            size = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
    }
    /* Dead peers are detected well inside this; cases check it. */
    setenv("NUMPUSH_TIMEOUT", "5", 0);
    signal(SIGPIPE, SIG_IGN);
    if (boot_mode) {
        const tf_case *c = only_c ? tf_find(only_c) : NULL;
        if (!c || !only_t) {
            fprintf(stderr, "usage: numpush-run -n N %s --boot -t T -c CASE\n", argv[0]);
            return 2;
        }
        return tf_rank(only_t, c, NULL, -1, 0);
    }
    if (rank >= 0) {
        const tf_case *c = only_c ? tf_find(only_c) : NULL;
        if (!c || !only_t || !dir || size < 2) {
            fprintf(stderr, "usage: %s --rank R --size N --dir D -t T -c CASE\n", argv[0]);
            return 2;
        }
        return tf_rank(only_t, c, dir, rank, size);
    }
    int failed = 0, ran = 0;
    if ((!only_t || strcmp(only_t, "ofi") == 0) && (!only_c || strcmp(only_c, "lazy") == 0)) {
        /* tf_nolib first: its children must not inherit a loaded libfabric. */
        failed += tf_nolib();
        failed += tf_lazy_libfabric();
    }
    /* ofi runs once per libfabric provider that works here (tcp;ofi_rxm
     * and libfabric 1.17's native net; the ranks inherit
     * NUMPUSH_OFI_PROVIDER), unless the caller chose one.  The
     * legacy sockets provider runs its own progress threads, which miss the
     * 5 s deadline of some cases on a loaded 2-core machine, so it joins
     * only when NUMPUSH_TEST_OFI_SOCKETS=1 asks for it. */
    const char *env_prov = getenv("NUMPUSH_OFI_PROVIDER");
    const char *env_sockets = getenv("NUMPUSH_TEST_OFI_SOCKETS");
    static const char *const ofi_provs[] = {"tcp;ofi_rxm", "net", "sockets"};
    int ofi_nprov = env_sockets && strcmp(env_sockets, "1") == 0 ? 3 : 2;
    for (int ti = 0; npi_fab_transports[ti]; ti++) {
        const char *tn = npi_fab_transports[ti]->name;
        if (only_t && strcmp(only_t, tn) != 0)
            continue;
        bool is_ofi = strcmp(tn, "ofi") == 0 && !(env_prov && *env_prov);
        int nvar = is_ofi ? ofi_nprov : 1;
        for (int v = 0; v < nvar; v++) {
            if (is_ofi)
                setenv("NUMPUSH_OFI_PROVIDER", ofi_provs[v], 1);
            np_err pe = npi_fab_transports[ti]->probe();
            if (pe != NP_OK) {
                /* Not a pass: a transport this host cannot run (tipc
                 * without the kernel module) is reported and left out. */
                printf("SKIP: %s%s%s: %s\n", tn, is_ofi ? " " : "", is_ofi ? ofi_provs[v] : "",
                       np_last_error());
                continue;
            }
            if (is_ofi)
                printf("-- ofi over provider %s\n", ofi_provs[v]);
            ran++;
            if (!only_c || strcmp(only_c, "single") == 0)
                failed += tf_single(tn);
            for (size_t ci = 0; ci < sizeof(tf_cases) / sizeof(tf_cases[0]); ci++) {
                if (only_c && strcmp(only_c, tf_cases[ci].name) != 0)
                    continue;
                failed += tf_run(tn, &tf_cases[ci]);
            }
        }
        if (is_ofi)
            unsetenv("NUMPUSH_OFI_PROVIDER");
    }
    printf("%s: %d failed\n", failed ? "FAIL" : "PASS", failed);
    if (failed == 0 && ran == 0)
        return 77; /* only transports this host cannot run were asked for */
    return failed ? 1 : 0;
}
