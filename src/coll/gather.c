/*
 * Gather: every rank's block lands in block i of the root's recvbuf.
 */
#include "coll.h"

/*
 * eager: every rank copies its block into its eager area before it
 * arrives; after the arrival round the root copies the n-1 blocks out.
 * Steps: 1.  Bytes: N written per rank, (n-1) N read by the root.  Wins:
 * blocks up to the eager area.
 */
static np_err gather_eager(npi_call *x, char *rbuf, size_t bytes, int root)
{
    if (x->me == root)
        for (int q = 0; q < x->n; q++)
            if (q != root)
                npi_copy(rbuf + (size_t)q * bytes, npi_call_eager(x, q), bytes);
    return NP_OK;
}

/*
 * cells: window by window every rank copies its slice into its own cell
 * (step 2w+1); the root copies each slice out as it appears and answers
 * with step 2w+2; a rank refills a cell only after the root has emptied
 * it.  Bytes: N in per rank, (n-1) N out at the root, overlapped.  Wins:
 * mid sizes, or no single copy.
 */
static np_err gather_cells(npi_call *x, const char *mine, char *rbuf, size_t bytes, int root)
{
    size_t w = x->s->hdr->cell, nw = npi_windows(bytes, w);
    np_err err;
    for (size_t i = 0; i < nw; i++) {
        size_t off = i * w, len = bytes - off < w ? bytes - off : w;
        if (x->me != root) {
            if (i >= 2 && (err = npi_call_wait(x, root, 2 * (i - 2) + 2)) != NP_OK)
                return err;
            npi_copy(npi_shm_cell(x->s, x->me, i), mine + off, len);
            npi_call_post(x, 2 * i + 1);
            continue;
        }
        for (int q = 0; q < x->n; q++) {
            if (q == root)
                continue;
            if ((err = npi_call_wait(x, q, 2 * i + 1)) != NP_OK)
                return err;
            npi_copy_piece(rbuf + (size_t)q * bytes + off, npi_shm_cell(x->s, q, i), len,
                           (size_t)x->n * bytes);
        }
        npi_call_post(x, 2 * i + 2);
    }
    return NP_OK;
}

/*
 * cma: every rank writes its block straight into the root's recvbuf with
 * process_vm_writev (all ranks in parallel, one copy each), then reports
 * step 1; the root returns once all have.  Bytes: N written once per rank.
 * Wins: large blocks.
 */
static np_err gather_cma(npi_call *x, const char *mine, size_t bytes, int root)
{
    if (x->me == root)
        return npi_call_wait_all(x, 1);
    np_err err = npi_call_push(x, root, npi_call_entry(x, root)->rbuf + (uint64_t)x->me * bytes,
                               mine, bytes);
    if (err != NP_OK)
        return err;
    npi_call_post(x, 1);
    return NP_OK;
}

np_err np_gather(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, int root,
                 np_comm *comm)
{
    /* Ranks on several nodes: hierarchical (hier.c). */
    if (npi_hier_spans(comm))
        NPI_HIER_COLL(comm, "np_gather", npi_hier_gather(sendbuf, recvbuf, count, dt, root, comm));
    static const char who[] = "np_gather";
    npi_call x;
    np_err err = npi_call_begin(&x, comm, NPI_COLL_GATHER, who);
    if (err != NP_OK)
        return err;
    size_t bytes = 0;
    np_err bad = npi_coll_check_dtype(dt, count, (size_t)x.n, who, &bytes);
    if (bad == NP_OK)
        bad = npi_coll_check_root(root, x.n, who);
    bool in_place = x.me == root && sendbuf == NP_IN_PLACE;
    if (bad == NP_OK && !in_place)
        bad = npi_coll_check_buf(sendbuf, count, who, "sendbuf");
    if (bad == NP_OK && x.me == root)
        bad = npi_coll_check_buf(recvbuf, count, who, "recvbuf");
    npi_alg alg = npi_coll_decide(&x, bytes);
    if (bad == NP_OK && alg == NPI_ALG_EAGER && x.me != root)
        npi_copy(npi_call_eager(&x, x.me), sendbuf, bytes);
    /* A non-root of an eager gather only publishes (coll.c). */
    x.ahead = alg == NPI_ALG_EAGER && x.me != root;
    npi_coll_sig sig = {NPI_COLL_GATHER, dt, count, root, NP_OP_NULL};
    err = npi_call_arrive(&x, &sig, alg, sendbuf, recvbuf, bad);
    if (err != NP_OK || bytes == 0)
        return npi_call_end(&x, err);
    if (x.me == root && !in_place)
        npi_copy((char *)recvbuf + (size_t)root * bytes, sendbuf, bytes);
    if (x.n == 1)
        return npi_call_end(&x, NP_OK);
    switch (alg) {
    case NPI_ALG_EAGER:
        return npi_call_end(&x, gather_eager(&x, recvbuf, bytes, root));
    case NPI_ALG_CMA:
        return npi_call_end(&x, gather_cma(&x, sendbuf, bytes, root));
    default:
        return npi_call_end(&x, gather_cells(&x, sendbuf, recvbuf, bytes, root));
    }
}
