/*
 * Message envelopes: msgpack encode and strict decode (see envelope.h for
 * the wire format), and the collective signatures used for mismatch checks.
 *
 * Decoding happens in two passes.  The first (env_scan) walks the raw bytes
 * without interpreting values: it checks that the input is one array whose
 * elements are all scalars and that every element lies inside the input.
 * Only then does msgpack-c unpack it.  The scan exists because msgpack-c
 * allocates an array's or map's storage from the element count in its header
 * before reading a single element, so five hostile bytes (an array32 header
 * claiming 2^32 elements) would make it ask for about 100 GB.  After the scan
 * the only allocation is one array of NPI_ENVELOPE_FIELDS objects.
 */
#include "envelope.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

/* Field names, in wire order, for detail messages. */
static const char *const env_field_names[NPI_ENVELOPE_FIELDS] = {
    "version", "kind",  "comm id",        "tag",        "sequence", "source",
    "dtype",   "count", "payload length", "collective", "root",     "op",
};

enum {
    ENV_F_VERSION,
    ENV_F_KIND,
    ENV_F_COMM,
    ENV_F_TAG,
    ENV_F_SEQ,
    ENV_F_SOURCE,
    ENV_F_DTYPE,
    ENV_F_COUNT,
    ENV_F_PAYLOAD,
    ENV_F_COLL,
    ENV_F_ROOT,
    ENV_F_OP,
};

static const char *const env_coll_names[NPI_COLL_COUNT_] = {
    [NPI_COLL_BARRIER] = "barrier",     [NPI_COLL_BCAST] = "bcast",
    [NPI_COLL_SCATTER] = "scatter",     [NPI_COLL_SCATTERV] = "scatterv",
    [NPI_COLL_GATHER] = "gather",       [NPI_COLL_GATHERV] = "gatherv",
    [NPI_COLL_ALLREDUCE] = "allreduce", [NPI_COLL_REDUCE] = "reduce",
    [NPI_COLL_ALLGATHER] = "allgather", [NPI_COLL_ALLTOALL] = "alltoall",
};

const char *npi_coll_name(npi_coll c)
{
    if ((unsigned)c >= NPI_COLL_COUNT_)
        return NULL;
    return env_coll_names[c];
}

bool npi_coll_has_root(npi_coll c)
{
    switch (c) {
    case NPI_COLL_BCAST:
    case NPI_COLL_SCATTER:
    case NPI_COLL_SCATTERV:
    case NPI_COLL_GATHER:
    case NPI_COLL_GATHERV:
    case NPI_COLL_REDUCE:
        return true;
    default:
        return false;
    }
}

bool npi_coll_has_op(npi_coll c)
{
    return c == NPI_COLL_REDUCE || c == NPI_COLL_ALLREDUCE;
}

/* ------------------------------------------------------------ semantic rules */

/*
 * The rules every envelope obeys, applied by the encoder (so a bug is caught
 * at the sender, with code NP_ERR_ARG) and by the decoder (NP_ERR_PROTOCOL).
 * Field ranges that the C types already enforce (tag and source fit int32)
 * are checked on decode when converting from msgpack.
 */
static np_err env_validate(const npi_envelope *e, np_err code, const char *who)
{
    if ((unsigned)e->kind >= NPI_ENV_KIND_COUNT_)
        return npi_error(code, "%s: unknown kind %d", who, (int)e->kind);
    if (e->tag < 0)
        return npi_error(code, "%s: negative tag %" PRId32, who, e->tag);
    if (e->source < 0)
        return npi_error(code, "%s: negative source rank %" PRId32, who, e->source);
    size_t esize = np_dtype_size(e->dtype);
    if (esize == 0)
        return npi_error(code, "%s: unknown dtype %d", who, (int)e->dtype);
    /* Refuse sizes no buffer can have before anyone multiplies with them. */
    if (e->count > NPI_ENVELOPE_BYTES_MAX / esize)
        return npi_error(code,
                         "%s: count %" PRIu64 " of %s is more than %" PRIu64
                         " bytes, larger than any process can hold",
                         who, e->count, np_dtype_name(e->dtype), NPI_ENVELOPE_BYTES_MAX);
    uint64_t bytes = e->count * esize;
    if (e->payload_len > NPI_ENVELOPE_BYTES_MAX)
        return npi_error(code, "%s: payload length %" PRIu64 " is larger than any process can hold",
                         who, e->payload_len);
    if (e->kind == NPI_ENV_P2P) {
        /* A point-to-point message carries its whole buffer; any other length
         * would make the receiver overrun or under-fill it. */
        if (e->payload_len != bytes)
            return npi_error(code,
                             "%s: point-to-point payload of %" PRIu64 " bytes, but count %" PRIu64
                             " of %s is %" PRIu64 " bytes",
                             who, e->payload_len, e->count, np_dtype_name(e->dtype), bytes);
        return NP_OK;
    }
    const char *name = npi_coll_name(e->coll);
    if (name == NULL)
        return npi_error(code, "%s: unknown collective %d", who, (int)e->coll);
    if (npi_coll_has_root(e->coll) ? e->root < 0 : e->root != -1)
        return npi_error(code, "%s: np_%s with root %" PRId32 " (expected %s)", who, name, e->root,
                         npi_coll_has_root(e->coll) ? "a rank >= 0" : "-1, none");
    if (npi_coll_has_op(e->coll) ? e->op < 0 : e->op != NP_OP_NULL)
        return npi_error(code, "%s: np_%s with op %" PRId32 " (expected %s)", who, name,
                         (int32_t)e->op,
                         npi_coll_has_op(e->coll) ? "an op >= 0" : "-1, NP_OP_NULL");
    if (e->coll == NPI_COLL_BARRIER && (e->count != 0 || e->payload_len != 0))
        return npi_error(code,
                         "%s: np_barrier with count %" PRIu64 " and payload %" PRIu64
                         " (expected 0 and 0)",
                         who, e->count, e->payload_len);
    return NP_OK;
}

/* ------------------------------------------------------------ encode */

/* A msgpack-c write callback over a fixed caller buffer. */
typedef struct env_sink {
    char *buf;
    size_t cap, len;
} env_sink;

static int env_sink_write(void *data, const char *src, size_t n)
{
    env_sink *s = data;
    if (n > s->cap - s->len)
        return -1;
    memcpy(s->buf + s->len, src, n);
    s->len += n;
    return 0;
}

np_err npi_envelope_encode(const npi_envelope *e, void *buf, size_t cap, size_t *len)
{
    if (len != NULL)
        *len = 0;
    if (e == NULL || len == NULL || (buf == NULL && cap > 0))
        return npi_error(NP_ERR_NULL, "npi_envelope_encode: NULL argument");
    np_err err = env_validate(e, NP_ERR_ARG, "npi_envelope_encode");
    if (err != NP_OK)
        return err;

    env_sink sink = {.buf = buf, .cap = cap, .len = 0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sink, env_sink_write);
    int rc = msgpack_pack_array(&pk, NPI_ENVELOPE_FIELDS);
    rc |= msgpack_pack_uint32(&pk, NPI_ENVELOPE_VERSION);
    rc |= msgpack_pack_uint32(&pk, (uint32_t)e->kind);
    rc |= msgpack_pack_uint64(&pk, e->comm_id);
    rc |= msgpack_pack_int32(&pk, e->tag);
    rc |= msgpack_pack_uint64(&pk, e->seq);
    rc |= msgpack_pack_int32(&pk, e->source);
    rc |= msgpack_pack_uint32(&pk, (uint32_t)e->dtype);
    rc |= msgpack_pack_uint64(&pk, e->count);
    rc |= msgpack_pack_uint64(&pk, e->payload_len);
    if (e->kind == NPI_ENV_COLL) {
        rc |= msgpack_pack_uint32(&pk, (uint32_t)e->coll);
        rc |= msgpack_pack_int32(&pk, e->root);
        rc |= msgpack_pack_int32(&pk, e->op);
    } else {
        rc |= msgpack_pack_nil(&pk);
        rc |= msgpack_pack_nil(&pk);
        rc |= msgpack_pack_nil(&pk);
    }
    /* The sink fails only when the buffer is full, so any failure means it is
     * too small; the bytes written before that are left unspecified. */
    if (rc != 0)
        return npi_error(NP_ERR_TRUNCATE,
                         "npi_envelope_encode: %zu-byte buffer too small (NPI_ENVELOPE_MAX is %d)",
                         cap, NPI_ENVELOPE_MAX);
    *len = sink.len;
    return NP_OK;
}

/* ------------------------------------------------------------ decode, pass 1: scan */

static uint64_t env_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/*
 * Step over the element starting at p[*pos] (len bytes in all).  Scalars,
 * strings, binaries and extensions are stepped over (the latter are wrong in
 * an envelope, but pass 2 names the field and type); nested arrays and maps
 * and the reserved byte 0xc1 are refused here.  Lengths are compared against
 * what remains, never added to a pointer first, so nothing can overflow.
 */
static np_err env_skip(const uint8_t *p, size_t len, size_t *pos, int field, const char *who)
{
    const char *fname = field < NPI_ENVELOPE_FIELDS ? env_field_names[field] : "extra element";
    size_t at = *pos;
    if (at >= len)
        return npi_error(NP_ERR_PROTOCOL, "%s: truncated before %s (element %d) at byte %zu", who,
                         fname, field, at);
    uint8_t b = p[at];
    size_t head = 1;  /* header bytes, including the type byte */
    size_t lenb = 0;  /* bytes of big-endian length after the type byte */
    size_t extra = 0; /* fixed bytes after the length (an ext's type) */
    uint64_t body = 0;

    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        body = 0; /* fixint, nil, bool */
    } else if (b >= 0xa0 && b <= 0xbf) {
        body = b & 0x1f; /* fixstr */
    } else if ((b >= 0x80 && b <= 0x9f) || (b >= 0xdc && b <= 0xdf)) {
        return npi_error(NP_ERR_PROTOCOL,
                         "%s: %s (element %d) is a nested %s; envelopes hold only scalars", who,
                         fname, field, (b <= 0x8f || b >= 0xde) ? "map" : "array");
    } else {
        switch (b) {
        case 0xcc:
        case 0xd0:
            body = 1;
            break;
        case 0xcd:
        case 0xd1:
            body = 2;
            break;
        case 0xca:
        case 0xce:
        case 0xd2:
            body = 4;
            break;
        case 0xcb:
        case 0xcf:
        case 0xd3:
            body = 8;
            break;
        case 0xd4:
            body = 1 + 1;
            break;
        case 0xd5:
            body = 1 + 2;
            break;
        case 0xd6:
            body = 1 + 4;
            break;
        case 0xd7:
            body = 1 + 8;
            break;
        case 0xd8:
            body = 1 + 16;
            break;
        case 0xc4:
        case 0xd9:
            lenb = 1;
            break;
        case 0xc5:
        case 0xda:
            lenb = 2;
            break;
        case 0xc6:
        case 0xdb:
            lenb = 4;
            break;
        case 0xc7:
            lenb = 1;
            extra = 1;
            break;
        case 0xc8:
            lenb = 2;
            extra = 1;
            break;
        case 0xc9:
            lenb = 4;
            extra = 1;
            break;
        default: /* 0xc1 is reserved by the msgpack specification */
            return npi_error(NP_ERR_PROTOCOL,
                             "%s: %s (element %d) starts with reserved byte 0x%02x", who, fname,
                             field, b);
        }
    }
    if (lenb > 0) {
        if (len - at - 1 < lenb)
            goto truncated;
        body = env_be(p + at + 1, lenb) + extra;
        head += lenb;
    }
    if (len - at < head || len - at - head < body)
        goto truncated;
    *pos = at + head + (size_t)body;
    return NP_OK;

truncated:
    return npi_error(NP_ERR_PROTOCOL,
                     "%s: truncated inside %s (element %d, starting at byte %zu of %zu)", who,
                     fname, field, at, len);
}

/* Read element 0 as an unsigned integer straight from the bytes, so a future
 * version with a different arity is reported as a version, not an arity. */
static bool env_raw_uint(const uint8_t *p, size_t len, uint64_t *v)
{
    if (len < 1)
        return false;
    if (p[0] <= 0x7f) {
        *v = p[0];
        return true;
    }
    size_t n = p[0] == 0xcc ? 1 : p[0] == 0xcd ? 2 : p[0] == 0xce ? 4 : p[0] == 0xcf ? 8 : 0;
    if (n == 0 || len - 1 < n)
        return false;
    *v = env_be(p + 1, n);
    return true;
}

/* Check the outer array and its elements' extent; *end is the first byte
 * after the envelope. */
static np_err env_scan(const uint8_t *p, size_t len, size_t *end, const char *who)
{
    if (len == 0)
        return npi_error(NP_ERR_PROTOCOL, "%s: empty input", who);
    uint8_t b = p[0];
    uint64_t n;
    size_t pos;
    if (b >= 0x90 && b <= 0x9f) {
        n = b & 0x0f;
        pos = 1;
    } else if (b == 0xdc || b == 0xdd) {
        /* Not what msgpack-c writes for 12 elements, but legal msgpack. */
        size_t lenb = b == 0xdc ? 2 : 4;
        if (len - 1 < lenb)
            return npi_error(NP_ERR_PROTOCOL, "%s: truncated array header (%zu bytes)", who, len);
        n = env_be(p + 1, lenb);
        pos = 1 + lenb;
    } else {
        return npi_error(NP_ERR_PROTOCOL, "%s: not a msgpack array (first byte 0x%02x)", who, b);
    }
    if (n == 0)
        return npi_error(NP_ERR_PROTOCOL, "%s: empty array, no version", who);
    uint64_t version;
    if (env_raw_uint(p + pos, len - pos, &version) && version != NPI_ENVELOPE_VERSION)
        return npi_error(NP_ERR_PROTOCOL,
                         "%s: unknown envelope version %" PRIu64 " (this build reads version %d)",
                         who, version, NPI_ENVELOPE_VERSION);
    if (n != NPI_ENVELOPE_FIELDS)
        return npi_error(NP_ERR_PROTOCOL, "%s: array of %" PRIu64 " elements, expected %d", who, n,
                         NPI_ENVELOPE_FIELDS);
    for (int i = 0; i < NPI_ENVELOPE_FIELDS; i++) {
        np_err err = env_skip(p, len, &pos, i, who);
        if (err != NP_OK)
            return err;
    }
    *end = pos;
    return NP_OK;
}

/* ------------------------------------------------------------ decode, pass 2: fields */

static const char *env_type_name(msgpack_object_type t)
{
    switch (t) {
    case MSGPACK_OBJECT_NIL:
        return "nil";
    case MSGPACK_OBJECT_BOOLEAN:
        return "boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return "integer";
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return "negative integer";
    case MSGPACK_OBJECT_FLOAT32:
        return "float32";
    case MSGPACK_OBJECT_FLOAT64:
        return "float64";
    case MSGPACK_OBJECT_STR:
        return "str";
    case MSGPACK_OBJECT_BIN:
        return "bin";
    case MSGPACK_OBJECT_EXT:
        return "ext";
    case MSGPACK_OBJECT_ARRAY:
        return "array";
    case MSGPACK_OBJECT_MAP:
        return "map";
    }
    return "unknown";
}

/* Element i as an integer in [lo, hi]. */
static np_err env_int(const msgpack_object *o, int i, int64_t lo, uint64_t hi, int64_t *out,
                      const char *who)
{
    const char *f = env_field_names[i];
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > hi)
            return npi_error(NP_ERR_PROTOCOL,
                             "%s: %s %" PRIu64 " out of range (at most %" PRIu64 ")", who, f,
                             o->via.u64, hi);
        *out = (int64_t)o->via.u64; /* hi never exceeds INT64_MAX for signed fields */
        return NP_OK;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        if (o->via.i64 < lo)
            return npi_error(NP_ERR_PROTOCOL,
                             "%s: %s %" PRId64 " out of range (at least %" PRId64 ")", who, f,
                             o->via.i64, lo);
        *out = o->via.i64;
        return NP_OK;
    }
    return npi_error(NP_ERR_PROTOCOL, "%s: %s (element %d) is a msgpack %s, expected an integer",
                     who, f, i, env_type_name(o->type));
}

/* Element i as an unsigned 64-bit integer. */
static np_err env_u64(const msgpack_object *o, int i, uint64_t *out, const char *who)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *out = o->via.u64;
        return NP_OK;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return npi_error(NP_ERR_PROTOCOL, "%s: %s %" PRId64 " is negative", who, env_field_names[i],
                         o->via.i64);
    return npi_error(NP_ERR_PROTOCOL, "%s: %s (element %d) is a msgpack %s, expected an integer",
                     who, env_field_names[i], i, env_type_name(o->type));
}

static np_err env_fields(const msgpack_object *a, npi_envelope *e, const char *who)
{
    int64_t v;
    np_err err;
    /* The scan refused other versions already when element 0 used an
     * unsigned encoding; this covers signed encodings and other types. */
    if ((err = env_int(&a[ENV_F_VERSION], ENV_F_VERSION, INT64_MIN, INT64_MAX, &v, who)) != NP_OK)
        return err;
    if (v != NPI_ENVELOPE_VERSION)
        return npi_error(NP_ERR_PROTOCOL,
                         "%s: unknown envelope version %" PRId64 " (this build reads version %d)",
                         who, v, NPI_ENVELOPE_VERSION);
    e->version = (uint32_t)v;
    if ((err = env_int(&a[ENV_F_KIND], ENV_F_KIND, 0, NPI_ENV_KIND_COUNT_ - 1, &v, who)) != NP_OK)
        return err;
    e->kind = (npi_env_kind)v;
    if ((err = env_u64(&a[ENV_F_COMM], ENV_F_COMM, &e->comm_id, who)) != NP_OK)
        return err;
    if ((err = env_int(&a[ENV_F_TAG], ENV_F_TAG, 0, INT32_MAX, &v, who)) != NP_OK)
        return err;
    e->tag = (int32_t)v;
    if ((err = env_u64(&a[ENV_F_SEQ], ENV_F_SEQ, &e->seq, who)) != NP_OK)
        return err;
    if ((err = env_int(&a[ENV_F_SOURCE], ENV_F_SOURCE, 0, INT32_MAX, &v, who)) != NP_OK)
        return err;
    e->source = (int32_t)v;
    if ((err = env_int(&a[ENV_F_DTYPE], ENV_F_DTYPE, 0, NP_DTYPE_COUNT_ - 1, &v, who)) != NP_OK)
        return err;
    e->dtype = (np_dtype)v;
    if ((err = env_u64(&a[ENV_F_COUNT], ENV_F_COUNT, &e->count, who)) != NP_OK)
        return err;
    if ((err = env_u64(&a[ENV_F_PAYLOAD], ENV_F_PAYLOAD, &e->payload_len, who)) != NP_OK)
        return err;

    if (e->kind == NPI_ENV_P2P) {
        for (int i = ENV_F_COLL; i <= ENV_F_OP; i++)
            if (a[i].type != MSGPACK_OBJECT_NIL)
                return npi_error(NP_ERR_PROTOCOL,
                                 "%s: point-to-point message with a %s %s (expected nil)", who,
                                 env_type_name(a[i].type), env_field_names[i]);
        e->coll = NPI_COLL_COUNT_;
        e->root = -1;
        e->op = NP_OP_NULL;
    } else {
        if ((err = env_int(&a[ENV_F_COLL], ENV_F_COLL, 0, NPI_COLL_COUNT_ - 1, &v, who)) != NP_OK)
            return err;
        e->coll = (npi_coll)v;
        if ((err = env_int(&a[ENV_F_ROOT], ENV_F_ROOT, -1, INT32_MAX, &v, who)) != NP_OK)
            return err;
        e->root = (int32_t)v;
        if ((err = env_int(&a[ENV_F_OP], ENV_F_OP, NP_OP_NULL, INT32_MAX, &v, who)) != NP_OK)
            return err;
        e->op = (np_op)v;
    }
    return env_validate(e, NP_ERR_PROTOCOL, who);
}

static np_err env_decode(const void *buf, size_t len, npi_envelope *e, size_t *used, bool exact)
{
    const char *who = "envelope decode";
    if (buf == NULL && len > 0)
        return npi_error(NP_ERR_NULL, "%s: NULL buffer of %zu bytes", who, len);
    if (e == NULL)
        return npi_error(NP_ERR_NULL, "%s: NULL envelope", who);
    size_t end = 0;
    np_err err = env_scan(buf, len, &end, who);
    if (err != NP_OK)
        return err;
    if (exact && end != len)
        return npi_error(NP_ERR_PROTOCOL,
                         "%s: %zu bytes of trailing garbage after a %zu-byte envelope", who,
                         len - end, end);

    /* One array of NPI_ENVELOPE_FIELDS objects: the chunk never grows. */
    msgpack_zone zone;
    if (!msgpack_zone_init(&zone, 512))
        return npi_error(NP_ERR_NOMEM, "%s: cannot allocate a msgpack zone", who);
    msgpack_object obj;
    size_t off = 0;
    msgpack_unpack_return rc = msgpack_unpack(buf, end, &off, &zone, &obj);
    if (rc != MSGPACK_UNPACK_SUCCESS || off != end || obj.type != MSGPACK_OBJECT_ARRAY ||
        obj.via.array.size != NPI_ENVELOPE_FIELDS) {
        /* The scan accepted these bytes, so msgpack-c disagreeing is a bug
         * on one side or the other; still a protocol error, never a crash. */
        err = rc == MSGPACK_UNPACK_NOMEM_ERROR
                  ? npi_error(NP_ERR_NOMEM, "%s: msgpack-c out of memory", who)
                  : npi_error(NP_ERR_PROTOCOL, "%s: msgpack-c rejected the envelope (code %d)", who,
                              (int)rc);
        goto out;
    }
    err = env_fields(obj.via.array.ptr, e, who);
    if (err == NP_OK && used != NULL)
        *used = end;
out:
    msgpack_zone_destroy(&zone);
    return err;
}

np_err npi_envelope_decode(const void *buf, size_t len, npi_envelope *e)
{
    return env_decode(buf, len, e, NULL, true);
}

np_err npi_envelope_decode_prefix(const void *buf, size_t len, npi_envelope *e, size_t *used)
{
    if (used == NULL)
        return npi_error(NP_ERR_NULL, "envelope decode: NULL used");
    *used = 0;
    return env_decode(buf, len, e, used, false);
}

/* ------------------------------------------------------------ signatures */

void npi_envelope_sig(const npi_envelope *e, npi_coll_sig *sig)
{
    sig->coll = e->coll;
    sig->dtype = e->dtype;
    sig->count = e->count;
    sig->root = e->root;
    sig->op = e->op;
}

int npi_coll_sig_format(const npi_coll_sig *s, char *buf, size_t cap)
{
    char coll[32], dtype[24], op[32], root[24];
    const char *cname = npi_coll_name(s->coll);
    if (cname != NULL)
        snprintf(coll, sizeof coll, "np_%s", cname);
    else
        snprintf(coll, sizeof coll, "unknown collective %d", (int)s->coll);
    if (s->coll == NPI_COLL_BARRIER)
        return snprintf(buf, cap, "%s()", coll);

    const char *dname = np_dtype_name(s->dtype);
    if (dname != NULL)
        snprintf(dtype, sizeof dtype, "%s", dname);
    else
        snprintf(dtype, sizeof dtype, "dtype %d", (int)s->dtype);
    op[0] = '\0';
    if (npi_coll_has_op(s->coll)) {
        /* A peer's user op handle need not be live here, so fall back to
         * its number rather than trusting the local op table. */
        const char *oname = s->op < NP_OP_BUILTIN_COUNT_ ? np_op_name(s->op) : NULL;
        if (oname != NULL)
            snprintf(op, sizeof op, ", %s", oname);
        else
            snprintf(op, sizeof op, ", op %" PRId32, (int32_t)s->op);
    }
    root[0] = '\0';
    if (npi_coll_has_root(s->coll))
        snprintf(root, sizeof root, ", root %" PRId32, s->root);
    return snprintf(buf, cap, "%s(count=%" PRIu64 ", %s%s%s)", coll, s->count, dtype, op, root);
}

bool npi_coll_sig_equal(const npi_coll_sig *a, const npi_coll_sig *b)
{
    if (a->coll != b->coll || a->dtype != b->dtype)
        return false;
    bool per_rank_count = a->coll == NPI_COLL_SCATTERV || a->coll == NPI_COLL_GATHERV;
    if (!per_rank_count && a->count != b->count)
        return false;
    if (npi_coll_has_root(a->coll) && a->root != b->root)
        return false;
    if (npi_coll_has_op(a->coll) && a->op != b->op)
        return false;
    return true;
}

np_err npi_coll_sig_check(const npi_coll_sig *mine, int my_rank, const npi_coll_sig *theirs,
                          int their_rank)
{
    if (npi_coll_sig_equal(mine, theirs))
        return NP_OK;
    char a[NPI_COLL_SIG_MAX], b[NPI_COLL_SIG_MAX];
    npi_coll_sig_format(mine, a, sizeof a);
    npi_coll_sig_format(theirs, b, sizeof b);
    return npi_error(NP_ERR_MISMATCH, "rank %d called %s but rank %d called %s", my_rank, a,
                     their_rank, b);
}
