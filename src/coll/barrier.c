/*
 * Barrier.
 */
#include "coll.h"

/*
 * flags: every rank publishes its arrival (with its call signature) on its
 * own cache line and waits until it has seen every other rank's.
 * Steps: 1.  Bytes moved per rank: none (n - 1 cache lines read).
 * Wins: always within a node; a tree would only add steps when every line
 * sits in one shared L3, and with more ranks than cores the flat wait lets
 * each rank sleep on one flag at a time.
 */
static np_err barrier_flags(npi_call *x)
{
    npi_coll_sig sig = {NPI_COLL_BARRIER, NP_BYTE, 0, -1, NP_OP_NULL};
    return npi_call_arrive(x, &sig, NPI_ALG_FLAGS, NULL, NULL, NP_OK);
}

np_err np_barrier(np_comm *comm)
{
    npi_call x;
    np_err err = npi_call_begin(&x, comm, NPI_COLL_BARRIER, "np_barrier");
    if (err != NP_OK)
        return err;
    return barrier_flags(&x);
}
