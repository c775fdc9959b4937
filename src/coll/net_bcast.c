/*
 * Broadcasts between node leaders for large messages.
 */
#include "net.h"

#include <stdlib.h>

/*
 * Pipelined chain: participants form a line starting at the root; the
 * message is cut into chunks and each participant forwards chunk k to the
 * next one as soon as it has it, while chunk k+1 is still arriving, so all
 * links work at once.  fn (may be NULL) runs for each chunk after it has
 * been passed on: the hierarchy uses it to broadcast the chunk inside the
 * node while the next one crosses the network.  Steps: chunks + n - 2.
 * Bytes per participant: N in, N out.  Wins: large messages; the time
 * tends to N / bandwidth however many participants there are.
 */
np_err npi_net_bcast_chain(npi_net *g, void *buf, size_t bytes, int root, size_t chunk,
                           npi_net_chunk_fn fn, void *arg)
{
    int n = g->n, rel = (g->me - root + n) % n;
    int prev = (g->me - 1 + n) % n, next = (g->me + 1) % n;
    bool has_next = rel + 1 < n;
    if (chunk == 0)
        chunk = bytes ? bytes : 1;
    size_t nc = bytes == 0 ? 1 : (bytes + chunk - 1) / chunk;
    npi_fab_req **rr = calloc(nc * 2, sizeof *rr), **sr = rr + nc;
    if (!rr)
        return npi_error(NP_ERR_NOMEM, "%s: out of memory", g->who);
    char *b = buf;
    np_err err = NP_OK;
    if (rel != 0)
        for (size_t i = 0; i < nc && err == NP_OK; i++) {
            size_t off = i * chunk, len = bytes - off < chunk ? bytes - off : chunk;
            err = npi_net_irecv(g, prev, 7, b + off, len, &rr[i]);
        }
    for (size_t i = 0; i < nc && err == NP_OK; i++) {
        size_t off = i * chunk, len = bytes - off < chunk ? bytes - off : chunk;
        if (rel != 0 && (err = npi_net_wait(g, &rr[i])) != NP_OK)
            break;
        if (has_next && (err = npi_net_isend(g, next, 7, b + off, len, &sr[i])) != NP_OK)
            break;
        /* Push what was just posted onto the wire before working locally. */
        npi_fab_progress(g->fab, 0);
        if (fn && (err = fn(arg, off, len)) != NP_OK)
            break;
    }
    if (err == NP_OK)
        err = npi_net_waitall(g, (int)nc, sr);
    for (size_t i = 0; i < 2 * nc; i++)
        if (rr[i])
            npi_fab_cancel(g->fab, &rr[i]);
    free(rr);
    return err;
}

/*
 * Scatter-allgather broadcast (van de Geijn): the root sends slice i of
 * the message to participant i, then a ring allgather completes every
 * copy.  Steps: 1 + (n-1).  Bytes per participant: about 2N/n in the
 * scatter (the root sends N(n-1)/n) and N(n-1)/n in the ring.  Wins: large
 * messages among several participants when the root's link is the
 * bottleneck of a tree; the chain is as good with deep pipelines.
 */
np_err npi_net_bcast_scatter_allgather(npi_net *g, void *buf, size_t bytes, int root)
{
    int n = g->n;
    size_t off[64], len[64];
    if (n > 64)
        return npi_net_bcast_binomial(g, buf, bytes, root);
    for (int i = 0; i < n; i++) {
        off[i] = npi_net_slice_lo(bytes, n, i);
        len[i] = npi_net_slice_lo(bytes, n, i + 1) - off[i];
    }
    char *b = buf;
    np_err err = npi_net_scatterv_linear(g, root, buf, off, len, b + off[g->me], len[g->me]);
    if (err != NP_OK)
        return err;
    return npi_net_allgatherv_ring(g, buf, off, len);
}
