/*
 * Scatterv: a block of counts[i] elements at displs[i] of the root's
 * sendbuf to rank i.  The root publishes counts and displs in the segment
 * before it arrives, so every rank can check its own count against the
 * root's and knows the shape of the transfer.
 */
#include "coll.h"

/*
 * cells: as scatter's cells, with each rank's sub-window cut at its own
 * count; the number of windows follows the largest block, so ranks stay in
 * step.  Bytes: the root writes the sum of the other blocks, rank i reads
 * counts[i] elements.  Wins: mid sizes, or no single copy.
 */
static np_err scatterv_cells(npi_call *x, const char *sbuf, char *rbuf, size_t es, int root)
{
    const uint64_t *counts = npi_call_scratch(x), *displs = counts + x->n;
    size_t sw = x->s->hdr->cell / (size_t)x->n / NPI_CACHELINE * NPI_CACHELINE, max = 0;
    for (int q = 0; q < x->n; q++)
        if (q != root && counts[q] * es > max)
            max = counts[q] * es;
    size_t nw = npi_windows(max, sw);
    np_err err;
    for (size_t i = 0; i < nw; i++) {
        size_t off = i * sw;
        char *cell = npi_shm_cell(x->s, root, i);
        if (x->me == root) {
            if (i >= 2) {
                for (int q = 0; q < x->n; q++)
                    if (q != root && (err = npi_call_wait(x, q, 2 * (i - 2) + 2)) != NP_OK)
                        return err;
            }
            for (int q = 0; q < x->n; q++) {
                size_t b = counts[q] * es;
                if (q != root && off < b)
                    npi_copy(cell + (size_t)q * sw, sbuf + displs[q] * es + off,
                             b - off < sw ? b - off : sw);
            }
            npi_call_post(x, 2 * i + 1);
        } else {
            if ((err = npi_call_wait(x, root, 2 * i + 1)) != NP_OK)
                return err;
            size_t b = counts[x->me] * es;
            if (off < b)
                npi_copy_piece(rbuf + off, cell + (size_t)x->me * sw, b - off < sw ? b - off : sw,
                               b);
            npi_call_post(x, 2 * i + 2);
        }
    }
    return NP_OK;
}

/*
 * cma: rank i reads its block straight from the root's sendbuf, then
 * reports step 1; the root returns once all have.  Bytes: counts[i]
 * elements read once.  Wins: large blocks.
 */
static np_err scatterv_cma(npi_call *x, char *rbuf, size_t es, int root)
{
    const uint64_t *counts = npi_call_scratch(x), *displs = counts + x->n;
    if (x->me == root)
        return npi_call_wait_all(x, 1);
    np_err err = npi_call_pull(x, root, rbuf, npi_call_entry(x, root)->sbuf + displs[x->me] * es,
                               counts[x->me] * es);
    if (err != NP_OK)
        return err;
    npi_call_post(x, 1);
    return NP_OK;
}

np_err np_scatterv(const void *sendbuf, const size_t *counts, const size_t *displs, void *recvbuf,
                   size_t recvcount, np_dtype dt, int root, np_comm *comm)
{
    /* Ranks on several nodes: hierarchical (hier.c). */
    if (npi_hier_spans(comm))
        NPI_HIER_COLL(
            comm, "np_scatterv",
            npi_hier_scatterv(sendbuf, counts, displs, recvbuf, recvcount, dt, root, comm));
    static const char who[] = "np_scatterv";
    npi_call x;
    np_err err = npi_call_begin(&x, comm, NPI_COLL_SCATTERV, who);
    if (err != NP_OK)
        return err;
    size_t bytes = 0, es = np_dtype_size(dt);
    np_err bad = npi_coll_check_dtype(dt, recvcount, 1, who, &bytes);
    if (bad == NP_OK)
        bad = npi_coll_check_root(root, x.n, who);
    bool in_place = x.me == root && recvbuf == NP_IN_PLACE;
    if (bad == NP_OK && !in_place)
        bad = npi_coll_check_buf(recvbuf, recvcount, who, "recvbuf");
    if (bad == NP_OK && x.me == root)
        bad = npi_coll_publish_vcounts(&x, counts, displs, dt, sendbuf, "sendbuf", who);
    /* The algorithm follows the largest block, which only the root knows
     * before arrival; the choice is made from the published counts after. */
    npi_coll_sig sig = {NPI_COLL_SCATTERV, dt, recvcount, root, NP_OP_NULL};
    err = npi_call_arrive(&x, &sig, NPI_ALG_CELLS, sendbuf, recvbuf, bad);
    if (err != NP_OK)
        return npi_call_end(&x, err);
    const uint64_t *pub = npi_call_scratch(&x);
    size_t max = npi_coll_vcounts_max(&x, es);
    if (x.me == root && !in_place)
        npi_copy(recvbuf, (const char *)sendbuf + pub[x.n + root] * es, pub[root] * es);
    if (max == 0 || x.n == 1)
        return npi_call_end(&x, NP_OK);
    npi_alg alg = npi_coll_decide(&x, max);
    if (alg == NPI_ALG_CMA)
        return npi_call_end(&x, scatterv_cma(&x, recvbuf, es, root));
    return npi_call_end(&x, scatterv_cells(&x, sendbuf, recvbuf, es, root));
}
