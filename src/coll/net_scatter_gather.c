/*
 * Scatter and gather between node leaders.
 */
#include "net.h"

#include <stdlib.h>
#include <string.h>

/* The root's side of the linear gather (receive) and scatter (send): one
 * request per other participant, block i at buf + off[i], all waited for. */
static np_err net_linear_root(npi_net *g, int root, int step, bool send, char *buf,
                              const size_t *off, const size_t *len)
{
    npi_fab_req **rr = calloc((size_t)g->n, sizeof *rr);
    if (!rr)
        return npi_error(NP_ERR_NOMEM, "%s: out of memory", g->who);
    np_err err = NP_OK;
    for (int i = 0; i < g->n && err == NP_OK; i++)
        if (i != root)
            err = send ? npi_net_isend(g, i, step, buf + off[i], len[i], &rr[i])
                       : npi_net_irecv(g, i, step, buf + off[i], len[i], &rr[i]);
    np_err w = npi_net_waitall(g, g->n, rr);
    for (int i = 0; i < g->n; i++)
        if (rr[i])
            npi_fab_cancel(g->fab, &rr[i]);
    free(rr);
    return err != NP_OK ? err : w;
}

/*
 * Linear gather with a block size per participant: the root posts a
 * receive per participant straight into place and waits for all.  Steps:
 * 1 (the root's link carries everything).  Bytes: each sends its block,
 * the root receives the total.  Wins: few participants (nodes are few),
 * and variable blocks (gatherv), where a tree would forward blocks twice.
 */
np_err npi_net_gatherv_linear(npi_net *g, int root, const void *sbuf, size_t sbytes, void *rbuf,
                              const size_t *off, const size_t *len)
{
    if (g->me != root)
        return npi_net_send(g, root, 10, sbuf, sbytes);
    return net_linear_root(g, root, 10, false, rbuf, off, len);
}

/*
 * Linear scatter with a block size per participant: the root posts one
 * send per participant (no copies) and waits for all.  Steps: 1.  Bytes:
 * the root sends the total minus its own block.  Wins: few participants
 * and scatterv.
 */
np_err npi_net_scatterv_linear(npi_net *g, int root, const void *sbuf, const size_t *off,
                               const size_t *len, void *rbuf, size_t rbytes)
{
    if (g->me != root)
        return npi_net_recv(g, root, 11, rbuf, rbytes);
    /* Only sent from: the cast keeps one helper for both directions. */
    return net_linear_root(g, root, 11, true, (char *)sbuf, off, len);
}

/*
 * Binomial gather of equal blocks of b bytes: in round k a participant
 * whose bit k is set (relative to the root) sends everything it has
 * collected (2^k blocks at most) to the one 2^k below.  Subtrees are
 * contiguous in relative order, so tmp holds blocks in relative order and
 * the root rotates them into rbuf.  Steps: ceil(log2 n).  Bytes: the root
 * receives (n-1)b, others forward their subtree once.  Wins: many
 * participants and small blocks (fewer rounds than linear).
 */
np_err npi_net_gather_binomial(npi_net *g, int root, const void *sbuf, void *rbuf, void *tmp,
                               size_t b)
{
    int n = g->n, rel = (g->me - root + n) % n;
    char *t = tmp;
    memcpy(t, sbuf, b);
    int have = 1;
    for (int mask = 1; mask < n; mask <<= 1) {
        np_err err;
        if (rel & mask) {
            return npi_net_send(g, (rel - mask + root) % n, 12, t, (size_t)have * b);
        }
        if (rel + mask < n) {
            int got = rel + 2 * mask <= n ? mask : n - rel - mask;
            err =
                npi_net_recv(g, (rel + mask + root) % n, 12, t + (size_t)mask * b, (size_t)got * b);
            if (err != NP_OK)
                return err;
            have = mask + got;
        }
    }
    for (int i = 0; i < n; i++)
        memcpy((char *)rbuf + (size_t)((i + root) % n) * b, t + (size_t)i * b, b);
    return NP_OK;
}

/*
 * Binomial scatter of equal blocks of b bytes: the reverse of the gather;
 * the root rotates its blocks into relative order in tmp and hands each
 * child its subtree's blocks.  Steps: ceil(log2 n).  Wins: many
 * participants and small blocks.
 */
np_err npi_net_scatter_binomial(npi_net *g, int root, const void *sbuf, void *rbuf, void *tmp,
                                size_t b)
{
    int n = g->n, rel = (g->me - root + n) % n;
    char *t = tmp;
    int mask = 1, have = n;
    if (rel == 0) {
        for (int i = 0; i < n; i++)
            memcpy(t + (size_t)i * b, (const char *)sbuf + (size_t)((i + root) % n) * b, b);
    }
    while (mask < n) {
        if (rel & mask) {
            have = rel + mask <= n ? mask : n - rel;
            np_err err = npi_net_recv(g, (rel - mask + root) % n, 13, t, (size_t)have * b);
            if (err != NP_OK)
                return err;
            break;
        }
        mask <<= 1;
    }
    for (mask >>= 1; mask > 0; mask >>= 1) {
        if (rel + mask < n) {
            int give = have - mask;
            if (give <= 0)
                continue;
            npi_fab_req *r = NULL;
            np_err err = npi_net_isend(g, (rel + mask + root) % n, 13, t + (size_t)mask * b,
                                       (size_t)give * b, &r);
            if (err == NP_OK)
                err = npi_net_wait(g, &r);
            if (err != NP_OK)
                return err;
            have = mask;
        }
    }
    memcpy(rbuf, t, b);
    return NP_OK;
}
