/*
 * Recursive doubling and dissemination between node leaders.
 */
#include "net.h"

/*
 * Dissemination barrier: in round k each participant signals the one 2^k
 * ahead and waits for the one 2^k behind (empty messages).  Steps:
 * ceil(log2 n), for any n.  Bytes: none but headers.  Wins: always, among
 * leaders; nothing needs fewer rounds without a combining tree.
 */
np_err npi_net_barrier_dissemination(npi_net *g)
{
    int n = g->n, round = 0;
    for (int d = 1; d < n; d <<= 1, round++) {
        char none = 0;
        np_err err = npi_net_sendrecv(g, (g->me + d) % n, &none, 0, (g->me - d + n) % n, &none, 0,
                                      8 + round);
        if (err != NP_OK)
            return err;
    }
    return NP_OK;
}

/*
 * Recursive doubling allreduce: when n is not a power of two, the first
 * 2(n-p) participants (p the largest power of two below n) pair up and
 * each even one folds its vector into the odd one after it; then in round k
 * each of the p remaining exchanges its whole partial result with the one
 * whose (renumbered) index differs in bit k and combines, lower ranks on
 * the left, so every partial result covers consecutive participants in
 * order; finally the folded ones get the result back.  Steps: log2(p)
 * (+2 when n is not a power of two).  Bytes per participant: N log2(p)
 * each way.  Wins: small vectors, where rounds cost more than bytes; the
 * ring wins once N log2(p) outweighs 2N.
 */
np_err npi_net_allreduce_recdbl(npi_net *g, void *acc, void *tmp, size_t count, np_dtype dt,
                                np_op op)
{
    size_t bytes = count * np_dtype_size(dt);
    int p, nr;
    np_err err = npi_net_fold_in(g, acc, tmp, count, dt, op, 2, 4, &p, &nr);
    if (err != NP_OK || nr < 0)
        return err;
    int extra = g->n - p;
    for (int mask = 1; mask < p; mask <<= 1) {
        int pn = nr ^ mask, partner = pn < extra ? 2 * pn + 1 : pn + extra;
        err = npi_net_sendrecv(g, partner, acc, bytes, partner, tmp, bytes, 3);
        if (err != NP_OK)
            return err;
        if (pn < nr)
            npi_reduce(tmp, acc, count, dt, op);
        else
            npi_reduce3(acc, tmp, acc, count, dt, op);
    }
    return npi_net_fold_out(g, acc, bytes, p, 4);
}
