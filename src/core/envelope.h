/*
 * Message envelopes: the metadata that precedes every message on the fabric.
 *
 * An envelope is a msgpack array of fixed arity whose first element is the
 * format version.  A fixed array (rather than a map) keeps an encoding small
 * (about 20 bytes for a typical message) and lets the decoder know, before it
 * reads anything else, exactly how many scalars to expect, so that a hostile
 * or corrupted peer can make it neither allocate much nor read past its input.
 *
 * Wire format, version 1 (every element an integer unless noted):
 *
 *   [0]  version       1
 *   [1]  kind          0 point to point, 1 collective
 *   [2]  comm id       uint64
 *   [3]  tag           0..INT32_MAX
 *   [4]  sequence      uint64
 *   [5]  source rank   0..INT32_MAX
 *   [6]  dtype         np_dtype value
 *   [7]  count         uint64, elements
 *   [8]  payload len   uint64, bytes that follow the envelope
 *   [9]  collective    npi_coll value; nil for point to point
 *   [10] root          0..INT32_MAX, or -1 for collectives without a root; nil for p2p
 *   [11] op            np_op value, or -1 (NP_OP_NULL) for collectives without an
 *                      op; nil for p2p
 *
 * Integers may use any msgpack width (other encoders pick the smallest), but
 * their values must be in range.  Anything else is NP_ERR_PROTOCOL with a
 * detail message saying which field was wrong and how.
 *
 * The shared-memory fast path does not use envelopes (a msgpack decode per
 * small broadcast would cost more than the broadcast); it carries the same
 * npi_coll_sig in its fixed binary header and uses the same mismatch check.
 */
#ifndef NUMPUSH_ENVELOPE_H
#define NUMPUSH_ENVELOPE_H

#include "npi.h"

/* The format version this build writes and the only one it reads. */
#define NPI_ENVELOPE_VERSION 1

/* Number of elements in a version-1 envelope. */
#define NPI_ENVELOPE_FIELDS 12

/* An upper bound on the encoded size: the array header plus at most nine
 * bytes (a uint64 or int64) per element.  A buffer this large never gives
 * NP_ERR_TRUNCATE. */
#define NPI_ENVELOPE_MAX (1 + 9 * NPI_ENVELOPE_FIELDS)

/* The largest count * dtype size or payload length a decoder accepts.  No
 * process can hold a larger buffer (x86-64 and AArch64 user address spaces
 * are at most 2^56 bytes even with 5-level page tables), so anything larger
 * is corruption, and refusing it early keeps later size arithmetic free of
 * overflow. */
#define NPI_ENVELOPE_BYTES_MAX ((uint64_t)1 << 56)

/* What a message is.  Values travel on the wire: append, never renumber. */
typedef enum npi_env_kind {
    NPI_ENV_P2P = 0,  /* np_send / np_recv */
    NPI_ENV_COLL = 1, /* part of a collective */
    NPI_ENV_KIND_COUNT_
} npi_env_kind;

/* Collective operations.  Values travel on the wire: append, never renumber. */
typedef enum npi_coll {
    NPI_COLL_BARRIER = 0,
    NPI_COLL_BCAST = 1,
    NPI_COLL_SCATTER = 2,
    NPI_COLL_SCATTERV = 3,
    NPI_COLL_GATHER = 4,
    NPI_COLL_GATHERV = 5,
    NPI_COLL_ALLREDUCE = 6,
    NPI_COLL_REDUCE = 7,
    NPI_COLL_ALLGATHER = 8,
    NPI_COLL_ALLTOALL = 9,
    NPI_COLL_COUNT_
} npi_coll;

typedef struct npi_envelope {
    uint32_t version;     /* set by decode; encode always writes NPI_ENVELOPE_VERSION */
    npi_env_kind kind;    /* NPI_ENV_P2P or NPI_ENV_COLL */
    uint64_t comm_id;     /* communicator the message belongs to */
    int32_t tag;          /* 0..INT32_MAX (user tags stop at NP_TAG_MAX) */
    uint64_t seq;         /* per (comm, source) sequence number */
    int32_t source;       /* sender's rank in the communicator, >= 0 */
    np_dtype dtype;       /* element type */
    uint64_t count;       /* elements (p2p: in this message; coll: per rank, as called) */
    uint64_t payload_len; /* bytes following the envelope */
    /* Collectives only; encode ignores them and decode sets them to
     * NPI_COLL_COUNT_, -1 and NP_OP_NULL for point to point. */
    npi_coll coll;
    int32_t root; /* -1 for barrier, allreduce, allgather, alltoall */
    np_op op;     /* NP_OP_NULL unless coll is reduce or allreduce */
} npi_envelope;

/*
 * Encode e into buf (cap bytes) and store the number of bytes written in
 * *len.  Non-blocking, no allocation; buf is the caller's.
 * Errors: NP_ERR_ARG if e breaks the rules a decoder enforces (so a bad
 * envelope is caught at its sender), NP_ERR_TRUNCATE if cap is too small
 * (cap >= NPI_ENVELOPE_MAX always suffices), NP_ERR_NULL for NULL pointers.
 * On error *len is 0.
 */
np_err npi_envelope_encode(const npi_envelope *e, void *buf, size_t cap, size_t *len);

/*
 * Decode exactly len bytes at buf into *e.  Strict: anything other than
 * one well-formed envelope (wrong msgpack types, truncation, trailing bytes,
 * unknown version, kind, dtype, collective or op, out-of-range values,
 * count * dtype size overflowing or beyond NPI_ENVELOPE_BYTES_MAX, a p2p
 * payload length that disagrees with its count) is NP_ERR_PROTOCOL with a
 * detail message.  Never reads outside [buf, buf + len); allocates at most
 * one small bounded block (msgpack-c's zone).  On error *e is unspecified.
 * Errors: NP_ERR_PROTOCOL, NP_ERR_NULL, NP_ERR_NOMEM.
 */
np_err npi_envelope_decode(const void *buf, size_t len, npi_envelope *e);

/*
 * As npi_envelope_decode, for an envelope followed by other bytes (the
 * payload, on a stream): decode the envelope at the start of buf and store
 * its encoded length in *used.  An envelope that does not fit in len bytes
 * is NP_ERR_PROTOCOL ("truncated"), so stream transports should frame the
 * envelope (a one-byte length suffices: NPI_ENVELOPE_MAX < 256) rather than
 * retry with more bytes.
 */
np_err npi_envelope_decode_prefix(const void *buf, size_t len, npi_envelope *e, size_t *used);

/* ------------------------------------------------------------ collective signatures */

/* What every rank of a collective must agree on.  For scatterv and gatherv,
 * count is the caller's own count, which legitimately differs between ranks;
 * it is printed but not compared. */
typedef struct npi_coll_sig {
    npi_coll coll;
    np_dtype dtype;
    uint64_t count;
    int32_t root; /* -1 if the collective has none */
    np_op op;     /* NP_OP_NULL if the collective has none */
} npi_coll_sig;

/* The longest string npi_coll_sig_format produces, with its terminator. */
#define NPI_COLL_SIG_MAX 96

/* "bcast" for NPI_COLL_BCAST; NULL for an unknown value. */
const char *npi_coll_name(npi_coll c);

/* Whether c takes a root (bcast, scatter(v), gather(v), reduce) or an op
 * (reduce, allreduce).  False for unknown values. */
bool npi_coll_has_root(npi_coll c);
bool npi_coll_has_op(npi_coll c);

/* The signature carried by a collective envelope. */
void npi_envelope_sig(const npi_envelope *e, npi_coll_sig *sig);

/* Write s as a call, "np_bcast(count=10, float64, root 0)" or
 * "np_allreduce(count=3, int32, sum)", into buf (snprintf semantics: always
 * terminated when cap > 0; returns the length it wanted). */
int npi_coll_sig_format(const npi_coll_sig *s, char *buf, size_t cap);

/* Whether two ranks' calls agree (see npi_coll_sig for scatterv/gatherv). */
bool npi_coll_sig_equal(const npi_coll_sig *a, const npi_coll_sig *b);

/* NP_OK if mine and theirs agree; otherwise NP_ERR_MISMATCH with the detail
 * "rank 0 called np_reduce(count=10, float64, sum, root 0) but rank 2 called
 * np_bcast(count=10, float64, root 0)" (mine first). */
np_err npi_coll_sig_check(const npi_coll_sig *mine, int my_rank, const npi_coll_sig *theirs,
                          int their_rank);

#endif
