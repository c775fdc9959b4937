/*
 * Allreduce: the elementwise reduction over all ranks, at every rank.
 *
 * Every algorithm combines in rank order, ((x0 op x1) op x2) op ..., for
 * every element, so floating-point results are the same bits whichever
 * algorithm runs and however the ranks are scheduled.
 */
#include <stdlib.h>

#include "coll.h"

/* Bytes of each rank's input pulled per single copy while reducing: large
 * enough to amortise the system call, small enough to stay in L2. */
#define ALLREDUCE_CHUNK (256 * 1024)

np_err npi_coll_reduce_cma(npi_call *x, const char *mine, size_t lo, size_t hi, np_dtype dt,
                           np_op op, npi_reduce_emit emit, void *arg)
{
    size_t es = np_dtype_size(dt), te = ALLREDUCE_CHUNK / es;
    char *acc = npi_comm_tmp(x->c, 2 * ALLREDUCE_CHUNK);
    if (acc == NULL)
        return npi_error(NP_ERR_NOMEM, "%s: no memory for reduction buffers", x->who);
    char *pull = acc + ALLREDUCE_CHUNK;
    np_err err;
    for (size_t c = lo; c < hi; c += te) {
        size_t m = hi - c < te ? hi - c : te, off = c * es, len = m * es;
        for (int q = 0; q < x->n; q++) {
            const void *in;
            if (q == x->me) {
                in = mine + off;
            } else {
                char *dst = q == 0 ? acc : pull;
                if ((err = npi_call_pull(x, q, dst, npi_call_entry(x, q)->sbuf + off, len)) !=
                    NP_OK)
                    return err;
                in = dst;
            }
            if (q == 0) {
                if (in != acc)
                    npi_copy(acc, in, len);
            } else {
                npi_reduce3(acc, in, acc, m, dt, op);
            }
        }
        if ((err = emit(x, c, acc, m, arg)) != NP_OK)
            return err;
    }
    return NP_OK;
}

/*
 * eager: every rank copies its input into its eager area before it
 * arrives; after the arrival round each reduces all n inputs itself.
 * Steps: 1.  Bytes: N written, n N read per rank.  Wins: inputs up to the
 * eager area, where one round of flags beats any exchange of partial
 * results.
 */
static np_err allreduce_eager(npi_call *x, void *rbuf, size_t count, np_dtype dt, np_op op)
{
    const void *in[x->n];
    for (int q = 0; q < x->n; q++)
        in[q] = npi_call_eager(x, q);
    npi_coll_reduce_ordered(rbuf, in, x->n, count, dt, op);
    return NP_OK;
}

/*
 * cells: reduce-scatter then allgather, window by window.  Each rank copies
 * a window of its input into its cell (step 2w+1); rank r reduces slice r
 * of the window from every cell, writes the result over its own slice of
 * its cell (only it reads that slice) and posts step 2w+2; then every rank
 * copies the other slices out.  Bytes per rank: N in, N read and N/n
 * written while reducing, N out.  Wins: mid sizes, or no single copy.
 */
static np_err allreduce_cells(npi_call *x, const char *sbuf, char *rbuf, size_t count, np_dtype dt,
                              np_op op)
{
    size_t es = np_dtype_size(dt), we = x->s->hdr->cell / es, nw = npi_windows(count, we);
    const void *in[x->n];
    np_err err;
    for (size_t i = 0; i < nw; i++) {
        size_t off = i * we, len = count - off < we ? count - off : we;
        npi_copy(npi_shm_cell(x->s, x->me, i), sbuf + off * es, len * es);
        npi_call_post(x, 2 * i + 1);
        if ((err = npi_call_wait_all(x, 2 * i + 1)) != NP_OK)
            return err;
        size_t lo = npi_slice_lo(len, x->n, x->me), hi = npi_slice_lo(len, x->n, x->me + 1);
        for (int q = 0; q < x->n; q++)
            in[q] = npi_shm_cell(x->s, q, i) + lo * es;
        npi_coll_reduce_ordered(rbuf + (off + lo) * es, in, x->n, hi - lo, dt, op);
        npi_copy(npi_shm_cell(x->s, x->me, i) + lo * es, rbuf + (off + lo) * es, (hi - lo) * es);
        npi_call_post(x, 2 * i + 2);
        for (int k = 1; k < x->n; k++) {
            int q = (x->me + k) % x->n;
            if ((err = npi_call_wait(x, q, 2 * i + 2)) != NP_OK)
                return err;
            size_t qlo = npi_slice_lo(len, x->n, q), qhi = npi_slice_lo(len, x->n, q + 1);
            npi_copy_piece(rbuf + (off + qlo) * es, npi_shm_cell(x->s, q, i) + qlo * es,
                           (qhi - qlo) * es, count * es);
        }
    }
    return NP_OK;
}

typedef struct allreduce_out {
    char *rbuf;
    size_t es;
} allreduce_out;

static np_err allreduce_emit_local(npi_call *x, size_t first, const void *acc, size_t count,
                                   void *arg)
{
    allreduce_out *o = arg;
    npi_copy(o->rbuf + first * o->es, acc, count * o->es);
    return NP_OK;
}

/*
 * cma: reduce-scatter then allgather with single copies.  Rank r reduces
 * slice r, pulling each peer's slice from its input buffer chunk by chunk,
 * and stores the result in slice r of its own recvbuf (step 1); after
 * everyone's step 1 it pulls the other slices from their owners' recvbufs
 * (step 2) and waits for everyone's step 2 before its buffers may change.
 * Bytes per rank: (n-1) N/n pulled to reduce, (n-1) N/n pulled to gather;
 * every input is read once in total.  Wins: large vectors.
 */
static np_err allreduce_cma(npi_call *x, const char *mine, char *rbuf, size_t count, np_dtype dt,
                            np_op op)
{
    size_t es = np_dtype_size(dt);
    size_t lo = npi_slice_lo(count, x->n, x->me), hi = npi_slice_lo(count, x->n, x->me + 1);
    allreduce_out out = {rbuf, es};
    np_err err = npi_coll_reduce_cma(x, mine, lo, hi, dt, op, allreduce_emit_local, &out);
    if (err != NP_OK)
        return err;
    npi_call_post(x, 1);
    for (int k = 1; k < x->n; k++) {
        int q = (x->me + k) % x->n;
        if ((err = npi_call_wait(x, q, 1)) != NP_OK)
            return err;
        size_t qlo = npi_slice_lo(count, x->n, q), qhi = npi_slice_lo(count, x->n, q + 1);
        if ((err = npi_call_pull(x, q, rbuf + qlo * es, npi_call_entry(x, q)->rbuf + qlo * es,
                                 (qhi - qlo) * es)) != NP_OK)
            return err;
    }
    npi_call_post(x, 2);
    return npi_call_wait_all(x, 2);
}

np_err np_allreduce(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, np_op op,
                    np_comm *comm)
{
    /* Ranks on several nodes: hierarchical (hier.c). */
    if (npi_hier_spans(comm))
        NPI_HIER_COLL(comm, "np_allreduce",
                      npi_hier_allreduce(sendbuf, recvbuf, count, dt, op, comm));
    static const char who[] = "np_allreduce";
    npi_call x;
    np_err err = npi_call_begin(&x, comm, NPI_COLL_ALLREDUCE, who);
    if (err != NP_OK)
        return err;
    size_t bytes = 0;
    np_err bad = npi_op_check(who, dt, op);
    if (bad == NP_OK)
        bad = npi_coll_check_dtype(dt, count, 1, who, &bytes);
    bool in_place = sendbuf == NP_IN_PLACE;
    if (bad == NP_OK && !in_place)
        bad = npi_coll_check_buf(sendbuf, count, who, "sendbuf");
    if (bad == NP_OK)
        bad = npi_coll_check_buf(recvbuf, count, who, "recvbuf");
    const char *mine = in_place ? recvbuf : sendbuf;
    npi_alg alg = npi_coll_decide(&x, bytes);
    if (bad == NP_OK && alg == NPI_ALG_EAGER)
        npi_copy(npi_call_eager(&x, x.me), mine, bytes);
    npi_coll_sig sig = {NPI_COLL_ALLREDUCE, dt, count, -1, op};
    err = npi_call_arrive(&x, &sig, alg, mine, recvbuf, bad);
    if (err != NP_OK || bytes == 0)
        return npi_call_end(&x, err);
    if (x.n == 1) {
        if (!in_place)
            npi_copy(recvbuf, mine, bytes);
        return npi_call_end(&x, NP_OK);
    }
    switch (alg) {
    case NPI_ALG_EAGER:
        return npi_call_end(&x, allreduce_eager(&x, recvbuf, count, dt, op));
    case NPI_ALG_CMA:
        return npi_call_end(&x, allreduce_cma(&x, mine, recvbuf, count, dt, op));
    default:
        return npi_call_end(&x, allreduce_cells(&x, mine, recvbuf, count, dt, op));
    }
}
