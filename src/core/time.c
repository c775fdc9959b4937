/* Clocks: one monotonic source for timeouts, benchmarks and np_wtime. */
#include "npi.h"

#include <time.h>

uint64_t npi_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double np_wtime(void)
{
    return (double)npi_now_ns() * 1e-9;
}
