/*
 * A spanning communicator after a failure between nodes.
 *
 * A rank that died, a link that went down, a timeout or a garbled stream
 * can end a hierarchical collective at different points on different
 * ranks: one node's ranks may have finished a node-local step that
 * another node's never started, and the leaders may hold messages of the
 * failed call.  Calling again would pair steps of different calls and
 * could wait forever on a step no rank will post.  So such a failure
 * breaks the communicator, as ULFM revokes one: every later collective on
 * it returns at once with the first failure's code and message, and the
 * node's shared segment is marked broken too, so a rank of the node still
 * waiting in a node-local step wakes with NP_ERR_PEER instead of waiting
 * for a leader that will not come.
 *
 * Disagreements and bad arguments do not break it: every rank learns of
 * them at the same step (hier.c's alarms and status rounds), and the next
 * agreed call runs normally (tests/test_hier_fail.c checks both).
 */
#include "hier.h"

#include <stdio.h>
#include <string.h>

/* Whether err can leave the ranks of a call out of step. */
static bool hier_breaks(np_err err)
{
    switch (err) {
    case NP_ERR_PEER:
    case NP_ERR_TIMEOUT:
    case NP_ERR_PROTOCOL:
    case NP_ERR_TRANSPORT:
    case NP_ERR_SYSTEM:
    case NP_ERR_NOMEM:
    case NP_ERR_INTERNAL:
        return true;
    default:
        return false;
    }
}

np_err npi_hier_usable(np_comm *comm, const char *who)
{
    if (comm->hier_broken == NP_OK)
        return NP_OK;
    return npi_error(comm->hier_broken,
                     "%s: the communicator is broken by an earlier failure between nodes: %s", who,
                     comm->hier_broken_msg);
}

np_err npi_hier_after(np_comm *comm, np_err err)
{
    if (!hier_breaks(err) || comm->hier_broken != NP_OK)
        return err;
    comm->hier_broken = err;
    /* Drop the "rank N: " prefix: npi_error adds it again. */
    const char *msg = np_last_error(), *colon = strstr(msg, ": ");
    if (strncmp(msg, "rank ", 5) == 0 && colon)
        msg = colon + 2;
    snprintf(comm->hier_broken_msg, sizeof comm->hier_broken_msg, "%s", msg);
    npi_hier_break_node(comm);
    return err;
}
