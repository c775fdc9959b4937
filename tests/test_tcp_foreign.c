/*
 * Check suite for src/fabric/tcp_foreign.c: the TCP sockets that a library
 * opened for an endpoint (here made by the test itself, as a provider
 * would) get the tcp transport's settings (congestion control, send buffer,
 * and the bounds on noticing a dead link), and no other socket of the
 * process does.  Loopback only.
 */
#include "config.h"

#include "fabric/tcp_foreign.h"
#include "fabric/fabric.h"
#include "fabric/tcp_link.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The send buffer asked for; Linux reports twice that. */
#define WANT_SNDBUF 98304
/* NUMPUSH_TIMEOUT given to the tuner: unacknowledged data may wait half of
 * it, in milliseconds. */
#define TIMEOUT     6.0
#define WANT_UTO_MS 3000u

static int listener(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    socklen_t l = sizeof(*addr);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)addr, &l), 0);
    return fd;
}

/* A connection to the listener lfd at addr: *client and *accepted. */
static void connection(int lfd, const struct sockaddr_in *addr, int *client, int *accepted)
{
    *client = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(*client, 0);
    ck_assert_int_eq(connect(*client, (const struct sockaddr *)addr, sizeof(*addr)), 0);
    *accepted = accept(lfd, NULL, NULL);
    ck_assert_int_ge(*accepted, 0);
}

static int sndbuf(int fd)
{
    int v = 0;
    socklen_t l = sizeof(v);
    ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &l), 0);
    return v;
}

static bool congestion_is(int fd, const char *want)
{
    char name[32] = {0};
    socklen_t l = sizeof(name) - 1;
    ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, &l), 0);
    return strcmp(name, want) == 0;
}

/* Whether a dead peer host would be noticed: the user timeout and
 * keepalives of npi_fab_tcp_live_tune. */
static bool live_bounded(int fd)
{
    unsigned int uto = 0;
    int ka = 0;
    socklen_t l = sizeof(uto), lk = sizeof(ka);
    ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, &l), 0);
    ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &ka, &lk), 0);
    return uto == WANT_UTO_MS && ka;
}

static bool tuned(int fd)
{
    return sndbuf(fd) == 2 * WANT_SNDBUF && congestion_is(fd, "reno") && live_bounded(fd);
}

START_TEST(only_the_endpoints_sockets)
{
    /* self: the endpoint's listener; peer: rank 1's published listener;
     * other: a socket of the process that has nothing to do with it. */
    struct sockaddr_in self_a, peer_a, other_a;
    int self_l = listener(&self_a), peer_l = listener(&peer_a), other_l = listener(&other_a);
    int in_c, in_a, out_c, out_a, other_c, other_acc;
    connection(self_l, &self_a, &in_c, &in_a);   /* rank 1 connected to us: in_a is ours */
    connection(peer_l, &peer_a, &out_c, &out_a); /* we connected to rank 1: out_c is ours */
    connection(other_l, &other_a, &other_c, &other_acc);
    int mine[] = {self_l, in_a, out_c};
    int not_mine[] = {in_c, peer_l, out_a, other_l, other_c, other_acc};

    npi_tcp_foreign *t = npi_tcp_foreign_new(&self_a, sizeof(self_a), 2, WANT_SNDBUF, TIMEOUT);
    ck_assert_ptr_nonnull(t);
    npi_tcp_foreign_peer(t, 1, &peer_a, sizeof(peer_a));
    /* Nothing happens before a transfer starts. */
    npi_tcp_foreign_poll(t);
    ck_assert_int_eq(npi_tcp_foreign_tuned(t), 0);
    for (size_t i = 0; i < sizeof(mine) / sizeof(mine[0]); i++)
        ck_assert(!tuned(mine[i]));

    npi_tcp_foreign_active(t, 1);
    npi_tcp_foreign_poll(t);
    ck_assert_int_eq(npi_tcp_foreign_tuned(t), 3);
    for (size_t i = 0; i < sizeof(mine) / sizeof(mine[0]); i++)
        ck_assert_msg(tuned(mine[i]), "socket %zu of the endpoint was not tuned", i);
    for (size_t i = 0; i < sizeof(not_mine) / sizeof(not_mine[0]); i++)
        ck_assert_msg(sndbuf(not_mine[i]) != 2 * WANT_SNDBUF && !live_bounded(not_mine[i]),
                      "socket %zu outside the endpoint was tuned", i);

    /* A connection made later, within the looking period, is found too;
     * the ones tuned already are not counted again. */
    int late_c, late_a;
    connection(self_l, &self_a, &late_c, &late_a);
    usleep(10000);
    npi_tcp_foreign_poll(t);
    ck_assert_int_eq(npi_tcp_foreign_tuned(t), 4);
    ck_assert(tuned(late_a));
    ck_assert(!tuned(late_c));

    npi_tcp_foreign_free(t);
    int all[] = {self_l, peer_l,  other_l,   in_c,   in_a,  out_c,
                 out_a,  other_c, other_acc, late_c, late_a};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        close(all[i]);
}
END_TEST

START_TEST(listener_alone_keeps_looking)
{
    /* A provider listens before any peer connects: finding the listener
     * alone must not end the looking period, or the connection made a
     * little later keeps the system's settings. */
    struct sockaddr_in self_a, peer_a;
    int self_l = listener(&self_a), peer_l = listener(&peer_a);
    npi_tcp_foreign *t = npi_tcp_foreign_new(&self_a, sizeof(self_a), 2, WANT_SNDBUF, TIMEOUT);
    ck_assert_ptr_nonnull(t);
    npi_tcp_foreign_peer(t, 1, &peer_a, sizeof(peer_a));
    npi_tcp_foreign_active(t, 1);
    for (int i = 0; i < 15; i++) {
        npi_tcp_foreign_poll(t);
        usleep(6000);
    }
    ck_assert_int_eq(npi_tcp_foreign_tuned(t), 1);
    int out_c, out_a;
    connection(peer_l, &peer_a, &out_c, &out_a);
    npi_tcp_foreign_poll(t);
    ck_assert_int_eq(npi_tcp_foreign_tuned(t), 2);
    ck_assert(tuned(out_c));
    npi_tcp_foreign_free(t);
    close(out_c);
    close(out_a);
    close(self_l);
    close(peer_l);
}
END_TEST

START_TEST(nothing_to_do)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    /* Not an IP address (a provider addressed otherwise, verbs or efa). */
    uint8_t blob[16] = {0xff};
    ck_assert_ptr_null(npi_tcp_foreign_new(blob, sizeof(blob), 2, WANT_SNDBUF, TIMEOUT));
    /* Every setting left to the system. */
    setenv("NUMPUSH_TCP_CONGESTION", "system", 1);
    ck_assert_ptr_null(npi_tcp_foreign_new(&a, sizeof(a), 2, 0, 0));
    npi_tcp_foreign *t = npi_tcp_foreign_new(&a, sizeof(a), 2, WANT_SNDBUF, 0);
    ck_assert_ptr_nonnull(t);
    npi_tcp_foreign_free(t);
    /* The bounds on noticing a dead link alone are worth a tuner. */
    t = npi_tcp_foreign_new(&a, sizeof(a), 2, 0, TIMEOUT);
    ck_assert_ptr_nonnull(t);
    npi_tcp_foreign_free(t);
    setenv("NUMPUSH_TCP_CONGESTION", "reno", 1);
    /* Calls on no tuner are harmless (the transport keeps NULL). */
    npi_tcp_foreign_active(NULL, 0);
    npi_tcp_foreign_poll(NULL);
    npi_tcp_foreign_free(NULL);
}
END_TEST

/* Unless told otherwise, numpush's connections run reno, whatever the
 * system's default (bbr here): cubic and bbr were slower between hosts
 * (tcp.c says by how much). */
START_TEST(reno_by_default)
{
    unsetenv("NUMPUSH_TCP_CONGESTION");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    npi_fab_tcp_bulk_tune(fd, 0);
    ck_assert_msg(congestion_is(fd, "reno"), "a tuned socket does not run reno");
    close(fd);
    setenv("NUMPUSH_TCP_CONGESTION", "reno", 1);
}
END_TEST

int main(void)
{
    /* reno is built into every Linux kernel and open to every process. */
    setenv("NUMPUSH_TCP_CONGESTION", "reno", 1);
    Suite *s = suite_create("tcp_foreign");
    TCase *tc = tcase_create("tune");
    tcase_add_test(tc, only_the_endpoints_sockets);
    tcase_add_test(tc, listener_alone_keeps_looking);
    tcase_add_test(tc, nothing_to_do);
    tcase_add_test(tc, reno_by_default);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
