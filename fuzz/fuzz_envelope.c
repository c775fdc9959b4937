/*
 * libFuzzer target for the envelope decoder (see fuzz/README.md).
 *
 * Every input must either decode or give NP_ERR_PROTOCOL; anything else, a
 * crash, a sanitizer report or an allocation beyond libFuzzer's -rss_limit_mb
 * is a bug.  An input that decodes must also survive a round trip: encoding
 * the result and decoding it again gives the same envelope, and the prefix
 * decoder agrees with the exact one.
 */
#include "envelope.h"

#include <stdlib.h>
#include <string.h>

static void fuzz_require(bool ok)
{
    if (!ok)
        abort();
}

static bool fuzz_same(const npi_envelope *a, const npi_envelope *b)
{
    return a->version == b->version && a->kind == b->kind && a->comm_id == b->comm_id &&
           a->tag == b->tag && a->seq == b->seq && a->source == b->source && a->dtype == b->dtype &&
           a->count == b->count && a->payload_len == b->payload_len && a->coll == b->coll &&
           a->root == b->root && a->op == b->op;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    npi_envelope e;
    np_err err = npi_envelope_decode(data, size, &e);
    fuzz_require(err == NP_OK || err == NP_ERR_PROTOCOL);

    /* The prefix decoder accepts the same envelopes plus trailing bytes. */
    npi_envelope p;
    size_t used = 0;
    np_err perr = npi_envelope_decode_prefix(data, size, &p, &used);
    fuzz_require(perr == NP_OK || perr == NP_ERR_PROTOCOL);
    if (err == NP_OK)
        fuzz_require(perr == NP_OK && used == size && fuzz_same(&e, &p));
    if (perr == NP_OK)
        fuzz_require(used > 0 && used <= size && used <= NPI_ENVELOPE_MAX + 8);
    if (err != NP_OK)
        return 0;

    char buf[NPI_ENVELOPE_MAX];
    size_t len = 0;
    fuzz_require(npi_envelope_encode(&e, buf, sizeof buf, &len) == NP_OK);
    npi_envelope again;
    fuzz_require(npi_envelope_decode(buf, len, &again) == NP_OK);
    fuzz_require(fuzz_same(&e, &again));

    if (e.kind == NPI_ENV_COLL) {
        npi_coll_sig s;
        char text[NPI_COLL_SIG_MAX];
        npi_envelope_sig(&e, &s);
        fuzz_require(npi_coll_sig_format(&s, text, sizeof text) < NPI_COLL_SIG_MAX);
        fuzz_require(npi_coll_sig_equal(&s, &s));
    }
    return 0;
}
