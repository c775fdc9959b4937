/*
 * size_arg.h: the size arguments every benchmark takes ("64", "4K", "4KiB",
 * "1M", "1MB", "2G": powers of two), read one way in all of them.
 */
#ifndef NUMPUSH_BENCH_SIZE_ARG_H
#define NUMPUSH_BENCH_SIZE_ARG_H

#include <errno.h>
#include <stdlib.h>

/* 0 with the size in *out, or -1 when s is not a size. */
static int bench_parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    switch (*end) {
    case 'k':
    case 'K':
        v <<= 10;
        end++;
        break;
    case 'm':
    case 'M':
        v <<= 20;
        end++;
        break;
    case 'g':
    case 'G':
        v <<= 30;
        end++;
        break;
    default:
        break;
    }
    if (*end == 'i')
        end++;
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end != '\0')
        return -1;
    *out = (size_t)v;
    return 0;
}

#endif
