/*
 * Check suite for src/core/kvstore.c: the rendezvous store in one process,
 * server thread and clients on loopback.  Multi-process behaviour is covered
 * by tests/test_run_*.sh.
 */
#include "config.h"

#include "kvstore.h"

#include "netns_private.h"

#include <check.h>
#include <sys/socket.h>
#include <unistd.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "0123456789abcdef0123456789abcdef"

static npi_kvs *kvt_start(int size)
{
    npi_kvs *s = NULL;
    char err[256];
    ck_assert_int_eq(npi_kvs_start(&s, "127.0.0.1", 0, SECRET, size, NULL, NULL, err, sizeof err),
                     0);
    return s;
}

static npi_kvc *kvt_connect(npi_kvs *s, const char *secret)
{
    char addr[64];
    npi_kvc *c = NULL;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", npi_kvs_port(s));
    ck_assert_int_eq(npi_kvc_connect(&c, addr, secret, 2000), 0);
    return c;
}

START_TEST(put_then_get)
{
    npi_kvs *s = kvt_start(1);
    npi_kvc *c = kvt_connect(s, SECRET);
    char buf[16];
    size_t len = 0;
    ck_assert_int_eq(npi_kvc_put(c, "a", "hello", 5), 0);
    ck_assert_int_eq(npi_kvc_get(c, "a", buf, sizeof buf, &len, 1000), 0);
    ck_assert_uint_eq(len, 5);
    ck_assert_mem_eq(buf, "hello", 5);
    /* A value larger than the caller's room reports its full length. */
    ck_assert_int_eq(npi_kvc_get(c, "a", buf, 2, &len, 1000), 0);
    ck_assert_uint_eq(len, 5);
    npi_kvc_close(c);
    npi_kvs_stop(s);
}
END_TEST

START_TEST(large_value)
{
    npi_kvs *s = kvt_start(1);
    npi_kvc *c = kvt_connect(s, SECRET);
    size_t n = 4u << 20;
    unsigned char *v = malloc(n), *w = malloc(n);
    for (size_t i = 0; i < n; i++)
        v[i] = (unsigned char)(i * 13 + 5);
    size_t len = 0;
    ck_assert_int_eq(npi_kvc_put(c, "big", v, n), 0);
    ck_assert_int_eq(npi_kvc_get(c, "big", w, n, &len, 5000), 0);
    ck_assert_uint_eq(len, n);
    ck_assert(memcmp(v, w, n) == 0);
    free(v);
    free(w);
    npi_kvc_close(c);
    npi_kvs_stop(s);
}
END_TEST

START_TEST(get_times_out)
{
    npi_kvs *s = kvt_start(1);
    npi_kvc *c = kvt_connect(s, SECRET);
    char buf[4];
    size_t len;
    ck_assert_int_eq(npi_kvc_get(c, "never", buf, sizeof buf, &len, 100), -ETIMEDOUT);
    npi_kvc_close(c);
    npi_kvs_stop(s);
}
END_TEST

typedef struct kvt_arg {
    npi_kvs *s;
    int rank;
    int rc;
} kvt_arg;

/* One "rank": publish, fence, read everyone's value. */
static void *kvt_rank(void *p)
{
    kvt_arg *a = p;
    char addr[64], key[32], val[32], got[32];
    npi_kvc *c = NULL;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", npi_kvs_port(a->s));
    a->rc = npi_kvc_connect(&c, addr, SECRET, 2000);
    if (a->rc)
        return NULL;
    snprintf(key, sizeof key, "k.%d", a->rank);
    snprintf(val, sizeof val, "v%d", a->rank * 7);
    if ((a->rc = npi_kvc_put(c, key, val, strlen(val) + 1)) || (a->rc = npi_kvc_fence(c, 5000)))
        goto out;
    for (int r = 0; r < 8 && !a->rc; r++) {
        size_t len;
        snprintf(key, sizeof key, "k.%d", r);
        snprintf(val, sizeof val, "v%d", r * 7);
        a->rc = npi_kvc_get(c, key, got, sizeof got, &len, 5000);
        if (!a->rc && strcmp(got, val))
            a->rc = -EPROTO;
    }
    /* Fences are reusable: a second round must also complete. */
    if (!a->rc)
        a->rc = npi_kvc_fence(c, 5000);
out:
    npi_kvc_close(c);
    return NULL;
}

START_TEST(fence_and_exchange)
{
    npi_kvs *s = kvt_start(8);
    pthread_t t[8];
    kvt_arg a[8];
    for (int r = 0; r < 8; r++) {
        a[r] = (kvt_arg){.s = s, .rank = r, .rc = -1};
        pthread_create(&t[r], NULL, kvt_rank, &a[r]);
    }
    for (int r = 0; r < 8; r++) {
        pthread_join(t[r], NULL);
        ck_assert_int_eq(a[r].rc, 0);
    }
    npi_kvs_stop(s);
}
END_TEST

START_TEST(wrong_secret_refused)
{
    npi_kvs *s = kvt_start(2);
    npi_kvc *bad = kvt_connect(s, "not-the-secret");
    ck_assert_int_eq(npi_kvc_put(bad, "x", "1", 1), -EACCES);
    /* The server closed the connection: nothing more goes through it. */
    ck_assert_int_ne(npi_kvc_put(bad, "x", "1", 1), 0);
    npi_kvc_close(bad);
    npi_kvc *none = kvt_connect(s, "");
    ck_assert_int_eq(npi_kvc_fence(none, 1000), -EACCES);
    npi_kvc_close(none);
    ck_assert_int_eq(npi_kvs_refused(s), 2);
    /* Nothing the refused clients sent is in the store. */
    npi_kvc *good = kvt_connect(s, SECRET);
    char buf[4];
    size_t len;
    ck_assert_int_eq(npi_kvc_get(good, "x", buf, sizeof buf, &len, 100), -ETIMEDOUT);
    npi_kvc_close(good);
    int open_now, ever;
    npi_kvs_clients(s, &open_now, &ever);
    ck_assert_int_eq(ever, 1);
    npi_kvs_stop(s);
}
END_TEST

START_TEST(connect_gives_up)
{
    npi_kvc *c = NULL;
    /* Port 1 on loopback is closed: connecting retries, then times out. */
    ck_assert_int_eq(npi_kvc_connect(&c, "127.0.0.1:1", SECRET, 100), -ETIMEDOUT);
    ck_assert_ptr_null(c);
}
END_TEST

/* In a network namespace of its own whose only ephemeral port is 40000
 * (the child's; needs root), a connect to 127.0.0.1:40000, where nothing
 * listens, always meets itself (TCP's simultaneous open).  That is no
 * store: npi_kvc_connect must keep retrying and time out.  Returns 0 if
 * it did, 1 if it took the socket for a store (netns_private_run). */
static int self_connect_child(void)
{
    npi_kvc *c = NULL;
    int rc = npi_kvc_connect(&c, "127.0.0.1:40000", SECRET, 300);
    if (c)
        npi_kvc_close(c);
    return rc == -ETIMEDOUT && c == NULL ? 0 : 1;
}

START_TEST(self_connect_is_no_store)
{
    int rc = netns_private_run(40000, self_connect_child);
    if (rc == 2) {
        printf("self_connect_is_no_store: no network namespace here (not root?); not run\n");
        return;
    }
    ck_assert_msg(rc == 0, "a socket connected to itself was taken for the store");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kvstore");
    TCase *tc = tcase_create("store");
    tcase_add_test(tc, put_then_get);
    tcase_add_test(tc, large_value);
    tcase_add_test(tc, get_times_out);
    tcase_add_test(tc, fence_and_exchange);
    tcase_add_test(tc, wrong_secret_refused);
    tcase_add_test(tc, connect_gives_up);
    tcase_add_test(tc, self_connect_is_no_store);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
