/*
 * What bootstrap.c needs from each method file (boot_<name>.c), and helpers
 * the methods share.  Internal to the bootstrap: the rest of the library sees
 * only boot.h.
 */
#ifndef NUMPUSH_BOOT_METHODS_H
#define NUMPUSH_BOOT_METHODS_H

#include "boot.h"

#include <stdbool.h>

/* One bootstrap method.  detect() only reads the environment (no connection,
 * no library initialisation) and says why it would or would not be used;
 * init() fills rank, size, job, ops and impl of b, and may fill local_rank and
 * local_size (bootstrap.c recomputes the node layout from node names). */
typedef struct npi_boot_method {
    const char *name;
    bool (*detect)(char *why, size_t n);
    np_err (*init)(npi_boot *b);
} npi_boot_method;

extern const npi_boot_method npi_boot_method_run;
extern const npi_boot_method npi_boot_method_pmix;
extern const npi_boot_method npi_boot_method_pmi1;
extern const npi_boot_method npi_boot_method_env;
extern const npi_boot_method npi_boot_method_single;

/* How long a bootstrap get or fence waits (NUMPUSH_BOOT_TIMEOUT), in ms. */
int npi_boot_timeout_ms(void);

/* An integer environment variable: true and *out set when it is present and
 * a whole number. */
bool npi_boot_env_int(const char *name, int *out);

/* A short job id from any string that is unique per job (a PMIx namespace, a
 * PMI kvs name): prefix and base-36 digits of a hash, [a-z0-9] only. */
void npi_boot_job_from(char *job, size_t n, char prefix, const char *unique);

/* Put/get/fence over a kvstore client; impl of b starts with the client
 * pointer (struct npi_boot_kv). */
typedef struct npi_boot_kv {
    struct npi_kvc *client;
} npi_boot_kv;
np_err npi_boot_kv_put(npi_boot *b, const char *key, const void *val, size_t len);
np_err npi_boot_kv_get(npi_boot *b, const char *key, void *val, size_t cap, size_t *len);
np_err npi_boot_kv_fence(npi_boot *b);
/* Map a kvstore errno to np_err with a message naming what failed. */
np_err npi_boot_kv_error(npi_boot *b, int rc, const char *what, const char *key);

#endif
