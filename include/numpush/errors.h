/*
 * numpush error codes: one list, three products.
 *
 * NP_ERROR_LIST is the single source of truth for error codes.  The public
 * enum np_err below, np_strerror() and np_errname() are all generated from it,
 * so a new code is added in exactly one place.  Codes are stable: append new
 * ones at the end, never renumber.
 */
#ifndef NUMPUSH_ERRORS_H
#define NUMPUSH_ERRORS_H

/* X(NAME, value, "description") */
#define NP_ERROR_LIST(X)                                                                           \
    X(OK, 0, "success")                                                                            \
    X(ERR_ARG, 1, "invalid argument")                                                              \
    X(ERR_NULL, 2, "NULL buffer with a non-zero count")                                            \
    X(ERR_DTYPE, 3, "unknown or unsupported datatype")                                             \
    X(ERR_OP, 4, "reduction operation not defined for this datatype")                              \
    X(ERR_ROOT, 5, "root rank out of range")                                                       \
    X(ERR_RANK, 6, "rank out of range")                                                            \
    X(ERR_COUNT, 7, "count too large or inconsistent")                                             \
    X(ERR_MISMATCH, 8, "ranks disagree on the collective call or its arguments")                   \
    X(ERR_PEER, 9, "a peer process died or became unreachable")                                    \
    X(ERR_TIMEOUT, 10, "operation timed out")                                                      \
    X(ERR_PROTOCOL, 11, "malformed or unexpected message")                                         \
    X(ERR_NOMEM, 12, "out of memory")                                                              \
    X(ERR_SYSTEM, 13, "operating system call failed")                                              \
    X(ERR_NOT_INIT, 14, "numpush is not initialised")                                              \
    X(ERR_INIT, 15, "numpush is already initialised or initialisation failed")                     \
    X(ERR_COMM, 16, "invalid communicator")                                                        \
    X(ERR_TRUNCATE, 17, "message longer than the receive buffer")                                  \
    X(ERR_TAG, 18, "invalid tag")                                                                  \
    X(ERR_BOOTSTRAP, 19, "could not bootstrap the job")                                            \
    X(ERR_TRANSPORT, 20, "transport unavailable or failed")                                        \
    X(ERR_CONFIG, 21, "invalid configuration value")                                               \
    X(ERR_NOT_IMPLEMENTED, 22, "not implemented yet")                                              \
    X(ERR_INTERNAL, 23, "internal error (a bug in numpush)")                                       \
    X(ERR_LOCK, 24, "lock owner died; the protected data may be inconsistent")

#endif
