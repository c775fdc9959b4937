/*
 * Rabenseifner's allreduce between node leaders.
 */
#include "net.h"

#include "shm/shm.h"

/* Participant of renumbered index nr once the first 2 extra ones have
 * folded pairwise (the odd one of each pair stays). */
static int rab_real(int nr, int extra)
{
    return nr < extra ? 2 * nr + 1 : nr + extra;
}

/*
 * Rabenseifner: a reduce-scatter by recursive halving followed by an
 * allgather by recursive doubling.  When n is not a power of two, the
 * first 2(n-p) participants (p the largest power of two below n) fold
 * pairwise first, as in recursive doubling, and get the result back at
 * the end.  Halving: in round k each of the p exchanges half of its
 * current slice of the vector with the partner whose renumbered index
 * differs in bit k (from the top bit down), keeps the half its side owns
 * and combines the partner's copy of it into that half; after log2(p)
 * rounds each owns count/p elements fully reduced.  Doubling: the rounds
 * in reverse, each partner sending its reduced part, until every one has
 * the whole vector.  Steps: 2 log2(p) (+2 when n is not a power of two).
 * Bytes per participant: 2 N (p-1)/p each way, against N log2(p) for
 * recursive doubling.  Wins: vectors from about 64 KiB among 4 or more
 * nodes, where recursive doubling sends too many bytes and the ring's
 * 2(n-1) rounds too many latencies.  Needs a commutative op (the halves
 * are combined in an order that depends on the participant).
 */
np_err npi_net_allreduce_rabenseifner(npi_net *g, void *acc, void *tmp, size_t count, np_dtype dt,
                                      np_op op)
{
    size_t es = np_dtype_size(dt), bytes = count * es;
    char *a = acc, *t = tmp;
    int p, nr;
    np_err err = npi_net_fold_in(g, acc, tmp, count, dt, op, 22, 25, &p, &nr);
    if (err != NP_OK || nr < 0)
        return err;
    int extra = g->n - p;
    /* lo[l], hi[l]: the slice (elements) this participant held before
     * halving round l; the doubling rounds walk them back. */
    size_t lo[32], hi[32], mylo = 0, myhi = count;
    int l = 0;
    for (int mask = p >> 1; mask > 0; mask >>= 1, l++) {
        int partner = rab_real(nr ^ mask, extra);
        size_t mid = mylo + (myhi - mylo) / 2;
        bool low = (nr & mask) == 0;
        size_t klo = low ? mylo : mid, khi = low ? mid : myhi; /* kept */
        size_t slo = low ? mid : mylo, shi = low ? myhi : mid; /* sent */
        lo[l] = mylo;
        hi[l] = myhi;
        err = npi_net_sendrecv(g, partner, a + slo * es, (shi - slo) * es, partner, t + klo * es,
                               (khi - klo) * es, 23);
        if (err != NP_OK)
            return err;
        npi_reduce(t + klo * es, a + klo * es, khi - klo, dt, op);
        mylo = klo;
        myhi = khi;
    }
    for (int mask = 1; mask < p; mask <<= 1) {
        l--;
        int partner = rab_real(nr ^ mask, extra);
        /* The partner holds the other half of the slice of round l. */
        size_t olo = mylo == lo[l] ? myhi : lo[l], ohi = mylo == lo[l] ? hi[l] : mylo;
        err = npi_net_sendrecv(g, partner, a + mylo * es, (myhi - mylo) * es, partner, a + olo * es,
                               (ohi - olo) * es, 24);
        if (err != NP_OK)
            return err;
        mylo = lo[l];
        myhi = hi[l];
    }
    return npi_net_fold_out(g, acc, bytes, p, 25);
}
