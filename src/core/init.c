/*
 * Lifetime: np_init brings up the bootstrap, this module's settings and the
 * world communicator; np_finalize takes them down in reverse order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "boot.h"
#include "coll/decide.h"
#include "comm.h"
#include "npi.h"

static npi_boot init_boot;
static int init_state; /* 0 never, 1 running, 2 finalised */

np_err np_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    npi_error_clear();
    if (init_state == 1)
        return npi_error(NP_ERR_INIT, "np_init: numpush is already initialised");
    np_err err = npi_shm_configure();
    if (err == NP_OK)
        err = npi_decide_load();
    if (err != NP_OK)
        return err;
    err = npi_boot_init(&init_boot);
    if (err != NP_OK) {
        npi_boot_finalize(&init_boot);
        return err;
    }
    npi_error_set_rank(init_boot.rank);
    err = npi_comm_world_create();
    if (err != NP_OK) {
        npi_boot_finalize(&init_boot);
        npi_error_set_rank(-1);
        return err;
    }
    init_state = 1;
    return NP_OK;
}

int np_initialized(void)
{
    return init_state == 1;
}

np_err np_finalize(void)
{
    if (init_state != 1)
        return npi_error(NP_ERR_NOT_INIT, "np_finalize: numpush is not initialised");
    /* Collective: no rank unmaps while a peer may still read its areas. */
    np_comm *w = np_comm_world();
    np_err err = w->has_shm || w->hier ? np_barrier(w) : NP_OK;
    /* Between nodes, a rank that leaves the barrier may close its
     * connections while its last barrier message is still on the way to a
     * peer (zmq reports the closing before that message); a second round,
     * whose errors no longer matter, holds every rank until all have left
     * the first. */
    if (err == NP_OK && w->hier) {
        (void)np_barrier(w);
        npi_error_clear();
    }
    npi_comm_release_all();
    init_boot.failed = err == NP_ERR_PEER || err == NP_ERR_TIMEOUT;
    npi_boot_finalize(&init_boot);
    init_state = 2;
    return err;
}

void np_abort(np_comm *comm, int code)
{
    (void)comm;
    npi_boot *b = npi_boot_self();
    fprintf(stderr, "numpush: rank %d called np_abort(%d)\n", b ? b->rank : -1, code);
    fflush(stderr);
    if (b && b->ops && b->ops->abort)
        b->ops->abort(b, code);
    _exit(code ? code : 1);
}
