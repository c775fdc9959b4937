/*
 * Reduction kernels: one small loop per valid (dtype, op) pair, plus the
 * dispatch behind npi_reduce and npi_reduce3.
 *
 * Every kernel is an elementwise loop over contiguous arrays with no
 * dependence between elements, so the compiler vectorises it.  This file is
 * built on its own (libnpi_kernels.la in ops.mk) with -ftree-vectorize
 * -fvect-cost-model=dynamic: GCC's -O2 default "very-cheap" cost model
 * refuses loops whose trip count is not a known multiple of the vector width,
 * which is every loop here.  To check, rebuild this file with -fopt-info-vec
 * (make CFLAGS='-g -O2 -fopt-info-vec'): with GCC 12 on x86-64 every kernel
 * loop reports "loop vectorized using 16 byte vectors" (32 in the avx2
 * clones), including the ones the three-operand form versions "because of
 * possible aliasing".  The exceptions are the complex products, which keep
 * the C99 Annex G fallback for infinities and NaNs (a libcall on a rare
 * branch), and the 64-bit integer PROD, MIN and MAX of the baseline (SSE2)
 * clone, which has no 64-bit multiply or compare; the avx2 clones vectorise
 * those three.
 *
 * Semantics, shared by every kernel: inout[i] = in[i] (op) inout[i].
 *  - Integer SUM and PROD wrap modulo 2^bits, for signed types too.  They are
 *    computed on the unsigned type of the same width, which gives the same
 *    bits as two's-complement wrap without C's signed-overflow undefined
 *    behaviour; that is also why the signed types share the unsigned kernels
 *    for every op but MIN and MAX.
 *  - Logical ops (LAND, LOR, LXOR) treat non-zero as true and give 0 or 1, on
 *    integers as in MPI and on bool.  On bool the bitwise ops are the logical
 *    ones, so a bool result is always 0 or 1 even if an input byte was 2.
 *  - Floating-point MIN and MAX propagate NaN, like numpy's np.minimum and
 *    np.maximum: if either operand is NaN the result is NaN (in's NaN when
 *    in[i] is NaN, otherwise inout's).  On equal operands (including -0.0
 *    against +0.0) the result is inout[i], unchanged.
 *  - Floating-point SUM and PROD are one IEEE operation per element; nothing
 *    is reassociated (no -ffast-math, refused below) and nothing is contracted
 *    into an FMA (-ffp-contract=off in ops.mk), so every clone and every
 *    machine gives the same bits.
 *  - Complex SUM adds the real and imaginary parts; complex PROD is C11
 *    _Complex multiplication with its Annex G handling of infinities.
 *
 * Alignment: user buffers may start anywhere, even inside an element (a
 * float64 array at an odd address).  The kernels access memory through
 * typedefs with alignment 1, so the compiler emits unaligned vector loads
 * and stores and never assumes that peeling a few elements aligns a pointer
 * (which would fault on an element-misaligned buffer).  On current x86 an
 * unaligned access to aligned data costs the same as an aligned one.
 */
#include "reduce_kernels.h"

#include <string.h>

#ifdef __FAST_MATH__
#error                                                                                             \
    "reduce_kernels.c must not be built with -ffast-math: it would break NaN propagation in MIN/MAX and the bit-for-bit determinism np_reduce_local promises"
#endif

/*
 * Function multi-versioning: the baseline x86-64 target has only SSE2
 * (16-byte vectors, no 64-bit integer compare).  An avx2 clone, picked once at
 * load time through an ifunc, doubles the width for data in cache; for data in
 * memory both are bound by memory bandwidth.  Measured with bench_kernels
 * (same machine, same run, against memcpy): a 4 KiB float64/float32/int32 sum
 * went from 0.35 to 0.57 of memcpy's bandwidth with the clone, and 1 MiB and
 * 64 MiB did not change.  Other architectures and compilers build one version.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__ELF__)
#define KERN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define KERN_CLONES
#endif

/* Element types as the kernels see them in memory: alignment 1 (see above). */
typedef uint8_t kern_u8 __attribute__((aligned(1)));
typedef uint16_t kern_u16 __attribute__((aligned(1)));
typedef uint32_t kern_u32 __attribute__((aligned(1)));
typedef uint64_t kern_u64 __attribute__((aligned(1)));
typedef int8_t kern_i8 __attribute__((aligned(1)));
typedef int16_t kern_i16 __attribute__((aligned(1)));
typedef int32_t kern_i32 __attribute__((aligned(1)));
typedef int64_t kern_i64 __attribute__((aligned(1)));
typedef float kern_f32 __attribute__((aligned(1)));
typedef double kern_f64 __attribute__((aligned(1)));
typedef float _Complex kern_c64 __attribute__((aligned(1)));
typedef double _Complex kern_c128 __attribute__((aligned(1)));

typedef void (*kern_fn2)(const void *in, void *inout, size_t n);
typedef void (*kern_fn3)(const void *a, const void *b, void *out, size_t n);

/*
 * KERN_DEFINE(name, V, M, EXPR) writes two kernels for one (dtype, op) pair;
 * V is the value type, M its alignment-1 memory type, and EXPR combines x
 * (from in, or a) with y (from inout, or b).
 *
 * kern_<name>_2 is the in-place form behind npi_reduce.  Its pointers are
 * restrict-qualified: npi_reduce calls it only when in and inout do not
 * overlap, so the loop needs no runtime alias check.
 *
 * kern_<name>_3 is the three-operand form behind npi_reduce3, where out may be
 * a or b.  It is deliberately not restrict-qualified, so it is correct for any
 * overlap; GCC vectorises it behind a runtime check whose vector path also
 * admits the exact aliasing (distance 0) that npi_reduce3 allows.
 */
#define KERN_DEFINE(name, V, M, EXPR)                                                              \
    KERN_CLONES static void kern_##name##_2(const void *in_, void *inout_, size_t n)               \
    {                                                                                              \
        const M *restrict in = in_;                                                                \
        M *restrict inout = inout_;                                                                \
        for (size_t i = 0; i < n; i++) {                                                           \
            V x = in[i], y = inout[i];                                                             \
            inout[i] = (EXPR);                                                                     \
        }                                                                                          \
    }                                                                                              \
    KERN_CLONES static void kern_##name##_3(const void *a_, const void *b_, void *out_, size_t n)  \
    {                                                                                              \
        const M *a = a_;                                                                           \
        const M *b = b_;                                                                           \
        M *out = out_;                                                                             \
        for (size_t i = 0; i < n; i++) {                                                           \
            V x = a[i], y = b[i];                                                                  \
            out[i] = (EXPR);                                                                       \
        }                                                                                          \
    }

/* Unsigned integers of one width: every op.  W is the type the product is
 * computed in: at least unsigned int, because uint16_t operands would
 * otherwise be promoted to (signed) int and their product could overflow. */
#define KERN_UNSIGNED(t, V, M, W)                                                                  \
    KERN_DEFINE(t##_sum, V, M, (V)(x + y))                                                         \
    KERN_DEFINE(t##_prod, V, M, (V)((W)x * (W)y))                                                  \
    KERN_DEFINE(t##_min, V, M, x < y ? x : y)                                                      \
    KERN_DEFINE(t##_max, V, M, x > y ? x : y)                                                      \
    KERN_DEFINE(t##_land, V, M, (V)((x != 0) & (y != 0)))                                          \
    KERN_DEFINE(t##_lor, V, M, (V)((x != 0) | (y != 0)))                                           \
    KERN_DEFINE(t##_lxor, V, M, (V)((x != 0) ^ (y != 0)))                                          \
    KERN_DEFINE(t##_band, V, M, (V)(x & y))                                                        \
    KERN_DEFINE(t##_bor, V, M, (V)(x | y))                                                         \
    KERN_DEFINE(t##_bxor, V, M, (V)(x ^ y))

/* Signed integers differ from unsigned ones only in how they compare. */
#define KERN_SIGNED(t, V, M)                                                                       \
    KERN_DEFINE(t##_min, V, M, x < y ? x : y)                                                      \
    KERN_DEFINE(t##_max, V, M, x > y ? x : y)

/* Real floating point.  The comparisons are combined with | rather than || so
 * that the selection is branch-free and if-converts into vector blends. */
#define KERN_FLOAT(t, V, M)                                                                        \
    KERN_DEFINE(t##_sum, V, M, x + y)                                                              \
    KERN_DEFINE(t##_prod, V, M, x *y)                                                              \
    KERN_DEFINE(t##_min, V, M, ((x != x) | (x < y)) ? x : y)                                       \
    KERN_DEFINE(t##_max, V, M, ((x != x) | (x > y)) ? x : y)

KERN_UNSIGNED(u8, uint8_t, kern_u8, uint32_t)
KERN_UNSIGNED(u16, uint16_t, kern_u16, uint32_t)
KERN_UNSIGNED(u32, uint32_t, kern_u32, uint32_t)
KERN_UNSIGNED(u64, uint64_t, kern_u64, uint64_t)
KERN_SIGNED(i8, int8_t, kern_i8)
KERN_SIGNED(i16, int16_t, kern_i16)
KERN_SIGNED(i32, int32_t, kern_i32)
KERN_SIGNED(i64, int64_t, kern_i64)
KERN_FLOAT(f32, float, kern_f32)
KERN_FLOAT(f64, double, kern_f64)
KERN_DEFINE(c64_prod, float _Complex, kern_c64, (x) * (y))
KERN_DEFINE(c128_prod, double _Complex, kern_c128, (x) * (y))

/* Bool is one byte; only the logical ops exist, and the bitwise ops map to
 * them so that results stay 0 or 1. */
KERN_DEFINE(bool_land, uint8_t, kern_u8, (uint8_t)((x != 0) & (y != 0)))
KERN_DEFINE(bool_lor, uint8_t, kern_u8, (uint8_t)((x != 0) | (y != 0)))
KERN_DEFINE(bool_lxor, uint8_t, kern_u8, (uint8_t)((x != 0) ^ (y != 0)))

/* A complex sum is the real sum of the interleaved parts, so it reuses the
 * real kernels over twice as many elements (same bits, one loop less). */
static void kern_c64_sum_2(const void *in, void *inout, size_t n)
{
    kern_f32_sum_2(in, inout, 2 * n);
}
static void kern_c64_sum_3(const void *a, const void *b, void *out, size_t n)
{
    kern_f32_sum_3(a, b, out, 2 * n);
}
static void kern_c128_sum_2(const void *in, void *inout, size_t n)
{
    kern_f64_sum_2(in, inout, 2 * n);
}
static void kern_c128_sum_3(const void *a, const void *b, void *out, size_t n)
{
    kern_f64_sum_3(a, b, out, 2 * n);
}

typedef struct kern_entry {
    kern_fn2 f2;
    kern_fn3 f3;
} kern_entry;

#define KERN_E(name)                                                                               \
    {                                                                                              \
        kern_##name##_2, kern_##name##_3                                                           \
    }

/* The kernels of one integer dtype: unsigned u for the ops where signedness
 * does not change the bits, s for MIN and MAX. */
#define KERN_INT_ROW(u, s)                                                                         \
    {                                                                                              \
        [NP_SUM] = KERN_E(u##_sum), [NP_PROD] = KERN_E(u##_prod), [NP_MIN] = KERN_E(s##_min),      \
        [NP_MAX] = KERN_E(s##_max), [NP_LAND] = KERN_E(u##_land), [NP_LOR] = KERN_E(u##_lor),      \
        [NP_LXOR] = KERN_E(u##_lxor), [NP_BAND] = KERN_E(u##_band), [NP_BOR] = KERN_E(u##_bor),    \
        [NP_BXOR] = KERN_E(u##_bxor),                                                              \
    }

/* Every valid (dtype, op) pair has an entry; an empty entry is an invalid
 * pair (the header's table of valid pairs, made executable). */
static const kern_entry kern_table[NP_DTYPE_COUNT_][NP_OP_BUILTIN_COUNT_] = {
    [NP_INT8] = KERN_INT_ROW(u8, i8),
    [NP_INT16] = KERN_INT_ROW(u16, i16),
    [NP_INT32] = KERN_INT_ROW(u32, i32),
    [NP_INT64] = KERN_INT_ROW(u64, i64),
    [NP_UINT8] = KERN_INT_ROW(u8, u8),
    [NP_UINT16] = KERN_INT_ROW(u16, u16),
    [NP_UINT32] = KERN_INT_ROW(u32, u32),
    [NP_UINT64] = KERN_INT_ROW(u64, u64),
    [NP_FLOAT32] = {[NP_SUM] = KERN_E(f32_sum),
                    [NP_PROD] = KERN_E(f32_prod),
                    [NP_MIN] = KERN_E(f32_min),
                    [NP_MAX] = KERN_E(f32_max)},
    [NP_FLOAT64] = {[NP_SUM] = KERN_E(f64_sum),
                    [NP_PROD] = KERN_E(f64_prod),
                    [NP_MIN] = KERN_E(f64_min),
                    [NP_MAX] = KERN_E(f64_max)},
    [NP_COMPLEX64] = {[NP_SUM] = KERN_E(c64_sum), [NP_PROD] = KERN_E(c64_prod)},
    [NP_COMPLEX128] = {[NP_SUM] = KERN_E(c128_sum), [NP_PROD] = KERN_E(c128_prod)},
    [NP_BOOL] = {[NP_LAND] = KERN_E(bool_land),
                 [NP_LOR] = KERN_E(bool_lor),
                 [NP_LXOR] = KERN_E(bool_lxor),
                 [NP_BAND] = KERN_E(bool_land),
                 [NP_BOR] = KERN_E(bool_lor),
                 [NP_BXOR] = KERN_E(bool_lxor)},
    [NP_BYTE] =
        {[NP_BAND] = KERN_E(u8_band), [NP_BOR] = KERN_E(u8_bor), [NP_BXOR] = KERN_E(u8_bxor)},
};

bool npi_reduce_pair_valid(np_dtype dt, np_op op)
{
    if ((unsigned)dt >= NP_DTYPE_COUNT_ || op < 0 || op >= NP_OP_BUILTIN_COUNT_)
        return false;
    return kern_table[dt][op].f2 != NULL;
}

static bool kern_overlap(const void *p, const void *q, size_t bytes)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)q;
    return a < b + bytes && b < a + bytes;
}

void npi_reduce(const void *in, void *inout, size_t count, np_dtype dt, np_op op)
{
    if (count == 0)
        return;
    if (op >= 0 && op < NP_OP_BUILTIN_COUNT_) {
        const kern_entry *k = &kern_table[dt][op];
        /* The restrict form would be undefined if the buffers overlapped (for
         * example in == inout, a valid np_reduce_local call); the
         * three-operand form is correct for any overlap. */
        if (kern_overlap(in, inout, count * np_dtype_size(dt)))
            k->f3(in, inout, inout, count);
        else
            k->f2(in, inout, count);
        return;
    }
    np_user_fn fn;
    bool commutative;
    if (npi_op_user_lookup(op, &fn, &commutative))
        fn(in, inout, count, dt);
}

void npi_reduce3(const void *a, const void *b, void *out, size_t count, np_dtype dt, np_op op)
{
    if (count == 0)
        return;
    if (op >= 0 && op < NP_OP_BUILTIN_COUNT_) {
        kern_table[dt][op].f3(a, b, out, count);
        return;
    }
    np_user_fn fn;
    bool commutative;
    if (!npi_op_user_lookup(op, &fn, &commutative))
        return;
    size_t size = np_dtype_size(dt);
    if (out == b) {
        fn(a, out, count, dt);
    } else if (!kern_overlap(a, out, count * size)) {
        memmove(out, b, count * size);
        fn(a, out, count, dt);
    } else {
        /* out is a: a user function only knows inout = in (op) inout, so each
         * chunk of a is saved aside before b is copied over it.  A fixed
         * stack buffer avoids an allocation that could fail in a function
         * that cannot report it. */
        _Alignas(NPI_CACHELINE) unsigned char saved[4096];
        size_t per = sizeof saved / size;
        const unsigned char *bp = b;
        unsigned char *op_ = out;
        for (size_t done = 0; done < count; done += per) {
            size_t n = count - done < per ? count - done : per;
            memcpy(saved, op_ + done * size, n * size);
            memmove(op_ + done * size, bp + done * size, n * size);
            fn(saved, op_ + done * size, n, dt);
        }
    }
}
