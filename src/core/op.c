/*
 * Reduction operations: the built-in op names, the user-op table, argument
 * checking, and np_reduce_local.
 *
 * Which (dtype, op) pairs are valid is decided by the kernel table in
 * reduce_kernels.c (npi_reduce_pair_valid), so a pair is valid exactly when a
 * kernel for it exists.
 *
 * User ops live in a fixed table of NPI_OP_USER_SLOTS slots guarded by one
 * mutex: creating and freeing ops is rare, and a fixed table means a lookup
 * never races with a reallocation.  A handle encodes its slot and the slot's
 * generation, and freeing bumps the generation, so a handle used after
 * np_op_free is rejected even once its slot holds a new op.
 */
#include "reduce_kernels.h"

#include <pthread.h>

typedef struct op_slot {
    np_user_fn fn;
    bool commutative;
    bool live;
    uint32_t gen;
} op_slot;

/* Generations wrap before a handle could exceed INT32_MAX. */
#define OP_GEN_LIMIT ((uint32_t)((INT32_MAX - NP_OP_BUILTIN_COUNT_) / NPI_OP_USER_SLOTS))

static op_slot op_slots[NPI_OP_USER_SLOTS];
static pthread_mutex_t op_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const op_names[NP_OP_BUILTIN_COUNT_] = {
    [NP_SUM] = "sum", [NP_PROD] = "prod", [NP_MIN] = "min",   [NP_MAX] = "max", [NP_LAND] = "land",
    [NP_LOR] = "lor", [NP_LXOR] = "lxor", [NP_BAND] = "band", [NP_BOR] = "bor", [NP_BXOR] = "bxor",
};

static bool op_is_builtin(np_op op)
{
    return op >= 0 && op < NP_OP_BUILTIN_COUNT_;
}

/* The slot a user handle names if it is live, else NULL.  Call with op_lock
 * held. */
static op_slot *op_live_slot(np_op op)
{
    if (op < NP_OP_BUILTIN_COUNT_)
        return NULL;
    uint32_t rel = (uint32_t)op - NP_OP_BUILTIN_COUNT_;
    op_slot *s = &op_slots[rel % NPI_OP_USER_SLOTS];
    return s->live && s->gen == rel / NPI_OP_USER_SLOTS ? s : NULL;
}

bool npi_op_user_lookup(np_op op, np_user_fn *fn, bool *commutative)
{
    if (op < NP_OP_BUILTIN_COUNT_)
        return false;
    pthread_mutex_lock(&op_lock);
    op_slot *s = op_live_slot(op);
    if (s) {
        *fn = s->fn;
        *commutative = s->commutative;
    }
    pthread_mutex_unlock(&op_lock);
    return s != NULL;
}

np_err np_op_create(np_user_fn fn, int commutative, np_op *op)
{
    if (!fn)
        return npi_error(NP_ERR_NULL, "np_op_create: fn is NULL");
    if (!op)
        return npi_error(NP_ERR_NULL, "np_op_create: op (the handle to fill) is NULL");
    pthread_mutex_lock(&op_lock);
    for (uint32_t i = 0; i < NPI_OP_USER_SLOTS; i++) {
        op_slot *s = &op_slots[i];
        if (s->live)
            continue;
        s->fn = fn;
        s->commutative = commutative != 0;
        s->live = true;
        *op = (np_op)(NP_OP_BUILTIN_COUNT_ + i + NPI_OP_USER_SLOTS * s->gen);
        pthread_mutex_unlock(&op_lock);
        return NP_OK;
    }
    pthread_mutex_unlock(&op_lock);
    return npi_error(NP_ERR_NOMEM,
                     "np_op_create: all %d user-op slots are in use; free one with np_op_free",
                     NPI_OP_USER_SLOTS);
}

np_err np_op_free(np_op *op)
{
    if (!op)
        return npi_error(NP_ERR_NULL, "np_op_free: op is NULL");
    if (op_is_builtin(*op))
        return npi_error(NP_ERR_ARG, "np_op_free: op %d (%s) is built in and cannot be freed",
                         (int)*op, op_names[*op]);
    pthread_mutex_lock(&op_lock);
    op_slot *s = op_live_slot(*op);
    if (s) {
        s->live = false;
        s->fn = NULL;
        s->gen = (s->gen + 1) % OP_GEN_LIMIT;
    }
    pthread_mutex_unlock(&op_lock);
    if (!s)
        return npi_error(NP_ERR_ARG,
                         "np_op_free: op %d is not a live user op (already freed or never "
                         "created)",
                         (int)*op);
    *op = NP_OP_NULL;
    return NP_OK;
}

const char *np_op_name(np_op op)
{
    if (op_is_builtin(op))
        return op_names[op];
    np_user_fn fn;
    bool commutative;
    return npi_op_user_lookup(op, &fn, &commutative) ? "user" : NULL;
}

bool npi_op_commutative(np_op op)
{
    if (op_is_builtin(op))
        return true;
    np_user_fn fn;
    bool commutative = false;
    return npi_op_user_lookup(op, &fn, &commutative) && commutative;
}

/* Which dtypes an op takes, worded for error messages; mirrors the table in
 * numpush.h. */
static const char *op_takes(np_op op)
{
    switch (op) {
    case NP_SUM:
    case NP_PROD:
        return "integers, floats and complex";
    case NP_MIN:
    case NP_MAX:
        return "integers and floats";
    case NP_LAND:
    case NP_LOR:
    case NP_LXOR:
        return "integers and bool";
    default:
        return "integers, bool and byte";
    }
}

np_err npi_op_check(const char *who, np_dtype dt, np_op op)
{
    if (!npi_dtype_valid(dt))
        return npi_error(NP_ERR_DTYPE, "%s: dtype %d is not a valid np_dtype (expected 0..%d)", who,
                         (int)dt, NP_DTYPE_COUNT_ - 1);
    if (op_is_builtin(op)) {
        if (npi_reduce_pair_valid(dt, op))
            return NP_OK;
        return npi_error(NP_ERR_OP, "%s: op %s is not defined for dtype %s (%s takes %s)", who,
                         op_names[op], np_dtype_name(dt), op_names[op], op_takes(op));
    }
    np_user_fn fn;
    bool commutative;
    if (npi_op_user_lookup(op, &fn, &commutative))
        return NP_OK;
    return npi_error(NP_ERR_OP,
                     "%s: op %d is neither a built-in op (0..%d) nor a live user op from "
                     "np_op_create",
                     who, (int)op, NP_OP_BUILTIN_COUNT_ - 1);
}

np_err np_reduce_local(const void *in, void *inout, size_t count, np_dtype dt, np_op op)
{
    np_err e = npi_op_check("np_reduce_local", dt, op);
    if (e != NP_OK)
        return e;
    if (count > 0 && (!in || !inout))
        return npi_error(NP_ERR_NULL, "np_reduce_local: %s is NULL with count %zu",
                         !in ? "in" : "inout", count);
    /* NP_IN_PLACE is a marker for collectives, not memory; reading it would
     * crash, so it is refused like any other bad argument. */
    if (in == NP_IN_PLACE || inout == NP_IN_PLACE)
        return npi_error(NP_ERR_ARG, "np_reduce_local: NP_IN_PLACE is not a buffer (pass the same "
                                     "array as in and inout instead)");
    size_t size = np_dtype_size(dt);
    if (count > SIZE_MAX / size)
        return npi_error(NP_ERR_COUNT,
                         "np_reduce_local: count %zu of %s overflows the address space", count,
                         np_dtype_name(dt));
    npi_reduce(in, inout, count, dt, op);
    return NP_OK;
}
