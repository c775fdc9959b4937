/*
 * The tipc transport's published address and probe, apart from the socket
 * code so that unit tests (tests/test_tipc.c) can check them on kernels
 * without TIPC.
 */
#ifndef NUMPUSH_FABRIC_TIPC_ADDR_H
#define NUMPUSH_FABRIC_TIPC_ADDR_H

#include "npi.h"

/* The service type numpush binds ("NPUS"); TIPC reserves types below 64. */
#define NPI_TIPC_TYPE     0x4e505553u
#define NPI_TIPC_TYPE_MIN 64u

/* Published bytes: 'T', version 1, two reserved, then type, instance, node,
 * reference (little-endian uint32 each) and the cookie (uint64). */
#define NPI_TIPC_ADDR_LEN 28

typedef struct npi_tipc_addr {
    uint32_t type, instance; /* the service address peers connect to */
    uint32_t node, ref;      /* the listening socket, for messages */
    uint64_t cookie;         /* proves a connecting peer read the store */
} npi_tipc_addr;

void npi_tipc_addr_encode(const npi_tipc_addr *a, uint8_t out[NPI_TIPC_ADDR_LEN]);

/* NP_ERR_ARG with a message naming what is wrong for malformed bytes. */
np_err npi_tipc_addr_decode(const void *in, size_t len, npi_tipc_addr *a);

/* The probe's verdict for socket(AF_TIPC, ...) failing with errno err (0:
 * it worked): NP_ERR_TRANSPORT with a message saying why and what to do. */
np_err npi_tipc_probe_errno(int err);

#endif
