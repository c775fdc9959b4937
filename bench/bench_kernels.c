/*
 * bench_kernels: bandwidth of the SUM reduction kernels against memcpy.
 *
 * For float64, float32 and int32 at 4 KiB, 1 MiB and 64 MiB (the size of one
 * array), it times np_reduce_local(in, inout, n, dt, NP_SUM) and memcpy(dst,
 * src, size) on the same buffers, interleaving the two so that both see the
 * same machine noise, and prints each one's bandwidth and their ratio.
 *
 * Bytes are counted as bytes read plus bytes written, the same way for both:
 * the sum reads in and inout and writes inout (3 x size), memcpy reads src and
 * writes dst (2 x size).  Both are memory-bound at 64 MiB, so equal GB/s means
 * the kernel runs at the copy limit; the time ratio is also printed.
 *
 * Usage: bench_kernels [samples] [inout_offset_bytes]
 *   samples             timed samples per cell, the median is reported (9)
 *   inout_offset_bytes  shift inout/dst off 64-byte alignment (0), to see
 *                       what a misaligned user buffer costs
 */
#include <numpush/numpush.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void bench_fill(void *buf, size_t n, np_dtype dt)
{
    for (size_t i = 0; i < n; i++) {
        switch (dt) {
        case NP_FLOAT64:
            ((double *)buf)[i] = 1.0 + (double)(i % 7);
            break;
        case NP_FLOAT32:
            ((float *)buf)[i] = 1.0f + (float)(i % 7);
            break;
        default:
            ((int32_t *)buf)[i] = (int32_t)(i % 7);
        }
    }
}

int main(int argc, char **argv)
{
    int samples = argc > 1 ? atoi(argv[1]) : 9;
    size_t offset = argc > 2 ? (size_t)atoi(argv[2]) : 0;
    if (samples < 1 || samples > 1000 || offset > 63) {
        fprintf(stderr, "usage: %s [samples 1..1000] [inout_offset_bytes 0..63]\n", argv[0]);
        return 2;
    }
    static const np_dtype dts[] = {NP_FLOAT64, NP_FLOAT32, NP_INT32};
    static const size_t sizes[] = {4096, 1 << 20, 64 << 20};
    static const char *const size_names[] = {"4 KiB", "1 MiB", "64 MiB"};
    /* Each timed sample repeats the call until about 256 MiB of array has
     * been covered, so a 4 KiB sample is long enough for the clock. */
    const size_t per_sample = 256u << 20;

    size_t max = sizes[sizeof sizes / sizeof sizes[0] - 1];
    unsigned char *in = aligned_alloc(64, max);
    unsigned char *io_base = aligned_alloc(64, max + 64);
    double *t_sum = malloc(sizeof(double) * (size_t)samples);
    double *t_cpy = malloc(sizeof(double) * (size_t)samples);
    if (!in || !io_base || !t_sum || !t_cpy) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        return 1;
    }
    unsigned char *io = io_base + offset;

    printf("# np_reduce_local(NP_SUM) against memcpy on the same buffers, same run.\n");
    printf("# GB/s = (bytes read + bytes written) / time, GB = 1e9 B: sum moves 3 x size,\n");
    printf("# memcpy 2 x size.  Median of %d samples; inout/dst offset %zu B from 64-B "
           "alignment.\n",
           samples, offset);
    printf("%-8s %7s %11s %14s %16s %15s\n", "dtype", "size", "sum GB/s", "memcpy GB/s",
           "sum/memcpy GB/s", "sum/memcpy time");
    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
        np_dtype dt = dts[d];
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t bytes = sizes[s], n = bytes / np_dtype_size(dt);
            size_t reps = per_sample / bytes;
            bench_fill(in, n, dt);
            bench_fill(io, n, dt);
            /* Warm-up: fault the pages in and settle the caches. */
            memcpy(io, in, bytes);
            if (np_reduce_local(in, io, n, dt, NP_SUM) != NP_OK) {
                fprintf(stderr, "bench_kernels: %s\n", np_last_error());
                return 1;
            }
            for (int k = 0; k < samples; k++) {
                double t0 = bench_now();
                for (size_t r = 0; r < reps; r++)
                    np_reduce_local(in, io, n, dt, NP_SUM);
                double t1 = bench_now();
                for (size_t r = 0; r < reps; r++) {
                    memcpy(io, in, bytes);
                    /* Keep the compiler from merging repeated copies. */
                    __asm__ volatile("" : : "r"(io) : "memory");
                }
                double t2 = bench_now();
                t_sum[k] = (t1 - t0) / (double)reps;
                t_cpy[k] = (t2 - t1) / (double)reps;
            }
            qsort(t_sum, (size_t)samples, sizeof(double), bench_cmp_double);
            qsort(t_cpy, (size_t)samples, sizeof(double), bench_cmp_double);
            double ts = t_sum[samples / 2], tc = t_cpy[samples / 2];
            double gs = 3.0 * (double)bytes / ts / 1e9, gc = 2.0 * (double)bytes / tc / 1e9;
            printf("%-8s %7s %11.1f %14.1f %16.2f %15.2f\n", np_dtype_name(dt), size_names[s], gs,
                   gc, gs / gc, ts / tc);
            fflush(stdout);
        }
    }
    free(in);
    free(io_base);
    free(t_sum);
    free(t_cpy);
    return 0;
}
