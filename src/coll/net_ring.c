/*
 * Rings between node leaders: participant i sends to i+1 and receives from
 * i-1, so every link carries one stream in each direction at once.
 */
#include "net.h"

/*
 * Ring allgather of variable blocks: in step s participant i forwards block
 * (i - s) to the right and receives block (i - s - 1) from the left,
 * straight into its place.  Steps: n-1.  Bytes per participant: the total
 * minus its own block, in and out.  Wins: large blocks (bandwidth-optimal);
 * with two or three participants it is also the fewest rounds.
 */
static np_err net_allgatherv_ring_from(npi_net *g, void *buf, const size_t *off, const size_t *len,
                                       int first)
{
    int n = g->n, me = g->me, right = (me + 1) % n, left = (me - 1 + n) % n;
    char *b = buf;
    for (int s = first; s < n - 1; s++) {
        int sb = (me - s + n) % n, rb = (me - s - 1 + n) % n;
        np_err err =
            npi_net_sendrecv(g, right, b + off[sb], len[sb], left, b + off[rb], len[rb], 5);
        if (err != NP_OK)
            return err;
    }
    return NP_OK;
}

np_err npi_net_allgatherv_ring(npi_net *g, void *buf, const size_t *off, const size_t *len)
{
    return net_allgatherv_ring_from(g, buf, off, len, 0);
}

/* Segments of a reduce-scatter step: each is reduced as soon as it has
 * arrived, while the next ones are still on the wire.  Sender and receiver
 * cut a slice the same way (net_ring_seg depends only on its length). */
#define NET_RING_SEG      ((size_t)1 << 20)
#define NET_RING_SEGS_MAX 256

static size_t net_ring_seg(size_t bytes, size_t es, size_t *nseg)
{
    size_t seg = NET_RING_SEG / es * es;
    if (bytes / seg >= NET_RING_SEGS_MAX)
        seg = (bytes / NET_RING_SEGS_MAX + es) / es * es;
    *nseg = bytes == 0 ? 1 : (bytes + seg - 1) / seg;
    return seg;
}

/* One reduce-scatter step: send sbytes at sbuf to the right; receive rbytes
 * from the left into tmp, segment by segment, and fold each segment into
 * acc (the left's partial result is the left operand).  In the last step
 * the folded slice is final, and it is the first block the allgather sends
 * to the right: with fwd, each segment goes out as soon as it is folded,
 * so the allgather's first step overlaps this one (its requests in fr). */
static np_err net_ring_reduce_step(npi_net *g, int right, const char *sbuf, size_t sbytes, int left,
                                   char *acc, size_t rbytes, char *tmp, np_dtype dt, np_op op,
                                   npi_fab_req **fr)
{
    size_t es = np_dtype_size(dt), ns, nr;
    size_t sseg = net_ring_seg(sbytes, es, &ns), rseg = net_ring_seg(rbytes, es, &nr);
    npi_fab_req *rr[NET_RING_SEGS_MAX + 1] = {NULL}, *sr[NET_RING_SEGS_MAX + 1] = {NULL};
    np_err err = NP_OK;
    for (size_t i = 0; i < nr && err == NP_OK; i++) {
        size_t o = i * rseg, l = rbytes - o < rseg ? rbytes - o : rseg;
        err = npi_net_irecv(g, left, 6, tmp + o, l, &rr[i]);
    }
    for (size_t i = 0; i < ns && err == NP_OK; i++) {
        size_t o = i * sseg, l = sbytes - o < sseg ? sbytes - o : sseg;
        err = npi_net_isend(g, right, 6, sbuf + o, l, &sr[i]);
    }
    for (size_t i = 0; i < nr && err == NP_OK; i++) {
        size_t o = i * rseg, l = rbytes - o < rseg ? rbytes - o : rseg;
        if ((err = npi_net_wait(g, &rr[i])) == NP_OK) {
            npi_reduce(tmp + o, acc + o, l / es, dt, op);
            if (fr)
                err = npi_net_isend(g, right, 5, acc + o, l, &fr[i]);
        }
    }
    if (err == NP_OK)
        err = npi_net_waitall(g, (int)ns, sr);
    for (size_t i = 0; i <= NET_RING_SEGS_MAX; i++) {
        if (rr[i])
            npi_fab_cancel(g->fab, &rr[i]);
        if (sr[i])
            npi_fab_cancel(g->fab, &sr[i]);
    }
    return err;
}

/*
 * Ring allreduce (reduce-scatter, then allgather): the vector is cut into n
 * slices; in step s of the first half participant i sends its partial sum
 * of slice (i - s) to the right and adds the one of slice (i - s - 1) from
 * the left into its own, so after n-1 steps it holds slice (i + 1) fully
 * reduced; the second half circulates the finished slices.  Steps:
 * 2(n-1).  Bytes per participant: 2N(n-1)/n each way, which is optimal.
 * Wins: large vectors; rounds make it lose to recursive doubling on small
 * ones.  Slices are reduced in ring order, not rank order: used only for
 * commutative ops.
 */
np_err npi_net_allreduce_ring(npi_net *g, void *acc, void *tmp, size_t count, np_dtype dt, np_op op)
{
    int n = g->n, me = g->me, right = (me + 1) % n, left = (me - 1 + n) % n;
    size_t es = np_dtype_size(dt);
    char *a = acc;
    size_t off[64], len[64];
    if (n > 64)
        return npi_error(NP_ERR_NOT_IMPLEMENTED, "%s: ring over more than 64 nodes", g->who);
    for (int i = 0; i < n; i++) {
        size_t lo = npi_net_slice_lo(count, n, i), hi = npi_net_slice_lo(count, n, i + 1);
        off[i] = lo * es;
        len[i] = (hi - lo) * es;
    }
    npi_fab_req *fr[NET_RING_SEGS_MAX + 1] = {NULL}, *gr[NET_RING_SEGS_MAX + 1] = {NULL};
    np_err err = NP_OK;
    for (int s = 0; s < n - 1 && err == NP_OK; s++) {
        int sb = (me - s + n) % n, rb = (me - s - 1 + n) % n;
        /* The last step forwards its folded segments: the allgather's first
         * send.  Their receives, posted first, take the left's forwarded
         * segments of slice me (cut the same way: by length alone). */
        bool last = s == n - 2;
        size_t gn = 0, gseg = last ? net_ring_seg(len[me], es, &gn) : 0;
        for (size_t i = 0; i < gn && err == NP_OK; i++) {
            size_t o = i * gseg, l = len[me] - o < gseg ? len[me] - o : gseg;
            err = npi_net_irecv(g, left, 5, a + off[me] + o, l, &gr[i]);
        }
        if (err == NP_OK)
            err = net_ring_reduce_step(g, right, a + off[sb], len[sb], left, a + off[rb], len[rb],
                                       tmp, dt, op, last ? fr : NULL);
        for (size_t i = 0; i < gn && err == NP_OK; i++)
            err = npi_net_wait(g, &gr[i]);
    }
    if (err == NP_OK)
        err = npi_net_waitall(g, NET_RING_SEGS_MAX + 1, fr);
    for (size_t i = 0; i <= NET_RING_SEGS_MAX; i++) {
        if (fr[i])
            npi_fab_cancel(g->fab, &fr[i]);
        if (gr[i])
            npi_fab_cancel(g->fab, &gr[i]);
    }
    if (err != NP_OK || n == 2)
        return err;
    /* Participant i now owns slice (i + 1) and has slice i from its left;
     * the rest of the allgather circulates the others, starting with slice
     * i (shift the offsets so that the ring's "own block" is slice i + 1,
     * and skip the step already done). */
    size_t off2[64], len2[64];
    for (int i = 0; i < n; i++) {
        off2[i] = off[(i + 1) % n];
        len2[i] = len[(i + 1) % n];
    }
    return net_allgatherv_ring_from(g, acc, off2, len2, 1);
}
