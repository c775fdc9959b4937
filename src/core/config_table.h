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
    X(NUMPUSH_TIMEOUT, "5", "seconds within which a dead or unreachable peer is reported as ERR_PEER") \
    X(NUMPUSH_WAIT_TIMEOUT, "0", "seconds a rank waits for a live peer before failing with ERR_TIMEOUT (0: no limit)") \
    X(NUMPUSH_DEBUG, "0", "1 prints bootstrap and algorithm choices to stderr")                    \
    /* bootstrap (src/core/boot_*.c) */                                                            \
    X(NUMPUSH_NODE, "", "node name override (default: hostname); ranks with equal names share memory") \
    X(NUMPUSH_BOOT, "", "force a bootstrap method: numpush-run, pmix, pmi1, env or singleton") \
    X(NUMPUSH_BOOT_TIMEOUT, "60", "seconds a bootstrap get or fence waits for the other ranks") \
    X(NUMPUSH_ROOT, "", "env:// rendezvous host:port; rank 0 serves the store there (with NUMPUSH_RANK, NUMPUSH_SIZE)") \
    /* shared memory (src/shm) */                                                                  \
    X(NUMPUSH_SPIN, "auto", "polls of a flag before a waiting rank yields its core (auto: 300, or 0 with more ranks than cores)") \
    X(NUMPUSH_CMA, "auto", "single-copy via process_vm_readv: auto, 1 (force) or 0 (cells only)")   \
    X(NUMPUSH_TOPOLOGY, "", "hwloc synthetic description or XML file to use instead of the machine's") \
    X(NUMPUSH_SHM_EAGER, "1048576", "bytes per rank a collective carries in one flag round (eager area; at most 32 MiB / ranks)") \
    X(NUMPUSH_SHM_CELL, "auto", "bytes per pipelined shared-memory cell, two per rank (auto: 131072, or 524288 with more ranks than cores)") \
    X(NUMPUSH_COPY_STREAM, "8388608", "copies of this many bytes and more bypass the caches (non-temporal stores; 0: never)") \
    /* collectives (src/coll/decide.c) */                                                          \
    X(NUMPUSH_BARRIER_ALG, "", "force the barrier algorithm: flags (default: the decision table)") \
    X(NUMPUSH_BCAST_ALG, "", "force the bcast algorithm: eager, cells, cma or tree (default: the decision table)") \
    X(NUMPUSH_SCATTER_ALG, "", "force the scatter algorithm: eager, cells or cma (default: the decision table)") \
    X(NUMPUSH_SCATTERV_ALG, "", "force the scatterv algorithm: eager, cells or cma (default: the decision table)") \
    X(NUMPUSH_GATHER_ALG, "", "force the gather algorithm: eager, cells or cma (default: the decision table)") \
    X(NUMPUSH_GATHERV_ALG, "", "force the gatherv algorithm: eager, cells or cma (default: the decision table)") \
    X(NUMPUSH_ALLREDUCE_ALG, "", "force the allreduce algorithm: eager, cells or cma (default: the decision table)") \
    X(NUMPUSH_REDUCE_ALG, "", "force the reduce algorithm: eager, cells or cma (default: the decision table)") \
    X(NUMPUSH_ALLGATHER_ALG, "", "force the allgather algorithm: eager, cells or cma (default: the decision table)") \
    X(NUMPUSH_ALLTOALL_ALG, "", "force the alltoall algorithm: eager, cells or cma (default: the decision table)") \
    X(NUMPUSH_CMA_CLAIMS, "auto", "single-copy alltoall and allgather: who copies a block: auto (either of its two ranks, whichever comes first, with more ranks than cores and 256 KiB blocks and up; else the receiver), pull (always the receiver) or push (the sender first, at every size; tests the write path)") \
    X(NUMPUSH_HIER_CHUNK, "4194304", "bytes per chunk of a broadcast between nodes, pipelined with the node-local one") \
    X(NUMPUSH_HIER_BCAST, "", "large broadcast among node leaders with 3+ nodes: chain (default) or sag (scatter-allgather); NUMPUSH_NET_BCAST_ALG wins") \
    X(NUMPUSH_NET_BCAST_ALG, "", "force the bcast algorithm between nodes: binomial, knomial, chain or sag (default: the decision table)") \
    X(NUMPUSH_NET_REDUCE_ALG, "", "force the reduce algorithm between nodes: binomial or knomial (default: the decision table)") \
    X(NUMPUSH_NET_ALLREDUCE_ALG, "", "force the allreduce algorithm between nodes: recdbl, ring or rabenseifner (ring and rabenseifner need a commutative op)") \
    X(NUMPUSH_NET_ALLTOALL_ALG, "", "force the alltoall algorithm between nodes: pairwise or bruck (bruck needs as many ranks on every node)") \
    X(NUMPUSH_NET_KNOMIAL_K, "4", "radix k of the k-nomial trees between nodes (2 to 16)") \
    /* fabric (src/fabric) */                                                                      \
    X(NUMPUSH_FABRIC, "", "force a transport between nodes: tcp, zmq, tipc or ofi")           \
    X(NUMPUSH_TCP_IF, "", "tcp/zmq listen address: interface name, IPv4 address or network (198.18.0.0/15); default: the host name's address, else 127.0.0.1") \
    X(NUMPUSH_TCP_CONGESTION, "reno,cubic", "tcp, and ofi and zmq over TCP: congestion control of numpush's connections, the first of the list the kernel accepts; system: the system's (BBR paces bursts: a 64 KiB bcast between hosts took 90 us under it, 22 under cubic or reno; cubic is slower with both directions busy: a 256 KiB allreduce between two hosts took 150-227 us under it, 104-111 under reno)") \
    X(NUMPUSH_TCP_SNDBUF, "262144", "tcp, and ofi over TCP providers: send buffer of numpush's connections in bytes (0: the kernel's autotuning); smaller keeps fewer bytes in flight, which on lossy veth links cut retransmissions (2 hosts, 16 MiB allreduce: 19 ms with 4 MiB, 9.1-9.7 with 256 KiB)") \
    X(NUMPUSH_OFI_PROVIDER, "", "ofi: libfabric provider, e.g. tcp;ofi_rxm or sockets (default: FI_PROVIDER, else libfabric's first RDM tagged provider that is not node-local)") \
    X(NUMPUSH_OFI_LIBRARY, "", "ofi: the libfabric to load when ofi is first wanted, a path or soname (default: the soname of the one numpush was built against)") \
    X(NUMPUSH_OFI_MR, "auto", "ofi: register buffers only when the provider asks (auto) or always (always; tests the registration cache)")

#endif
