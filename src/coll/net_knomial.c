/*
 * K-nomial trees between node leaders: the binomial tree's generalisation
 * to radix k (NUMPUSH_NET_KNOMIAL_K), fewer rounds for more sends per round.
 */
#include "net.h"

#include "shm/shm.h"

/*
 * K-nomial broadcast: participants are numbered relative to the root and
 * written in base k; in round r (from the top digit down) every
 * participant that has the data sends it to the k-1 ones whose digit r is
 * 1..k-1 and whose lower digits are zero below its own.  Steps:
 * ceil(log_k n) rounds of up to k-1 sends.  Bytes per participant: N
 * received once, N sent to up to (k-1) log_k(n) children.  Wins: small
 * messages among many nodes, where a round's network latency costs more
 * than k-1 back-to-back sends (8 nodes, k = 4: 2 rounds against 3).
 */
np_err npi_net_bcast_knomial(npi_net *g, void *buf, size_t bytes, int root, int k)
{
    int n = g->n, rel = (g->me - root + n) % n;
    int mask = 1;
    np_err err = NP_OK;
    /* The lowest nonzero digit of rel names the round it receives in;
     * the parent is rel with that digit cleared. */
    while (mask < n) {
        int span = mask * k;
        if (rel % span != 0) {
            err = npi_net_recv(g, (rel - rel % span + root) % n, 20, buf, bytes);
            if (err != NP_OK)
                return err;
            break;
        }
        mask = span;
    }
    /* Children: the largest subtrees first, so they start forwarding soonest. */
    npi_fab_req *reqs[64];
    int nr = 0;
    for (mask /= k; mask > 0 && err == NP_OK; mask /= k) {
        for (int j = 1; j < k && err == NP_OK; j++) {
            int child = rel + j * mask;
            if (child >= n)
                break;
            if (nr == 64) {
                err = npi_net_waitall(g, nr, reqs);
                nr = 0;
                if (err != NP_OK)
                    break;
            }
            err = npi_net_isend(g, (child + root) % n, 20, buf, bytes, &reqs[nr]);
            if (err == NP_OK)
                nr++;
        }
    }
    np_err w = npi_net_waitall(g, nr, reqs);
    return err != NP_OK ? err : w;
}

/*
 * K-nomial reduction to root: the broadcast's tree walked upwards.  From
 * the lowest digit up, a participant whose digit is nonzero sends its
 * partial result to its parent and is done; the others receive from their
 * up to k-1 children of that round, in increasing order, and combine each
 * on the right, so every partial result covers consecutive participants
 * in order and a non-commutative op keeps its order when root is 0.
 * Steps: ceil(log_k n) rounds of up to k-1 receives.  Bytes per
 * participant: N sent once, N received per child.  Wins: small vectors
 * among many nodes, as the broadcast.
 */
np_err npi_net_reduce_knomial(npi_net *g, void *acc, void *tmp, size_t count, np_dtype dt, np_op op,
                              int root, int k)
{
    int n = g->n, rel = (g->me - root + n) % n;
    size_t bytes = count * np_dtype_size(dt);
    for (int mask = 1; mask < n; mask *= k) {
        int span = mask * k;
        np_err err;
        if (rel % span != 0) {
            return npi_net_send(g, (rel - rel % span + root) % n, 21, acc, bytes);
        }
        for (int j = 1; j < k; j++) {
            int child = rel + j * mask;
            if (child >= n)
                break;
            err = npi_net_recv(g, (child + root) % n, 21, tmp, bytes);
            if (err != NP_OK)
                return err;
            npi_reduce3(acc, tmp, acc, count, dt, op);
        }
    }
    return NP_OK;
}
