/*
 * The hierarchy of the node the ranks share, from hwloc: which package,
 * NUMA node or L3 cache each local rank sits under, so tree-shaped
 * algorithms keep most copies inside one group.
 */
#ifndef NUMPUSH_TOPO_H
#define NUMPUSH_TOPO_H

#include "npi.h"

/* Group each of n ranks by the highest level (package, then NUMA node, then
 * L3 cache) at which they span more than one object.  A rank bound to one
 * CPU (cpu[q] >= 0, its OS index) sits at that CPU; an unbound one is
 * assumed to sit at hardware thread q mod (number of threads), in hwloc's
 * logical order.  NUMPUSH_TOPOLOGY replaces the machine with a synthetic
 * description ("package:2 core:2 pu:1") or an XML file.  On success
 * group[q] is rank q's group (0-based, dense) and the return value is the
 * number of groups (1: flat); *level names the level.  Errors give 1 group:
 * a hierarchy is an optimisation, never a requirement. */
int npi_topo_groups(int n, const int *cpu, int *group, const char **level);

#endif
