/*
 * --bind-to core: pin a rank to one core picked by its local rank (hwloc), so
 * ranks on one node spread over cores before sharing any.
 */
#include "config.h"

#include "run.h"

#include <hwloc.h>
#include <stdio.h>

int npi_run_bind_core(int local_rank)
{
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
