/*
 * --bind-to: pin a rank to one core picked by its local rank (hwloc), so
 * ranks on one node spread over cores before sharing any.
 *
 * The default, auto, binds when the host's ranks fit its cores and leaves
 * them free otherwise, as Open MPI's mpirun does: unbound ranks that the
 * scheduler moves between cores make shared-memory waits slower and noisier
 * (a waiter cannot tell whether its peer runs beside it), while binding more
 * ranks than cores would pin two busy ranks to one core for good.
 */
#include "config.h"

#include "run.h"

#include <hwloc.h>
#include <stdio.h>
#include <string.h>

int npi_run_bind_parse(const char *text)
{
    if (!strcmp(text, "auto"))
        return NPI_RUN_BIND_AUTO;
    if (!strcmp(text, "core"))
        return NPI_RUN_BIND_CORE;
    if (!strcmp(text, "none"))
        return NPI_RUN_BIND_NONE;
    return -1;
}

int npi_run_bind_core(npi_run_bind mode, int local_rank, int local_size)
{
    if (mode == NPI_RUN_BIND_NONE)
        return 0;
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) || hwloc_topology_load(topo)) {
        fprintf(stderr, "numpush-run: warning: hwloc cannot read the topology; not binding\n");
        return -1;
    }
    int rc = -1;
    int ncores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    hwloc_obj_type_t type = HWLOC_OBJ_CORE;
    if (ncores <= 0) {
        type = HWLOC_OBJ_PU;
        ncores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    }
    if (mode == NPI_RUN_BIND_AUTO && (ncores <= 0 || local_size > ncores)) {
        hwloc_topology_destroy(topo);
        return 0;
    }
    if (ncores > 0) {
        /* More ranks than cores wrap around: oversubscription is allowed. */
        hwloc_obj_t core = hwloc_get_obj_by_type(topo, type, (unsigned)(local_rank % ncores));
        if (core && !hwloc_set_cpubind(topo, core->cpuset, HWLOC_CPUBIND_PROCESS))
            rc = 0;
    }
    if (rc)
        fprintf(stderr, "numpush-run: warning: cannot bind local rank %d to a core\n", local_rank);
    hwloc_topology_destroy(topo);
    return rc;
}
