/*
 * All-to-all between node leaders.
 */
#include "net.h"

#include <stdlib.h>
#include <string.h>

/*
 * Pairwise exchange: in step s participant i sends its block for i+s and
 * receives the block from i-s, so each step is a permutation and no link
 * carries two streams one way.  Steps: n-1.  Bytes per participant: every
 * block but its own, in and out.  Wins: large blocks (Bruck's log2(n)
 * rounds pay off only for small blocks among many participants, and nodes
 * here are few).
 */
np_err npi_net_alltoallv_pairwise(npi_net *g, const void *sbuf, const size_t *soff,
                                  const size_t *slen, void *rbuf, const size_t *roff,
                                  const size_t *rlen)
{
    int n = g->n, me = g->me;
    memcpy((char *)rbuf + roff[me], (const char *)sbuf + soff[me], rlen[me]);
    for (int s = 1; s < n; s++) {
        int to = (me + s) % n, from = (me - s + n) % n;
        np_err err = npi_net_sendrecv(g, to, (const char *)sbuf + soff[to], slen[to], from,
                                      (char *)rbuf + roff[from], rlen[from], 14);
        if (err != NP_OK)
            return err;
    }
    return NP_OK;
}

/*
 * Bruck: participant i first rotates its blocks so that the one for i+j
 * sits at position j; in round k (k = 1, 2, 4 ...) it sends every block
 * whose position has bit k set to participant i+k, packed in one message,
 * and puts the ones from i-k in their place; a final rotation puts the
 * block from j at position j.  Steps: ceil(log2 n).  Bytes per
 * participant: about (n/2) b log2(n) each way, against (n-1) b for
 * pairwise.  Wins: small blocks (1 KiB or less) among 8 or more nodes,
 * where n-1 network latencies cost more than the extra bytes.  Needs equal
 * blocks (b bytes each, in participant order in sbuf and rbuf).
 */
np_err npi_net_alltoall_bruck(npi_net *g, const void *sbuf, void *rbuf, size_t b)
{
    int n = g->n, me = g->me;
    size_t nb = (size_t)n * b;
    /* tmp: the rotated blocks; pk: one round's blocks out, then in. */
    char *tmp = malloc(nb ? 2 * nb : 1), *pk = tmp + nb;
    if (!tmp)
        return npi_error(NP_ERR_NOMEM, "%s: out of memory (%zu bytes)", g->who, 2 * nb);
    const char *s = sbuf;
    for (int j = 0; j < n; j++)
        memcpy(tmp + (size_t)j * b, s + (size_t)((me + j) % n) * b, b);
    np_err err = NP_OK;
    for (int k = 1; k < n && err == NP_OK; k <<= 1) {
        size_t m = 0;
        for (int j = 0; j < n; j++)
            if (j & k)
                memcpy(pk + m++ * b, tmp + (size_t)j * b, b);
        /* At most half the positions have bit k set, so the blocks in
         * fit after the blocks out. */
        char *in = pk + m * b;
        err = npi_net_sendrecv(g, (me + k) % n, pk, m * b, (me - k + n) % n, in, m * b, 26);
        m = 0;
        for (int j = 0; j < n && err == NP_OK; j++)
            if (j & k)
                memcpy(tmp + (size_t)j * b, in + m++ * b, b);
    }
    /* Position j now holds the block from me - j. */
    char *r = rbuf;
    for (int j = 0; j < n && err == NP_OK; j++)
        memcpy(r + (size_t)((me - j + n) % n) * b, tmp + (size_t)j * b, b);
    free(tmp);
    return err;
}
