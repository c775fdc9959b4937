/*
 * numpush demo: the shape of a typical data-parallel step.
 *
 *   numpush-run -n 4 examples/demo
 *
 * Rank 0 broadcasts the run's parameters, scatters an array, every rank
 * computes on its part, an allreduce sums a statistic over all ranks, and
 * rank 0 gathers the parts back and checks the result against a serial
 * computation.
 */
#include <numpush/numpush.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(call)                                                                                \
    do {                                                                                           \
        np_err e_ = (call);                                                                        \
        if (e_ != NP_OK) {                                                                         \
            fprintf(stderr, "%s failed: %s\n", #call, np_last_error());                            \
            np_abort(np_comm_world(), 1);                                                          \
        }                                                                                          \
    } while (0)

/* What rank 0 decides and every rank needs. */
typedef struct params {
    int64_t per_rank; /* elements each rank works on */
    double scale;     /* the computation: y = scale * x + shift */
    double shift;
} params;

int main(int argc, char **argv)
{
    CHECK(np_init(&argc, &argv));
    np_comm *world = np_comm_world();
    int rank = np_comm_rank(world), size = np_comm_size(world);

    params p = {0};
    if (rank == 0)
        p = (params){.per_rank = 1 << 20, .scale = 2.0, .shift = 0.5};
    CHECK(np_bcast(&p, sizeof p, NP_BYTE, 0, world));

    size_t n = (size_t)p.per_rank, total = n * (size_t)size;
    double *all = NULL, *part = malloc(n * sizeof *part);
    if (rank == 0) {
        all = malloc(total * sizeof *all);
        for (size_t i = 0; i < total; i++)
            all[i] = (double)(i % 1000);
    }
    double t0 = np_wtime();
    CHECK(np_scatter(all, part, n, NP_FLOAT64, 0, world));

    double local = 0;
    for (size_t i = 0; i < n; i++) {
        part[i] = p.scale * part[i] + p.shift;
        local += part[i];
    }
    double sum = 0;
    CHECK(np_allreduce(&local, &sum, 1, NP_FLOAT64, NP_SUM, world));
    CHECK(np_gather(part, all, n, NP_FLOAT64, 0, world));
    double elapsed = np_wtime() - t0;

    if (rank == 0) {
        double want = 0;
        size_t wrong = 0;
        for (size_t i = 0; i < total; i++) {
            double y = p.scale * (double)(i % 1000) + p.shift;
            want += y;
            wrong += all[i] != y;
        }
        bool ok = wrong == 0 && fabs(sum - want) <= 1e-9 * fabs(want);
        printf("numpush demo: %d ranks, %zu doubles each (%.1f MiB in all)\n", size, n,
               (double)(total * sizeof(double)) / (1 << 20));
        printf("  broadcast parameters: scale %.1f, shift %.1f\n", p.scale, p.shift);
        printf("  scatter -> y = scale * x + shift on every rank -> allreduce -> gather\n");
        printf("  sum over all ranks: %.1f (serial: %.1f)\n", sum, want);
        printf("  gathered array: %zu of %zu elements wrong\n", wrong, total);
        printf("  time: %.3f ms\n", elapsed * 1e3);
        printf("%s\n", ok ? "demo: OK" : "demo: FAILED");
        if (!ok) {
            np_finalize();
            return 1;
        }
    }
    free(all);
    free(part);
    CHECK(np_finalize());
    return 0;
}
