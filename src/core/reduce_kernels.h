/*
 * The seam between the op table (op.c) and the reduction kernels
 * (reduce_kernels.c).  Only those two files and the ops tests include it; the
 * rest of src/ goes through npi_op_check, npi_reduce and npi_reduce3 in npi.h.
 */
#ifndef NUMPUSH_REDUCE_KERNELS_H
#define NUMPUSH_REDUCE_KERNELS_H

#include "npi.h"

/* Number of user-op slots.  A user handle is NP_OP_BUILTIN_COUNT_ + slot +
 * NPI_OP_USER_SLOTS * generation, so a handle kept after np_op_free stays
 * invalid even when its slot is reused. */
#define NPI_OP_USER_SLOTS 64

/* Whether the built-in op has a kernel for dt.  This table is the single source
 * of truth for which (dtype, op) pairs are valid; op.c asks it instead of
 * keeping its own copy that could drift.  False for user ops and bad values. */
bool npi_reduce_pair_valid(np_dtype dt, np_op op);

/* The function and commutativity of a live user op, or false when op is not
 * one (built-in, freed, never created).  Safe to call from any thread. */
bool npi_op_user_lookup(np_op op, np_user_fn *fn, bool *commutative);

#endif
