/*
 * bench_memcpy: memcpy time per size on this machine, the "copy limit" that
 * bench/run draws next to the collectives.  Within a node a broadcast cannot
 * beat one memcpy of the buffer per receiver, so a collective's time is read
 * against this one, measured in the same run (shared/BENCHMARKS.md).
 *
 * Two destinations per size:
 *   aligned  source and destination page aligned: what a library that aligns
 *            its copies (shared cells, or a copy routine that aligns the
 *            destination first) can reach.
 *   dst+16   destination 16 bytes past a 64-byte boundary, where glibc's
 *            malloc puts large blocks: what a naive memcpy into a user
 *            buffer gets.
 *
 * Output (stdout, same columns as bench_coll):
 *   memcpy,copy,1,<bytes>,<avg_us>,<max_us>,<copies>,<aligned|dst+16>
 * Copies are timed in batches; avg_us is the median batch's time per copy
 * (a compile on the other core preempts a few batches and would drag a mean
 * up), max_us the slowest batch's.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "size_arg.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const size_t default_sizes[] = {
    8,          64,       512,      4u << 10,  16u << 10, 64u << 10,
    256u << 10, 1u << 20, 4u << 20, 16u << 20, 64u << 20,
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Copies of one size, timed in batches long enough (about 20 us) that the
 * clock's own cost does not count, for about `budget` seconds in all. */
static void measure(const char *mode, unsigned char *dst, const unsigned char *src, size_t bytes,
                    double budget)
{
    /* Warm up, and learn how many copies make a batch. */
    double t0 = now();
    long warm = 0;
    do {
        memcpy(dst, src, bytes);
        __asm__ volatile("" ::: "memory");
        warm++;
    } while (now() - t0 < 0.02 && warm < 100000);
    double one = (now() - t0) / (double)warm;
    long batch = one > 0 ? (long)(20e-6 / one) : 1000;
    if (batch < 1)
        batch = 1;

    long copies = 0, nb = 0, cap = 1024;
    double *per = malloc(sizeof *per * (size_t)cap);
    double start = now();
    do {
        double t = now();
        for (long i = 0; i < batch; i++) {
            memcpy(dst, src, bytes);
            __asm__ volatile("" ::: "memory");
        }
        double dt = now() - t;
        copies += batch;
        if (nb == cap) {
            cap *= 2;
            per = realloc(per, sizeof *per * (size_t)cap);
        }
        per[nb++] = dt / (double)batch;
    } while (now() - start < budget || nb < 5);
    qsort(per, (size_t)nb, sizeof *per, cmp_double);
    printf("memcpy,copy,1,%zu,%.4f,%.4f,%ld,%s\n", bytes, per[nb / 2] * 1e6, per[nb - 1] * 1e6,
           copies, mode);
    free(per);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    size_t sizes[64];
    int n = 0, header = 0;
    double budget = 0.1;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-s") || !strcmp(argv[i], "--sizes")) && i + 1 < argc) {
            char *copy = strdup(argv[++i]), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t && n < 64; t = strtok_r(NULL, ",", &save))
                if (bench_parse_size(t, &sizes[n++])) {
                    fprintf(stderr, "%s: bad size '%s'\n", argv[0], t);
                    return 2;
                }
            free(copy);
        } else if ((!strcmp(argv[i], "-b") || !strcmp(argv[i], "--budget")) && i + 1 < argc) {
            budget = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--header")) {
            header = 1;
        } else {
            fprintf(
                stderr,
                "usage: %s [--sizes 8,4K,1M] [--budget SEC per point, default 0.1] [--header]\n",
                argv[0]);
            return 2;
        }
    }
    if (n == 0)
        for (n = 0; n < (int)(sizeof default_sizes / sizeof default_sizes[0]); n++)
            sizes[n] = default_sizes[n];
    size_t maxb = 0;
    for (int i = 0; i < n; i++)
        if (sizes[i] > maxb)
            maxb = sizes[i];
    unsigned char *src, *dst;
    if (posix_memalign((void **)&src, 4096, maxb) ||
        posix_memalign((void **)&dst, 4096, maxb + 64)) {
        fprintf(stderr, "%s: cannot allocate 2 x %zu bytes\n", argv[0], maxb);
        return 1;
    }
    memset(src, 0x5a, maxb);
    memset(dst, 0, maxb + 64);
    if (header)
        printf("system,collective,ranks,bytes,avg_us,max_us,iters,mode\n");
    for (int i = 0; i < n; i++) {
        measure("aligned", dst, src, sizes[i], budget);
        measure("dst+16", dst + 16, src, sizes[i], budget);
    }
    free(src);
    free(dst);
    return 0;
}
