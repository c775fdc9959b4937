/*
 * Node topology from hwloc (see topo.h).
 */
#include "topo.h"

#include <hwloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The object of type t above pu, or NULL; NUMA nodes are memory children in
 * hwloc 2, so a PU's NUMA node is found through its nodeset instead. */
static int topo_index(hwloc_topology_t topo, hwloc_obj_t pu, int level)
{
    if (level == 1) {
        int node = hwloc_bitmap_first(pu->nodeset);
        return node < 0 ? 0 : node;
    }
    hwloc_obj_type_t t = level == 0 ? HWLOC_OBJ_PACKAGE : HWLOC_OBJ_L3CACHE;
    hwloc_obj_t o = hwloc_get_ancestor_obj_by_type(topo, t, pu);
    return o ? (int)o->logical_index : 0;
}

static np_err topo_load(hwloc_topology_t *out)
{
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0)
        return NP_ERR_SYSTEM;
    const char *desc = npi_config_get("NUMPUSH_TOPOLOGY", NULL);
    int bad = 0;
    if (desc && *desc) {
        if (access(desc, R_OK) == 0)
            bad = hwloc_topology_set_xml(topo, desc);
        else
            bad = hwloc_topology_set_synthetic(topo, desc);
    }
    if (bad || hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        return npi_error(NP_ERR_CONFIG, "NUMPUSH_TOPOLOGY=%s: hwloc cannot load it",
                         desc ? desc : "");
    }
    *out = topo;
    return NP_OK;
}

int npi_topo_groups(int n, const int *cpu, int *group, const char **level)
{
    static const char *const names[3] = {"package", "numa", "l3"};
    for (int q = 0; q < n; q++)
        group[q] = 0;
    *level = "flat";
    hwloc_topology_t topo = NULL;
    if (n < 2 || topo_load(&topo) != NP_OK)
        return 1;
    const char *desc = npi_config_get("NUMPUSH_TOPOLOGY", NULL);
    bool synthetic = desc && *desc;
    int npu = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    int groups = 1;
    for (int lv = 0; lv < 3 && groups == 1 && npu > 0; lv++) {
        int seen[64], nseen = 0;
        for (int q = 0; q < n; q++) {
            hwloc_obj_t pu = NULL;
            if (!synthetic && cpu && cpu[q] >= 0)
                pu = hwloc_get_pu_obj_by_os_index(topo, (unsigned)cpu[q]);
            if (pu == NULL)
                pu = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, (unsigned)(q % npu));
            int id = pu ? topo_index(topo, pu, lv) : 0, g = 0;
            /* Dense group numbers in order of first appearance. */
            while (g < nseen && seen[g] != id)
                g++;
            if (g == nseen && nseen < 64)
                seen[nseen++] = id;
            group[q] = g < 64 ? g : 63;
        }
        groups = nseen;
        if (groups > 1)
            *level = names[lv];
    }
    if (groups <= 1)
        for (int q = 0; q < n; q++)
            group[q] = 0;
    hwloc_topology_destroy(topo);
    return groups < 1 ? 1 : groups;
}
