/*
 * Check suite for src/fabric/listen_probe.c: what a connect to a peer's
 * listening address says about the peer (refused: gone; completed by the
 * kernel: alive; no way to ask: unknown), including a connect that meets
 * itself, which must not pass for a live listener.
 */
#include "config.h"

#include "fabric/listen_probe.h"

#include <arpa/inet.h>
#include "netns_private.h"

#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LIMIT_NS 1000000000ull

/* Ask until the probe answers (or LIMIT_NS has passed and it says UNKNOWN). */
static npi_listen_state ask_until_answer(npi_listen_probe *p)
{
    npi_listen_state s;
    while ((s = npi_listen_probe_ask(p, LIMIT_NS)) == NPI_LISTEN_PENDING)
        usleep(1000);
    return s;
}

/* A TCP socket bound to 127.0.0.1 on a port of the kernel's choosing;
 * listening if listen_too.  Its address in *sa. */
static int loopback_socket(struct sockaddr_in *sa, int listen_too)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)sa, sizeof(*sa)), 0);
    socklen_t len = sizeof(*sa);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)sa, &len), 0);
    if (listen_too)
        ck_assert_int_eq(listen(fd, 4), 0);
    return fd;
}

START_TEST(listener_is_alive)
{
    struct sockaddr_in sa;
    int fd = loopback_socket(&sa, 1);
    npi_listen_probe p;
    npi_listen_probe_init(&p, &sa, sizeof(sa));
    /* Nobody accepts: the kernel completes the connect from the backlog. */
    ck_assert_int_eq(ask_until_answer(&p), NPI_LISTEN_ALIVE);
    ck_assert_int_eq(p.fd, -1);
    close(fd);
}
END_TEST

START_TEST(closed_port_is_gone)
{
    struct sockaddr_in sa;
    int fd = loopback_socket(&sa, 0); /* bound, never listening */
    npi_listen_probe p;
    npi_listen_probe_init(&p, &sa, sizeof(sa));
    ck_assert_int_eq(ask_until_answer(&p), NPI_LISTEN_GONE);
    ck_assert_int_eq(p.fd, -1);
    close(fd);
}
END_TEST

START_TEST(no_ip_address_is_unknown)
{
    npi_listen_probe p;
    npi_listen_probe_init(&p, NULL, 0);
    ck_assert_int_eq(npi_listen_probe_ask(&p, LIMIT_NS), NPI_LISTEN_UNKNOWN);
    unsigned char junk[8] = {0xff, 0xff, 1, 2, 3, 4, 5, 6}; /* no IP family */
    npi_listen_probe_init(&p, junk, sizeof(junk));
    ck_assert_int_eq(npi_listen_probe_ask(&p, LIMIT_NS), NPI_LISTEN_UNKNOWN);
}
END_TEST

/* In a network namespace of its own with only loopback up, whose only
 * ephemeral port is 40000 (needs root): a probe of 127.0.0.1:40000, where
 * nothing listens, connects to itself, which is no listener (GONE); a probe
 * of an address with no route says nothing (UNKNOWN).  Returns 0 if both
 * are right, else 1 (netns_private_run). */
static int netns_child(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(40000)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    npi_listen_probe p;
    npi_listen_probe_init(&p, &sa, sizeof(sa));
    npi_listen_state self = ask_until_answer(&p);
    inet_pton(AF_INET, "198.18.255.1", &sa.sin_addr); /* no route in here */
    npi_listen_probe_init(&p, &sa, sizeof(sa));
    npi_listen_state unrouted = ask_until_answer(&p);
    if (self != NPI_LISTEN_GONE || unrouted != NPI_LISTEN_UNKNOWN) {
        fprintf(stderr, "self-connect gave %d (want GONE %d), no route %d (want UNKNOWN %d)\n",
                (int)self, (int)NPI_LISTEN_GONE, (int)unrouted, (int)NPI_LISTEN_UNKNOWN);
        return 1;
    }
    return 0;
}

START_TEST(self_connect_and_no_route)
{
    int rc = netns_private_run(40000, netns_child);
    if (rc == 2) {
        printf("self_connect_and_no_route: no network namespace here (not root?); not run\n");
        return;
    }
    ck_assert_msg(rc == 0, "see the child's message above");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("listen_probe");
    TCase *tc = tcase_create("probe");
    tcase_add_test(tc, listener_is_alive);
    tcase_add_test(tc, closed_port_is_gone);
    tcase_add_test(tc, no_ip_address_is_unknown);
    tcase_add_test(tc, self_connect_and_no_route);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
