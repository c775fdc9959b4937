/*
 * Allgather: every rank's block, in rank order, at every rank.
 */
#include "coll.h"

#include <string.h>

/*
 * eager: every rank copies its block into its eager area before it
 * arrives; after the arrival round each copies all n blocks out.
 * Steps: 1.  Bytes per rank: N written, (n-1) N read.  Wins: blocks up to
 * the eager area.
 */
static np_err allgather_eager(npi_call *x, char *rbuf, size_t bytes)
{
    for (int q = 0; q < x->n; q++)
        if (q != x->me)
            npi_copy(rbuf + (size_t)q * bytes, npi_call_eager(x, q), bytes);
    return NP_OK;
}

/*
 * cells: window by window, every rank copies its slice into its cell
 * (step 2w+1), waits for all, copies every other slice out (step 2w+2).
 * Waiting for everyone's step 2w+1 also proves that everyone has emptied
 * the cells of window w-1, so two cells per rank suffice.  Bytes per rank:
 * N in, (n-1) N out.  Wins: mid sizes, or no single copy.
 */
static np_err allgather_cells(npi_call *x, const char *mine, char *rbuf, size_t bytes)
{
    size_t w = x->s->hdr->cell, nw = npi_windows(bytes, w);
    for (size_t i = 0; i < nw; i++) {
        size_t off = i * w, len = bytes - off < w ? bytes - off : w;
        npi_copy(npi_shm_cell(x->s, x->me, i), mine + off, len);
        npi_call_post(x, 2 * i + 1);
        for (int q = 0; q < x->n; q++) {
            if (q == x->me)
                continue;
            np_err err = npi_call_wait(x, q, 2 * i + 1);
            if (err != NP_OK)
                return err;
            npi_copy_piece(rbuf + (size_t)q * bytes + off, npi_shm_cell(x->s, q, i), len,
                           (size_t)x->n * bytes);
        }
        npi_call_post(x, 2 * i + 2);
    }
    return NP_OK;
}

/*
 * cma: every rank's block reaches every other rank with one single copy
 * each (npi_coll_exchange_cma): the receiver reads it from the sender's
 * buffer, or, with claims, whichever of the two gets to it first copies it.
 * Bytes per rank: (n-1) N read once.  Wins: large blocks.
 */
static np_err allgather_cma(npi_call *x, size_t bytes, bool in_place)
{
    return npi_coll_exchange_cma(x, bytes, 0, in_place);
}

static np_err allgather_run(npi_call *x, const void *sendbuf, void *recvbuf, size_t count,
                            np_dtype dt, size_t bytes, np_err bad)
{
    bool in_place = sendbuf == NP_IN_PLACE;
    char *rbuf = recvbuf;
    const char *mine = in_place ? rbuf + (size_t)x->me * bytes : sendbuf;
    npi_alg alg = npi_coll_decide(x, bytes);
    if (bad == NP_OK && alg == NPI_ALG_EAGER)
        npi_copy(npi_call_eager(x, x->me), mine, bytes);
    /* This call's claims (npi_coll_exchange_cma): bit j of word i is block
     * i->j. */
    if (alg == NPI_ALG_CMA)
        npi_call_claims_clear(x);
    npi_coll_sig sig = {NPI_COLL_ALLGATHER, dt, count, -1, NP_OP_NULL};
    np_err err = npi_call_arrive(x, &sig, alg, in_place ? NULL : sendbuf, recvbuf, bad);
    if (err != NP_OK || bytes == 0)
        return npi_call_end(x, err);
    if (!in_place)
        npi_copy(rbuf + (size_t)x->me * bytes, mine, bytes);
    if (x->n == 1)
        return npi_call_end(x, NP_OK);
    switch (alg) {
    case NPI_ALG_EAGER:
        return npi_call_end(x, allgather_eager(x, rbuf, bytes));
    case NPI_ALG_CMA:
        return npi_call_end(x, allgather_cma(x, bytes, in_place));
    default:
        return npi_call_end(x, allgather_cells(x, mine, rbuf, bytes));
    }
}

np_err np_allgather(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, np_comm *comm)
{
    /* Ranks on several nodes: hierarchical (hier.c). */
    if (npi_hier_spans(comm))
        NPI_HIER_COLL(comm, "np_allgather", npi_hier_allgather(sendbuf, recvbuf, count, dt, comm));
    static const char who[] = "np_allgather";
    npi_call x;
    np_err err = npi_call_begin(&x, comm, NPI_COLL_ALLGATHER, who);
    if (err != NP_OK)
        return err;
    size_t bytes = 0;
    np_err bad = npi_coll_check_dtype(dt, count, (size_t)x.n, who, &bytes);
    if (bad == NP_OK && sendbuf != NP_IN_PLACE)
        bad = npi_coll_check_buf(sendbuf, count, who, "sendbuf");
    if (bad == NP_OK)
        bad = npi_coll_check_buf(recvbuf, count, who, "recvbuf");
    return allgather_run(&x, sendbuf, recvbuf, count, dt, bytes, bad);
}

np_err npi_coll_allgather_bytes(const void *mine, void *all, size_t bytes, np_comm *comm,
                                const char *who)
{
    /* Ranks on several nodes: hierarchical (hier.c). */
    if (npi_hier_spans(comm))
        NPI_HIER_COLL(comm, who, npi_hier_allgather(mine, all, bytes, NP_BYTE, comm));
    npi_call x;
    np_err err = npi_call_begin(&x, comm, NPI_COLL_ALLGATHER, who);
    if (err != NP_OK)
        return err;
    return allgather_run(&x, mine, all, bytes, NP_BYTE, bytes, NP_OK);
}
