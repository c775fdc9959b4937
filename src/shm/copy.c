/*
 * Copies: an aligned-destination memcpy (with non-temporal stores for
 * large ones) and single copies between processes with
 * process_vm_readv/writev (cross-memory attach, CMA), plus this module's
 * settings.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "shm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

npi_shm_params npi_shm_conf = {
    .eager = 1048576,
    .cell = 0, /* auto: segment.c */
    .p2p_chunk = 65536,
    .timeout_ns = 5000000000ull,
    .wait_timeout_ns = 0,
    .spin = -1,
    .cma = -1,
    .copy_stream = (size_t)8 << 20,
};

np_err npi_shm_configure(void)
{
    double timeout, wait_timeout;
    long spin = -1, cell = -1, eager, stream; /* -1: auto */
    np_err err;
    const char *spin_text = npi_config_get("NUMPUSH_SPIN", NULL);
    if (spin_text && strcmp(spin_text, "auto") != 0 &&
        (err = npi_config_long("NUMPUSH_SPIN", &spin)) != NP_OK)
        return err;
    const char *cell_text = npi_config_get("NUMPUSH_SHM_CELL", NULL);
    if (cell_text && *cell_text && strcmp(cell_text, "auto") != 0 &&
        (err = npi_config_long("NUMPUSH_SHM_CELL", &cell)) != NP_OK)
        return err;
    if ((err = npi_config_double("NUMPUSH_TIMEOUT", &timeout)) != NP_OK ||
        (err = npi_config_double("NUMPUSH_WAIT_TIMEOUT", &wait_timeout)) != NP_OK ||
        (err = npi_config_long("NUMPUSH_SHM_EAGER", &eager)) != NP_OK ||
        (err = npi_config_long("NUMPUSH_COPY_STREAM", &stream)) != NP_OK)
        return err;
    if (timeout < 0 || wait_timeout < 0 || spin < -1 || (cell != -1 && cell < 4096) || eager < 64 ||
        stream < 0)
        return npi_error(NP_ERR_CONFIG,
                         "NUMPUSH_TIMEOUT, NUMPUSH_WAIT_TIMEOUT, NUMPUSH_SPIN "
                         "and NUMPUSH_COPY_STREAM must be >= 0, "
                         "NUMPUSH_SHM_CELL auto or >= 4096, NUMPUSH_SHM_EAGER >= 64");
    npi_shm_conf.copy_stream = (size_t)stream;
    npi_shm_conf.timeout_ns = (uint64_t)(timeout * 1e9);
    npi_shm_conf.wait_timeout_ns = (uint64_t)(wait_timeout * 1e9);
    npi_shm_conf.spin = spin;
    npi_shm_conf.cell = cell < 0 ? 0 : (size_t)cell;
    npi_shm_conf.eager = (size_t)eager;
    const char *cma = npi_config_get("NUMPUSH_CMA", NULL);
    if (!cma || strcmp(cma, "auto") == 0)
        npi_shm_conf.cma = -1;
    else if (strcmp(cma, "0") == 0)
        npi_shm_conf.cma = 0;
    else if (strcmp(cma, "1") == 0)
        npi_shm_conf.cma = 1;
    else
        return npi_error(NP_ERR_CONFIG, "NUMPUSH_CMA=%s: expected auto, 0 or 1", cma);
    return NP_OK;
}

/* Below this size the head fix-up costs more than the cliff it avoids. */
#define COPY_ALIGN_MIN 256

/*
 * Large copies with non-temporal stores.  A copy of many MiB leaves its
 * destination in memory, not in the caches, whatever the stores; ordinary
 * stores first read every destination line into the cache (read for
 * ownership) and evict other data to make room, non-temporal ones write
 * whole lines straight to memory.  glibc switches to them only above 3/4 of
 * the L3 share per thread (99 MiB on this VM, which reports a 260 MiB L3).
 * bench/bench_copy on this machine (cold buffers; us per copy, memcpy
 * against non-temporal stores, NUMPUSH_COPY_STREAM=1):
 *   copy only:            1 MiB 162 / 130, 4 MiB 595 / 459,
 *                         8 MiB 1185 / 903, 64 MiB 10154 / 7516
 *   copy, then read dst:  1 MiB 154 / 181, 2 MiB 380 / 371,
 *                         4 MiB 813 / 760, 8 MiB 1717 / 1543,
 *                         64 MiB 14409 / 11474
 * Below a few MiB a caller that reads the result at once loses (1 MiB:
 * 1.17x), so the copy streams only from 8 MiB, where it won in every run,
 * read back or not (NUMPUSH_COPY_STREAM).
 */
#if defined(__x86_64__)
static void copy_stream(char *dst, const char *src, size_t n)
{
    /* dst is 64-byte aligned here (npi_copy); whole lines first. */
    size_t lines = n / 64;
    for (size_t i = 0; i < lines; i++, dst += 64, src += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)src);
        __m128i b = _mm_loadu_si128((const __m128i *)(src + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(src + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(src + 48));
        _mm_stream_si128((__m128i *)dst, a);
        _mm_stream_si128((__m128i *)(dst + 16), b);
        _mm_stream_si128((__m128i *)(dst + 32), c);
        _mm_stream_si128((__m128i *)(dst + 48), d);
    }
    memcpy(dst, src, n % 64);
    /* Non-temporal stores are weakly ordered even on x86: without the
     * fence a flag posted next could become visible before the data. */
    _mm_sfence();
}
#define COPY_CAN_STREAM 1
#else
#define COPY_CAN_STREAM 0
#endif

void npi_copy(void *dst, const void *src, size_t n)
{
    npi_copy_piece(dst, src, n, n);
}

void npi_copy_piece(void *dst, const void *src, size_t n, size_t total)
{
    if (n < COPY_ALIGN_MIN) {
        memcpy(dst, src, n);
        return;
    }
    /* glibc's memcpy on this machine runs several times slower when the
     * destination is not 32-byte aligned; copying the few head bytes first
     * makes the bulk copy start at a 64-byte boundary. */
    size_t head = (size_t)(-(uintptr_t)dst & (NPI_CACHELINE - 1));
    if (head) {
        memcpy(dst, src, head);
        dst = (char *)dst + head;
        src = (const char *)src + head;
        n -= head;
    }
#if COPY_CAN_STREAM
    if (npi_shm_conf.copy_stream > 0 && total >= npi_shm_conf.copy_stream) {
        copy_stream(dst, src, n);
        return;
    }
#endif
    memcpy(dst, src, n);
}

/* One system call moves at most this much, so a huge transfer stays
 * interruptible and its partial results are easy to resume. */
#define CMA_CHUNK ((size_t)1 << 30)

static np_err cma_fail(pid_t pid, const char *what)
{
    if (errno == ESRCH)
        return npi_error(NP_ERR_PEER, "shm: %s from pid %d: the peer is gone", what, (int)pid);
    return npi_error(NP_ERR_SYSTEM, "shm: %s with pid %d: %s", what, (int)pid, strerror(errno));
}

np_err npi_cma_read(pid_t pid, void *dst, uint64_t remote, size_t n)
{
    char *d = dst;
    while (n > 0) {
        size_t len = n < CMA_CHUNK ? n : CMA_CHUNK;
        struct iovec l = {d, len}, r = {(void *)(uintptr_t)remote, len};
        ssize_t got = process_vm_readv(pid, &l, 1, &r, 1, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return cma_fail(pid, "process_vm_readv");
        }
        if (got == 0)
            return npi_error(NP_ERR_SYSTEM, "shm: process_vm_readv from pid %d made no progress",
                             (int)pid);
        d += got;
        remote += (uint64_t)got;
        n -= (size_t)got;
    }
    return NP_OK;
}

np_err npi_cma_write(pid_t pid, uint64_t remote, const void *src, size_t n)
{
    const char *s = src;
    while (n > 0) {
        size_t len = n < CMA_CHUNK ? n : CMA_CHUNK;
        struct iovec l = {(void *)s, len}, r = {(void *)(uintptr_t)remote, len};
        ssize_t put = process_vm_writev(pid, &l, 1, &r, 1, 0);
        if (put < 0) {
            if (errno == EINTR)
                continue;
            return cma_fail(pid, "process_vm_writev");
        }
        if (put == 0)
            return npi_error(NP_ERR_SYSTEM, "shm: process_vm_writev to pid %d made no progress",
                             (int)pid);
        s += put;
        remote += (uint64_t)put;
        n -= (size_t)put;
    }
    return NP_OK;
}

bool npi_cma_syscall_works(void)
{
    uint64_t word = 0x1234567887654321ull, got = 0;
    struct iovec l = {&got, sizeof got}, r = {&word, sizeof word};
    return process_vm_readv(getpid(), &l, 1, &r, 1, 0) == (ssize_t)sizeof got && got == word;
}
