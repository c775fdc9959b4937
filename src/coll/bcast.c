/*
 * Broadcast: root's count elements to every rank.
 */
#include "coll.h"

/*
 * eager: the root copies the payload into its eager area before it
 * arrives; after the arrival round every other rank copies it out.
 * Steps: 1 (the arrival round itself).  Bytes per rank: N (root writes N,
 * each receiver reads N).  Wins: small payloads (up to the eager area),
 * where the cost is one round of cache-line hand-offs.
 */
static np_err bcast_eager(npi_call *x, void *buf, size_t bytes, int root)
{
    if (x->me != root)
        npi_copy(buf, npi_call_eager(x, root), bytes);
    return NP_OK;
}

/*
 * cells: the root streams the buffer through its two shared cells; window
 * w goes to cell w % 2 and is announced with step 2w+1, receivers copy it
 * out and answer with step 2w+2; the root refills a cell only once every
 * receiver has emptied it.  Bytes per rank: N in, N out, pipelined so the
 * root's copy-in of window w+1 overlaps the receivers' copy-out of w.
 * Wins: mid sizes where a system call per receiver costs more than a
 * second copy, and wherever single copy is not allowed.
 */
static np_err bcast_cells(npi_call *x, char *buf, size_t bytes, int root)
{
    size_t w = x->s->hdr->cell, nw = npi_windows(bytes, w);
    np_err err;
    for (size_t i = 0; i < nw; i++) {
        size_t off = i * w, len = bytes - off < w ? bytes - off : w;
        if (x->me == root) {
            if (i >= 2) {
                for (int q = 0; q < x->n; q++)
                    if (q != root && (err = npi_call_wait(x, q, 2 * (i - 2) + 2)) != NP_OK)
                        return err;
            }
            npi_copy(npi_shm_cell(x->s, root, i), buf + off, len);
            npi_call_post(x, 2 * i + 1);
        } else {
            if ((err = npi_call_wait(x, root, 2 * i + 1)) != NP_OK)
                return err;
            npi_copy_piece(buf + off, npi_shm_cell(x->s, root, i), len, bytes);
            npi_call_post(x, 2 * i + 2);
        }
    }
    return NP_OK;
}

/*
 * cma: every receiver reads the root's buffer straight into its own with
 * process_vm_readv (one copy, all receivers in parallel).  When every rank
 * has a core, the root would idle meanwhile, so it writes the last 1/n of
 * every receiver's buffer itself with process_vm_writev (root share) and
 * posts step 1; a receiver reads the rest, posts step 1 and waits for the
 * root's step 1 before its buffer is complete.  The root waits for every
 * step 1 before it may return and let the caller reuse the buffer.  Bytes
 * per rank: N read once (n-1 N/n by receivers, N/n each by the root).
 * Wins: large payloads.  The root's share, with two ranks, halves the time
 * while the buffer stays in the caches (up to a few MiB); beyond, memory
 * bandwidth bounds both copies together (see decide.c).
 */
static np_err bcast_cma(npi_call *x, void *buf, size_t bytes, int root)
{
    np_err err;
    size_t share = npi_coll_root_share(x, bytes), pull = bytes - share;
    if (x->me == root) {
        for (int k = 1; share && k < x->n; k++) {
            int q = (root + k) % x->n;
            err = npi_call_push(x, q, npi_call_entry(x, q)->rbuf + pull, (char *)buf + pull, share);
            if (err != NP_OK)
                return err;
        }
        npi_call_post(x, 1);
        return npi_call_wait_all(x, 1);
    }
    err = npi_call_pull(x, root, buf, npi_call_entry(x, root)->rbuf, pull);
    if (err != NP_OK)
        return err;
    npi_call_post(x, 1);
    return share ? npi_call_wait(x, root, 1) : NP_OK;
}

/*
 * tree: single copies along the node's hierarchy (hwloc packages, NUMA
 * nodes or L3 caches).  The root's group and one leader per other group
 * read from the root; the other members of a group read from their leader
 * once it has its copy (step 1), so most bytes cross between groups once.
 * Every rank waits for the ranks that read from it.  Bytes per rank: N
 * read once.  Wins: large payloads on ranks spread over several groups.
 */
static np_err bcast_tree(npi_call *x, void *buf, size_t bytes, int root)
{
    const int *group = x->c->group;
    int lead[64];
    for (int g = 0; g < 64; g++)
        lead[g] = -1;
    lead[group[root]] = root;
    for (int q = 0; q < x->n; q++)
        if (lead[group[q]] < 0)
            lead[group[q]] = q;
    np_err err;
    if (x->me != root) {
        int lm = lead[group[x->me]], src = lm == x->me ? root : lm;
        if (src != root && (err = npi_call_wait(x, src, 1)) != NP_OK)
            return err;
        if ((err = npi_call_pull(x, src, buf, npi_call_entry(x, src)->rbuf, bytes)) != NP_OK)
            return err;
        npi_call_post(x, 1);
    }
    for (int q = 0; q < x->n; q++) {
        if (q == root || q == x->me)
            continue;
        int lq = lead[group[q]], src = lq == q ? root : lq;
        if (src == x->me && (err = npi_call_wait(x, q, 1)) != NP_OK)
            return err;
    }
    return NP_OK;
}

np_err np_bcast(void *buf, size_t count, np_dtype dt, int root, np_comm *comm)
{
    /* Ranks on several nodes: hierarchical (hier.c). */
    if (npi_hier_spans(comm))
        NPI_HIER_COLL(comm, "np_bcast", npi_hier_bcast(buf, count, dt, root, comm));
    static const char who[] = "np_bcast";
    npi_call x;
    np_err err = npi_call_begin(&x, comm, NPI_COLL_BCAST, who);
    if (err != NP_OK)
        return err;
    size_t bytes = 0;
    np_err bad = npi_coll_check_dtype(dt, count, 1, who, &bytes);
    if (bad == NP_OK)
        bad = npi_coll_check_root(root, x.n, who);
    if (bad == NP_OK)
        bad = npi_coll_check_buf(buf, count, who, "buf");
    npi_alg alg = npi_coll_decide(&x, bytes);
    if (bad == NP_OK && alg == NPI_ALG_EAGER && x.me == root)
        npi_copy(npi_call_eager(&x, root), buf, bytes);
    /* The root of an eager broadcast needs nothing, its receivers
     * need only the root's post (coll.c, "Running ahead"). */
    x.ahead = alg == NPI_ALG_EAGER;
    x.ahead_wait = root;
    npi_coll_sig sig = {NPI_COLL_BCAST, dt, count, root, NP_OP_NULL};
    err = npi_call_arrive(&x, &sig, alg, buf, buf, bad);
    if (err != NP_OK || bytes == 0 || x.n == 1)
        return npi_call_end(&x, err);
    switch (alg) {
    case NPI_ALG_EAGER:
        return npi_call_end(&x, bcast_eager(&x, buf, bytes, root));
    case NPI_ALG_CMA:
        return npi_call_end(&x, bcast_cma(&x, buf, bytes, root));
    case NPI_ALG_TREE:
        return npi_call_end(&x, bcast_tree(&x, buf, bytes, root));
    default:
        return npi_call_end(&x, bcast_cells(&x, buf, bytes, root));
    }
}
