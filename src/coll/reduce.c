/*
 * Reduce: the elementwise reduction over all ranks, at the root only.
 * Rank order as in allreduce.c, so results match allreduce bit for bit.
 */
#include "coll.h"

/*
 * eager: every non-root copies its input into its eager area before it
 * arrives; after the arrival round the root reduces all n inputs, its own
 * straight from its buffer (no one else reads it, so publishing it would
 * cost the root a copy of N for nothing).  Steps: 1.  Bytes: N written per
 * non-root, n N read by the root.  Wins: inputs up to the eager area.
 */
static bool reduce_eager_own(int root, bool in_place)
{
    /* In place, the root's input is its recvbuf, which the ordered
     * reduction overwrites after combining ranks 0 and 1: only as rank 0
     * or 1 is it read before that. */
    return !in_place || root <= 1;
}

static np_err reduce_eager(npi_call *x, const void *mine, void *rbuf, size_t count, np_dtype dt,
                           np_op op, int root, bool in_place)
{
    if (x->me != root)
        return NP_OK;
    const void *in[x->n];
    for (int q = 0; q < x->n; q++)
        in[q] = npi_call_eager(x, q);
    if (reduce_eager_own(root, in_place))
        in[root] = mine;
    npi_coll_reduce_ordered(rbuf, in, x->n, count, dt, op);
    return NP_OK;
}

/*
 * cells: reduce-scatter to the root, window by window.  Each rank copies a
 * window of its input into its cell (step 2w+1), reduces its slice of the
 * window from every cell into its own slice of its cell (step 2w+2), and
 * the root copies every slice into its recvbuf.  Bytes per rank: N in, N
 * read while reducing; N out at the root.  Wins: mid sizes, or no single
 * copy; the reduction work is spread over all ranks.
 */
static np_err reduce_cells(npi_call *x, const char *sbuf, char *rbuf, size_t count, np_dtype dt,
                           np_op op, int root)
{
    size_t es = np_dtype_size(dt), we = x->s->hdr->cell / es, nw = npi_windows(count, we);
    char *tmp = x->me == root ? NULL : npi_comm_tmp(x->c, we / (size_t)x->n * es + es);
    if (x->me != root && tmp == NULL)
        return npi_error(NP_ERR_NOMEM, "%s: no memory for reduction buffers", x->who);
    const void *in[x->n];
    np_err err;
    for (size_t i = 0; i < nw; i++) {
        size_t off = i * we, len = count - off < we ? count - off : we;
        npi_copy(npi_shm_cell(x->s, x->me, i), sbuf + off * es, len * es);
        npi_call_post(x, 2 * i + 1);
        if ((err = npi_call_wait_all(x, 2 * i + 1)) != NP_OK)
            return err;
        size_t lo = npi_slice_lo(len, x->n, x->me), hi = npi_slice_lo(len, x->n, x->me + 1);
        for (int q = 0; q < x->n; q++)
            in[q] = npi_shm_cell(x->s, q, i) + lo * es;
        char *acc = x->me == root ? rbuf + (off + lo) * es : tmp;
        npi_coll_reduce_ordered(acc, in, x->n, hi - lo, dt, op);
        if (x->me != root)
            npi_copy(npi_shm_cell(x->s, x->me, i) + lo * es, acc, (hi - lo) * es);
        npi_call_post(x, 2 * i + 2);
        if (x->me != root)
            continue;
        for (int q = 0; q < x->n; q++) {
            if (q == root)
                continue;
            if ((err = npi_call_wait(x, q, 2 * i + 2)) != NP_OK)
                return err;
            size_t qlo = npi_slice_lo(len, x->n, q), qhi = npi_slice_lo(len, x->n, q + 1);
            npi_copy_piece(rbuf + (off + qlo) * es, npi_shm_cell(x->s, q, i) + qlo * es,
                           (qhi - qlo) * es, count * es);
        }
    }
    return NP_OK;
}

typedef struct reduce_emit_arg {
    int root;
    size_t es;
    char *rbuf; /* the root's own recvbuf, at the root */
} reduce_emit_arg;

static np_err reduce_emit(npi_call *x, size_t first, const void *acc, size_t count, void *arg)
{
    reduce_emit_arg *a = arg;
    if (x->me == a->root) {
        npi_copy(a->rbuf + first * a->es, acc, count * a->es);
        return NP_OK;
    }
    return npi_call_push(x, a->root, npi_call_entry(x, a->root)->rbuf + first * a->es, acc,
                         count * a->es);
}

/*
 * cma: reduce-scatter straight into the root.  Rank r reduces slice r,
 * pulling each peer's slice from its input chunk by chunk, and writes the
 * result into slice r of the root's recvbuf with process_vm_writev (the
 * root's own input there, in place, is read only by rank r before it
 * writes); everyone waits for everyone's step 1 because peers read its
 * input.  Bytes per rank: (n-1) N/n pulled, N/n written.  Wins: large
 * vectors.
 */
static np_err reduce_cma(npi_call *x, const char *mine, char *rbuf, size_t count, np_dtype dt,
                         np_op op, int root)
{
    reduce_emit_arg a = {root, np_dtype_size(dt), rbuf};
    size_t lo = npi_slice_lo(count, x->n, x->me), hi = npi_slice_lo(count, x->n, x->me + 1);
    np_err err = npi_coll_reduce_cma(x, mine, lo, hi, dt, op, reduce_emit, &a);
    if (err != NP_OK)
        return err;
    npi_call_post(x, 1);
    return npi_call_wait_all(x, 1);
}

/*
 * cma, mid sizes (pull): the root reads every other rank's input straight
 * from its sendbuf into private memory, reports step 1, and reduces all n
 * in rank order into its recvbuf; a non-root waits for that report, after
 * which no one reads its sendbuf any more, so it leaves while the root
 * reduces instead of after.  Bytes: (n-1) N pulled by the root, nothing
 * written to shared memory.  With one rank per core this beats eager,
 * whose every call rewrites the eager area and so makes the root fetch
 * each line from the other core's cache (an unchanged sendbuf stays in the
 * root's cache from one call to the next), and beats the reduce-scatter
 * below, whose two rounds of system calls cost more than they save on
 * vectors this short.
 */
/* 2 ranks, one per core, NUMPUSH_REDUCE_ALG=cma numpush-run -n 2
 * bench/bench_coll -c reduce -s 16K,64K,256K -b 0.1, three runs: pull 16 KiB
 * 1.7 us, 64 KiB 5.1 us, 256 KiB 18-33 us; reduce-scatter 256 KiB 14.5-16.
 * Reporting before the reduction rather than after: five interleaved runs
 * of -s 32K,64K,128K -b 0.5 -I 3000 gave 3.1-4.4 / 5.0-7.0 / 8.8-11.4 us
 * against 3.7-5.0 / 6.1-8.3 / 11.0-14.7 (Open MPI 3.4-4.2 / 5.3-6.9 /
 * 8.8-10.9).  The other way round, the non-root pushing its input into the
 * root's recvbuf (process_vm_writev) and leaving, was slower and bimodal
 * (64 KiB 4.9 or 13.7 us from one run to the next): the root then reads
 * lines the other core has just written, where a pull of an unchanged
 * sendbuf finds them in its own cache.  Pulling and reducing chunk by
 * chunk, to keep the pulled bytes in cache, was slower too (three runs,
 * 16 / 64 KiB chunks: 64 KiB 6.9-9.8 / 4.8-5.9 us, 256 KiB 28-42 / 22-26,
 * against 4.8-5.4 and 17-18 unchunked): every process_vm_readv pins the
 * pages it reads and costs more than the cache misses it saves. */
#define REDUCE_PULL_BELOW (256 * 1024)

static np_err reduce_pull(npi_call *x, const char *mine, char *rbuf, size_t count, np_dtype dt,
                          np_op op, int root, bool in_place)
{
    if (x->me != root)
        return npi_call_wait(x, root, 1);
    size_t bytes = count * np_dtype_size(dt);
    bool own = reduce_eager_own(root, in_place);
    char *tmp = npi_comm_tmp(x->c, bytes * (size_t)(own ? x->n - 1 : x->n));
    np_err err = NP_OK;
    if (tmp == NULL)
        err = npi_error(NP_ERR_NOMEM, "%s: no memory for reduction buffers", x->who);
    const void *in[x->n];
    char *next = tmp;
    for (int k = 1; k < x->n && err == NP_OK; k++) {
        int q = (root + k) % x->n;
        err = npi_call_pull(x, q, next, npi_call_entry(x, q)->sbuf, bytes);
        in[q] = next;
        next += bytes;
    }
    /* Report now, failed or not: no one reads a non-root's sendbuf any
     * more, and the non-roots stop waiting. */
    npi_call_post(x, 1);
    if (err == NP_OK) {
        if (own) {
            in[root] = mine;
        } else {
            npi_copy(next, mine, bytes);
            in[root] = next;
        }
        npi_coll_reduce_ordered(rbuf, in, x->n, count, dt, op);
    }
    return err;
}

np_err np_reduce(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, np_op op, int root,
                 np_comm *comm)
{
    /* Ranks on several nodes: hierarchical (hier.c). */
    if (npi_hier_spans(comm))
        NPI_HIER_COLL(comm, "np_reduce",
                      npi_hier_reduce(sendbuf, recvbuf, count, dt, op, root, comm));
    static const char who[] = "np_reduce";
    npi_call x;
    np_err err = npi_call_begin(&x, comm, NPI_COLL_REDUCE, who);
    if (err != NP_OK)
        return err;
    size_t bytes = 0;
    np_err bad = npi_op_check(who, dt, op);
    if (bad == NP_OK)
        bad = npi_coll_check_dtype(dt, count, 1, who, &bytes);
    if (bad == NP_OK)
        bad = npi_coll_check_root(root, x.n, who);
    bool in_place = x.me == root && sendbuf == NP_IN_PLACE;
    if (bad == NP_OK && !in_place)
        bad = npi_coll_check_buf(sendbuf, count, who, "sendbuf");
    if (bad == NP_OK && x.me == root)
        bad = npi_coll_check_buf(recvbuf, count, who, "recvbuf");
    const char *mine = in_place ? recvbuf : sendbuf;
    npi_alg alg = npi_coll_decide(&x, bytes);
    if (bad == NP_OK && alg == NPI_ALG_EAGER && (x.me != root || !reduce_eager_own(root, in_place)))
        npi_copy(npi_call_eager(&x, x.me), mine, bytes);
    /* A non-root of an eager reduce only publishes (coll.c). */
    x.ahead = alg == NPI_ALG_EAGER && x.me != root;
    npi_coll_sig sig = {NPI_COLL_REDUCE, dt, count, root, op};
    err = npi_call_arrive(&x, &sig, alg, mine, recvbuf, bad);
    if (err != NP_OK || bytes == 0)
        return npi_call_end(&x, err);
    if (x.n == 1) {
        if (!in_place)
            npi_copy(recvbuf, mine, bytes);
        return npi_call_end(&x, NP_OK);
    }
    switch (alg) {
    case NPI_ALG_EAGER:
        return npi_call_end(&x, reduce_eager(&x, mine, recvbuf, count, dt, op, root, in_place));
    case NPI_ALG_CMA:
        if (bytes < REDUCE_PULL_BELOW)
            return npi_call_end(&x, reduce_pull(&x, mine, recvbuf, count, dt, op, root, in_place));
        return npi_call_end(&x, reduce_cma(&x, mine, recvbuf, count, dt, op, root));
    default:
        return npi_call_end(&x, reduce_cells(&x, mine, recvbuf, count, dt, op, root));
    }
}
