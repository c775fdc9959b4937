/*
 * The arrival round and argument checks shared by every collective.
 *
 * Running ahead.  In an eager call, most ranks need at most one peer:
 * the root of a broadcast or scatter needs no one, their receivers need
 * only the root's post, a non-root of a gather or reduce needs no one.
 * Waiting in the arrival round for every peer would cost each of them a
 * round trip to every rank (about 2 us with four ranks on two cores, where
 * the peers may not even be running) for nothing but the mismatch check.
 * Such a rank (x->ahead) publishes, waits for the one post it needs
 * (x->ahead_wait), checks that post's signature against its own, and
 * returns.  It then waits for every arrival at the start of its next call
 * on the communicator, which it must do anyway before it reuses the post
 * and eager area of that parity, and compares every signature there.  So:
 *   - a rank whose call disagrees with the post it reads (its root's, or
 *     any rank's where it waits for all) gets NP_ERR_MISMATCH from the call
 *     itself, and never a wrong result;
 *   - every other rank of a call where some ranks disagree gets
 *     NP_ERR_MISMATCH from that call or, if it ran ahead, from its next
 *     collective on the communicator at the latest; that next call has still
 *     done its own work in step with the others (the message says the
 *     mismatch was in the previous call), so the communicator stays usable;
 *   - a rank runs ahead by one call at most (posts alternate by parity),
 *     so no rank is ever more than one call ahead of the slowest.
 * A peer's death during a call a rank ran ahead of is likewise reported
 * by its next call.
 */
#include "coll.h"

#include <stdio.h>
#include <string.h>

static np_err coll_check(npi_call *x);
static npi_coll coll_of(const npi_shm_post *p);

/* The previous call ran ahead: wait until every rank has arrived at it
 * (after which none reads its post or eager area any more) and check the
 * signatures it skipped. */
static np_err coll_settle(npi_call *x)
{
    npi_call prev = *x;
    prev.seq = x->seq - 1;
    prev.base = prev.seq << NPI_STEP_BITS;
    prev.who = npi_coll_name(coll_of(npi_call_entry(&prev, x->me)));
    np_err err = npi_call_wait_all(&prev, 0);
    if (err != NP_OK)
        return err;
    if (!x->c->ahead_told && coll_check(&prev) != NP_OK) {
        np_comm *c = x->c;
        c->late_err = NP_ERR_MISMATCH;
        /* Drop the "rank N: " prefix: npi_error adds it again. */
        const char *msg = np_last_error(), *colon = strstr(msg, ": ");
        if (strncmp(msg, "rank ", 5) == 0 && colon)
            msg = colon + 2;
        snprintf(c->late_msg, sizeof c->late_msg, "%s: %s", x->who, msg);
    }
    return NP_OK;
}

np_err npi_call_end(npi_call *x, np_err err)
{
    np_comm *c = x->c;
    if (NPI_LIKELY(c->late_err == NP_OK))
        return err;
    np_err late = c->late_err;
    c->late_err = NP_OK;
    if (err != NP_OK)
        return err;
    return npi_error(late,
                     "%s (reported late: this rank had left the previous call before its "
                     "peers checked it; this call itself completed)",
                     c->late_msg);
}

np_err npi_call_begin(npi_call *x, np_comm *comm, npi_coll coll, const char *who)
{
    np_err err = npi_comm_check(comm, who);
    if (err != NP_OK)
        return err;
    if (!comm->has_shm)
        /* Communicators that span nodes are dispatched to hier.c before
         * this point, so getting here is a bug. */
        return npi_error(NP_ERR_INTERNAL,
                         "%s: shared-memory path on a communicator without a segment", who);
    if (atomic_load_explicit(&comm->shm.hdr->broken, memory_order_relaxed))
        return npi_error(NP_ERR_PEER, "%s: the communicator is broken (a rank died earlier)", who);
    x->c = comm;
    x->s = &comm->shm;
    x->me = comm->rank;
    x->n = comm->size;
    x->seq = ++comm->seq;
    x->base = x->seq << NPI_STEP_BITS;
    x->coll = coll;
    x->who = who;
    x->eager_bytes = 0;
    x->ahead = false;
    x->ahead_wait = -1;
    if (NPI_UNLIKELY(comm->ahead != 0)) {
        comm->ahead = 0;
        err = coll_settle(x);
        comm->ahead_told = false;
        return err;
    }
    return NP_OK;
}

np_err npi_call_wait_all(npi_call *x, uint64_t step)
{
    for (int q = 0; q < x->n; q++) {
        if (q == x->me)
            continue;
        np_err err = npi_call_wait(x, q, step);
        if (err != NP_OK)
            return err;
    }
    return NP_OK;
}

static bool coll_is_v(npi_coll c)
{
    return c == NPI_COLL_SCATTERV || c == NPI_COLL_GATHERV;
}

/* The small fields of a post share the flag's aux word. */
static uint32_t coll_aux(npi_coll c, np_dtype dt, npi_alg alg, np_err err)
{
    return (uint32_t)c | (uint32_t)dt << 8 | (uint32_t)alg << 16 | ((uint32_t)err & 0xffu) << 24;
}

static npi_coll coll_of(const npi_shm_post *p)
{
    return (npi_coll)(p->flag.aux & 0xffu);
}

static np_dtype coll_dtype_of(const npi_shm_post *p)
{
    return (np_dtype)(p->flag.aux >> 8 & 0xffu);
}

static npi_alg coll_alg_of(const npi_shm_post *p)
{
    return (npi_alg)(p->flag.aux >> 16 & 0xffu);
}

static np_err coll_err_of(const npi_shm_post *p)
{
    return (np_err)(p->flag.aux >> 24);
}

static void coll_sig_of(const npi_shm_post *e, npi_coll_sig *sig)
{
    sig->coll = coll_of(e);
    sig->dtype = coll_dtype_of(e);
    sig->count = e->count;
    sig->root = e->root;
    sig->op = e->op;
}

/* Whether rank q's call agrees with the reference post r. */
static bool coll_agree(const npi_shm_post *r, const npi_shm_post *q, const uint64_t *counts,
                       int qrank)
{
    if ((r->flag.aux & 0xffffffu) != (q->flag.aux & 0xffffffu))
        return false; /* collective, dtype or algorithm */
    npi_coll c = coll_of(r);
    if (npi_coll_has_root(c) && r->root != q->root)
        return false;
    if (npi_coll_has_op(c) && r->op != q->op)
        return false;
    if (coll_is_v(c))
        return counts[qrank] == q->count;
    return r->count == q->count;
}

/* Name every rank whose call differs from the reference rank's (only
 * rank only, if only >= 0: the others may not have published yet). */
static np_err coll_mismatch(npi_call *x, int ref, const uint64_t *counts, int only)
{
    char msg[900];
    size_t used = 0;
    char sig_text[NPI_COLL_SIG_MAX];
    npi_coll_sig sig;
    const npi_shm_post *r = npi_call_entry(x, ref);
    coll_sig_of(r, &sig);
    npi_coll_sig_format(&sig, sig_text, sizeof sig_text);
    used += (size_t)snprintf(msg + used, sizeof msg - used, "rank %d called %s [%s]", ref, sig_text,
                             npi_alg_name(coll_alg_of(r)));
    for (int q = 0; q < x->n && used < sizeof msg; q++) {
        const npi_shm_post *e = npi_call_entry(x, q);
        if (q == ref || (only >= 0 && q != only) || coll_agree(r, e, counts, q))
            continue;
        coll_sig_of(e, &sig);
        npi_coll_sig_format(&sig, sig_text, sizeof sig_text);
        used += (size_t)snprintf(msg + used, sizeof msg - used, "; rank %d called %s [%s]", q,
                                 sig_text, npi_alg_name(coll_alg_of(e)));
        if (coll_is_v(coll_of(r)) && counts[q] != e->count && used < sizeof msg)
            used += (size_t)snprintf(msg + used, sizeof msg - used,
                                     " but the root's counts[%d] is %llu", q,
                                     (unsigned long long)counts[q]);
    }
    return npi_error(NP_ERR_MISMATCH, "%s: ranks disagree: %s", x->who, msg);
}

np_err npi_call_arrive(npi_call *x, const npi_coll_sig *sig, npi_alg alg, const void *sbuf,
                       const void *rbuf, np_err local_err)
{
    npi_shm_post *e = npi_call_post_of(x, x->me);
    e->count = sig->count;
    e->sbuf = (uint64_t)(uintptr_t)sbuf;
    e->rbuf = (uint64_t)(uintptr_t)rbuf;
    e->op = sig->op;
    e->root = sig->root;
    e->flag.aux = coll_aux(sig->coll, sig->dtype, alg, local_err);
    npi_call_post(x, 0);
    if (x->ahead && local_err == NP_OK && x->n > 1) {
        x->c->ahead = x->seq;
        int q = x->ahead_wait;
        if (q < 0 || q == x->me)
            return NP_OK;
        np_err err = npi_call_wait(x, q, 0);
        if (err != NP_OK)
            return err;
        const npi_shm_post *o = npi_call_entry(x, q);
        if (coll_err_of(o) != NP_OK)
            err = npi_error(NP_ERR_MISMATCH, "%s: rank %d passed invalid arguments (%s)", x->who, q,
                            np_errname(coll_err_of(o)));
        else if (!coll_agree(o, npi_call_entry(x, x->me), npi_call_scratch(x), x->me))
            err = coll_mismatch(x, q, npi_call_scratch(x), x->me);
        /* Told now: the next call's check of this one must not tell again. */
        x->c->ahead_told = err != NP_OK;
        return err;
    }
    x->ahead = false;
    /* Keep the detail message of a local error: waiting must not replace it
     * unless waiting itself fails. */
    np_err err = npi_call_wait_all(x, 0);
    if (err != NP_OK)
        return err;
    if (local_err != NP_OK)
        return local_err;
    return coll_check(x);
}

np_err npi_coll_fail(np_comm *comm, const npi_coll_sig *sig, np_err bad, const char *who)
{
    /* Keep the message of the argument error: arriving must not replace
     * it unless arriving itself fails. */
    npi_call x;
    np_err err = npi_call_begin(&x, comm, sig->coll, who);
    if (err != NP_OK)
        return err;
    err = npi_call_arrive(&x, sig, NPI_ALG_EAGER, NULL, NULL, bad);
    return npi_call_end(&x, err);
}

/* Compare every rank's published signature for call x with the reference
 * rank's (the root's, else rank 0's). */
static np_err coll_check(npi_call *x)
{
    const npi_shm_post *mine = npi_call_entry(x, x->me);
    int ref = npi_coll_has_root(coll_of(mine)) ? mine->root : 0;
    if (ref < 0 || ref >= x->n)
        ref = x->me;
    const npi_shm_post *r = npi_call_entry(x, ref);
    const uint64_t *counts = npi_call_scratch(x);
    for (int q = 0; q < x->n; q++) {
        const npi_shm_post *o = npi_call_entry(x, q);
        if (coll_err_of(o) != NP_OK)
            return npi_error(NP_ERR_MISMATCH, "%s: rank %d passed invalid arguments (%s)", x->who,
                             q, np_errname(coll_err_of(o)));
    }
    for (int q = 0; q < x->n; q++)
        if (!coll_agree(r, npi_call_entry(x, q), counts, q))
            return coll_mismatch(x, ref, counts, -1);
    return NP_OK;
}

np_err npi_coll_check_dtype(np_dtype dt, size_t count, size_t mult, const char *who, size_t *bytes)
{
    *bytes = 0;
    if (!npi_dtype_valid(dt))
        return npi_error(NP_ERR_DTYPE, "%s: unknown datatype %d", who, (int)dt);
    size_t es = np_dtype_size(dt);
    if (count > SIZE_MAX / es / (mult ? mult : 1))
        return npi_error(NP_ERR_COUNT, "%s: count %zu of %s is too large", who, count,
                         np_dtype_name(dt));
    *bytes = count * es;
    return NP_OK;
}

np_err npi_coll_check_root(int root, int n, const char *who)
{
    if (root < 0 || root >= n)
        return npi_error(NP_ERR_ROOT, "%s: root %d out of range for a communicator of size %d", who,
                         root, n);
    return NP_OK;
}

np_err npi_coll_check_buf(const void *buf, size_t count, const char *who, const char *what)
{
    if (buf == NULL && count > 0)
        return npi_error(NP_ERR_NULL, "%s: %s is NULL with count %zu", who, what, count);
    return NP_OK;
}

np_err npi_coll_publish_vcounts(npi_call *x, const size_t *counts, const size_t *displs,
                                np_dtype dt, const void *buf, const char *what, const char *who)
{
    if (counts == NULL || displs == NULL)
        return npi_error(NP_ERR_NULL, "%s: counts or displs is NULL at the root", who);
    size_t es = np_dtype_size(dt), max = 0;
    for (int q = 0; q < x->n; q++) {
        size_t b;
        np_err bad = npi_coll_check_dtype(dt, counts[q], 1, who, &b);
        if (bad != NP_OK)
            return bad;
        if (displs[q] > SIZE_MAX / es - counts[q])
            return npi_error(NP_ERR_COUNT, "%s: displs[%d] + counts[%d] overflows", who, q, q);
        if (b > max)
            max = b;
    }
    np_err bad = npi_coll_check_buf(buf, max, who, what);
    if (bad != NP_OK)
        return bad;
    uint64_t *pub = npi_call_scratch(x);
    for (int q = 0; q < x->n; q++) {
        pub[q] = counts[q];
        pub[x->n + q] = displs[q];
    }
    return NP_OK;
}

size_t npi_coll_vcounts_max(npi_call *x, size_t elem_size)
{
    const uint64_t *pub = npi_call_scratch(x);
    size_t max = 0;
    for (int q = 0; q < x->n; q++)
        if (pub[q] * elem_size > max)
            max = pub[q] * elem_size;
    return max;
}

npi_alg npi_coll_decide(npi_call *x, size_t bytes)
{
    npi_decide_in in = {x->coll,          bytes,         x->n,       x->c->cma,
                        x->s->hdr->eager, x->c->ngroups, x->s->cores};
    bool per_peer = x->coll == NPI_COLL_SCATTER || x->coll == NPI_COLL_ALLTOALL;
    x->eager_bytes = per_peer ? bytes * (size_t)x->n : bytes;
    return npi_decide(&in);
}

static uint64_t coll_exchange_src(npi_call *x, int i, size_t bytes, bool src_in_rbuf)
{
    const npi_shm_post *e = npi_call_entry(x, i);
    return src_in_rbuf ? e->rbuf + (uint64_t)i * bytes : e->sbuf;
}

np_err npi_coll_exchange_cma(npi_call *x, size_t bytes, size_t src_stride, bool src_in_rbuf)
{
    np_err err = NP_OK;
    npi_claims how = npi_decide_claims(bytes, x->n, (int)x->s->cores);
    uint64_t my_src = coll_exchange_src(x, x->me, bytes, src_in_rbuf);
    char *my_rbuf = (char *)(uintptr_t)npi_call_entry(x, x->me)->rbuf;
    /* Pass 0 takes incoming blocks, pass 1 outgoing ones; push-first swaps
     * them.  Peers in turn from the right neighbour, so that not every rank
     * starts with rank 0. */
    for (int pass = 0; pass < 2 && err == NP_OK; pass++) {
        bool push = (pass == 1) != (how == NPI_CLAIMS_PUSH_FIRST);
        if (push && how == NPI_CLAIMS_NONE)
            continue;
        for (int k = 1; k < x->n && err == NP_OK; k++) {
            int q = (x->me + k) % x->n;
            if (push && npi_call_claim(x, x->me, q))
                err = npi_call_push(x, q, npi_call_entry(x, q)->rbuf + (uint64_t)x->me * bytes,
                                    (const char *)(uintptr_t)(my_src + (uint64_t)q * src_stride),
                                    bytes);
            else if (!push && (how == NPI_CLAIMS_NONE || npi_call_claim(x, q, x->me)))
                err = npi_call_pull(x, q, my_rbuf + (size_t)q * bytes,
                                    coll_exchange_src(x, q, bytes, src_in_rbuf) +
                                        (uint64_t)x->me * src_stride,
                                    bytes);
        }
    }
    if (err != NP_OK)
        return err;
    npi_call_post(x, 1);
    return npi_call_wait_all(x, 1);
}

size_t npi_coll_root_share(const npi_call *x, size_t bytes)
{
    return npi_decide_root_share(bytes, x->n, x->s->cores);
}

void npi_coll_reduce_ordered(void *acc, const void *const *in, int k, size_t count, np_dtype dt,
                             np_op op)
{
    if (k == 1) {
        npi_copy(acc, in[0], count * np_dtype_size(dt));
        return;
    }
    /* Left to right, rank 0 first: ((x0 op x1) op x2) op ...  Every
     * algorithm combines in this order, so floating-point results do not
     * depend on the algorithm or on timing. */
    npi_reduce3(in[0], in[1], acc, count, dt, op);
    for (int q = 2; q < k; q++)
        npi_reduce3(acc, in[q], acc, count, dt, op);
}
