/*
 * Barrier.
 */
#include "coll.h"

/*
 * flags: every rank publishes its arrival (with its call signature) on its
 * own cache line and waits until it has seen every other rank's.
 * Steps: 1.  Bytes moved per rank: none (n - 1 cache lines read).
 * Wins: with a core per rank (2 ranks: 0.26 us against 0.43 us for the
 * release through rank 0 below, best of three runs of
 * numpush-run -n 2 bench/bench_coll -c barrier); a tree would only add
 * steps when every line sits in one shared L3.
 */
static np_err barrier_flags(npi_call *x, const npi_coll_sig *sig)
{
    return npi_call_end(x, npi_call_arrive(x, sig, NPI_ALG_FLAGS, NULL, NULL, NP_OK));
}

/*
 * release: every rank publishes its arrival on its own cache line; rank 0
 * waits until it has seen every other rank's, checks the signatures and
 * releases the others with step 1, for which they wait.  Steps: 2.  Bytes
 * moved per rank: none (rank 0 reads n - 1 cache lines, the others one).
 * Wins: with more ranks than cores, because it decides who leaves first:
 * rank 0, the usual root of the collective that follows, so that its
 * receivers find its post already there instead of waiting for it to be
 * scheduled (4 ranks on 2 cores, barrier then an 8-byte bcast from rank 0,
 * best of three runs of numpush-run -n 4 bench/bench_coll -c bcast -s 8:
 * 1.1 us when every rank reads every line, 0.20 us this way; the barrier
 * itself 2.1 us, Open MPI's 2.2 us).  The other ranks check only rank 0's
 * signature and leave the full check to their next call (coll.c, "Running
 * ahead"); rank 0 releases them even when its check fails, so none hangs.
 */
static np_err barrier_release(npi_call *x, const npi_coll_sig *sig)
{
    if (x->me != 0) {
        x->ahead = true;
        x->ahead_wait = 0;
    }
    np_err err = npi_call_arrive(x, sig, NPI_ALG_FLAGS, NULL, NULL, NP_OK);
    if (x->me == 0) {
        npi_call_post(x, 1);
        return npi_call_end(x, err);
    }
    if (err == NP_OK)
        err = npi_call_wait(x, 0, 1);
    return npi_call_end(x, err);
}

np_err np_barrier(np_comm *comm)
{
    /* Ranks on several nodes: hierarchical (hier.c). */
    if (npi_hier_spans(comm))
        NPI_HIER_COLL(comm, "np_barrier", npi_hier_barrier(comm));
    npi_call x;
    np_err err = npi_call_begin(&x, comm, NPI_COLL_BARRIER, "np_barrier");
    if (err != NP_OK)
        return err;
    /* Every rank reads the core count from the segment's header, so all of
     * them choose the same form. */
    npi_coll_sig sig = {NPI_COLL_BARRIER, NP_BYTE, 0, -1, NP_OP_NULL};
    if (x.n > x.s->cores)
        return barrier_release(&x, &sig);
    return barrier_flags(&x, &sig);
}
