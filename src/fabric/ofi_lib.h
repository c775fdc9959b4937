/*
 * libfabric, loaded only when the ofi transport is first wanted.
 *
 * Loading libfabric.so costs 0.2 s on this machine, whoever asks for it:
 * Debian builds it against the PSM libraries, and libinfinipath's
 * constructor sleeps in usleep(125) some 850 times looking for an
 * InfiniPath card.  Linked into libnumpush, every rank paid that at
 * start-up (numpush-run -n 2 took 218 ms from launch to np_init returning,
 * MPICH's hydra 63 ms), and every `import numpush`, though tcp carries
 * the traffic unless ofi is asked for.  So libnumpush does not link
 * libfabric: ofi.c calls its few exported functions through the pointers
 * below, which npi_ofi_lib_load fills with dlopen the first time the
 * transport is probed or opened.  Everything else ofi.c uses is an inline
 * wrapper in libfabric's headers that calls through an object's own ops.
 */
#ifndef NUMPUSH_FABRIC_OFI_LIB_H
#define NUMPUSH_FABRIC_OFI_LIB_H

#include "npi.h"

#include <rdma/fabric.h>
#include <stdint.h>

typedef struct npi_ofi_lib {
    int (*getinfo)(uint32_t version, const char *node, const char *service, uint64_t flags,
                   const struct fi_info *hints, struct fi_info **info);
    void (*freeinfo)(struct fi_info *info);
    struct fi_info *(*dupinfo)(const struct fi_info *info);
    int (*fabric)(struct fi_fabric_attr *attr, struct fid_fabric **fabric, void *context);
    const char *(*strerror)(int errnum);
} npi_ofi_lib;

/* The functions, valid once npi_ofi_lib_load returned NP_OK. */
extern npi_ofi_lib npi_ofi;

/* Load libfabric (NUMPUSH_OFI_LIBRARY, else NPI_OFI_SONAME, the soname of
 * the library configure found) once per process; later calls return the
 * first one's result.  NP_ERR_TRANSPORT, naming the library and dlerror's
 * reason, where it cannot be loaded. */
np_err npi_ofi_lib_load(void);

/* fi_freeinfo; nothing for NULL, also before libfabric is loaded (the
 * clean-up of an endpoint whose opening failed there). */
void npi_ofi_freeinfo(struct fi_info *info);

/* fi_strerror, or a fixed text before libfabric is loaded. */
const char *npi_ofi_strerror(int errnum);

#endif
