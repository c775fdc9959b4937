/*
 * The internal umbrella header: what src/ files share with each other.
 * Names here are npi_ (internal, shared across files); file-private names are
 * static and prefixed by their module.  Nothing here is installed.
 */
#ifndef NUMPUSH_NPI_H
#define NUMPUSH_NPI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <numpush/numpush.h>

#if defined(__GNUC__)
#define NPI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define NPI_LIKELY(x)    __builtin_expect(!!(x), 1)
#define NPI_UNLIKELY(x)  __builtin_expect(!!(x), 0)
#else
#define NPI_PRINTF(f, a)
#define NPI_LIKELY(x)   (x)
#define NPI_UNLIKELY(x) (x)
#endif

#define NPI_CACHELINE 64

/* ------------------------------------------------------------ errors (error.c) */

/* Record a detail message for the calling thread and return e, so a failure
 * reads `return npi_error(NP_ERR_ROOT, "np_bcast: root %d ...", root);`.
 * The message is prefixed with "rank R: " once the rank is known. */
np_err npi_error(np_err e, const char *fmt, ...) NPI_PRINTF(2, 3);
np_err npi_verror(np_err e, const char *fmt, va_list ap);

/* Forget the calling thread's last detail message. */
void npi_error_clear(void);

/* The rank used to prefix messages (-1: unknown, no prefix). */
void npi_error_set_rank(int rank);

/* ------------------------------------------------------------ dtypes and ops (dtype.c, op.c) */

bool npi_dtype_valid(np_dtype dt);

/* NP_OK if (dt, op) can be reduced, else NP_ERR_DTYPE or NP_ERR_OP with a
 * detail naming the caller `who`. */
np_err npi_op_check(const char *who, np_dtype dt, np_op op);

/* Whether op may be applied out of rank order. */
bool npi_op_commutative(np_op op);

/* inout[i] = in[i] (op) inout[i] for i < count.  The pair must have passed
 * npi_op_check; no validation here (this is the hot path). */
void npi_reduce(const void *in, void *inout, size_t count, np_dtype dt, np_op op);

/* out[i] = a[i] (op) b[i]: a three-operand form that saves a copy when the
 * result goes to a third buffer.  out may alias a or b. */
void npi_reduce3(const void *a, const void *b, void *out, size_t count, np_dtype dt, np_op op);

/* ------------------------------------------------------------ configuration (config.c) */

/* Where a setting's value came from. */
typedef enum npi_config_source { NPI_CONFIG_DEFAULT, NPI_CONFIG_ENV } npi_config_source;

typedef struct npi_config_entry {
    const char *name;        /* full variable name, "NUMPUSH_TIMEOUT" */
    const char *default_val; /* as text */
    const char *description; /* one line */
} npi_config_entry;

/* The table of every NUMPUSH_* setting, terminated by a NULL name. */
const npi_config_entry *npi_config_table(void);

/* The value of setting name (environment, else default) and where it came
 * from (src may be NULL).  Unknown names are a bug: they return NULL. */
const char *npi_config_get(const char *name, npi_config_source *src);

/* The setting parsed as a number; a malformed value gives NP_ERR_CONFIG with
 * a message naming the variable. */
np_err npi_config_double(const char *name, double *out);
np_err npi_config_long(const char *name, long *out);

/* ------------------------------------------------------------ time (time.c) */

uint64_t npi_now_ns(void);

#endif
