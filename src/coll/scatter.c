/*
 * Scatter: block i of the root's sendbuf to rank i.
 */
#include "coll.h"

/*
 * eager: the root copies every other rank's block into its eager area
 * before it arrives; after the arrival round rank i copies block i out.
 * Steps: 1.  Bytes: the root writes (n-1) N, each rank reads N.  Wins: n N
 * up to the eager area.
 */
static np_err scatter_eager(npi_call *x, char *rbuf, size_t bytes, int root)
{
    if (x->me != root)
        npi_copy(rbuf, npi_call_eager(x, root) + (size_t)x->me * bytes, bytes);
    return NP_OK;
}

/*
 * cells: the root's cell holds one sub-window of every block per window
 * (cell / n bytes each); rank i copies its sub-window out.  Two cells
 * alternate as in bcast.  Bytes: the root writes (n-1) N, each rank reads
 * N.  Wins: mid sizes, or no single copy.
 */
static np_err scatter_cells(npi_call *x, const char *sbuf, char *rbuf, size_t bytes, int root)
{
    size_t sw = x->s->hdr->cell / (size_t)x->n / NPI_CACHELINE * NPI_CACHELINE;
    size_t nw = npi_windows(bytes, sw);
    np_err err;
    for (size_t i = 0; i < nw; i++) {
        size_t off = i * sw, len = bytes - off < sw ? bytes - off : sw;
        char *cell = npi_shm_cell(x->s, root, i);
        if (x->me == root) {
            if (i >= 2) {
                for (int q = 0; q < x->n; q++)
                    if (q != root && (err = npi_call_wait(x, q, 2 * (i - 2) + 2)) != NP_OK)
                        return err;
            }
            for (int q = 0; q < x->n; q++)
                if (q != root)
                    npi_copy(cell + (size_t)q * sw, sbuf + (size_t)q * bytes + off, len);
            npi_call_post(x, 2 * i + 1);
        } else {
            if ((err = npi_call_wait(x, root, 2 * i + 1)) != NP_OK)
                return err;
            npi_copy_piece(rbuf + off, cell + (size_t)x->me * sw, len, bytes);
            npi_call_post(x, 2 * i + 2);
        }
    }
    return NP_OK;
}

/*
 * cma: rank i reads block i straight from the root's sendbuf (one single
 * copy per rank, all in parallel), then reports step 1; the root returns
 * once all have.  Bytes: N read once per rank.  Wins: large blocks.
 */
static np_err scatter_cma(npi_call *x, char *rbuf, size_t bytes, int root)
{
    if (x->me == root)
        return npi_call_wait_all(x, 1);
    np_err err = npi_call_pull(x, root, rbuf,
                               npi_call_entry(x, root)->sbuf + (uint64_t)x->me * bytes, bytes);
    if (err != NP_OK)
        return err;
    npi_call_post(x, 1);
    return NP_OK;
}

np_err np_scatter(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, int root,
                  np_comm *comm)
{
    /* Ranks on several nodes: hierarchical (hier.c). */
    if (npi_hier_spans(comm))
        NPI_HIER_COLL(comm, "np_scatter",
                      npi_hier_scatter(sendbuf, recvbuf, count, dt, root, comm));
    static const char who[] = "np_scatter";
    npi_call x;
    np_err err = npi_call_begin(&x, comm, NPI_COLL_SCATTER, who);
    if (err != NP_OK)
        return err;
    size_t bytes = 0;
    np_err bad = npi_coll_check_dtype(dt, count, (size_t)x.n, who, &bytes);
    if (bad == NP_OK)
        bad = npi_coll_check_root(root, x.n, who);
    bool in_place = x.me == root && recvbuf == NP_IN_PLACE;
    if (bad == NP_OK && x.me == root)
        bad = npi_coll_check_buf(sendbuf, count, who, "sendbuf");
    if (bad == NP_OK && !in_place)
        bad = npi_coll_check_buf(recvbuf, count, who, "recvbuf");
    npi_alg alg = npi_coll_decide(&x, bytes);
    if (bad == NP_OK && alg == NPI_ALG_EAGER && x.me == root) {
        /* Every block but the root's own, which goes straight to its
         * recvbuf below: the blocks before it, then those after it. */
        char *area = npi_call_eager(&x, root);
        size_t before = bytes * (size_t)root, after_at = before + bytes;
        npi_copy(area, sendbuf, before);
        npi_copy(area + after_at, (const char *)sendbuf + after_at, bytes * (size_t)x.n - after_at);
    }
    /* The root of an eager scatter needs nothing, its receivers
     * need only the root's post (coll.c, "Running ahead"). */
    x.ahead = alg == NPI_ALG_EAGER;
    x.ahead_wait = root;
    npi_coll_sig sig = {NPI_COLL_SCATTER, dt, count, root, NP_OP_NULL};
    err = npi_call_arrive(&x, &sig, alg, sendbuf, recvbuf, bad);
    if (err != NP_OK || bytes == 0)
        return npi_call_end(&x, err);
    if (x.me == root && !in_place)
        npi_copy(recvbuf, (const char *)sendbuf + (size_t)root * bytes, bytes);
    if (x.n == 1)
        return npi_call_end(&x, NP_OK);
    switch (alg) {
    case NPI_ALG_EAGER:
        return npi_call_end(&x, scatter_eager(&x, recvbuf, bytes, root));
    case NPI_ALG_CMA:
        return npi_call_end(&x, scatter_cma(&x, recvbuf, bytes, root));
    default:
        return npi_call_end(&x, scatter_cells(&x, sendbuf, recvbuf, bytes, root));
    }
}
