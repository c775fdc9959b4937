/*
 * Conformance of every collective and of point to point within a node.
 * Run by tests/coll_np*.sh under numpush-run with 1 to 8 ranks.
 *
 * For every collective, dtype, applicable op, size, root and in-place form,
 * each algorithm family (eager, cells, cma) is forced in turn through
 * NUMPUSH_<COLL>_ALG, and every element of every result is checked: integer
 * results exactly, floating-point results bit for bit against a reference
 * computed here with np_reduce_local in rank order (((x0 op x1) op x2) ...),
 * the order every numpush algorithm promises.  Inputs are small integers
 * chosen so that no sum or product overflows, so the reference is exact.
 *
 * Options: --quick (small sizes only), --large (adds 64 MiB cases),
 * --big (one broadcast of more than 2^31 bytes, nothing else), --tree
 * (force the hierarchical broadcast instead of cma; run it with a synthetic
 * NUMPUSH_TOPOLOGY).
 */
#include <numpush/numpush.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int me, nranks, failures;
static np_comm *world;

#define CHECK_OK(call)                                                                             \
    do {                                                                                           \
        np_err e_ = (call);                                                                        \
        if (e_ != NP_OK) {                                                                         \
            fprintf(stderr, "rank %d: %s:%d: %s -> %s: %s\n", me, __FILE__, __LINE__, #call,       \
                    np_errname(e_), np_last_error());                                              \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "rank %d: FAIL: ", me);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (++failures > 20)
        exit(1);
}

/* Element i of rank r's input for a reduction with op (or a move, op < 0). */
static void fill(void *buf, np_dtype dt, size_t count, int r, np_op op, unsigned salt)
{
    for (size_t i = 0; i < count; i++) {
        /* Sums stay below 8 * 12 = 96 (fits int8); products multiply at most
         * three 2s (fits int8 with 8 ranks); logic ops see zeros and ones. */
        long v;
        if (op == NP_PROD)
            v = ((size_t)r + i + salt) % 3 == 0 ? 2 : 1;
        else if (op == NP_LAND || op == NP_LOR || op == NP_LXOR || dt == NP_BOOL)
            v = ((size_t)r * 7 + i * 3 + salt) % 5 != 0;
        else
            v = (long)(((size_t)r * 31 + i * 7 + salt) % 13);
        if ((op == NP_MIN || op == NP_MAX) && (r + (int)i) % 2 && dt != NP_BOOL)
            v = -v; /* negatives for signed types; wraps for unsigned, fine */
        switch (dt) {
        case NP_INT8:
            ((int8_t *)buf)[i] = (int8_t)v;
            break;
        case NP_UINT8:
        case NP_BOOL:
        case NP_BYTE:
            ((uint8_t *)buf)[i] = (uint8_t)v;
            break;
        case NP_INT16:
            ((int16_t *)buf)[i] = (int16_t)v;
            break;
        case NP_UINT16:
            ((uint16_t *)buf)[i] = (uint16_t)v;
            break;
        case NP_INT32:
            ((int32_t *)buf)[i] = (int32_t)v;
            break;
        case NP_UINT32:
            ((uint32_t *)buf)[i] = (uint32_t)v;
            break;
        case NP_INT64:
            ((int64_t *)buf)[i] = v;
            break;
        case NP_UINT64:
            ((uint64_t *)buf)[i] = (uint64_t)v;
            break;
        case NP_FLOAT32:
            ((float *)buf)[i] = (float)v;
            break;
        case NP_FLOAT64:
            ((double *)buf)[i] = (double)v;
            break;
        case NP_COMPLEX64:
            ((float *)buf)[2 * i] = (float)v;
            ((float *)buf)[2 * i + 1] = (float)(v % 3);
            break;
        case NP_COMPLEX128:
            ((double *)buf)[2 * i] = (double)v;
            ((double *)buf)[2 * i + 1] = (double)(v % 3);
            break;
        default:
            break;
        }
    }
}

static void *xmalloc(size_t n)
{
    /* Odd offsets from malloc's alignment, as user buffers often are. */
    char *p = malloc(n + 64);
    if (!p) {
        fprintf(stderr, "rank %d: out of memory for %zu bytes\n", me, n);
        exit(1);
    }
    return p + 16;
}

static void xfree(void *p)
{
    if (p)
        free((char *)p - 16);
}

static const char *alg_vars[] = {
    "NUMPUSH_BCAST_ALG",  "NUMPUSH_SCATTER_ALG",   "NUMPUSH_SCATTERV_ALG",
    "NUMPUSH_GATHER_ALG", "NUMPUSH_GATHERV_ALG",   "NUMPUSH_ALLREDUCE_ALG",
    "NUMPUSH_REDUCE_ALG", "NUMPUSH_ALLGATHER_ALG", "NUMPUSH_ALLTOALL_ALG"};

/* numpush reads the NUMPUSH_<COLL>_ALG overrides once, at np_init; this
 * internal entry point re-reads them after the test has changed them. */
extern np_err npi_decide_load(void);

static void force_alg(const char *alg)
{
    for (size_t i = 0; i < sizeof alg_vars / sizeof alg_vars[0]; i++) {
        if (alg)
            setenv(alg_vars[i], alg, 1);
        else
            unsetenv(alg_vars[i]);
    }
    CHECK_OK(npi_decide_load());
}

static bool op_applies(np_dtype dt, np_op op)
{
    unsigned char a[16] = {0}, b[16] = {0};
    return np_reduce_local(a, b, 1, dt, op) == NP_OK;
}

/* Reference reduction of ranks 0..n-1 in rank order into out. */
static void reference(void *out, np_dtype dt, size_t count, np_op op, unsigned salt)
{
    size_t bytes = count * np_dtype_size(dt);
    void *x = xmalloc(bytes + 1);
    fill(out, dt, count, 0, op, salt);
    for (int q = 1; q < nranks; q++) {
        fill(x, dt, count, q, op, salt);
        /* inout = in op inout: in is the accumulated lower ranks. */
        CHECK_OK(np_reduce_local(out, x, count, dt, op));
        memcpy(out, x, bytes);
    }
    xfree(x);
}

static void expect_block(const char *what, const void *got, np_dtype dt, size_t count, int r,
                         np_op op, unsigned salt, size_t ctx)
{
    size_t es = np_dtype_size(dt), bytes = count * es;
    void *want = xmalloc(bytes + 1);
    fill(want, dt, count, r, op, salt);
    if (memcmp(got, want, bytes) != 0) {
        size_t i = 0;
        while (i < bytes && ((const char *)got)[i] == ((char *)want)[i])
            i++;
        fail("%s: %s count %zu (ctx %zu): block of rank %d differs at byte %zu", what,
             np_dtype_name(dt), count, ctx, r, i);
    }
    xfree(want);
}

static const size_t small_sizes[] = {0, 1, 7, 4096 + 3};
static const size_t large_count = 1048576 + 5;
static const np_dtype large_dtypes[] = {NP_UINT8, NP_INT32, NP_FLOAT64, NP_COMPLEX128};
static const char *algs[] = {NULL, "eager", "cells", "cma"};

static void test_moves(np_dtype dt, size_t count, unsigned salt, np_comm *c)
{
    int n = np_comm_size(c), r = np_comm_rank(c);
    int save_me = me, save_n = nranks;
    me = r;
    nranks = n;
    size_t es = np_dtype_size(dt), bytes = count * es;
    char *one = xmalloc(bytes + 1), *all = xmalloc(bytes * (size_t)n + 1);
    char *all2 = xmalloc(bytes * (size_t)n + 1);
    /* A root in the middle too, at the small sizes: there the root of an
     * eager scatter copies the blocks before and after its own separately. */
    int roots[3] = {0, n - 1, n / 2};
    int nroots = 3;
    if (n <= 2 || bytes * (size_t)n > ((size_t)1 << 20))
        nroots = n == 1 ? 1 : 2;
    for (int ri = 0; ri < nroots; ri++) {
        int root = roots[ri];
        /* bcast */
        if (r == root)
            fill(one, dt, count, root, -1, salt);
        else
            memset(one, 0xa5, bytes);
        CHECK_OK(np_bcast(one, count, dt, root, c));
        expect_block("bcast", one, dt, count, root, -1, salt, 0);
        /* scatter, plain and in place at the root */
        for (int ip = 0; ip < 2; ip++) {
            if (r == root)
                for (int q = 0; q < n; q++)
                    fill(all + (size_t)q * bytes, dt, count, q, -1, salt);
            memset(one, 0x5a, bytes);
            bool inplace = ip && r == root;
            CHECK_OK(np_scatter(r == root ? all : NULL, inplace ? (void *)NP_IN_PLACE : one, count,
                                dt, root, c));
            expect_block("scatter", inplace ? all + (size_t)r * bytes : one, dt, count, r, -1, salt,
                         (size_t)ip);
        }
        /* gather, plain and in place at the root */
        for (int ip = 0; ip < 2; ip++) {
            fill(one, dt, count, r, -1, salt);
            memset(all, 0x11, bytes * (size_t)n);
            bool inplace = ip && r == root;
            if (inplace)
                fill(all + (size_t)r * bytes, dt, count, r, -1, salt);
            CHECK_OK(
                np_gather(inplace ? NP_IN_PLACE : one, r == root ? all : NULL, count, dt, root, c));
            if (r == root)
                for (int q = 0; q < n; q++)
                    expect_block("gather", all + (size_t)q * bytes, dt, count, q, -1, salt,
                                 (size_t)ip);
        }
        /* scatterv / gatherv: rank q gets count + q - 1 elements (or 0),
         * laid out in reverse rank order with gaps. */
        size_t *counts = calloc((size_t)n, sizeof *counts),
               *displs = calloc((size_t)n, sizeof *displs);
        size_t off = 0;
        for (int q = n - 1; q >= 0; q--) {
            counts[q] = count + (size_t)q >= 1 ? count + (size_t)q - 1 : 0;
            displs[q] = off;
            off += counts[q] + 3;
        }
        char *vbuf = xmalloc(off * es + 1), *vone = xmalloc((count + (size_t)n) * es);
        for (int ip = 0; ip < 2; ip++) {
            bool inplace = ip && r == root;
            if (r == root)
                for (int q = 0; q < n; q++)
                    fill(vbuf + displs[q] * es, dt, counts[q], q, -1, salt);
            memset(vone, 0x77, counts[r] * es);
            CHECK_OK(np_scatterv(r == root ? vbuf : NULL, r == root ? counts : NULL,
                                 r == root ? displs : NULL, inplace ? (void *)NP_IN_PLACE : vone,
                                 counts[r], dt, root, c));
            if (!inplace)
                expect_block("scatterv", vone, dt, counts[r], r, -1, salt, (size_t)ip);
            fill(vone, dt, counts[r], r, -1, salt);
            memset(vbuf, 0x33, off * es);
            if (inplace)
                fill(vbuf + displs[r] * es, dt, counts[r], r, -1, salt);
            CHECK_OK(np_gatherv(inplace ? NP_IN_PLACE : vone, counts[r], r == root ? vbuf : NULL,
                                r == root ? counts : NULL, r == root ? displs : NULL, dt, root, c));
            if (r == root)
                for (int q = 0; q < n; q++)
                    expect_block("gatherv", vbuf + displs[q] * es, dt, counts[q], q, -1, salt,
                                 (size_t)ip);
        }
        xfree(vbuf);
        xfree(vone);
        free(counts);
        free(displs);
    }
    /* allgather, plain and in place */
    for (int ip = 0; ip < 2; ip++) {
        fill(one, dt, count, r, -1, salt);
        memset(all, 0x22, bytes * (size_t)n);
        if (ip)
            fill(all + (size_t)r * bytes, dt, count, r, -1, salt);
        CHECK_OK(np_allgather(ip ? NP_IN_PLACE : one, all, count, dt, c));
        for (int q = 0; q < n; q++)
            expect_block("allgather", all + (size_t)q * bytes, dt, count, q, -1, salt, (size_t)ip);
    }
    /* alltoall: block j of rank i is fill(i * n + j) */
    for (int ip = 0; ip < 2; ip++) {
        for (int q = 0; q < n; q++)
            fill((ip ? all2 : all) + (size_t)q * bytes, dt, count, r * n + q, -1, salt);
        if (!ip)
            memset(all2, 0x44, bytes * (size_t)n);
        CHECK_OK(np_alltoall(ip ? NP_IN_PLACE : all, all2, count, dt, c));
        for (int q = 0; q < n; q++)
            expect_block("alltoall", all2 + (size_t)q * bytes, dt, count, q * n + r, -1, salt,
                         (size_t)ip);
    }
    xfree(one);
    xfree(all);
    xfree(all2);
    me = save_me;
    nranks = save_n;
}

/* Bit for bit, except that with NUMPUSH_TEST_ACROSS_NODES=1
 * (tests/coll_netns.sh) floating-point elements are compared by value:
 * between nodes the reduction is a fixed tree over consecutive ranks
 * (node-local parts first), not one left fold, and with the exact inputs
 * used here that can change only the sign of a zero (complex products). */
static bool same_result(const void *got, const void *want, np_dtype dt, size_t count)
{
    size_t bytes = count * np_dtype_size(dt);
    if (memcmp(got, want, bytes) == 0)
        return true;
    const char *across = getenv("NUMPUSH_TEST_ACROSS_NODES");
    if (!across || strcmp(across, "1") != 0)
        return false;
    size_t k = count;
    if (dt == NP_COMPLEX64 || dt == NP_COMPLEX128)
        k *= 2;
    for (size_t i = 0; i < k; i++) {
        if (dt == NP_FLOAT32 || dt == NP_COMPLEX64) {
            if (((const float *)got)[i] != ((const float *)want)[i])
                return false;
        } else if (dt == NP_FLOAT64 || dt == NP_COMPLEX128) {
            if (((const double *)got)[i] != ((const double *)want)[i])
                return false;
        } else {
            return false;
        }
    }
    return true;
}

static void test_reductions(np_dtype dt, np_op op, size_t count, unsigned salt, np_comm *c)
{
    int n = np_comm_size(c), r = np_comm_rank(c);
    int save_me = me, save_n = nranks;
    me = r;
    nranks = n;
    size_t bytes = count * np_dtype_size(dt);
    char *in = xmalloc(bytes + 1), *out = xmalloc(bytes + 1), *want = xmalloc(bytes + 1);
    reference(want, dt, count, op, salt);
    for (int ip = 0; ip < 2; ip++) {
        fill(ip ? out : in, dt, count, r, op, salt);
        if (!ip)
            memset(out, 0x66, bytes);
        CHECK_OK(np_allreduce(ip ? NP_IN_PLACE : in, out, count, dt, op, c));
        if (!same_result(out, want, dt, count))
            fail("allreduce %s %s count %zu inplace %d: wrong result", np_dtype_name(dt),
                 np_op_name(op), count, ip);
    }
    int roots[2] = {0, n - 1};
    for (int ri = 0; ri < (n > 1 ? 2 : 1); ri++) {
        int root = roots[ri];
        for (int ip = 0; ip < 2; ip++) {
            bool inplace = ip && r == root;
            fill(inplace ? out : in, dt, count, r, op, salt);
            if (!inplace)
                memset(out, 0x66, bytes);
            CHECK_OK(np_reduce(inplace ? NP_IN_PLACE : in, r == root ? out : NULL, count, dt, op,
                               root, c));
            if (r == root && !same_result(out, want, dt, count))
                fail("reduce %s %s count %zu root %d inplace %d: wrong result", np_dtype_name(dt),
                     np_op_name(op), count, root, ip);
        }
    }
    xfree(in);
    xfree(out);
    xfree(want);
    me = save_me;
    nranks = save_n;
}

static void test_all_on(np_comm *c, bool quick, unsigned salt)
{
    for (size_t a = 0; a < sizeof algs / sizeof algs[0]; a++) {
        force_alg(algs[a]);
        for (int dt = 0; dt < NP_DTYPE_COUNT_; dt++) {
            for (size_t s = 0; s < sizeof small_sizes / sizeof small_sizes[0]; s++) {
                test_moves((np_dtype)dt, small_sizes[s], salt + (unsigned)s, c);
                for (np_op op = 0; op < NP_OP_BUILTIN_COUNT_; op++)
                    if (op_applies((np_dtype)dt, op))
                        test_reductions((np_dtype)dt, op, small_sizes[s], salt + (unsigned)s, c);
            }
        }
        if (quick || a == 1)
            continue; /* eager cannot carry a megabyte: skip its duplicate */
        for (size_t d = 0; d < sizeof large_dtypes / sizeof large_dtypes[0]; d++) {
            test_moves(large_dtypes[d], large_count, salt, c);
            test_reductions(large_dtypes[d], large_dtypes[d] == NP_UINT8 ? NP_BXOR : NP_SUM,
                            large_count, salt, c);
        }
        test_reductions(NP_FLOAT64, NP_MAX, large_count, salt, c);
    }
    force_alg(NULL);
}

/* Collectives on split communicators interleaved with the world's. */
static void test_split(void)
{
    np_comm *half = NULL, *dup = NULL, *none = NULL;
    /* Reverse order inside each half: key = -rank. */
    CHECK_OK(np_comm_split(world, me % 2, -me, &half));
    int hn = np_comm_size(half), hr = np_comm_rank(half);
    int want_n = (nranks + 1 - me % 2) / 2;
    if (hn != want_n || hr != hn - 1 - me / 2)
        fail("split: rank %d size %d, expected %d of %d", hr, hn, hn - 1 - me / 2, want_n);
    CHECK_OK(np_comm_dup(world, &dup));
    if (np_comm_rank(dup) != me || np_comm_size(dup) != nranks)
        fail("dup: wrong rank or size");
    CHECK_OK(np_comm_split(world, me == 0 ? 5 : NP_UNDEFINED, 0, &none));
    if ((me == 0) != (none != NULL))
        fail("split with NP_UNDEFINED: wrong result");
    for (int it = 0; it < 20; it++) {
        int64_t a = me, b = hr, sa = 0, sb = 0, sd = 0;
        CHECK_OK(np_allreduce(&a, &sa, 1, NP_INT64, NP_SUM, world));
        CHECK_OK(np_allreduce(&b, &sb, 1, NP_INT64, NP_SUM, half));
        CHECK_OK(np_allreduce(&a, &sd, 1, NP_INT64, NP_SUM, dup));
        if (sa != (int64_t)nranks * (nranks - 1) / 2 || sd != sa ||
            sb != (int64_t)hn * (hn - 1) / 2)
            fail("split: interleaved allreduce wrong (%lld %lld %lld)", (long long)sa,
                 (long long)sb, (long long)sd);
        int32_t v = it * 100 + (hr == 0 ? me : -1);
        CHECK_OK(np_bcast(&v, 1, NP_INT32, 0, half));
        int top = nranks - 1 - ((nranks - 1) % 2 != me % 2);
        if (v != it * 100 + top)
            fail("split: bcast on half got %d", v);
    }
    test_moves(NP_INT32, 4099, 3, half);
    test_reductions(NP_FLOAT64, NP_SUM, 70000, 4, half);
    if (none) {
        if (np_comm_size(none) != 1)
            fail("split: singleton size %d", np_comm_size(none));
        CHECK_OK(np_barrier(none));
        CHECK_OK(np_comm_free(&none));
    }
    CHECK_OK(np_comm_free(&half));
    CHECK_OK(np_comm_free(&dup));
    if (half || dup)
        fail("comm_free did not clear the handle");
    np_comm *w = world;
    if (np_comm_free(&w) != NP_ERR_COMM)
        fail("freeing the world did not fail");
    np_comm *node = NULL;
    CHECK_OK(np_comm_split_type(world, NP_COMM_TYPE_NODE, me, &node));
    /* Ranks may span nodes (tests/coll_netns.sh): the nodes' sizes, each
     * counted once by its first rank, must add up to the world. */
    int32_t mine = np_comm_rank(node) == 0 ? np_comm_size(node) : 0, sum = 0;
    CHECK_OK(np_allreduce(&mine, &sum, 1, NP_INT32, NP_SUM, world));
    if (np_comm_size(node) < 1 || sum != nranks)
        fail("split_type node: size %d, sizes add up to %d", np_comm_size(node), (int)sum);
    CHECK_OK(np_comm_free(&node));
}

/* Point to point: tags, any source, order per (source, tag), sizes. */
static void test_p2p(void)
{
    static const size_t sizes[] = {0, 1, 100, 4032, 4033, 70000, 1048581};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t count = sizes[s];
        int32_t *buf = xmalloc(count * 4 + 4);
        int right = (me + 1) % nranks, left = (me + nranks - 1) % nranks;
        /* Ring: rank 0 sends first, every other rank receives first, so
         * rendezvous sends cannot deadlock. */
        for (int phase = 0; phase < 2 && nranks > 1; phase++) {
            if ((me == 0) == (phase == 0)) {
                for (size_t i = 0; i < count; i++)
                    buf[i] = (int32_t)(me * 1000 + (int)i);
                CHECK_OK(np_send(buf, count, NP_INT32, right, 7, world));
            } else {
                np_status st;
                memset(buf, 0, count * 4);
                CHECK_OK(np_recv(buf, count + 1, NP_INT32, left, 7, world, &st));
                if (st.source != left || st.tag != 7 || st.count != count)
                    fail("p2p: status %d %d %zu", st.source, st.tag, st.count);
                for (size_t i = 0; i < count; i++)
                    if (buf[i] != (int32_t)(left * 1000 + (int)i)) {
                        fail("p2p: ring size %zu wrong at %zu", count, i);
                        break;
                    }
            }
        }
        xfree(buf);
    }
    CHECK_OK(np_barrier(world));
    if (nranks < 2)
        return;
    /* Every rank sends 3 messages of tag 1 and 3 of tag 2 to rank 0,
     * alternating; rank 0 takes all tag 2 first (any source), then tag 1,
     * and checks the order per source. */
    if (me != 0) {
        for (int k = 0; k < 3; k++) {
            int32_t m1 = me * 100 + k, m2 = me * 100 + 50 + k;
            CHECK_OK(np_send(&m1, 1, NP_INT32, 0, 1, world));
            CHECK_OK(np_send(&m2, 1, NP_INT32, 0, 2, world));
        }
    } else {
        int next2[64] = {0}, next1[64] = {0};
        for (int k = 0; k < 3 * (nranks - 1); k++) {
            int32_t v;
            np_status st;
            CHECK_OK(np_recv(&v, 1, NP_INT32, NP_ANY_SOURCE, 2, world, &st));
            if (st.tag != 2 || v != st.source * 100 + 50 + next2[st.source]++)
                fail("p2p: tag 2 from %d out of order (%d)", st.source, v);
        }
        for (int q = 1; q < nranks; q++) {
            for (int k = 0; k < 3; k++) {
                int32_t v;
                np_status st;
                CHECK_OK(np_recv(&v, 1, NP_INT32, q, NP_ANY_TAG, world, &st));
                if (st.tag != 1 || st.source != q || v != q * 100 + next1[q]++)
                    fail("p2p: tag 1 from %d out of order (%d, tag %d)", q, v, st.tag);
            }
        }
    }
    /* Truncation: a 10-element message into a 5-element buffer. */
    if (me == 1) {
        int32_t ten[10] = {0};
        CHECK_OK(np_send(ten, 10, NP_INT32, 0, 9, world));
    } else if (me == 0) {
        int32_t five[5];
        np_status st;
        np_err e = np_recv(five, 5, NP_INT32, 1, 9, world, &st);
        if (e != NP_ERR_TRUNCATE || st.count != 10)
            fail("p2p: truncation gave %s, count %zu", np_errname(e), st.count);
    }
    CHECK_OK(np_barrier(world));
}

/*
 * Alltoall and allgather by single copies that the senders make:
 * NUMPUSH_CMA_CLAIMS=push has every rank claim its outgoing blocks first
 * and write them into the receivers' recvbufs, the path that the default
 * takes only for ranks waiting for a core.  Small and large blocks, in
 * place and not.
 */
static void test_cma_pushes(void)
{
    int n = nranks;
    np_dtype dt = NP_INT32;
    setenv("NUMPUSH_ALLTOALL_ALG", "cma", 1);
    setenv("NUMPUSH_ALLGATHER_ALG", "cma", 1);
    setenv("NUMPUSH_CMA_CLAIMS", "push", 1);
    CHECK_OK(npi_decide_load());
    static const size_t counts[] = {1, 4096 + 3, 65536 + 3};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        size_t count = counts[c], bytes = count * np_dtype_size(dt);
        char *one = xmalloc(bytes + 1), *all = xmalloc(bytes * (size_t)n + 1);
        char *all2 = xmalloc(bytes * (size_t)n + 1);
        for (int ip = 0; ip < 2; ip++) {
            for (int q = 0; q < n; q++)
                fill((ip ? all2 : all) + (size_t)q * bytes, dt, count, me * n + q, -1, 5);
            if (!ip)
                memset(all2, 0x44, bytes * (size_t)n);
            CHECK_OK(np_alltoall(ip ? NP_IN_PLACE : all, all2, count, dt, world));
            for (int q = 0; q < n; q++)
                expect_block("alltoall (pushes)", all2 + (size_t)q * bytes, dt, count, q * n + me,
                             -1, 5, (size_t)ip);
        }
        for (int ip = 0; ip < 2; ip++) {
            memset(all, 0x44, bytes * (size_t)n);
            fill(ip ? all + (size_t)me * bytes : one, dt, count, me, -1, 6);
            CHECK_OK(np_allgather(ip ? NP_IN_PLACE : one, all, count, dt, world));
            for (int q = 0; q < n; q++)
                expect_block("allgather (pushes)", all + (size_t)q * bytes, dt, count, q, -1, 6,
                             (size_t)ip);
        }
        xfree(one);
        xfree(all);
        xfree(all2);
    }
    unsetenv("NUMPUSH_ALLTOALL_ALG");
    unsetenv("NUMPUSH_ALLGATHER_ALG");
    unsetenv("NUMPUSH_CMA_CLAIMS");
    CHECK_OK(npi_decide_load());
}

static void test_big(void)
{
    /* One broadcast of more than 2^31 bytes (and elements), single copy and
     * cells, with a check of a sparse sample plus both ends. */
    size_t count = ((size_t)1 << 31) + 77;
    unsigned char *b = malloc(count);
    if (!b) {
        fprintf(stderr, "rank %d: cannot allocate %zu bytes\n", me, count);
        exit(1);
    }
    const char *modes[] = {"cma", "cells"};
    for (int m = 0; m < 2; m++) {
        setenv("NUMPUSH_BCAST_ALG", modes[m], 1);
        CHECK_OK(npi_decide_load());
        if (me == 0)
            for (size_t i = 0; i < count; i++)
                b[i] = (unsigned char)(i * 2654435761u >> 13);
        else
            memset(b, 0, count);
        double t = np_wtime();
        CHECK_OK(np_bcast(b, count, NP_UINT8, 0, world));
        t = np_wtime() - t;
        for (size_t i = 0; i < count; i += (i < 1000 || count - i < 1000) ? 1 : 4093)
            if (b[i] != (unsigned char)(i * 2654435761u >> 13)) {
                fail("big bcast (%s): wrong byte at %zu", modes[m], i);
                break;
            }
        if (me == 0)
            printf("big bcast %zu bytes (%s): %.2f s\n", count, modes[m], t);
    }
    unsetenv("NUMPUSH_BCAST_ALG");
    CHECK_OK(npi_decide_load());
    free(b);
}

int main(int argc, char **argv)
{
    bool quick = false, large = false, big = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--large") == 0)
            large = true;
        else if (strcmp(argv[i], "--big") == 0)
            big = true;
        else if (strcmp(argv[i], "--tree") == 0)
            algs[3] = "tree"; /* for bcast; the others fall back to the table */
    }
    CHECK_OK(np_init(&argc, &argv));
    world = np_comm_world();
    me = np_comm_rank(world);
    nranks = np_comm_size(world);
    if (big) {
        test_big();
    } else {
        test_all_on(world, quick, 1);
        test_split();
        test_p2p();
        test_cma_pushes();
        if (large) {
            size_t count = (64u << 20) / 8;
            test_reductions(NP_FLOAT64, NP_SUM, count, 9, world);
            test_moves(NP_FLOAT64, count / (size_t)nranks, 9, world);
        }
    }
    int bad = failures, total = 0;
    CHECK_OK(np_allreduce(&bad, &total, 1, NP_INT32, NP_SUM, world));
    CHECK_OK(np_finalize());
    if (me == 0)
        printf("test_coll: %d ranks: %s (%d failures)\n", nranks, total ? "FAIL" : "ok", total);
    return total ? 1 : 0;
}
