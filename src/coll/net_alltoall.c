/*
 * All-to-all between node leaders.
 */
#include "net.h"

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
