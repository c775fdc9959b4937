/*
 * Gatherv: rank i's counts[i] elements land at displs[i] of the root's
 * recvbuf.  The root publishes counts and displs before it arrives, so
 * every rank checks its sendcount against the root's counts[i].
 */
#include "coll.h"

/*
 * cells: as gather's cells; every rank takes part in every window (the
 * number of windows follows the largest block) so ranks stay in step, and
 * copies only while its own block lasts.  Bytes: counts[i] elements in per
 * rank, the sum out at the root.  Wins: mid sizes, or no single copy.
 */
static np_err gatherv_cells(npi_call *x, const char *mine, char *rbuf, size_t es, int root)
{
    const uint64_t *counts = npi_call_scratch(x), *displs = counts + x->n;
    size_t w = x->s->hdr->cell, max = 0;
    for (int q = 0; q < x->n; q++)
        if (q != root && counts[q] * es > max)
            max = counts[q] * es;
    size_t nw = npi_windows(max, w);
    np_err err;
    for (size_t i = 0; i < nw; i++) {
        size_t off = i * w;
        if (x->me != root) {
            size_t b = counts[x->me] * es;
            if (i >= 2 && (err = npi_call_wait(x, root, 2 * (i - 2) + 2)) != NP_OK)
                return err;
            if (off < b)
                npi_copy(npi_shm_cell(x->s, x->me, i), mine + off, b - off < w ? b - off : w);
            npi_call_post(x, 2 * i + 1);
            continue;
        }
        for (int q = 0; q < x->n; q++) {
            size_t b = counts[q] * es;
            if (q == root)
                continue;
            if ((err = npi_call_wait(x, q, 2 * i + 1)) != NP_OK)
                return err;
            if (off < b)
                npi_copy_piece(rbuf + displs[q] * es + off, npi_shm_cell(x->s, q, i),
                               b - off < w ? b - off : w, b);
        }
        npi_call_post(x, 2 * i + 2);
    }
    return NP_OK;
}

/*
 * cma: every rank writes its block straight into the root's recvbuf at its
 * displacement, then reports step 1; the root returns once all have.
 * Bytes: counts[i] elements written once per rank.  Wins: large blocks.
 */
static np_err gatherv_cma(npi_call *x, const char *mine, size_t es, int root)
{
    const uint64_t *counts = npi_call_scratch(x), *displs = counts + x->n;
    if (x->me == root)
        return npi_call_wait_all(x, 1);
    np_err err = npi_call_push(x, root, npi_call_entry(x, root)->rbuf + displs[x->me] * es, mine,
                               counts[x->me] * es);
    if (err != NP_OK)
        return err;
    npi_call_post(x, 1);
    return NP_OK;
}

np_err np_gatherv(const void *sendbuf, size_t sendcount, void *recvbuf, const size_t *counts,
                  const size_t *displs, np_dtype dt, int root, np_comm *comm)
{
    /* Ranks on several nodes: hierarchical (hier.c). */
    if (npi_hier_spans(comm))
        NPI_HIER_COLL(
            comm, "np_gatherv",
            npi_hier_gatherv(sendbuf, sendcount, recvbuf, counts, displs, dt, root, comm));
    static const char who[] = "np_gatherv";
    npi_call x;
    np_err err = npi_call_begin(&x, comm, NPI_COLL_GATHERV, who);
    if (err != NP_OK)
        return err;
    size_t bytes = 0, es = np_dtype_size(dt);
    np_err bad = npi_coll_check_dtype(dt, sendcount, 1, who, &bytes);
    if (bad == NP_OK)
        bad = npi_coll_check_root(root, x.n, who);
    bool in_place = x.me == root && sendbuf == NP_IN_PLACE;
    if (bad == NP_OK && !in_place)
        bad = npi_coll_check_buf(sendbuf, sendcount, who, "sendbuf");
    if (bad == NP_OK && x.me == root)
        bad = npi_coll_publish_vcounts(&x, counts, displs, dt, recvbuf, "recvbuf", who);
    npi_coll_sig sig = {NPI_COLL_GATHERV, dt, sendcount, root, NP_OP_NULL};
    err = npi_call_arrive(&x, &sig, NPI_ALG_CELLS, sendbuf, recvbuf, bad);
    if (err != NP_OK)
        return npi_call_end(&x, err);
    const uint64_t *pub = npi_call_scratch(&x);
    size_t max = npi_coll_vcounts_max(&x, es);
    if (x.me == root && !in_place)
        npi_copy((char *)recvbuf + pub[x.n + root] * es, sendbuf, pub[root] * es);
    if (max == 0 || x.n == 1)
        return npi_call_end(&x, NP_OK);
    npi_alg alg = npi_coll_decide(&x, max);
    if (alg == NPI_ALG_CMA)
        return npi_call_end(&x, gatherv_cma(&x, sendbuf, es, root));
    return npi_call_end(&x, gatherv_cells(&x, sendbuf, recvbuf, es, root));
}
