/*
 * Element types: sizes and names.
 *
 * The values of np_dtype travel in envelopes, so this table is indexed by
 * them directly; a value outside the table is an invalid dtype everywhere.
 */
#include "npi.h"

typedef struct dtype_info {
    size_t size;
    const char *name;
} dtype_info;

/* Names follow numpy's (np.dtype("float64").name), so the Python side can map
 * dtypes by name; "byte" is numpush's opaque byte, not numpy's int8. */
static const dtype_info dtype_table[NP_DTYPE_COUNT_] = {
    [NP_INT8] = {1, "int8"},           [NP_INT16] = {2, "int16"},
    [NP_INT32] = {4, "int32"},         [NP_INT64] = {8, "int64"},
    [NP_UINT8] = {1, "uint8"},         [NP_UINT16] = {2, "uint16"},
    [NP_UINT32] = {4, "uint32"},       [NP_UINT64] = {8, "uint64"},
    [NP_FLOAT32] = {4, "float32"},     [NP_FLOAT64] = {8, "float64"},
    [NP_COMPLEX64] = {8, "complex64"}, [NP_COMPLEX128] = {16, "complex128"},
    [NP_BOOL] = {1, "bool"},           [NP_BYTE] = {1, "byte"},
};

/* The kernels rely on these sizes matching the C types they use. */
_Static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE binary32/binary64 expected");
_Static_assert(sizeof(float _Complex) == 8 && sizeof(double _Complex) == 16,
               "complex types are two packed reals");

bool npi_dtype_valid(np_dtype dt)
{
    /* The enum's underlying type may be signed or unsigned; the cast makes a
     * negative value large, so one comparison rejects both ends. */
    return (unsigned)dt < (unsigned)NP_DTYPE_COUNT_;
}

size_t np_dtype_size(np_dtype dt)
{
    return npi_dtype_valid(dt) ? dtype_table[dt].size : 0;
}

const char *np_dtype_name(np_dtype dt)
{
    return npi_dtype_valid(dt) ? dtype_table[dt].name : NULL;
}
