/*
 * Check suite for src/core/dtype.c, src/core/op.c and src/core/reduce_kernels.c:
 * every valid (dtype, op) pair against a plain scalar reference, every invalid
 * pair refused without touching the buffers, user ops, odd alignments and
 * aliasing.
 *
 * The reference below is written independently of the kernels: one switch per
 * element on widened values, and its own copy of the valid-pair table from
 * numpush.h, so a kernel and the reference cannot share a mistake.
 */
#include "npi.h"
#include "reduce_kernels.h"

#include <check.h>
#include <complex.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const size_t test_lengths[] = {0, 1, 7, 64, 1000003};
#define TEST_NLENGTHS (sizeof test_lengths / sizeof test_lengths[0])

/* ------------------------------------------------------------ random data */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

/* splitmix64: fast, and good enough to exercise every bit of an integer. */
static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* A float operand: mostly a value in [-1000, 1000) with a fraction, with rare
 * NaN, infinities and signed zeros so that their handling is compared too. */
static double rng_real(void)
{
    uint64_t r = rng_next();
    switch (r & 63) {
    case 0:
        return NAN;
    case 1:
        return INFINITY;
    case 2:
        return -INFINITY;
    case 3:
        return -0.0;
    case 4:
        return 0.0;
    default:
        return (double)(int64_t)(r >> 20) / (double)(1ull << 33);
    }
}

static void fill_random(void *buf, size_t n, np_dtype dt)
{
    size_t i;
    switch (dt) {
    case NP_FLOAT32:
        for (i = 0; i < n; i++)
            ((float *)buf)[i] = (float)rng_real();
        break;
    case NP_FLOAT64:
        for (i = 0; i < n; i++)
            ((double *)buf)[i] = rng_real();
        break;
    case NP_COMPLEX64:
        for (i = 0; i < 2 * n; i++)
            ((float *)buf)[i] = (float)rng_real();
        break;
    case NP_COMPLEX128:
        for (i = 0; i < 2 * n; i++)
            ((double *)buf)[i] = rng_real();
        break;
    case NP_BOOL:
        /* Mostly canonical 0/1, sometimes another non-zero byte, which must
         * still count as true and never leak into a result. */
        for (i = 0; i < n; i++) {
            uint64_t r = rng_next();
            ((uint8_t *)buf)[i] = (r & 7) == 7 ? (uint8_t)(r >> 8) : (uint8_t)((r >> 3) & 1);
        }
        break;
    default: {
        /* Integers and bytes: random bits, so signed values are negative half
         * of the time and sums and products overflow constantly. */
        size_t bytes = n * np_dtype_size(dt), j = 0;
        for (; j + 8 <= bytes; j += 8) {
            uint64_t r = rng_next();
            memcpy((char *)buf + j, &r, 8);
        }
        uint64_t r = rng_next();
        memcpy((char *)buf + j, &r, bytes - j);
    }
    }
}

/* ------------------------------------------------------------ reference */

static bool ref_is_int(np_dtype dt)
{
    return dt <= NP_UINT64;
}

static bool ref_is_signed(np_dtype dt)
{
    return dt <= NP_INT64;
}

/* The table of valid pairs, copied from the comment in numpush.h. */
static bool ref_valid(np_dtype dt, np_op op)
{
    bool i = ref_is_int(dt), f = dt == NP_FLOAT32 || dt == NP_FLOAT64;
    bool c = dt == NP_COMPLEX64 || dt == NP_COMPLEX128, b = dt == NP_BOOL;
    switch (op) {
    case NP_SUM:
    case NP_PROD:
        return i || f || c;
    case NP_MIN:
    case NP_MAX:
        return i || f;
    case NP_LAND:
    case NP_LOR:
    case NP_LXOR:
        return i || b;
    case NP_BAND:
    case NP_BOR:
    case NP_BXOR:
        return i || b || dt == NP_BYTE;
    default:
        return false;
    }
}

static uint64_t ref_load_u(const void *p, np_dtype dt)
{
    switch (np_dtype_size(dt)) {
    case 1:
        return *(const uint8_t *)p;
    case 2:
        return *(const uint16_t *)p;
    case 4:
        return *(const uint32_t *)p;
    default:
        return *(const uint64_t *)p;
    }
}

static int64_t ref_load_s(const void *p, np_dtype dt)
{
    switch (np_dtype_size(dt)) {
    case 1:
        return *(const int8_t *)p;
    case 2:
        return *(const int16_t *)p;
    case 4:
        return *(const int32_t *)p;
    default:
        return *(const int64_t *)p;
    }
}

static void ref_store_u(void *p, np_dtype dt, uint64_t v)
{
    switch (np_dtype_size(dt)) {
    case 1:
        *(uint8_t *)p = (uint8_t)v;
        break;
    case 2:
        *(uint16_t *)p = (uint16_t)v;
        break;
    case 4:
        *(uint32_t *)p = (uint32_t)v;
        break;
    default:
        *(uint64_t *)p = v;
    }
}

/* NaN-propagating min and max, as documented in reduce_kernels.c: a NaN in x
 * wins, then a NaN in y, and on a tie y is kept. */
#define REF_MINMAX(x, y, less) (isnan(x) ? (x) : isnan(y) ? (y) : (less) ? (x) : (y))

static uint64_t ref_int(uint64_t xu, uint64_t yu, int64_t xs, int64_t ys, bool sgn, np_op op)
{
    switch (op) {
    case NP_SUM:
        return xu + yu;
    case NP_PROD:
        return xu * yu;
    case NP_MIN:
        return sgn ? (uint64_t)(xs < ys ? xs : ys) : (xu < yu ? xu : yu);
    case NP_MAX:
        return sgn ? (uint64_t)(xs > ys ? xs : ys) : (xu > yu ? xu : yu);
    case NP_LAND:
        return xu && yu;
    case NP_LOR:
        return xu || yu;
    case NP_LXOR:
        return !xu != !yu;
    case NP_BAND:
        return xu & yu;
    case NP_BOR:
        return xu | yu;
    default:
        return xu ^ yu;
    }
}

/* *r = *x (op) *y for one element. */
static void ref_elem(const void *x, const void *y, void *r, np_dtype dt, np_op op)
{
    if (ref_is_int(dt) || dt == NP_BYTE) {
        uint64_t v = ref_int(ref_load_u(x, dt), ref_load_u(y, dt), ref_load_s(x, dt),
                             ref_load_s(y, dt), ref_is_signed(dt), op);
        ref_store_u(r, dt, v);
    } else if (dt == NP_BOOL) {
        bool a = *(const uint8_t *)x != 0, b = *(const uint8_t *)y != 0;
        bool v = op == NP_LAND || op == NP_BAND ? a && b
                 : op == NP_LOR || op == NP_BOR ? a || b
                                                : a != b;
        *(uint8_t *)r = v;
    } else if (dt == NP_FLOAT32) {
        float a = *(const float *)x, b = *(const float *)y;
        *(float *)r = op == NP_SUM    ? a + b
                      : op == NP_PROD ? a * b
                      : op == NP_MIN  ? REF_MINMAX(a, b, a < b)
                                      : REF_MINMAX(a, b, a > b);
    } else if (dt == NP_FLOAT64) {
        double a = *(const double *)x, b = *(const double *)y;
        *(double *)r = op == NP_SUM    ? a + b
                       : op == NP_PROD ? a * b
                       : op == NP_MIN  ? REF_MINMAX(a, b, a < b)
                                       : REF_MINMAX(a, b, a > b);
    } else if (dt == NP_COMPLEX64) {
        float complex a = *(const float complex *)x, b = *(const float complex *)y;
        *(float complex *)r = op == NP_SUM ? a + b : a * b;
    } else {
        double complex a = *(const double complex *)x, b = *(const double complex *)y;
        *(double complex *)r = op == NP_SUM ? a + b : a * b;
    }
}

/* An element copied out of a buffer that may be misaligned for its type. */
typedef union ref_slot {
    uint64_t u[2];
    double complex c;
} ref_slot;

/* out[i] = x[i] (op) y[i]; out may be y, and any of them may be misaligned. */
static void ref_reduce3(const void *x, const void *y, void *out, size_t n, np_dtype dt, np_op op)
{
    size_t s = np_dtype_size(dt);
    for (size_t i = 0; i < n; i++) {
        ref_slot a, b, r;
        memcpy(&a, (const char *)x + i * s, s);
        memcpy(&b, (const char *)y + i * s, s);
        ref_elem(&a, &b, &r, dt, op);
        memcpy((char *)out + i * s, &r, s);
    }
}

/* Two reals agree if their bits do, or if both are NaN (which NaN an operation
 * returns is up to the hardware).  Complex products may differ in the last
 * bits when the compiler of this test contracts a*b+c into an FMA. */
static bool same_real(double a, double b, double rel)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (a == b)
        return signbit(a) == signbit(b);
    return rel > 0 && fabs(a - b) <= rel * (fabs(a) + fabs(b));
}

/* Part k of element i of a float or complex buffer, read with memcpy because
 * the buffer may be misaligned. */
static double real_at(const void *buf, size_t i, size_t k, np_dtype dt)
{
    bool single = dt == NP_FLOAT32 || dt == NP_COMPLEX64;
    size_t parts = dt == NP_COMPLEX64 || dt == NP_COMPLEX128 ? 2 : 1;
    const char *p = (const char *)buf + (i * parts + k) * (single ? 4 : 8);
    if (single) {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    double d;
    memcpy(&d, p, 8);
    return d;
}

/* The index of the first element where got and want differ, or n. */
static size_t first_mismatch(const void *got, const void *want, size_t n, np_dtype dt, np_op op)
{
    size_t i;
    if (dt >= NP_FLOAT32 && dt <= NP_COMPLEX128) {
        size_t parts = dt >= NP_COMPLEX64 ? 2 : 1;
        double rel = op != NP_PROD || parts == 1 ? 0 : dt == NP_COMPLEX64 ? 1e-6 : 1e-14;
        for (i = 0; i < n; i++)
            for (size_t k = 0; k < parts; k++)
                if (!same_real(real_at(got, i, k, dt), real_at(want, i, k, dt), rel))
                    return i;
        return n;
    }
    size_t s = np_dtype_size(dt);
    for (i = 0; i < n; i++)
        if (memcmp((const char *)got + i * s, (const char *)want + i * s, s) != 0)
            return i;
    return n;
}

#define ASSERT_MATCHES(got, want, n, dt, op)                                                       \
    do {                                                                                           \
        size_t bad_ = first_mismatch(got, want, n, dt, op);                                        \
        ck_assert_msg(bad_ == (n), "%s %s n=%zu: element %zu differs from the reference",          \
                      np_dtype_name(dt), np_op_name(op), (size_t)(n), bad_);                       \
    } while (0)

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* ------------------------------------------------------------ tests */

START_TEST(dtype_sizes_and_names)
{
    static const struct {
        np_dtype dt;
        size_t size;
        const char *name;
    } want[] = {
        {NP_INT8, 1, "int8"},           {NP_INT16, 2, "int16"},
        {NP_INT32, 4, "int32"},         {NP_INT64, 8, "int64"},
        {NP_UINT8, 1, "uint8"},         {NP_UINT16, 2, "uint16"},
        {NP_UINT32, 4, "uint32"},       {NP_UINT64, 8, "uint64"},
        {NP_FLOAT32, 4, "float32"},     {NP_FLOAT64, 8, "float64"},
        {NP_COMPLEX64, 8, "complex64"}, {NP_COMPLEX128, 16, "complex128"},
        {NP_BOOL, 1, "bool"},           {NP_BYTE, 1, "byte"},
    };
    ck_assert_uint_eq(sizeof want / sizeof want[0], NP_DTYPE_COUNT_);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ck_assert(npi_dtype_valid(want[i].dt));
        ck_assert_uint_eq(np_dtype_size(want[i].dt), want[i].size);
        ck_assert_str_eq(np_dtype_name(want[i].dt), want[i].name);
    }
    np_dtype bad[] = {NP_DTYPE_COUNT_, (np_dtype)99, (np_dtype)-1, (np_dtype)INT32_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert(!npi_dtype_valid(bad[i]));
        ck_assert_uint_eq(np_dtype_size(bad[i]), 0);
        ck_assert_ptr_null(np_dtype_name(bad[i]));
    }
}
END_TEST

START_TEST(op_names)
{
    static const char *const want[NP_OP_BUILTIN_COUNT_] = {"sum", "prod", "min",  "max", "land",
                                                           "lor", "lxor", "band", "bor", "bxor"};
    for (np_op op = 0; op < NP_OP_BUILTIN_COUNT_; op++) {
        ck_assert_str_eq(np_op_name(op), want[op]);
        ck_assert(npi_op_commutative(op));
    }
    ck_assert_ptr_null(np_op_name(NP_OP_NULL));
    ck_assert_ptr_null(np_op_name(NP_OP_BUILTIN_COUNT_));
    ck_assert_ptr_null(np_op_name(INT32_MIN));
    ck_assert(!npi_op_commutative(NP_OP_NULL));
}
END_TEST

/* The pair table in reduce_kernels.c is the header's table, no more no less. */
START_TEST(valid_pairs_follow_the_header)
{
    int nvalid = 0;
    for (np_dtype dt = 0; dt < NP_DTYPE_COUNT_; dt++)
        for (np_op op = 0; op < NP_OP_BUILTIN_COUNT_; op++) {
            ck_assert_msg(npi_reduce_pair_valid(dt, op) == ref_valid(dt, op), "%s %s",
                          np_dtype_name(dt), np_op_name(op));
            nvalid += ref_valid(dt, op);
        }
    /* 12 dtypes take SUM and PROD, 10 MIN and MAX, 9 the logical and 10 the
     * bitwise ops. */
    ck_assert_int_eq(nvalid, 2 * 12 + 2 * 10 + 3 * 9 + 3 * 10);
    ck_assert(!npi_reduce_pair_valid(NP_DTYPE_COUNT_, NP_SUM));
    ck_assert(!npi_reduce_pair_valid(NP_INT32, NP_OP_BUILTIN_COUNT_));
    ck_assert(!npi_reduce_pair_valid(NP_INT32, NP_OP_NULL));
}
END_TEST

/* Every valid pair against the reference, for one length per loop iteration. */
START_TEST(pairs_match_reference)
{
    size_t n = test_lengths[_i];
    size_t bytes = n * 16;
    char *in = xmalloc(bytes), *in_copy = xmalloc(bytes), *orig = xmalloc(bytes);
    char *got = xmalloc(bytes), *want = xmalloc(bytes);
    rng_state = 12345 + n;
    for (np_dtype dt = 0; dt < NP_DTYPE_COUNT_; dt++) {
        size_t db = n * np_dtype_size(dt);
        fill_random(in, n, dt);
        fill_random(orig, n, dt);
        memcpy(in_copy, in, db);
        for (np_op op = 0; op < NP_OP_BUILTIN_COUNT_; op++) {
            if (!ref_valid(dt, op))
                continue;
            memcpy(got, orig, db);
            ref_reduce3(in, orig, want, n, dt, op);
            ck_assert_int_eq(np_reduce_local(in, got, n, dt, op), NP_OK);
            ASSERT_MATCHES(got, want, n, dt, op);
            /* The same inputs give the same bits every time. */
            if (n > 0 && n < 100) {
                char again[100 * 16];
                memcpy(again, orig, db);
                npi_reduce(in, again, n, dt, op);
                ck_assert_mem_eq(again, got, db);
            }
        }
        ck_assert_mem_eq(in, in_copy, db);
    }
    free(in);
    free(in_copy);
    free(orig);
    free(got);
    free(want);
}
END_TEST

/* The three-operand form into a separate buffer, into a and into b. */
START_TEST(reduce3_forms_and_aliasing)
{
    enum { N = 301 };
    static _Alignas(16) char a[N * 16], b[N * 16], out[N * 16], want[N * 16], alias[N * 16];
    rng_state = 777;
    for (np_dtype dt = 0; dt < NP_DTYPE_COUNT_; dt++) {
        size_t db = N * np_dtype_size(dt);
        fill_random(a, N, dt);
        fill_random(b, N, dt);
        for (np_op op = 0; op < NP_OP_BUILTIN_COUNT_; op++) {
            if (!ref_valid(dt, op))
                continue;
            ref_reduce3(a, b, want, N, dt, op);
            npi_reduce3(a, b, out, N, dt, op);
            ASSERT_MATCHES(out, want, N, dt, op);
            memcpy(alias, a, db);
            npi_reduce3(alias, b, alias, N, dt, op);
            ASSERT_MATCHES(alias, want, N, dt, op);
            memcpy(alias, b, db);
            npi_reduce3(a, alias, alias, N, dt, op);
            ASSERT_MATCHES(alias, want, N, dt, op);

            /* x (op) x through the public call, with in == inout. */
            ref_reduce3(a, a, want, N, dt, op);
            memcpy(alias, a, db);
            ck_assert_int_eq(np_reduce_local(alias, alias, N, dt, op), NP_OK);
            ASSERT_MATCHES(alias, want, N, dt, op);
        }
    }
}
END_TEST

/* Buffers that start at every byte offset, so float64 and complex elements
 * straddle their natural alignment, with guard bytes checked for overruns. */
START_TEST(unaligned_buffers)
{
    enum { N = 203, PAD = 32 };
    static char inbuf[N * 16 + 2 * PAD], iobuf[N * 16 + 2 * PAD];
    static _Alignas(16) char orig[N * 16], want[N * 16];
    rng_state = 4242;
    for (np_dtype dt = 0; dt < NP_DTYPE_COUNT_; dt++) {
        size_t db = N * np_dtype_size(dt);
        for (int off = 0; off < 8; off++) {
            /* in and inout get different offsets, so one may be aligned while
             * the other is not. */
            char *in = inbuf + PAD + off, *io = iobuf + PAD + (off * 3 + 1) % 8;
            memset(iobuf, 0xa5, sizeof iobuf);
            fill_random(want, N, dt);
            memcpy(in, want, db);
            fill_random(orig, N, dt);
            for (np_op op = 0; op < NP_OP_BUILTIN_COUNT_; op++) {
                if (!ref_valid(dt, op))
                    continue;
                memcpy(io, orig, db);
                ref_reduce3(in, orig, want, N, dt, op);
                ck_assert_int_eq(np_reduce_local(in, io, N, dt, op), NP_OK);
                ASSERT_MATCHES(io, want, N, dt, op);
                for (char *g = iobuf; g < io; g++)
                    ck_assert_int_eq((unsigned char)*g, 0xa5);
                for (char *g = io + db; g < iobuf + sizeof iobuf; g++)
                    ck_assert_int_eq((unsigned char)*g, 0xa5);
            }
        }
    }
}
END_TEST

START_TEST(invalid_pairs_leave_buffers_untouched)
{
    enum { N = 64 };
    char in[N * 16], io[N * 16], in0[N * 16], io0[N * 16];
    rng_state = 99;
    for (np_dtype dt = 0; dt < NP_DTYPE_COUNT_; dt++) {
        for (np_op op = 0; op < NP_OP_BUILTIN_COUNT_; op++) {
            if (ref_valid(dt, op))
                continue;
            fill_random(in0, N, NP_BYTE);
            fill_random(io0, N, NP_BYTE);
            memcpy(in, in0, sizeof in);
            memcpy(io, io0, sizeof io);
            npi_error_clear();
            ck_assert_int_eq(np_reduce_local(in, io, N, dt, op), NP_ERR_OP);
            ck_assert_mem_eq(in, in0, sizeof in);
            ck_assert_mem_eq(io, io0, sizeof io);
            ck_assert_ptr_nonnull(strstr(np_last_error(), "np_reduce_local"));
            ck_assert_ptr_nonnull(strstr(np_last_error(), np_dtype_name(dt)));
            ck_assert_ptr_nonnull(strstr(np_last_error(), np_op_name(op)));
            /* A zero count is still a wrong call. */
            ck_assert_int_eq(np_reduce_local(in, io, 0, dt, op), NP_ERR_OP);
            ck_assert_int_eq(npi_op_check("np_allreduce", dt, op), NP_ERR_OP);
            ck_assert_ptr_nonnull(strstr(np_last_error(), "np_allreduce"));
        }
    }
}
END_TEST

START_TEST(bad_arguments)
{
    double in[4] = {1, 2, 3, 4}, io[4] = {5, 6, 7, 8};
    const double io0[4] = {5, 6, 7, 8};

    ck_assert_int_eq(np_reduce_local(NULL, io, 4, NP_FLOAT64, NP_SUM), NP_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(np_last_error(), "np_reduce_local: in is NULL"));
    ck_assert_int_eq(np_reduce_local(in, NULL, 4, NP_FLOAT64, NP_SUM), NP_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(np_last_error(), "np_reduce_local: inout is NULL"));
    ck_assert_int_eq(np_reduce_local(NULL, NULL, 0, NP_FLOAT64, NP_SUM), NP_OK);

    np_dtype bad_dt[] = {NP_DTYPE_COUNT_, (np_dtype)99, (np_dtype)-1};
    for (size_t i = 0; i < sizeof bad_dt / sizeof bad_dt[0]; i++) {
        ck_assert_int_eq(np_reduce_local(in, io, 4, bad_dt[i], NP_SUM), NP_ERR_DTYPE);
        ck_assert_ptr_nonnull(strstr(np_last_error(), "np_reduce_local: dtype"));
        /* A bad dtype is reported before a NULL buffer. */
        ck_assert_int_eq(np_reduce_local(NULL, io, 4, bad_dt[i], NP_SUM), NP_ERR_DTYPE);
    }

    np_op bad_op[] = {NP_OP_NULL, NP_OP_BUILTIN_COUNT_, NP_OP_BUILTIN_COUNT_ + 63, 12345, INT32_MIN,
                      INT32_MAX};
    for (size_t i = 0; i < sizeof bad_op / sizeof bad_op[0]; i++) {
        ck_assert_int_eq(np_reduce_local(in, io, 4, NP_FLOAT64, bad_op[i]), NP_ERR_OP);
        ck_assert_ptr_nonnull(strstr(np_last_error(), "np_reduce_local: op"));
        ck_assert_ptr_nonnull(strstr(np_last_error(), "live user op"));
    }

    ck_assert_int_eq(np_reduce_local(NP_IN_PLACE, io, 4, NP_FLOAT64, NP_SUM), NP_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(np_last_error(), "NP_IN_PLACE"));
    ck_assert_int_eq(np_reduce_local(in, io, SIZE_MAX / 4, NP_FLOAT64, NP_SUM), NP_ERR_COUNT);
    ck_assert_ptr_nonnull(strstr(np_last_error(), "np_reduce_local: count"));
    ck_assert_mem_eq(io, io0, sizeof io);
}
END_TEST

START_TEST(integer_wrap_and_logical)
{
    uint8_t u8a[3] = {200, 255, 16}, u8b[3] = {100, 2, 16};
    ck_assert_int_eq(np_reduce_local(u8a, u8b, 3, NP_UINT8, NP_SUM), NP_OK);
    ck_assert_uint_eq(u8b[0], 44);
    ck_assert_uint_eq(u8b[1], 1);
    ck_assert_uint_eq(u8b[2], 32);

    uint16_t u16a[1] = {65535}, u16b[1] = {65535};
    ck_assert_int_eq(np_reduce_local(u16a, u16b, 1, NP_UINT16, NP_PROD), NP_OK);
    ck_assert_uint_eq(u16b[0], 1); /* (2^16 - 1)^2 mod 2^16 */

    int32_t i32a[2] = {INT32_MAX, INT32_MIN}, i32b[2] = {1, -1};
    ck_assert_int_eq(np_reduce_local(i32a, i32b, 2, NP_INT32, NP_SUM), NP_OK);
    ck_assert_int_eq(i32b[0], INT32_MIN);
    ck_assert_int_eq(i32b[1], INT32_MAX);

    uint64_t u64a[1] = {UINT64_MAX}, u64b[1] = {3};
    ck_assert_int_eq(np_reduce_local(u64a, u64b, 1, NP_UINT64, NP_PROD), NP_OK);
    ck_assert_uint_eq(u64b[0], UINT64_MAX - 2);

    int8_t i8a[2] = {-128, 5}, i8b[2] = {127, -3};
    ck_assert_int_eq(np_reduce_local(i8a, i8b, 2, NP_INT8, NP_MAX), NP_OK);
    ck_assert_int_eq(i8b[0], 127);
    ck_assert_int_eq(i8b[1], 5);
    uint8_t u8c[1] = {255}, u8d[1] = {1};
    ck_assert_int_eq(np_reduce_local(u8c, u8d, 1, NP_UINT8, NP_MIN), NP_OK);
    ck_assert_uint_eq(u8d[0], 1);

    int32_t la[4] = {5, 0, -3, 0}, lb[4] = {-3, 7, 0, 0};
    int32_t lx[4];
    memcpy(lx, lb, sizeof lx);
    ck_assert_int_eq(np_reduce_local(la, lx, 4, NP_INT32, NP_LAND), NP_OK);
    ck_assert_int_eq(lx[0], 1);
    ck_assert_int_eq(lx[1], 0);
    ck_assert_int_eq(lx[2], 0);
    memcpy(lx, lb, sizeof lx);
    ck_assert_int_eq(np_reduce_local(la, lx, 4, NP_INT32, NP_LXOR), NP_OK);
    ck_assert_int_eq(lx[0], 0);
    ck_assert_int_eq(lx[1], 1);
    ck_assert_int_eq(lx[2], 1);
    ck_assert_int_eq(lx[3], 0);

    /* Bool results are 0 or 1 even from non-canonical true bytes. */
    uint8_t ba[2] = {2, 0}, bb[2] = {4, 9};
    ck_assert_int_eq(np_reduce_local(ba, bb, 2, NP_BOOL, NP_BAND), NP_OK);
    ck_assert_uint_eq(bb[0], 1);
    ck_assert_uint_eq(bb[1], 0);
}
END_TEST

/* MIN and MAX on floats propagate NaN from either side, like numpy. */
START_TEST(float_minmax_nan)
{
    double in[5] = {NAN, 1.0, NAN, -INFINITY, 2.0};
    double mx[5] = {1.0, NAN, NAN, INFINITY, -1.0};
    double mn[5];
    memcpy(mn, mx, sizeof mn);
    ck_assert_int_eq(np_reduce_local(in, mx, 5, NP_FLOAT64, NP_MAX), NP_OK);
    ck_assert(isnan(mx[0]) && isnan(mx[1]) && isnan(mx[2]));
    ck_assert(mx[3] == INFINITY && mx[4] == 2.0);
    ck_assert_int_eq(np_reduce_local(in, mn, 5, NP_FLOAT64, NP_MIN), NP_OK);
    ck_assert(isnan(mn[0]) && isnan(mn[1]) && isnan(mn[2]));
    ck_assert(mn[3] == -INFINITY && mn[4] == -1.0);

    /* Same in float32, over a length that reaches the vector loop body. */
    float fin[33], fio[33];
    for (int i = 0; i < 33; i++) {
        fin[i] = (float)i;
        fio[i] = 16.0f;
    }
    fin[20] = NAN;
    fio[3] = NAN;
    ck_assert_int_eq(np_reduce_local(fin, fio, 33, NP_FLOAT32, NP_MAX), NP_OK);
    for (int i = 0; i < 33; i++) {
        if (i == 3 || i == 20)
            ck_assert(isnan(fio[i]));
        else
            ck_assert(fio[i] == (i > 16 ? (float)i : 16.0f));
    }
}
END_TEST

START_TEST(complex_arithmetic)
{
    double complex a[2] = {1 + 2 * I, 0.5 - 1 * I}, b[2] = {3 + 4 * I, 2 + 2 * I};
    double complex p[2], s[2];
    memcpy(p, b, sizeof p);
    memcpy(s, b, sizeof s);
    ck_assert_int_eq(np_reduce_local(a, p, 2, NP_COMPLEX128, NP_PROD), NP_OK);
    ck_assert(creal(p[0]) == -5 && cimag(p[0]) == 10);
    ck_assert(creal(p[1]) == 3 && cimag(p[1]) == -1);
    ck_assert_int_eq(np_reduce_local(a, s, 2, NP_COMPLEX128, NP_SUM), NP_OK);
    ck_assert(creal(s[0]) == 4 && cimag(s[0]) == 6);

    float complex fa[1] = {1 + 1 * I}, fb[1] = {1 - 1 * I};
    ck_assert_int_eq(np_reduce_local(fa, fb, 1, NP_COMPLEX64, NP_PROD), NP_OK);
    ck_assert(crealf(fb[0]) == 2 && cimagf(fb[0]) == 0);

    /* Annex G: an infinite operand times a finite non-zero one is infinite,
     * where the textbook formula would give NaN + NaN i. */
    double complex ia[1] = {INFINITY + 0 * I}, ib[1] = {1 + 1 * I};
    ck_assert_int_eq(np_reduce_local(ia, ib, 1, NP_COMPLEX128, NP_PROD), NP_OK);
    ck_assert(isinf(creal(ib[0])) || isinf(cimag(ib[0])));
}
END_TEST

/* ------------------------------------------------------------ user ops */

static np_dtype user_seen_dt;

/* inout = in - inout: not commutative, so operand order shows. */
static void user_sub(const void *in, void *inout, size_t count, np_dtype dt)
{
    user_seen_dt = dt;
    if (dt == NP_FLOAT64)
        for (size_t i = 0; i < count; i++)
            ((double *)inout)[i] = ((const double *)in)[i] - ((double *)inout)[i];
    else
        for (size_t i = 0; i < count * np_dtype_size(dt); i++)
            ((uint8_t *)inout)[i] = (uint8_t)(((const uint8_t *)in)[i] - ((uint8_t *)inout)[i]);
}

START_TEST(user_op_lifecycle)
{
    np_op op = NP_OP_NULL;
    ck_assert_int_eq(np_op_create(user_sub, 0, &op), NP_OK);
    ck_assert_int_ge(op, NP_OP_BUILTIN_COUNT_);
    ck_assert_str_eq(np_op_name(op), "user");
    ck_assert(!npi_op_commutative(op));

    double in[3] = {10, 20, 30}, io[3] = {1, 2, 3};
    ck_assert_int_eq(np_reduce_local(in, io, 3, NP_FLOAT64, op), NP_OK);
    ck_assert(io[0] == 9 && io[1] == 18 && io[2] == 27);
    ck_assert_int_eq(user_seen_dt, NP_FLOAT64);

    /* A user op takes any dtype, byte included. */
    uint8_t bin[2] = {5, 6}, bio[2] = {1, 1};
    ck_assert_int_eq(np_reduce_local(bin, bio, 2, NP_BYTE, op), NP_OK);
    ck_assert(bio[0] == 4 && bio[1] == 5);
    ck_assert_int_eq(user_seen_dt, NP_BYTE);
    ck_assert_int_eq(npi_op_check("np_allreduce", NP_COMPLEX128, op), NP_OK);
    ck_assert_int_eq(np_reduce_local(bin, bio, 2, (np_dtype)77, op), NP_ERR_DTYPE);

    /* npi_reduce3 keeps out = a (op) b whichever buffer out is. */
    double a[3] = {10, 20, 30}, b[3] = {1, 2, 3}, out[3];
    npi_reduce3(a, b, out, 3, NP_FLOAT64, op);
    ck_assert(out[0] == 9 && out[2] == 27);
    memcpy(out, a, sizeof out);
    npi_reduce3(out, b, out, 3, NP_FLOAT64, op);
    ck_assert(out[0] == 9 && out[2] == 27);
    memcpy(out, b, sizeof out);
    npi_reduce3(a, out, out, 3, NP_FLOAT64, op);
    ck_assert(out[0] == 9 && out[2] == 27);
    /* Long enough for several chunks of the out == a path. */
    enum { LONG = 3000 };
    static double la[LONG], lb[LONG];
    for (int i = 0; i < LONG; i++) {
        la[i] = 3.0 * i;
        lb[i] = i;
    }
    npi_reduce3(la, lb, la, LONG, NP_FLOAT64, op);
    for (int i = 0; i < LONG; i++)
        ck_assert(la[i] == 2.0 * i);

    np_op stale = op;
    ck_assert_int_eq(np_op_free(&op), NP_OK);
    ck_assert_int_eq(op, NP_OP_NULL);
    ck_assert_ptr_null(np_op_name(stale));
    ck_assert_int_eq(np_reduce_local(in, io, 3, NP_FLOAT64, stale), NP_ERR_OP);
    ck_assert(io[0] == 9);
    ck_assert_int_eq(np_op_free(&stale), NP_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(np_last_error(), "np_op_free"));
    ck_assert_ptr_nonnull(strstr(np_last_error(), "not a live user op"));

    /* The slot is reused, but the old handle still does not work. */
    np_op again;
    ck_assert_int_eq(np_op_create(user_sub, 1, &again), NP_OK);
    ck_assert_int_ne(again, stale);
    ck_assert(npi_op_commutative(again));
    ck_assert_int_eq(np_reduce_local(in, io, 3, NP_FLOAT64, stale), NP_ERR_OP);
    ck_assert_int_eq(np_op_free(&again), NP_OK);

    np_op builtin = NP_SUM;
    ck_assert_int_eq(np_op_free(&builtin), NP_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(np_last_error(), "built in"));
    ck_assert_int_eq(builtin, NP_SUM);
    np_op none = NP_OP_NULL;
    ck_assert_int_eq(np_op_free(&none), NP_ERR_ARG);
    ck_assert_int_eq(np_op_free(NULL), NP_ERR_NULL);
    ck_assert_int_eq(np_op_create(NULL, 1, &op), NP_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(np_last_error(), "np_op_create: fn"));
    ck_assert_int_eq(np_op_create(user_sub, 1, NULL), NP_ERR_NULL);
}
END_TEST

START_TEST(user_op_table_full)
{
    np_op ops[NPI_OP_USER_SLOTS];
    for (int i = 0; i < NPI_OP_USER_SLOTS; i++)
        ck_assert_int_eq(np_op_create(user_sub, 1, &ops[i]), NP_OK);
    np_op extra = 42;
    ck_assert_int_eq(np_op_create(user_sub, 1, &extra), NP_ERR_NOMEM);
    ck_assert_int_eq(extra, 42);
    ck_assert_ptr_nonnull(strstr(np_last_error(), "np_op_create"));
    ck_assert_int_eq(np_op_free(&ops[17]), NP_OK);
    ck_assert_int_eq(np_op_create(user_sub, 1, &ops[17]), NP_OK);
    for (int i = 0; i < NPI_OP_USER_SLOTS; i++) {
        for (int j = 0; j < i; j++)
            ck_assert_int_ne(ops[i], ops[j]);
        ck_assert_int_eq(np_op_free(&ops[i]), NP_OK);
    }
}
END_TEST

static void *user_churn(void *arg)
{
    double in[1] = {1}, io[1] = {0};
    for (int i = 0; i < 2000; i++) {
        np_op op;
        if (np_op_create(user_sub, 0, &op) != NP_OK)
            return "create failed";
        if (np_reduce_local(in, io, 1, NP_FLOAT64, op) != NP_OK)
            return "use failed";
        if (np_op_free(&op) != NP_OK)
            return "free failed";
    }
    return NULL;
}

/* Threads creating, using and freeing ops at once never collide. */
START_TEST(user_ops_across_threads)
{
    enum { NT = 4 };
    pthread_t t[NT];
    for (int i = 0; i < NT; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, user_churn, NULL), 0);
    for (int i = 0; i < NT; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        ck_assert_msg(ret == NULL, "%s", (const char *)ret);
    }
    /* Every slot came back. */
    np_op ops[NPI_OP_USER_SLOTS];
    for (int i = 0; i < NPI_OP_USER_SLOTS; i++)
        ck_assert_int_eq(np_op_create(user_sub, 1, &ops[i]), NP_OK);
    for (int i = 0; i < NPI_OP_USER_SLOTS; i++)
        ck_assert_int_eq(np_op_free(&ops[i]), NP_OK);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, dtype_sizes_and_names);
    tcase_add_test(tc, op_names);
    tcase_add_test(tc, valid_pairs_follow_the_header);
    tcase_add_loop_test(tc, pairs_match_reference, 0, (int)TEST_NLENGTHS);
    tcase_add_test(tc, reduce3_forms_and_aliasing);
    tcase_add_test(tc, unaligned_buffers);
    tcase_add_test(tc, invalid_pairs_leave_buffers_untouched);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, integer_wrap_and_logical);
    tcase_add_test(tc, float_minmax_nan);
    tcase_add_test(tc, complex_arithmetic);
    tcase_add_test(tc, user_op_lifecycle);
    tcase_add_test(tc, user_op_table_full);
    tcase_add_test(tc, user_ops_across_threads);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
