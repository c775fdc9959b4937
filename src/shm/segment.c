/*
 * Segments: one per communicator and node, created by the communicator's
 * first rank and opened by the others.
 *
 * The name lives only as long as it must: every rank increments an attach
 * counter in the segment once it has mapped it, and the rank that brings the
 * counter to n unlinks the name at once.  From then on the memory lives in
 * the mappings alone, so a crash (SIGKILL included) leaves nothing behind in
 * /dev/shm.  The launcher removes /dev/shm/numpush-<job>* after a job as a
 * safety net for a rank that dies between creation and the last attach.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SHM_MAGIC 0x6e756d7075736831ull /* "numpush1" */

_Static_assert(sizeof(npi_shm_ctl) == 4 * NPI_CACHELINE, "control block is four lines");
_Static_assert(sizeof(npi_shm_post) == NPI_CACHELINE, "a post is one line");
_Static_assert(sizeof(npi_p2p_slot) == NPI_P2P_SLOT, "slot size");

static size_t shm_round(size_t v, size_t a)
{
    return (v + a - 1) / a * a;
}

/*
 * Cells (NUMPUSH_SHM_CELL=auto): 128 KiB while every rank has a core, 512
 * KiB with more ranks than cores.  A window costs two flag rounds, and with
 * more ranks than cores each round may be a context switch, so fewer,
 * larger windows win there; with a core each, smaller windows pipeline the
 * sender's and receivers' copies better.  Three interleaved runs of
 *   NUMPUSH_SHM_CELL={131072,524288} numpush-run -n 4 bench/bench_coll \
 *     -c bcast -s 2M,4M,8M,16M -b 0.5 -I 50
 * (us, 128 against 512 KiB): 2 MiB 314-509 / 288-319, 4 MiB 646-744 /
 * 600-612, 8 MiB 1409-1601 / 1247-1811, 16 MiB 2720-3382 / 2485-2740.
 * Two runs with NUMPUSH_CMA=0 and 4 ranks: scatter 1 MiB 413-469 / 367-415,
 * gather, allreduce, allgather and alltoall within the noise.  With 2
 * ranks and NUMPUSH_CMA=0, 1 MiB cells made bcast at 256 KiB slower (24-28
 * against 20 us), so bound ranks keep 128 KiB.  At most 64 MiB of cells in
 * all.
 */
#define SHM_CELL_BOUND ((size_t)128 << 10)
#define SHM_CELL_OVER  ((size_t)512 << 10)

static size_t shm_cell_size(const npi_shm_params *p, int n, int cores)
{
    if (p->cell > 0)
        return p->cell;
    size_t cell = n > cores ? SHM_CELL_OVER : SHM_CELL_BOUND;
    while (cell > SHM_CELL_BOUND && (size_t)n * 2 * cell > ((size_t)64 << 20))
        cell /= 2;
    return cell;
}

/* The cores this node's ranks share.  A rank bound to one CPU says nothing
 * about how many the node has. */
static int shm_node_cores(void)
{
    cpu_set_t set;
    int cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    if (cores <= 1)
        cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 ? cores : 1;
}

/* Lay the areas out; the creator computes the layout from n, the cores and
 * the parameters, and records it in the header for the others. */
static void shm_layout(npi_shm_hdr *h, int n, int cores)
{
    const npi_shm_params *p = &npi_shm_conf;
    size_t page = 4096;
    /* Many ranks would make the per-pair channels large, so their stream
     * chunks shrink with n; the memory is only touched when used anyway. */
    size_t chunk = p->p2p_chunk;
    while (chunk > 16384 && (size_t)n * (size_t)n * chunk > ((size_t)64 << 20))
        chunk /= 2;
    h->n = (uint32_t)n;
    h->eager = shm_round(npi_shm_eager_size(p->eager, n), NPI_CACHELINE);
    h->cell = shm_round(shm_cell_size(p, n, cores), page);
    h->p2p_chunk = chunk;
    h->chan_size = shm_round(sizeof(npi_p2p_chan) + 2 * chunk, page);
    size_t off = page;
    h->off_ctl = off;
    off += shm_round((size_t)n * sizeof(npi_shm_ctl), page);
    h->off_scratch = off;
    off += shm_round(4 * (size_t)n * sizeof(uint64_t), page);
    h->off_eager = off;
    off += shm_round((size_t)n * 2 * h->eager, page);
    h->off_cells = off;
    off += (size_t)n * 2 * h->cell;
    h->off_p2p = off;
    off += (size_t)n * (size_t)n * h->chan_size;
    h->size = off;
}

static void shm_sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static np_err shm_map(npi_shm *s, int fd, size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return npi_error(NP_ERR_SYSTEM, "shm: mmap of %s (%zu bytes): %s", s->name, size,
                         strerror(errno));
    s->base = p;
    s->size = size;
    s->hdr = p;
    return NP_OK;
}

static np_err shm_create(npi_shm *s, int n)
{
    int fd = shm_open(s->name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0 && errno == EEXIST) {
        /* A name left by an earlier job that reused this job id: it cannot
         * be ours (we create each name once), so replace it. */
        shm_unlink(s->name);
        fd = shm_open(s->name, O_CREAT | O_EXCL | O_RDWR, 0600);
    }
    if (fd < 0)
        return npi_error(NP_ERR_SYSTEM, "shm: cannot create %s: %s", s->name, strerror(errno));
    npi_shm_hdr h;
    memset(&h, 0, sizeof h);
    int cores = shm_node_cores();
    shm_layout(&h, n, cores);
    if (ftruncate(fd, (off_t)h.size) != 0) {
        int e = errno;
        close(fd);
        shm_unlink(s->name);
        return npi_error(NP_ERR_NOMEM, "shm: cannot size %s to %llu bytes: %s", s->name,
                         (unsigned long long)h.size, strerror(e));
    }
    np_err err = shm_map(s, fd, h.size);
    close(fd);
    if (err != NP_OK) {
        shm_unlink(s->name);
        return err;
    }
    /* The file is zero-filled, so only the layout needs writing; the magic
     * goes last (release) so an opener never sees a half-written header. */
    s->hdr->n = h.n;
    s->hdr->cores = (uint32_t)cores;
    s->hdr->size = h.size;
    s->hdr->off_ctl = h.off_ctl;
    s->hdr->off_scratch = h.off_scratch;
    s->hdr->off_eager = h.off_eager;
    s->hdr->off_cells = h.off_cells;
    s->hdr->off_p2p = h.off_p2p;
    s->hdr->eager = h.eager;
    s->hdr->cell = h.cell;
    s->hdr->p2p_chunk = h.p2p_chunk;
    s->hdr->chan_size = h.chan_size;
    atomic_store_explicit(&s->hdr->magic, SHM_MAGIC, memory_order_release);
    return NP_OK;
}

static np_err shm_open_existing(npi_shm *s, int n)
{
    uint64_t start = npi_now_ns();
    uint64_t limit = npi_shm_conf.timeout_ns ? npi_shm_conf.timeout_ns : UINT64_MAX;
    long backoff = 20;
    for (;;) {
        int fd = shm_open(s->name, O_RDWR, 0600);
        if (fd >= 0) {
            struct stat st;
            if (fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof(npi_shm_hdr)) {
                np_err err = shm_map(s, fd, (size_t)st.st_size);
                close(fd);
                if (err != NP_OK)
                    return err;
                /* The creator sizes the file before it writes the magic,
                 * so the size seen here is final once the magic appears. */
                while (atomic_load_explicit(&s->hdr->magic, memory_order_acquire) != SHM_MAGIC) {
                    if (npi_now_ns() - start > limit)
                        goto timeout;
                    shm_sleep_us(50);
                }
                if (s->hdr->n != (uint32_t)n || s->hdr->size != (size_t)st.st_size) {
                    munmap(s->base, s->size);
                    s->base = NULL;
                    return npi_error(NP_ERR_INTERNAL, "shm: %s was made for %u ranks, expected %d",
                                     s->name, s->hdr->n, n);
                }
                return NP_OK;
            }
            close(fd);
        } else if (errno != ENOENT) {
            return npi_error(NP_ERR_SYSTEM, "shm: cannot open %s: %s", s->name, strerror(errno));
        }
        if (npi_now_ns() - start > limit)
            goto timeout;
        shm_sleep_us(backoff);
        if (backoff < 5000)
            backoff *= 2;
    }
timeout:
    return npi_error(NP_ERR_TIMEOUT, "shm: %s did not appear within the timeout (is rank 0 alive?)",
                     s->name);
}

np_err npi_shm_attach(npi_shm *s, const char *job, uint64_t id, int n, int me)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    s->me = me;
    snprintf(s->name, sizeof s->name, "/numpush-%s-%016llx", job, (unsigned long long)id);
    np_err err = me == 0 ? shm_create(s, n) : shm_open_existing(s, n);
    if (err != NP_OK)
        return err;
    s->ctl = (npi_shm_ctl *)(s->base + s->hdr->off_ctl);
    /* Spinning only pays while the awaited rank can run at the same time.
     * With more ranks than cores it usually cannot, and every poll delays
     * the rank that would answer, so a waiter yields at once. */
    s->cores = (int)s->hdr->cores;
    s->spin = npi_shm_conf.spin;
    if (s->spin < 0)
        s->spin = n <= s->cores ? 300 : 0;
    atomic_store_explicit(&s->ctl[me].oncpu, -1, memory_order_relaxed);
    s->ctl[me].pid = (int32_t)getpid();
    cpu_set_t mask;
    s->ctl[me].cpu = -1;
    if (sched_getaffinity(0, sizeof mask, &mask) == 0 && CPU_COUNT(&mask) == 1)
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &mask))
                s->ctl[me].cpu = c;
    uint32_t now = atomic_fetch_add(&s->hdr->attached, 1) + 1;
    if (now == (uint32_t)n)
        shm_unlink(s->name);
    return NP_OK;
}

void npi_shm_detach(npi_shm *s)
{
    if (s->base)
        munmap(s->base, s->size);
    s->base = NULL;
    s->hdr = NULL;
    s->ctl = NULL;
}
