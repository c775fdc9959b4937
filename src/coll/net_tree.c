/*
 * Binomial trees between node leaders.
 */
#include "net.h"

#include "shm/shm.h"

/*
 * Binomial broadcast: in round k every participant that has the data
 * sends it to the one 2^k further (relative to the root).  Steps:
 * ceil(log2 n).  Bytes per participant: N received once, N sent to up to
 * log2(n) children.  Wins: small messages, where the number of rounds
 * (latency) dominates; for large ones the root's log2(n) sends of N do.
 */
np_err npi_net_bcast_binomial(npi_net *g, void *buf, size_t bytes, int root)
{
    int n = g->n, rel = (g->me - root + n) % n;
    int mask = 1;
    np_err err = NP_OK;
    while (mask < n) {
        if (rel & mask) {
            err = npi_net_recv(g, (rel - mask + root) % n, 0, buf, bytes);
            if (err != NP_OK)
                return err;
            break;
        }
        mask <<= 1;
    }
    npi_fab_req *reqs[32];
    int k = 0;
    for (mask >>= 1; mask > 0; mask >>= 1) {
        if (rel + mask < n && k < 32) {
            err = npi_net_isend(g, (rel + mask + root) % n, 0, buf, bytes, &reqs[k]);
            if (err != NP_OK)
                break;
            k++;
        }
    }
    np_err w = npi_net_waitall(g, k, reqs);
    return err != NP_OK ? err : w;
}

/*
 * Binomial reduction to root: in round k a participant whose bit k is set
 * (relative to the root) sends its partial result to the one 2^k below and
 * is done; the other receives into tmp and combines, lower ranks on the
 * left so the order of a non-commutative op is kept when root is 0.
 * Steps: ceil(log2 n).  Bytes per participant: N sent once, N received
 * per child.  Wins: small and mid messages to one root.
 */
np_err npi_net_reduce_binomial(npi_net *g, void *acc, void *tmp, size_t count, np_dtype dt,
                               np_op op, int root)
{
    int n = g->n, rel = (g->me - root + n) % n;
    size_t bytes = count * np_dtype_size(dt);
    for (int mask = 1; mask < n; mask <<= 1) {
        np_err err;
        if (rel & mask) {
            return npi_net_send(g, (rel - mask + root) % n, 1, acc, bytes);
        }
        if (rel + mask < n) {
            err = npi_net_recv(g, (rel + mask + root) % n, 1, tmp, bytes);
            if (err != NP_OK)
                return err;
            npi_reduce3(acc, tmp, acc, count, dt, op);
        }
    }
    return NP_OK;
}
