/*
 * Alltoall: block j of rank i's sendbuf lands in block i of rank j's
 * recvbuf.
 */
#include <string.h>

#include "coll.h"

/*
 * eager: every rank copies its n blocks into its eager area before it
 * arrives; after the arrival round rank j copies block j of every rank's
 * area.  Steps: 1.  Bytes: n N written and n N read per rank.  Wins: n N
 * up to the eager area.  In place is free: the input is in the eager area.
 */
static np_err alltoall_eager(npi_call *x, char *rbuf, size_t bytes)
{
    for (int q = 0; q < x->n; q++)
        npi_copy(rbuf + (size_t)q * bytes, npi_call_eager(x, q) + (size_t)x->me * bytes, bytes);
    return NP_OK;
}

/*
 * cells: window by window each rank copies a sub-window (cell / n bytes)
 * of each of its n blocks into its cell (step 2w+1), waits for all, and
 * copies its own sub-window out of every rank's cell (step 2w+2).  In place
 * works because window w of the input is in the cells before window w of
 * the output overwrites it.  Bytes: n N in and n N out per rank.  Wins:
 * mid sizes, or no single copy.
 */
static np_err alltoall_cells(npi_call *x, const char *sbuf, char *rbuf, size_t bytes)
{
    size_t sw = x->s->hdr->cell / (size_t)x->n / NPI_CACHELINE * NPI_CACHELINE;
    size_t nw = npi_windows(bytes, sw);
    for (size_t i = 0; i < nw; i++) {
        size_t off = i * sw, len = bytes - off < sw ? bytes - off : sw;
        char *cell = npi_shm_cell(x->s, x->me, i);
        for (int q = 0; q < x->n; q++)
            npi_copy(cell + (size_t)q * sw, sbuf + (size_t)q * bytes + off, len);
        npi_call_post(x, 2 * i + 1);
        for (int k = 0; k < x->n; k++) {
            int q = (x->me + k) % x->n;
            np_err err = q == x->me ? NP_OK : npi_call_wait(x, q, 2 * i + 1);
            if (err != NP_OK)
                return err;
            npi_copy_piece(rbuf + (size_t)q * bytes + off,
                           npi_shm_cell(x->s, q, i) + (size_t)x->me * sw, len,
                           (size_t)x->n * bytes);
        }
        npi_call_post(x, 2 * i + 2);
    }
    return NP_OK;
}

/*
 * cma: every block crosses once, with one single copy
 * (npi_coll_exchange_cma): the receiver reads it from the sender's sendbuf
 * into its recvbuf, or, with claims, whichever of the two ranks gets to it
 * first copies it, so that with more ranks than cores a rank that runs
 * does the copies of one waiting for a core.  In place, the input is first
 * copied to private memory, which is what is read.  Bytes: n N copied once
 * in all.  Wins: large blocks.
 */
static np_err alltoall_cma(npi_call *x, const char *sbuf, char *rbuf, size_t bytes)
{
    if (rbuf != sbuf)
        npi_copy(rbuf + (size_t)x->me * bytes, sbuf + (size_t)x->me * bytes, bytes);
    return npi_coll_exchange_cma(x, bytes, bytes, false);
}

np_err np_alltoall(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, np_comm *comm)
{
    /* Ranks on several nodes: hierarchical (hier.c). */
    if (npi_hier_spans(comm))
        NPI_HIER_COLL(comm, "np_alltoall", npi_hier_alltoall(sendbuf, recvbuf, count, dt, comm));
    static const char who[] = "np_alltoall";
    npi_call x;
    np_err err = npi_call_begin(&x, comm, NPI_COLL_ALLTOALL, who);
    if (err != NP_OK)
        return err;
    size_t bytes = 0;
    np_err bad = npi_coll_check_dtype(dt, count, (size_t)x.n, who, &bytes);
    bool in_place = sendbuf == NP_IN_PLACE;
    if (bad == NP_OK && !in_place)
        bad = npi_coll_check_buf(sendbuf, count, who, "sendbuf");
    if (bad == NP_OK)
        bad = npi_coll_check_buf(recvbuf, count, who, "recvbuf");
    npi_alg alg = npi_coll_decide(&x, bytes);
    size_t total = bytes * (size_t)x.n;
    const char *src = in_place ? recvbuf : sendbuf;
    if (bad == NP_OK && alg == NPI_ALG_EAGER)
        npi_copy(npi_call_eager(&x, x.me), src, total);
    if (bad == NP_OK && alg == NPI_ALG_CMA && in_place && x.n > 1) {
        char *copy = npi_comm_tmp(comm, total);
        if (copy == NULL)
            bad = npi_error(NP_ERR_NOMEM, "%s: no memory for an in-place copy of %zu bytes", who,
                            total);
        else
            src = memcpy(copy, recvbuf, total);
    }
    /* This call's claims (npi_coll_exchange_cma): bit j of word i is block
     * i->j. */
    if (alg == NPI_ALG_CMA)
        npi_call_claims_clear(&x);
    npi_coll_sig sig = {NPI_COLL_ALLTOALL, dt, count, -1, NP_OP_NULL};
    err = npi_call_arrive(&x, &sig, alg, src, recvbuf, bad);
    if (err != NP_OK || bytes == 0)
        return npi_call_end(&x, err);
    switch (alg) {
    case NPI_ALG_EAGER:
        return npi_call_end(&x, alltoall_eager(&x, recvbuf, bytes));
    case NPI_ALG_CMA:
        return npi_call_end(&x, alltoall_cma(&x, src, recvbuf, bytes));
    default:
        return npi_call_end(&x, alltoall_cells(&x, src, recvbuf, bytes));
    }
}
