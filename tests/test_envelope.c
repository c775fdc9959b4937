/*
 * Check suite for src/core/envelope.c: round trips of every field at its
 * extremes, the encoder's own checks, and every malformed input we could
 * think of (each must be NP_ERR_PROTOCOL with a detail, never a crash).
 *
 * Inputs are decoded from heap copies of exactly their length, so that
 * running the suite under valgrind or ASan also proves there is no over-read.
 */
#include "envelope.h"

#include <check.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */

static npi_envelope p2p_env(void)
{
    npi_envelope e = {
        .kind = NPI_ENV_P2P,
        .comm_id = 0x1234567890abcdefULL,
        .tag = 77,
        .seq = 5,
        .source = 3,
        .dtype = NP_FLOAT64,
        .count = 10,
        .payload_len = 80,
        .coll = NPI_COLL_COUNT_,
        .root = -1,
        .op = NP_OP_NULL,
    };
    return e;
}

static npi_envelope coll_env(npi_coll c)
{
    npi_envelope e = p2p_env();
    e.kind = NPI_ENV_COLL;
    e.coll = c;
    e.root = npi_coll_has_root(c) ? 2 : -1;
    e.op = npi_coll_has_op(c) ? NP_SUM : NP_OP_NULL;
    if (c == NPI_COLL_BARRIER) {
        e.count = 0;
        e.payload_len = 0;
    }
    return e;
}

/* Decode from a heap copy of exactly len bytes. */
static np_err decode_copy(const void *buf, size_t len, npi_envelope *e)
{
    void *copy = malloc(len > 0 ? len : 1);
    ck_assert_ptr_nonnull(copy);
    if (len > 0)
        memcpy(copy, buf, len);
    np_err err = npi_envelope_decode(len > 0 ? copy : NULL, len, e);
    free(copy);
    return err;
}

static size_t encode_ok(const npi_envelope *e, char *buf)
{
    size_t len = 0;
    np_err err = npi_envelope_encode(e, buf, NPI_ENVELOPE_MAX, &len);
    ck_assert_msg(err == NP_OK, "encode failed: %s", np_last_error());
    ck_assert_uint_gt(len, 0);
    ck_assert_uint_le(len, NPI_ENVELOPE_MAX);
    return len;
}

static void assert_env_eq(const npi_envelope *a, const npi_envelope *b)
{
    ck_assert_int_eq(b->version, NPI_ENVELOPE_VERSION);
    ck_assert_int_eq(a->kind, b->kind);
    ck_assert_uint_eq(a->comm_id, b->comm_id);
    ck_assert_int_eq(a->tag, b->tag);
    ck_assert_uint_eq(a->seq, b->seq);
    ck_assert_int_eq(a->source, b->source);
    ck_assert_int_eq(a->dtype, b->dtype);
    ck_assert_uint_eq(a->count, b->count);
    ck_assert_uint_eq(a->payload_len, b->payload_len);
    if (a->kind == NPI_ENV_COLL) {
        ck_assert_int_eq(a->coll, b->coll);
        ck_assert_int_eq(a->root, b->root);
        ck_assert_int_eq(a->op, b->op);
    } else {
        ck_assert_int_eq(b->coll, NPI_COLL_COUNT_);
        ck_assert_int_eq(b->root, -1);
        ck_assert_int_eq(b->op, NP_OP_NULL);
    }
}

static void round_trip(const npi_envelope *e)
{
    char buf[NPI_ENVELOPE_MAX];
    size_t len = encode_ok(e, buf);
    npi_envelope d;
    memset(&d, 0xa5, sizeof d);
    np_err err = decode_copy(buf, len, &d);
    ck_assert_msg(err == NP_OK, "decode failed: %s", np_last_error());
    assert_env_eq(e, &d);
}

static void expect_protocol(const void *buf, size_t len, const char *why)
{
    npi_envelope d;
    npi_error_clear();
    np_err err = decode_copy(buf, len, &d);
    ck_assert_msg(err == NP_ERR_PROTOCOL, "%s: got %s, expected ERR_PROTOCOL", why,
                  np_errname(err));
    ck_assert_msg(strlen(np_last_error()) > 0, "%s: no detail message", why);
}

/* A hand-built envelope: each element is a (kind, value) pair so a test can
 * put any msgpack type or value in any position. */
typedef enum {
    V_UINT,
    V_INT,
    V_NIL,
    V_STR,
    V_BIN,
    V_F32,
    V_F64,
    V_BOOL,
    V_ARRAY,
    V_MAP,
    V_EXT
} vkind;
typedef struct {
    vkind k;
    uint64_t u;
    int64_t i;
} val;

typedef struct {
    char *data;
    size_t len;
} rawbuf;

static int raw_write(void *data, const char *src, size_t n)
{
    rawbuf *r = data;
    memcpy(r->data + r->len, src, n);
    r->len += n;
    return 0;
}

static char raw_storage[4096];

/* Pack n values as an array (of declared arity `arity`) into raw_storage. */
static size_t pack_vals(const val *v, size_t n, size_t arity)
{
    rawbuf r = {raw_storage, 0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &r, raw_write);
    msgpack_pack_array(&pk, arity);
    for (size_t i = 0; i < n; i++) {
        switch (v[i].k) {
        case V_UINT:
            msgpack_pack_uint64(&pk, v[i].u);
            break;
        case V_INT:
            msgpack_pack_int64(&pk, v[i].i);
            break;
        case V_NIL:
            msgpack_pack_nil(&pk);
            break;
        case V_STR:
            msgpack_pack_str_with_body(&pk, "abc", 3);
            break;
        case V_BIN:
            msgpack_pack_bin_with_body(&pk, "\x01\x02", 2);
            break;
        case V_F32:
            msgpack_pack_float(&pk, 1.5f);
            break;
        case V_F64:
            msgpack_pack_double(&pk, 2.5);
            break;
        case V_BOOL:
            msgpack_pack_true(&pk);
            break;
        case V_ARRAY:
            msgpack_pack_array(&pk, 1);
            msgpack_pack_uint8(&pk, 1);
            break;
        case V_MAP:
            msgpack_pack_map(&pk, 1);
            msgpack_pack_uint8(&pk, 1);
            msgpack_pack_uint8(&pk, 2);
            break;
        case V_EXT:
            msgpack_pack_ext_with_body(&pk, "\x07\x07\x07\x07", 4, 5);
            break;
        }
    }
    return r.len;
}

/* The values of a valid collective envelope (allreduce of 10 float64). */
static void valid_coll_vals(val v[NPI_ENVELOPE_FIELDS])
{
    static const val base[NPI_ENVELOPE_FIELDS] = {
        {V_UINT, 1, 0},          {V_UINT, 1, 0},
        {V_UINT, 42, 0},         {V_UINT, 0, 0},
        {V_UINT, 9, 0},          {V_UINT, 1, 0},
        {V_UINT, NP_FLOAT64, 0}, {V_UINT, 10, 0},
        {V_UINT, 80, 0},         {V_UINT, NPI_COLL_REDUCE, 0},
        {V_UINT, 0, 0},          {V_UINT, NP_SUM, 0},
    };
    memcpy(v, base, sizeof base);
}

static void valid_p2p_vals(val v[NPI_ENVELOPE_FIELDS])
{
    valid_coll_vals(v);
    v[1] = (val){V_UINT, 0, 0};
    v[9] = v[10] = v[11] = (val){V_NIL, 0, 0};
}

/* ------------------------------------------------------------ round trips */

START_TEST(round_trip_p2p_extremes)
{
    npi_envelope e = p2p_env();
    round_trip(&e);

    e.comm_id = 0;
    e.seq = 0;
    e.tag = 0;
    e.source = 0;
    e.count = 0;
    e.payload_len = 0;
    round_trip(&e);

    e.comm_id = UINT64_MAX;
    e.seq = UINT64_MAX;
    e.tag = INT32_MAX;
    e.source = INT32_MAX;
    e.dtype = NP_BYTE;
    e.count = NPI_ENVELOPE_BYTES_MAX; /* the largest count that is valid */
    e.payload_len = NPI_ENVELOPE_BYTES_MAX;
    round_trip(&e);

    e.dtype = NP_COMPLEX128;
    e.count = NPI_ENVELOPE_BYTES_MAX / 16;
    round_trip(&e);

    /* Every dtype. */
    for (int dt = 0; dt < NP_DTYPE_COUNT_; dt++) {
        e.dtype = (np_dtype)dt;
        e.count = 1000003;
        e.payload_len = e.count * np_dtype_size(e.dtype);
        round_trip(&e);
    }
}
END_TEST

START_TEST(round_trip_every_collective)
{
    for (int c = 0; c < NPI_COLL_COUNT_; c++) {
        npi_envelope e = coll_env((npi_coll)c);
        round_trip(&e);
        if (npi_coll_has_root((npi_coll)c)) {
            e.root = 0;
            round_trip(&e);
            e.root = INT32_MAX;
            round_trip(&e);
        }
        if (npi_coll_has_op((npi_coll)c)) {
            for (np_op op = 0; op < NP_OP_BUILTIN_COUNT_; op++) {
                e.op = op;
                round_trip(&e);
            }
            e.op = INT32_MAX; /* a user op handle: not checked against local ops */
            round_trip(&e);
        }
        if (c != NPI_COLL_BARRIER) {
            /* Collective payloads are segments or several ranks' blocks, so
             * they need not equal count * size. */
            e.payload_len = 0;
            round_trip(&e);
            e.payload_len = NPI_ENVELOPE_BYTES_MAX;
            round_trip(&e);
        }
    }
}
END_TEST

START_TEST(max_size_bound_holds)
{
    npi_envelope e = coll_env(NPI_COLL_REDUCE);
    e.comm_id = e.seq = UINT64_MAX;
    e.tag = e.source = e.root = e.op = INT32_MAX;
    e.dtype = NP_BYTE;
    e.count = e.payload_len = NPI_ENVELOPE_BYTES_MAX;
    char buf[NPI_ENVELOPE_MAX];
    size_t len = encode_ok(&e, buf);
    ck_assert_uint_le(len, NPI_ENVELOPE_MAX);
    ck_assert_uint_lt(NPI_ENVELOPE_MAX, 256); /* fits a one-byte frame length */
}
END_TEST

START_TEST(decode_prefix_reports_length)
{
    npi_envelope e = coll_env(NPI_COLL_BCAST), d;
    char buf[NPI_ENVELOPE_MAX + 16];
    size_t len = encode_ok(&e, buf);
    memset(buf + len, 0xc1, 16); /* invalid msgpack: the payload is not looked at */
    size_t used = 999;
    ck_assert_int_eq(npi_envelope_decode_prefix(buf, len + 16, &d, &used), NP_OK);
    ck_assert_uint_eq(used, len);
    assert_env_eq(&e, &d);
    ck_assert_int_eq(npi_envelope_decode_prefix(buf, len - 1, &d, &used), NP_ERR_PROTOCOL);
    ck_assert_uint_eq(used, 0);
    ck_assert_int_eq(npi_envelope_decode_prefix(buf, len, &d, NULL), NP_ERR_NULL);
}
END_TEST

/* ------------------------------------------------------------ encoder checks */

START_TEST(encode_truncates_without_overrun)
{
    npi_envelope e = coll_env(NPI_COLL_ALLREDUCE);
    char ref[NPI_ENVELOPE_MAX];
    size_t full = encode_ok(&e, ref);
    for (size_t cap = 0; cap < full; cap++) {
        char buf[NPI_ENVELOPE_MAX + 8];
        memset(buf, 0x5a, sizeof buf);
        size_t len = 123;
        ck_assert_int_eq(npi_envelope_encode(&e, buf, cap, &len), NP_ERR_TRUNCATE);
        ck_assert_uint_eq(len, 0);
        for (size_t i = cap; i < sizeof buf; i++)
            ck_assert_int_eq((unsigned char)buf[i], 0x5a);
    }
    size_t len;
    ck_assert_int_eq(npi_envelope_encode(&e, NULL, 0, &len), NP_ERR_TRUNCATE);
    ck_assert_int_eq(npi_envelope_encode(NULL, ref, sizeof ref, &len), NP_ERR_NULL);
    ck_assert_int_eq(npi_envelope_encode(&e, ref, sizeof ref, NULL), NP_ERR_NULL);
}
END_TEST

START_TEST(encode_refuses_invalid_envelopes)
{
    struct {
        const char *why;
        npi_envelope e;
    } cases[16];
    size_t n = 0;
    npi_envelope e;
#define BAD_(desc, stmt)                                                                           \
    do {                                                                                           \
        e = p2p_env();                                                                             \
        stmt;                                                                                      \
        cases[n].why = desc;                                                                       \
        cases[n++].e = e;                                                                          \
    } while (0)
    BAD_("negative tag", e.tag = -1);
    BAD_("negative source", e.source = -5);
    BAD_("unknown dtype", e.dtype = NP_DTYPE_COUNT_);
    BAD_("unknown kind", e.kind = NPI_ENV_KIND_COUNT_);
    BAD_("UINT64_MAX count", (e.count = UINT64_MAX, e.dtype = NP_BYTE));
    BAD_("count*size overflow", (e.count = (UINT64_MAX / 8) + 2, e.dtype = NP_FLOAT64));
    BAD_("count beyond limit", (e.count = NPI_ENVELOPE_BYTES_MAX + 1, e.dtype = NP_BYTE,
                                e.payload_len = NPI_ENVELOPE_BYTES_MAX + 1));
    BAD_("p2p payload mismatch", e.payload_len = 79);
    BAD_("bcast without root", (e = coll_env(NPI_COLL_BCAST), e.root = -1));
    BAD_("allreduce with root", (e = coll_env(NPI_COLL_ALLREDUCE), e.root = 0));
    BAD_("reduce without op", (e = coll_env(NPI_COLL_REDUCE), e.op = NP_OP_NULL));
    BAD_("bcast with op", (e = coll_env(NPI_COLL_BCAST), e.op = NP_SUM));
    BAD_("barrier with count", (e = coll_env(NPI_COLL_BARRIER), e.count = 1));
    BAD_("unknown collective", (e = coll_env(NPI_COLL_BCAST), e.coll = NPI_COLL_COUNT_));
    BAD_("payload beyond limit",
         (e = coll_env(NPI_COLL_BCAST), e.payload_len = NPI_ENVELOPE_BYTES_MAX + 1));
#undef BAD_
    for (size_t i = 0; i < n; i++) {
        char buf[NPI_ENVELOPE_MAX];
        size_t len = 7;
        npi_error_clear();
        np_err err = npi_envelope_encode(&cases[i].e, buf, sizeof buf, &len);
        ck_assert_msg(err == NP_ERR_ARG, "%s: got %s", cases[i].why, np_errname(err));
        ck_assert_uint_eq(len, 0);
        ck_assert_str_ne(np_last_error(), "");
    }
}
END_TEST

/* ------------------------------------------------------------ malformed input */

START_TEST(every_truncation_is_rejected)
{
    npi_envelope envs[3] = {p2p_env(), coll_env(NPI_COLL_REDUCE), p2p_env()};
    envs[2].comm_id = envs[2].seq = UINT64_MAX; /* nine-byte integers to cut through */
    for (int k = 0; k < 3; k++) {
        char buf[NPI_ENVELOPE_MAX];
        size_t len = encode_ok(&envs[k], buf);
        for (size_t cut = 0; cut < len; cut++)
            expect_protocol(buf, cut, "truncated");
    }
}
END_TEST

START_TEST(trailing_bytes_are_rejected)
{
    npi_envelope e = p2p_env();
    char buf[NPI_ENVELOPE_MAX + 4];
    size_t len = encode_ok(&e, buf);
    for (int extra = 1; extra <= 4; extra++) {
        memset(buf + len, 0, 4);
        expect_protocol(buf, len + extra, "trailing zero bytes");
    }
    /* A second, valid envelope after the first is still trailing garbage. */
    char two[2 * NPI_ENVELOPE_MAX];
    memcpy(two, buf, len);
    memcpy(two + len, buf, len);
    expect_protocol(two, 2 * len, "two envelopes");
    ck_assert_ptr_nonnull(strstr(np_last_error(), "trailing"));
}
END_TEST

START_TEST(every_field_with_every_wrong_type)
{
    static const vkind wrong[] = {V_NIL, V_STR, V_BIN, V_F32, V_F64, V_BOOL, V_ARRAY, V_MAP, V_EXT};
    for (int kind = 0; kind < 2; kind++) {
        for (int f = 0; f < NPI_ENVELOPE_FIELDS; f++) {
            for (size_t w = 0; w < sizeof wrong / sizeof wrong[0]; w++) {
                val v[NPI_ENVELOPE_FIELDS];
                if (kind == 0)
                    valid_p2p_vals(v);
                else
                    valid_coll_vals(v);
                /* nil is the right type for a p2p message's collective fields. */
                if (kind == 0 && f >= 9 && wrong[w] == V_NIL)
                    continue;
                v[f].k = wrong[w];
                size_t len = pack_vals(v, NPI_ENVELOPE_FIELDS, NPI_ENVELOPE_FIELDS);
                expect_protocol(raw_storage, len, "wrong type");
            }
        }
    }
    /* The unmodified hand-built envelopes are valid, so the failures above
     * come from the substituted field alone. */
    val v[NPI_ENVELOPE_FIELDS];
    npi_envelope d;
    valid_coll_vals(v);
    size_t len = pack_vals(v, NPI_ENVELOPE_FIELDS, NPI_ENVELOPE_FIELDS);
    ck_assert_int_eq(decode_copy(raw_storage, len, &d), NP_OK);
    valid_p2p_vals(v);
    len = pack_vals(v, NPI_ENVELOPE_FIELDS, NPI_ENVELOPE_FIELDS);
    ck_assert_int_eq(decode_copy(raw_storage, len, &d), NP_OK);
}
END_TEST

START_TEST(detail_names_field_and_type)
{
    val v[NPI_ENVELOPE_FIELDS];
    valid_coll_vals(v);
    v[7].k = V_STR;
    size_t len = pack_vals(v, NPI_ENVELOPE_FIELDS, NPI_ENVELOPE_FIELDS);
    expect_protocol(raw_storage, len, "count as str");
    ck_assert_str_eq(np_last_error(),
                     "envelope decode: count (element 7) is a msgpack str, expected an integer");
    valid_coll_vals(v);
    v[3].k = V_MAP;
    len = pack_vals(v, NPI_ENVELOPE_FIELDS, NPI_ENVELOPE_FIELDS);
    expect_protocol(raw_storage, len, "tag as map");
    ck_assert_ptr_nonnull(strstr(np_last_error(), "tag (element 3) is a nested map"));
}
END_TEST

START_TEST(extra_and_missing_elements)
{
    val v[NPI_ENVELOPE_FIELDS + 4];
    valid_coll_vals(v);
    for (int i = NPI_ENVELOPE_FIELDS; i < NPI_ENVELOPE_FIELDS + 4; i++)
        v[i] = (val){V_UINT, 0, 0};
    for (size_t n = 0; n <= NPI_ENVELOPE_FIELDS + 3; n++) {
        if (n == NPI_ENVELOPE_FIELDS)
            continue;
        /* Header and contents agree, but the arity is wrong. */
        size_t len = pack_vals(v, n, n);
        expect_protocol(raw_storage, len, "wrong arity");
        /* The header promises 12 but fewer or more elements follow. */
        len = pack_vals(v, n, NPI_ENVELOPE_FIELDS);
        expect_protocol(raw_storage, len, "header and elements disagree");
    }
}
END_TEST

START_TEST(wide_array_headers)
{
    val v[NPI_ENVELOPE_FIELDS];
    valid_coll_vals(v);
    size_t len = pack_vals(v, NPI_ENVELOPE_FIELDS, NPI_ENVELOPE_FIELDS);
    /* The same elements behind an array16 and an array32 header are legal
     * msgpack for twelve elements and must decode. */
    char buf[sizeof raw_storage];
    npi_envelope d;
    buf[0] = (char)0xdc;
    buf[1] = 0;
    buf[2] = NPI_ENVELOPE_FIELDS;
    memcpy(buf + 3, raw_storage + 1, len - 1);
    ck_assert_int_eq(decode_copy(buf, len + 2, &d), NP_OK);
    buf[0] = (char)0xdd;
    buf[1] = buf[2] = buf[3] = 0;
    buf[4] = NPI_ENVELOPE_FIELDS;
    memcpy(buf + 5, raw_storage + 1, len - 1);
    ck_assert_int_eq(decode_copy(buf, len + 4, &d), NP_OK);

    /* Huge claimed sizes must be refused without allocating for them. */
    static const unsigned char huge[][8] = {
        {0xdd, 0xff, 0xff, 0xff, 0xff},             /* array32 of 2^32-1, nothing follows */
        {0xdf, 0xff, 0xff, 0xff, 0xff},             /* map32 at the top */
        {0xdc, 0xff, 0xff, 0x01},                   /* array16 of 65535 */
        {0x9c, 0xdd, 0xff, 0xff, 0xff, 0xff},       /* nested array32 as the version */
        {0x9c, 0x01, 0xdf, 0xff, 0xff, 0xff, 0xff}, /* nested map32 as the kind */
        {0x9c, 0x01, 0xdb, 0xff, 0xff, 0xff, 0xff}, /* str32 of 4 GiB as the kind */
        {0x9c, 0x01, 0xc9, 0xff, 0xff, 0xff, 0xff}, /* ext32 of 4 GiB */
        {0x9c, 0x01, 0xc6, 0xff, 0xff, 0xff, 0xff}, /* bin32 of 4 GiB */
    };
    static const size_t huge_len[] = {5, 5, 4, 6, 7, 7, 7, 7};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++)
        expect_protocol(huge[i], huge_len[i], "huge claimed size");
}
END_TEST

START_TEST(unknown_versions)
{
    static const val versions[] = {
        {V_UINT, 0, 0},          {V_UINT, 2, 0}, {V_UINT, 255, 0},
        {V_UINT, UINT64_MAX, 0}, {V_INT, 0, -1}, {V_INT, 0, INT64_MIN},
    };
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        val v[NPI_ENVELOPE_FIELDS + 1];
        valid_coll_vals(v);
        v[0] = versions[i];
        size_t len = pack_vals(v, NPI_ENVELOPE_FIELDS, NPI_ENVELOPE_FIELDS);
        expect_protocol(raw_storage, len, "unknown version");
        ck_assert_msg(strstr(np_last_error(), "version") != NULL, "detail: %s", np_last_error());
    }
    /* A future version with another arity is reported as a version. */
    val v[NPI_ENVELOPE_FIELDS + 1];
    valid_coll_vals(v);
    v[0] = (val){V_UINT, 2, 0};
    v[NPI_ENVELOPE_FIELDS] = (val){V_UINT, 0, 0};
    size_t len = pack_vals(v, NPI_ENVELOPE_FIELDS + 1, NPI_ENVELOPE_FIELDS + 1);
    expect_protocol(raw_storage, len, "version 2, 13 elements");
    ck_assert_ptr_nonnull(strstr(np_last_error(), "unknown envelope version 2"));
    /* A signed encoding of a valid version is accepted. */
    valid_coll_vals(v);
    v[0] = (val){V_INT, 0, 1};
    {
        /* msgpack-c packs a positive int64 in unsigned form, so write the
         * signed form (0xd0 0x01) by hand. */
        size_t n = pack_vals(v, NPI_ENVELOPE_FIELDS, NPI_ENVELOPE_FIELDS);
        char buf[sizeof raw_storage];
        buf[0] = raw_storage[0];
        buf[1] = (char)0xd0;
        buf[2] = 0x01;
        memcpy(buf + 3, raw_storage + 2, n - 2);
        npi_envelope d;
        ck_assert_int_eq(decode_copy(buf, n + 1, &d), NP_OK);
        buf[2] = 0x02;
        expect_protocol(buf, n + 1, "signed version 2");
        ck_assert_ptr_nonnull(strstr(np_last_error(), "unknown envelope version 2"));
    }
}
END_TEST

START_TEST(out_of_range_values)
{
    struct {
        int field;
        val v;
        int p2p; /* 1: apply to the p2p envelope, 0: to the collective */
    } cases[] = {
        {1, {V_UINT, 2, 0}, 0},                              /* kind */
        {1, {V_INT, 0, -1}, 0},                              /* kind */
        {2, {V_INT, 0, -1}, 0},                              /* comm id negative */
        {3, {V_INT, 0, -1}, 0},                              /* tag */
        {3, {V_UINT, (uint64_t)INT32_MAX + 1, 0}, 0},        /* tag */
        {3, {V_UINT, UINT64_MAX, 0}, 0},                     /* tag */
        {4, {V_INT, 0, INT64_MIN}, 0},                       /* sequence */
        {5, {V_INT, 0, -1}, 0},                              /* source */
        {5, {V_UINT, (uint64_t)INT32_MAX + 1, 0}, 0},        /* source */
        {6, {V_UINT, NP_DTYPE_COUNT_, 0}, 0},                /* dtype */
        {6, {V_UINT, 255, 0}, 0},                            /* dtype */
        {6, {V_UINT, UINT64_MAX, 0}, 0},                     /* dtype */
        {6, {V_INT, 0, -1}, 0},                              /* dtype */
        {7, {V_UINT, UINT64_MAX, 0}, 0},                     /* count */
        {7, {V_UINT, (UINT64_MAX / 8) + 1, 0}, 0},           /* count*8 overflows */
        {7, {V_UINT, NPI_ENVELOPE_BYTES_MAX / 8 + 1, 0}, 0}, /* beyond the limit */
        {7, {V_INT, 0, -10}, 0},                             /* count */
        {8, {V_UINT, NPI_ENVELOPE_BYTES_MAX + 1, 0}, 0},     /* payload */
        {8, {V_UINT, UINT64_MAX, 0}, 0},                     /* payload */
        {9, {V_UINT, NPI_COLL_COUNT_, 0}, 0},                /* collective */
        {9, {V_INT, 0, -1}, 0},                              /* collective */
        {9, {V_UINT, UINT64_MAX, 0}, 0},                     /* collective */
        {10, {V_INT, 0, -1}, 0},                             /* reduce needs a root */
        {10, {V_INT, 0, -2}, 0},                             /* root */
        {10, {V_UINT, (uint64_t)INT32_MAX + 1, 0}, 0},       /* root */
        {11, {V_INT, 0, -1}, 0},                             /* reduce needs an op */
        {11, {V_INT, 0, -2}, 0},                             /* op */
        {11, {V_UINT, (uint64_t)INT32_MAX + 1, 0}, 0},       /* op */
        {8, {V_UINT, 81, 0}, 1},                             /* p2p payload != count*size */
        {8, {V_UINT, 0, 0}, 1},                              /* p2p payload != count*size */
        {9, {V_UINT, NPI_COLL_BCAST, 0}, 1},                 /* p2p with a collective */
        {10, {V_UINT, 0, 0}, 1},                             /* p2p with a root */
        {11, {V_UINT, 0, 0}, 1},                             /* p2p with an op */
        {1, {V_UINT, 0, 0}, 0},                              /* p2p kind with coll fields */
        {1, {V_UINT, 1, 0}, 1},                              /* coll kind with nil fields */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        val v[NPI_ENVELOPE_FIELDS];
        if (cases[i].p2p)
            valid_p2p_vals(v);
        else
            valid_coll_vals(v);
        v[cases[i].field] = cases[i].v;
        size_t len = pack_vals(v, NPI_ENVELOPE_FIELDS, NPI_ENVELOPE_FIELDS);
        char why[64];
        snprintf(why, sizeof why, "out-of-range case %zu", i);
        expect_protocol(raw_storage, len, why);
    }
}
END_TEST

START_TEST(root_and_op_rules_per_collective)
{
    for (int c = 0; c < NPI_COLL_COUNT_; c++) {
        val v[NPI_ENVELOPE_FIELDS];
        valid_coll_vals(v);
        v[9] = (val){V_UINT, (uint64_t)c, 0};
        v[10] = npi_coll_has_root((npi_coll)c) ? (val){V_UINT, 1, 0} : (val){V_INT, 0, -1};
        v[11] = npi_coll_has_op((npi_coll)c) ? (val){V_UINT, 1, 0} : (val){V_INT, 0, -1};
        if (c == NPI_COLL_BARRIER)
            v[7] = v[8] = (val){V_UINT, 0, 0};
        size_t len = pack_vals(v, NPI_ENVELOPE_FIELDS, NPI_ENVELOPE_FIELDS);
        npi_envelope d;
        ck_assert_msg(decode_copy(raw_storage, len, &d) == NP_OK, "coll %d: %s", c,
                      np_last_error());
        val good_root = v[10], good_op = v[11];
        /* A root where none belongs, or none where one does. */
        v[10] = npi_coll_has_root((npi_coll)c) ? (val){V_INT, 0, -1} : (val){V_UINT, 0, 0};
        len = pack_vals(v, NPI_ENVELOPE_FIELDS, NPI_ENVELOPE_FIELDS);
        expect_protocol(raw_storage, len, "root rule");
        v[10] = good_root;
        v[11] = npi_coll_has_op((npi_coll)c) ? (val){V_INT, 0, -1} : (val){V_UINT, 0, 0};
        len = pack_vals(v, NPI_ENVELOPE_FIELDS, NPI_ENVELOPE_FIELDS);
        expect_protocol(raw_storage, len, "op rule");
        v[11] = good_op;
        if (c == NPI_COLL_BARRIER) {
            v[7] = (val){V_UINT, 1, 0};
            len = pack_vals(v, NPI_ENVELOPE_FIELDS, NPI_ENVELOPE_FIELDS);
            expect_protocol(raw_storage, len, "barrier with a count");
        }
    }
}
END_TEST

START_TEST(not_an_array_and_odd_bytes)
{
    static const struct {
        unsigned char b[4];
        size_t n;
    } cases[] = {
        {{0xc0}, 1}, /* nil */
        {{0x01}, 1}, /* an integer */
        {{0x80}, 1}, /* empty map */
        {{0x90}, 1}, /* empty array */
        {{0xc1}, 1}, /* reserved byte */
        {{0xa3, 'a', 'b', 'c'}, 4},
        {{0x9c, 0xc1}, 2}, /* reserved byte as the version */
        {{0x91, 0x01}, 2}, /* version only */
        {{0xdc}, 1},       /* array16 header cut short */
        {{0xdd, 0, 0}, 3}, /* array32 header cut short */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_protocol(cases[i].b, cases[i].n, "odd bytes");
    npi_envelope d;
    ck_assert_int_eq(npi_envelope_decode(NULL, 0, &d), NP_ERR_PROTOCOL);
    ck_assert_int_eq(npi_envelope_decode(NULL, 5, &d), NP_ERR_NULL);
    ck_assert_int_eq(npi_envelope_decode("\x90", 1, NULL), NP_ERR_NULL);

    /* The reserved byte in place of any element.  With every value below
     * 128, each byte of the encoding is a type byte. */
    npi_envelope e = coll_env(NPI_COLL_GATHER);
    e.comm_id = 1;
    char buf[NPI_ENVELOPE_MAX];
    size_t len = encode_ok(&e, buf);
    for (size_t i = 0; i < len; i++) {
        char copy[NPI_ENVELOPE_MAX];
        memcpy(copy, buf, len);
        copy[i] = (char)0xc1;
        expect_protocol(copy, len, "reserved byte");
    }
}
END_TEST

/* xorshift64: a fixed sequence, so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Decode input; if it is accepted, it must survive a re-encode unchanged. */
static void decode_any(const unsigned char *in, size_t len, int *accepted)
{
    npi_envelope d;
    np_err err = decode_copy(in, len, &d);
    ck_assert_msg(err == NP_OK || err == NP_ERR_PROTOCOL, "got %s", np_errname(err));
    if (err != NP_OK)
        return;
    (*accepted)++;
    char buf[NPI_ENVELOPE_MAX];
    size_t n = encode_ok(&d, buf);
    npi_envelope d2;
    ck_assert_int_eq(decode_copy(buf, n, &d2), NP_OK);
    assert_env_eq(&d, &d2);
}

START_TEST(random_bytes)
{
    unsigned char in[160];
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = rng() % sizeof in;
        for (size_t i = 0; i < len; i++)
            in[i] = (unsigned char)rng();
        /* Half the time, start like an envelope to get past the header. */
        if (len > 1 && (iter & 1)) {
            in[0] = 0x9c;
            in[1] = 0x01;
        }
        decode_any(in, len, &accepted);
    }
    ck_assert_int_eq(accepted, 0); /* random bytes are (practically) never valid */
}
END_TEST

START_TEST(mutated_envelopes)
{
    npi_envelope seeds[] = {p2p_env(), coll_env(NPI_COLL_REDUCE), coll_env(NPI_COLL_BARRIER),
                            coll_env(NPI_COLL_ALLTOALL)};
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        char buf[NPI_ENVELOPE_MAX + 8];
        size_t len = encode_ok(&seeds[iter % 4], buf);
        int edits = 1 + (int)(rng() % 3);
        for (int k = 0; k < edits; k++) {
            switch (rng() % 4) {
            case 0:
                buf[rng() % len] = (char)rng();
                break;
            case 1:
                buf[rng() % len] ^= (char)(1u << (rng() % 8));
                break;
            case 2:
                len -= rng() % (len / 2 + 1);
                break;
            default:
                if (len < sizeof buf)
                    buf[len++] = (char)rng();
                break;
            }
            if (len == 0)
                len = 1;
        }
        decode_any((const unsigned char *)buf, len, &accepted);
    }
    /* Many single-bit flips of a value stay valid; it is the rejections and
     * the absence of crashes this test is about, so only check both occur. */
    ck_assert_int_gt(accepted, 0);
    ck_assert_int_lt(accepted, 20000);
}
END_TEST

/* ------------------------------------------------------------ signatures */

START_TEST(coll_names)
{
    ck_assert_str_eq(npi_coll_name(NPI_COLL_BARRIER), "barrier");
    ck_assert_str_eq(npi_coll_name(NPI_COLL_ALLTOALL), "alltoall");
    ck_assert_str_eq(npi_coll_name(NPI_COLL_SCATTERV), "scatterv");
    ck_assert_ptr_null(npi_coll_name(NPI_COLL_COUNT_));
    ck_assert_ptr_null(npi_coll_name((npi_coll)-1));
    for (int c = 0; c < NPI_COLL_COUNT_; c++)
        ck_assert_ptr_nonnull(npi_coll_name((npi_coll)c));
    ck_assert(!npi_coll_has_root(NPI_COLL_COUNT_));
    ck_assert(!npi_coll_has_op(NPI_COLL_BCAST));
}
END_TEST

START_TEST(sig_format)
{
    char buf[NPI_COLL_SIG_MAX];
    npi_coll_sig s = {NPI_COLL_BCAST, NP_FLOAT64, 10, 0, NP_OP_NULL};
    npi_coll_sig_format(&s, buf, sizeof buf);
    ck_assert_str_eq(buf, "np_bcast(count=10, float64, root 0)");
    s = (npi_coll_sig){NPI_COLL_ALLREDUCE, NP_INT32, 3, -1, NP_MAX};
    npi_coll_sig_format(&s, buf, sizeof buf);
    ck_assert_str_eq(buf, "np_allreduce(count=3, int32, max)");
    s = (npi_coll_sig){NPI_COLL_BARRIER, NP_BYTE, 0, -1, NP_OP_NULL};
    npi_coll_sig_format(&s, buf, sizeof buf);
    ck_assert_str_eq(buf, "np_barrier()");
    s = (npi_coll_sig){NPI_COLL_REDUCE, NP_FLOAT32, 7, 3, 1234};
    npi_coll_sig_format(&s, buf, sizeof buf);
    ck_assert_str_eq(buf, "np_reduce(count=7, float32, op 1234, root 3)");
    /* The longest possible signature fits NPI_COLL_SIG_MAX. */
    s = (npi_coll_sig){NPI_COLL_REDUCE, NP_COMPLEX128, UINT64_MAX, INT32_MIN, INT32_MIN};
    ck_assert_int_lt(npi_coll_sig_format(&s, buf, sizeof buf), NPI_COLL_SIG_MAX);
    s = (npi_coll_sig){(npi_coll)77, (np_dtype)99, 1, -1, NP_OP_NULL};
    npi_coll_sig_format(&s, buf, sizeof buf);
    ck_assert_str_eq(buf, "unknown collective 77(count=1, dtype 99)");
    /* snprintf semantics on a short buffer. */
    char tiny[8];
    s = (npi_coll_sig){NPI_COLL_BCAST, NP_FLOAT64, 10, 0, NP_OP_NULL};
    ck_assert_int_eq(npi_coll_sig_format(&s, tiny, sizeof tiny), 35);
    ck_assert_str_eq(tiny, "np_bcas");
}
END_TEST

START_TEST(sig_check_names_both_sides)
{
    npi_error_set_rank(-1);
    npi_coll_sig mine = {NPI_COLL_REDUCE, NP_FLOAT64, 10, 0, NP_SUM};
    npi_coll_sig theirs = {NPI_COLL_BCAST, NP_FLOAT64, 10, 0, NP_OP_NULL};
    ck_assert_int_eq(npi_coll_sig_check(&mine, 0, &theirs, 2), NP_ERR_MISMATCH);
    ck_assert_str_eq(np_last_error(), "rank 0 called np_reduce(count=10, float64, sum, root 0) "
                                      "but rank 2 called np_bcast(count=10, float64, root 0)");
    ck_assert_int_eq(npi_coll_sig_check(&mine, 0, &mine, 2), NP_OK);

    /* What must agree, and what need not. */
    npi_coll_sig a = {NPI_COLL_BCAST, NP_FLOAT64, 10, 0, NP_OP_NULL}, b = a;
    b.count = 11;
    ck_assert(!npi_coll_sig_equal(&a, &b));
    b = a;
    b.dtype = NP_INT64;
    ck_assert(!npi_coll_sig_equal(&a, &b));
    b = a;
    b.root = 1;
    ck_assert(!npi_coll_sig_equal(&a, &b));
    b = a;
    b.op = NP_SUM; /* bcast has no op: ignored */
    ck_assert(npi_coll_sig_equal(&a, &b));
    a = (npi_coll_sig){NPI_COLL_ALLREDUCE, NP_FLOAT64, 10, -1, NP_SUM};
    b = a;
    b.op = NP_PROD;
    ck_assert(!npi_coll_sig_equal(&a, &b));
    b = a;
    b.root = 5; /* allreduce has no root: ignored */
    ck_assert(npi_coll_sig_equal(&a, &b));
    a = (npi_coll_sig){NPI_COLL_GATHERV, NP_FLOAT64, 10, 0, NP_OP_NULL};
    b = a;
    b.count = 3; /* per-rank counts of the v-variants differ legitimately */
    ck_assert(npi_coll_sig_equal(&a, &b));
    b.root = 1;
    ck_assert(!npi_coll_sig_equal(&a, &b));

    /* The signature travels in collective envelopes. */
    npi_envelope e = coll_env(NPI_COLL_REDUCE);
    npi_coll_sig s;
    npi_envelope_sig(&e, &s);
    ck_assert_int_eq(s.coll, NPI_COLL_REDUCE);
    ck_assert_uint_eq(s.count, 10);
    ck_assert_int_eq(s.root, 2);
    ck_assert_int_eq(s.op, NP_SUM);
    ck_assert_int_eq(s.dtype, NP_FLOAT64);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("envelope");
    TCase *rt = tcase_create("round_trip");
    tcase_add_test(rt, round_trip_p2p_extremes);
    tcase_add_test(rt, round_trip_every_collective);
    tcase_add_test(rt, max_size_bound_holds);
    tcase_add_test(rt, decode_prefix_reports_length);
    tcase_add_test(rt, encode_truncates_without_overrun);
    tcase_add_test(rt, encode_refuses_invalid_envelopes);
    suite_add_tcase(s, rt);
    TCase *bad = tcase_create("malformed");
    tcase_add_test(bad, every_truncation_is_rejected);
    tcase_add_test(bad, trailing_bytes_are_rejected);
    tcase_add_test(bad, every_field_with_every_wrong_type);
    tcase_add_test(bad, detail_names_field_and_type);
    tcase_add_test(bad, extra_and_missing_elements);
    tcase_add_test(bad, wide_array_headers);
    tcase_add_test(bad, unknown_versions);
    tcase_add_test(bad, out_of_range_values);
    tcase_add_test(bad, root_and_op_rules_per_collective);
    tcase_add_test(bad, not_an_array_and_odd_bytes);
    tcase_add_test(bad, random_bytes);
    tcase_add_test(bad, mutated_envelopes);
    suite_add_tcase(s, bad);
    TCase *sig = tcase_create("signature");
    tcase_add_test(sig, coll_names);
    tcase_add_test(sig, sig_format);
    tcase_add_test(sig, sig_check_names_both_sides);
    suite_add_tcase(s, sig);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
