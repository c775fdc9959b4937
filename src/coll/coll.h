/*
 * What every collective of src/coll shares: one call's context, the
 * arrival round that publishes and checks call signatures, and the
 * progress flags that order the steps of an algorithm.
 *
 * Every collective on a communicator gets the next sequence number seq.  A
 * rank's progress flag reads seq << 24 | step: step 0 means "arrived, and
 * my signature for seq is published", later steps are the algorithm's own.
 * Flags only grow, so "rank q reached step k of call seq" is one compare.
 *
 * The arrival round doubles as the mismatch check and as the guarantee that
 * every rank has finished call seq - 1, after which the shared cells may be
 * reused; eager areas and signatures alternate by parity of seq, so a rank
 * may fill its next ones before it arrives.
 *
 * In an eager call, a rank that needs at most one peer's post (see
 * "Running ahead" in coll.c) skips the rest of the arrival round: the wait
 * for every peer and the full check move to the start of its next call.
 */
#ifndef NUMPUSH_COLL_H
#define NUMPUSH_COLL_H

#include <stdatomic.h>

#include "core/comm.h"
#include "core/envelope.h"
#include "decide.h"
#include "hier.h"
#include "npi.h"

#define NPI_STEP_BITS 24

typedef struct npi_call {
    np_comm *c;
    npi_shm *s;
    int me, n;
    uint64_t seq, base;
    npi_coll coll;
    const char *who;
    size_t eager_bytes; /* bytes each rank publishes for the eager algorithm */
    /* Set by the caller before arriving (see "Running ahead" in coll.c):
     * this rank needs nothing from this call but, if ahead_wait >= 0, that
     * rank's post, so it waits for that one alone and leaves. */
    bool ahead;
    int ahead_wait;
} npi_call;

/* Check comm; on success start call x: the next sequence number.  If the
 * previous call on comm ran ahead, first wait until every rank has arrived
 * at it and check their signatures; a mismatch found there is held for
 * npi_call_end.  Errors: NP_ERR_COMM, NP_ERR_PEER, NP_ERR_TIMEOUT. */
np_err npi_call_begin(npi_call *x, np_comm *comm, npi_coll coll, const char *who);

/* Finish call x whose own outcome is err: a call that succeeded reports a
 * mismatch held from the previous call, which ran ahead.  Returns the
 * error to give the user. */
np_err npi_call_end(npi_call *x, np_err err);

static inline npi_shm_post *npi_call_post_of(npi_call *x, int q)
{
    return &x->s->ctl[q].post[x->seq & 1];
}

/* Where rank publishes its eager payload for this call: in its post line
 * when it is tiny (no extra cache miss), else in its eager area. */
static inline char *npi_call_eager(npi_call *x, int rank)
{
    if (x->eager_bytes <= NPI_POST_INLINE)
        return npi_call_post_of(x, rank)->inl;
    return npi_shm_eager(x->s, rank, x->seq);
}

static inline uint64_t *npi_call_scratch(npi_call *x)
{
    return npi_shm_scratch(x->s, x->seq);
}

/* What rank q published for this call (its buffers' addresses). */
static inline const npi_shm_post *npi_call_entry(npi_call *x, int q)
{
    return npi_call_post_of(x, q);
}

/* Publish this rank's signature (and buffer addresses for single copies),
 * wait for every rank to do the same and compare (unless x->ahead: then
 * return at once, see npi_call_begin).  local_err is this rank's
 * own argument error (NP_OK if none): it still takes part so that its peers
 * fail fast with NP_ERR_MISMATCH instead of waiting for it, and it returns
 * local_err.  Errors: local_err, NP_ERR_MISMATCH, NP_ERR_PEER,
 * NP_ERR_TIMEOUT. */
np_err npi_call_arrive(npi_call *x, const npi_coll_sig *sig, npi_alg alg, const void *sbuf,
                       const void *rbuf, np_err local_err);

/* Take part in the next call on comm (shared memory) only to publish
 * sig with the argument error bad, so that comm's other ranks, whatever
 * call they are in, fail with NP_ERR_MISMATCH instead of waiting for this
 * one.  Waits until every rank of comm has arrived.  Returns bad (or
 * NP_ERR_PEER ... if arriving failed). */
np_err npi_coll_fail(np_comm *comm, const npi_coll_sig *sig, np_err bad, const char *who);

static inline void npi_call_post(npi_call *x, uint64_t step)
{
    npi_flag_set(&npi_call_post_of(x, x->me)->flag, x->base | step);
}

static inline np_err npi_call_wait(npi_call *x, int q, uint64_t step)
{
    return npi_shm_wait_flag(x->s, q, (int)(x->seq & 1), x->base | step, x->who);
}

/* Wait for every other rank to reach step. */
np_err npi_call_wait_all(npi_call *x, uint64_t step);

/* Argument checks shared by the collectives; each records a message naming
 * who and returns the error, or NP_OK. */
np_err npi_coll_check_dtype(np_dtype dt, size_t count, size_t mult, const char *who, size_t *bytes);
np_err npi_coll_check_root(int root, int n, const char *who);
np_err npi_coll_check_buf(const void *buf, size_t count, const char *who, const char *what);

/* At the root of a v-collective: check counts and displs (present, each
 * block's bytes and end representable) and the root's buffer buf (named
 * what), then publish them in the call's scratch area for the other ranks
 * (counts first, then displs).  Returns the first error, or NP_OK. */
np_err npi_coll_publish_vcounts(npi_call *x, const size_t *counts, const size_t *displs,
                                np_dtype dt, const void *buf, const char *what, const char *who);

/* After arrival: the largest block in bytes among the published counts. */
size_t npi_coll_vcounts_max(npi_call *x, size_t elem_size);

/* The algorithm for this call, from the decision table. */
npi_alg npi_coll_decide(npi_call *x, size_t bytes);

/* Read n bytes at remote address addr of rank q into dst (single copy). */
static inline np_err npi_call_pull(npi_call *x, int q, void *dst, uint64_t addr, size_t n)
{
    return npi_cma_read(x->s->ctl[q].pid, dst, addr, n);
}

static inline np_err npi_call_push(npi_call *x, int q, uint64_t addr, const void *src, size_t n)
{
    return npi_cma_write(x->s->ctl[q].pid, addr, src, n);
}

/* The part of each receiver's buffer of bytes that the root of a CMA
 * broadcast writes itself, so that its core, idle otherwise, shares the
 * copying: the last share bytes of every buffer.  Nonzero only when every rank has a core of its
 * own (otherwise the root's copies just take a core from a peer that copies) and the block is large
 * enough to pay for the extra system calls.  Every rank computes the same value from the same
 * inputs. */
size_t npi_coll_root_share(const npi_call *x, size_t bytes);

/*
 * Claims: who makes a single copy that either of two ranks could make.  A
 * call's scratch area holds one 64-bit word per rank; bit b of word w says
 * that the copy (w, b) is taken.  Whoever sets the bit first makes the
 * copy, so that with more ranks than cores the ranks that run do the
 * copies of those that wait for a core.  Rank w clears its word before it
 * arrives (no rank claims before every rank has arrived, and the scratch
 * area of this parity was last used two calls ago, which every rank has
 * finished).  Only for calls that use no other scratch (not the
 * v-collectives) and at most NPI_CLAIM_MAX ranks (decide.h).
 */
static inline void npi_call_claims_clear(npi_call *x)
{
    /* Cleared whatever this rank's NUMPUSH_CMA_CLAIMS, so that ranks with
     * different settings at worst copy a block twice (the same bytes). */
    if (x->n <= NPI_CLAIM_MAX)
        atomic_store_explicit((_Atomic uint64_t *)&npi_call_scratch(x)[x->me], 0,
                              memory_order_relaxed);
}

static inline bool npi_call_claim(npi_call *x, int word, int bit)
{
    _Atomic uint64_t *w = (_Atomic uint64_t *)&npi_call_scratch(x)[word];
    uint64_t b = (uint64_t)1 << bit;
    return (atomic_fetch_or_explicit(w, b, memory_order_relaxed) & b) == 0;
}

/*
 * Every rank sends a block of bytes to every other by single copies
 * (alltoall and allgather, cma): block i->j goes from rank i's published
 * source, at (its entry's rbuf + i * bytes if src_in_rbuf, else its sbuf)
 * + j * src_stride, to rank j's entry's rbuf + i * bytes.  Either the
 * receiver reads it or, with claims (see "Claims" above and
 * npi_decide_claims), the sender may write it.  Ends with step 1 reported
 * by every rank: the caller's recvbuf is complete and no peer reads its
 * source any more.  The caller copies its own block and, when claims may
 * be used, cleared its claim word before arriving (npi_call_claims_clear).
 */
np_err npi_coll_exchange_cma(npi_call *x, size_t bytes, size_t src_stride, bool src_in_rbuf);

/* Number of windows of w bytes that cover n bytes (at least 1). */
static inline size_t npi_windows(size_t n, size_t w)
{
    return n == 0 ? 1 : (n + w - 1) / w;
}

/* First element of rank r's slice when count elements are shared among n
 * ranks as evenly as possible (the first count % n slices get one more). */
static inline size_t npi_slice_lo(size_t count, int n, int r)
{
    size_t q = count / (size_t)n, m = count % (size_t)n;
    return q * (size_t)r + ((size_t)r < m ? (size_t)r : m);
}

/* Called by npi_coll_reduce_cma with the reduction of elements
 * [first, first + count) of the caller's slice, held in acc. */
typedef np_err (*npi_reduce_emit)(npi_call *x, size_t first, const void *acc, size_t count,
                                  void *arg);

/* Reduce elements [lo, hi) of every rank's input (published as its entry's
 * sbuf) in rank order, reading peers' inputs with single copies, chunk by
 * chunk; emit receives each reduced chunk. */
np_err npi_coll_reduce_cma(npi_call *x, const char *mine, size_t lo, size_t hi, np_dtype dt,
                           np_op op, npi_reduce_emit emit, void *arg);

/* Internal allgather used by np_comm_split: counts bytes per rank. */
np_err npi_coll_allgather_bytes(const void *mine, void *all, size_t bytes, np_comm *comm,
                                const char *who);

/* Reduce in rank order: acc = in[0] op in[1] op ... op in[k-1] for one slice,
 * where in[q] points at rank q's slice; acc may alias none of in[]. */
void npi_coll_reduce_ordered(void *acc, const void *const *in, int k, size_t count, np_dtype dt,
                             np_op op);

#endif
