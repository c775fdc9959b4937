/*
 * Error codes and per-thread detail messages.
 *
 * The enum, np_strerror and np_errname all come from NP_ERROR_LIST so they
 * cannot drift apart.  The detail message is thread-local: two threads that
 * fail at once each read their own.
 */
#include "npi.h"

#include <stdio.h>
#include <string.h>

#define ERROR_DETAIL_MAX 1024

static _Thread_local char error_detail[ERROR_DETAIL_MAX];
static int error_rank = -1;

const char *np_strerror(np_err e)
{
    switch (e) {
#define ERROR_TEXT_(name, value, text)                                                             \
    case NP_##name:                                                                                \
        return text;
        NP_ERROR_LIST(ERROR_TEXT_)
#undef ERROR_TEXT_
    default:
        return "unknown error code";
    }
}

const char *np_errname(np_err e)
{
    switch (e) {
#define ERROR_NAME_(name, value, text)                                                             \
    case NP_##name:                                                                                \
        return #name;
        NP_ERROR_LIST(ERROR_NAME_)
#undef ERROR_NAME_
    default:
        return "UNKNOWN";
    }
}

const char *np_last_error(void)
{
    return error_detail;
}

void npi_error_clear(void)
{
    error_detail[0] = '\0';
}

void npi_error_set_rank(int rank)
{
    error_rank = rank;
}

np_err npi_verror(np_err e, const char *fmt, va_list ap)
{
    int used = 0;
    if (error_rank >= 0)
        used = snprintf(error_detail, sizeof error_detail, "rank %d: ", error_rank);
    if (used < 0 || (size_t)used >= sizeof error_detail)
        used = 0;
    vsnprintf(error_detail + used, sizeof error_detail - (size_t)used, fmt, ap);
    return e;
}

np_err npi_error(np_err e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    npi_verror(e, fmt, ap);
    va_end(ap);
    return e;
}
