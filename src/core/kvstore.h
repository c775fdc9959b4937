/*
 * A small authenticated key-value store over TCP, shared by numpush-run (which
 * serves it for its ranks), the env:// bootstrap (rank 0 serves it) and the
 * ranks (clients).
 *
 * Every request carries the per-job secret; a request with a wrong or missing
 * secret gets an "auth" reply and its connection is closed, so a process
 * outside the job can neither read nor write the store.  Keys are strings,
 * values are bytes.  GET blocks in the server until the key exists; FENCE is a
 * counting barrier over the job's size.
 *
 * This file depends on nothing of libnumpush (no npi_error), because the
 * launcher links it without the library.  Functions return 0 or a negative
 * errno: -EACCES (secret refused), -ETIMEDOUT, -ENOENT, -EPROTO (malformed
 * reply), -ECONNRESET (server went away), -EINVAL, -ENOMEM.
 */
#ifndef NUMPUSH_KVSTORE_H
#define NUMPUSH_KVSTORE_H

#include <stddef.h>
#include <stdint.h>

#define NPI_KV_KEY_MAX    1024
#define NPI_KV_VAL_MAX    (16u << 20)
#define NPI_KV_SECRET_MAX 128

/* Wire operations.  A request is a 12-byte header (op: 1 byte, secret
 * length: 1, key length: 2, value length: 4, reserved zeros: 4; big-endian)
 * followed by the secret, the key and the value; a reply is an 8-byte header
 * (status: 4 bytes, value length: 4) and the value. */
enum npi_kv_op {
    NPI_KV_PUT = 1,
    NPI_KV_GET = 2,
    NPI_KV_FENCE = 3,
    NPI_KV_ABORT = 4, /* value: "<rank> <code>" */
};

enum npi_kv_status {
    NPI_KV_OK = 0,
    NPI_KV_EAUTH = 1,
    NPI_KV_EBADREQ = 2,
};

typedef struct npi_kvs npi_kvs;
typedef struct npi_kvc npi_kvc;

/* Called from the server thread when a rank asks to abort the job. */
typedef void (*npi_kvs_abort_fn)(void *arg, int rank, int code);

/* Start a server thread listening on bind_addr (an IPv4 address, NULL for all
 * interfaces) and port (0: any free port).  size is the fence count.  On
 * failure *out is NULL and err holds a one-line reason. */
int npi_kvs_start(npi_kvs **out, const char *bind_addr, int port, const char *secret, int size,
                  npi_kvs_abort_fn on_abort, void *arg, char *err, size_t errlen);
int npi_kvs_port(const npi_kvs *s);
/* Connections that presented the right secret: open now, and ever. */
void npi_kvs_clients(npi_kvs *s, int *open_now, int *ever);
/* Requests refused for a wrong or missing secret (for tests and debugging). */
long npi_kvs_refused(npi_kvs *s);
/* Stop the thread, close every connection and free the store. */
void npi_kvs_stop(npi_kvs *s);

/* Connect to the first reachable address of addrs ("host:port" items joined
 * by commas; a bare host takes the port of the last item), retrying until
 * timeout_ms has passed (the server may not be up yet). */
int npi_kvc_connect(npi_kvc **out, const char *addrs, const char *secret, int timeout_ms);
void npi_kvc_close(npi_kvc *c);
int npi_kvc_put(npi_kvc *c, const char *key, const void *val, size_t len);
/* Waits up to timeout_ms for key.  Copies at most cap bytes; *len gets the
 * full length.  After a timeout the connection is unusable (-ECONNRESET). */
int npi_kvc_get(npi_kvc *c, const char *key, void *val, size_t cap, size_t *len, int timeout_ms);
int npi_kvc_fence(npi_kvc *c, int timeout_ms);
int npi_kvc_abort(npi_kvc *c, int rank, int code);

/* Send one raw request (for tests of the refusal path): the status byte of
 * the reply, or a negative errno. */
int npi_kvc_raw(npi_kvc *c, int op, const char *secret, const char *key, const void *val,
                size_t len, int timeout_ms);

#endif
