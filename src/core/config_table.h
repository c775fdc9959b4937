/*
 * Every NUMPUSH_* setting, in one list: X(NAME, "default", "one-line description").
 * config.c turns it into the table that npi_config_get() reads and
 * numpush-info prints.  Add a setting here and nowhere else; keep each
 * module's settings together under its heading.
 */
#ifndef NUMPUSH_CONFIG_TABLE_H
#define NUMPUSH_CONFIG_TABLE_H

#define NPI_CONFIG_LIST(X)                                                                         \
    /* core */                                                                                     \
    X(NUMPUSH_TIMEOUT, "10", "seconds a rank waits for a peer before failing with ERR_PEER/ERR_TIMEOUT") \
    X(NUMPUSH_DEBUG, "0", "1 prints bootstrap and algorithm choices to stderr")                    \
    /* bootstrap (src/core/boot_*.c) */                                                            \
    X(NUMPUSH_NODE, "", "node name override (default: hostname); ranks with equal names share memory") \
    /* shared memory (src/shm) */                                                                  \
    X(NUMPUSH_SPIN, "2000", "polls of a flag before a waiting rank yields its core")              \
    X(NUMPUSH_CMA, "auto", "single-copy via process_vm_readv: auto, 1 (force) or 0 (cells only)")   \
    X(NUMPUSH_TOPOLOGY, "", "hwloc synthetic description or XML file to use instead of the machine's") \
    /* collectives (src/coll/decide.c) */                                                          \
    /* fabric (src/fabric) */                                                                      \
    X(NUMPUSH_FABRIC, "", "force a transport between nodes: tcp, zmq, tipc or ofi")

#endif
