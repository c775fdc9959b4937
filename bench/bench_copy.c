/*
 * bench_copy: numpush's copy routine (npi_copy, src/shm/copy.c) against
 * memcpy for large buffers, to place NUMPUSH_COPY_STREAM, the size from
 * which npi_copy writes with non-temporal stores.
 *
 * A collective's large copies start cold: the source was written long ago
 * or by another core, and the destination has not been touched since the
 * last call.  So the sources and destinations cycle through 256 MiB of
 * buffers, and no copy finds its data in the caches.  Each size runs two
 * ways:
 *   copy       the copy alone
 *   copy+read  the copy, then one read of every destination line, as a
 *              caller that uses the result at once would (the case where
 *              bypassing the caches could lose)
 * memcpy and npi_copy alternate copy by copy, so drift in the machine's
 * speed hits both alike.
 *
 * Run: bench_copy [--sizes 1M,4M,16M,64M] [--copies N per size and way]
 * Output (stdout): one line per size and way,
 *   <way>,<bytes>,<memcpy_us>,<npi_copy_us>,<ratio npi_copy / memcpy>
 * with the mean time per copy.  NUMPUSH_COPY_STREAM=0 makes npi_copy a
 * plain memcpy (the ratio is then 1 within the noise).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shm/shm.h"
#include "size_arg.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One load per line: what a caller reading the result pays. */
static unsigned long read_lines(const unsigned char *p, size_t n)
{
    unsigned long sum = 0;
    for (size_t i = 0; i < n; i += 64)
        sum += p[i];
    return sum;
}

#define CYCLE_BYTES ((size_t)256 << 20)

static void measure(size_t bytes, int copies, int readback)
{
    /* Enough pairs to cycle through CYCLE_BYTES, at least two. */
    size_t pairs = CYCLE_BYTES / 2 / bytes;
    if (pairs < 2)
        pairs = 2;
    if (pairs > 64)
        pairs = 64;
    unsigned char *src[64], *dst[64];
    for (size_t j = 0; j < pairs; j++) {
        if (posix_memalign((void **)&src[j], 4096, bytes) ||
            posix_memalign((void **)&dst[j], 4096, bytes)) {
            fprintf(stderr, "bench_copy: cannot allocate %zu bytes\n", bytes);
            exit(1);
        }
        memset(src[j], (int)j + 1, bytes);
        memset(dst[j], 0, bytes);
    }
    double t[2] = {0, 0};
    unsigned long sink = 0;
    for (int i = 0; i < copies; i++)
        for (int way = 0; way < 2; way++) {
            size_t j = ((size_t)i * 2 + (size_t)way) % pairs;
            double t0 = now();
            if (way == 0)
                memcpy(dst[j], src[j], bytes);
            else
                npi_copy(dst[j], src[j], bytes);
            if (readback)
                sink += read_lines(dst[j], bytes);
            t[way] += now() - t0;
        }
    printf("%s,%zu,%.1f,%.1f,%.2f\n", readback ? "copy+read" : "copy", bytes, t[0] / copies * 1e6,
           t[1] / copies * 1e6, t[1] / t[0]);
    fflush(stdout);
    for (size_t j = 0; j < pairs; j++) {
        free(src[j]);
        free(dst[j]);
    }
    if (sink == 42)
        fputc('\n', stderr); /* keeps the reads */
}

int main(int argc, char **argv)
{
    static const char *default_sizes = "1M,2M,4M,8M,16M,64M";
    const char *sizes = default_sizes;
    int copies = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sizes") && i + 1 < argc)
            sizes = argv[++i];
        else if (!strcmp(argv[i], "--copies") && i + 1 < argc)
            copies = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--sizes 1M,4M,16M,64M] [--copies N]\n", argv[0]);
            return 2;
        }
    }
    /* npi_copy's threshold comes from the environment as in np_init. */
    if (npi_shm_configure() != NP_OK) {
        fprintf(stderr, "bench_copy: bad NUMPUSH_* setting\n");
        return 2;
    }
    printf("# npi_copy streams from %zu bytes (NUMPUSH_COPY_STREAM)\n", npi_shm_conf.copy_stream);
    printf("way,bytes,memcpy_us,npi_copy_us,ratio\n");
    char *list = strdup(sizes), *save = NULL;
    for (int readback = 0; readback < 2; readback++) {
        strcpy(list, sizes);
        for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            size_t bytes = 0;
            if (bench_parse_size(tok, &bytes) != 0 || bytes == 0) {
                fprintf(stderr, "bench_copy: bad size '%s' (a positive count, K, M or G)\n", tok);
                free(list);
                return 2;
            }
            /* About 0.5 GiB copied per size and way unless told. */
            int n = copies > 0 ? copies : (int)(((size_t)512 << 20) / bytes);
            measure(bytes, n < 5 ? 5 : n > 400 ? 400 : n, readback);
        }
    }
    free(list);
    return 0;
}
