/*
 * Shared memory within a node: segments, flags, waiting, copies and CMA.
 *
 * One segment per communicator and node holds everything its ranks share:
 * a header, one control block per rank (its sequence flag, its published
 * call signatures, its point-to-point doorbell), per-rank eager areas for
 * small payloads, per-rank cell areas for pipelined mid-size transfers and
 * the point-to-point channels.  The segment is unlinked as soon as every
 * rank has mapped it, so nothing is left in /dev/shm after any exit.
 *
 * Flags are monotonically increasing 64-bit words written by one rank only
 * (release store) and polled by others (acquire load), each on its own cache
 * line.  A waiter spins, then yields, then sleeps on a futex on the low 32
 * bits of the word; a writer issues the wake system call only when a waiter
 * has announced itself, so the fast path has no system call at all.
 */
#ifndef NUMPUSH_SHM_H
#define NUMPUSH_SHM_H

#include "npi.h"

#include <stdatomic.h>
#include <sys/types.h>

/* A waitable word: written by one rank, slept on by others.  aux is free
 * for the owner of the word to use (the same writer, the same line). */
typedef struct npi_flag {
    _Atomic uint64_t v;
    _Atomic uint32_t waiters; /* ranks sleeping (or about to) on v */
    uint32_t aux;
} npi_flag;

/* Bytes of payload that ride in a post line itself. */
#define NPI_POST_INLINE 16

/* One rank's post for one collective call: its progress flag and its call
 * signature (with buffer addresses for single copies by its peers) in one
 * cache line, so a peer learns both with one cache miss.  Two posts per
 * rank, used by parity of the call's sequence number: a rank may start call
 * seq+1 while a slow peer still reads its post for seq, and it can only
 * reach seq+2 after every peer has arrived at seq+1, that is, has finished
 * with seq.  flag.aux packs coll | dtype << 8 | alg << 16 | err << 24. */
typedef struct npi_shm_post {
    npi_flag flag; /* seq << 24 | step */
    int32_t op, root;
    uint64_t count;
    uint64_t sbuf, rbuf; /* addresses in the owner's address space */
    char inl[NPI_POST_INLINE];
} npi_shm_post;

/* Per-rank control block: 256 bytes, four cache lines. */
typedef struct npi_shm_ctl {
    npi_shm_post post[2];
    int32_t pid;
    int32_t cma_ok;
    uint64_t probe_addr;
    int32_t cpu;           /* the one CPU this rank is bound to, or -1 */
    _Atomic int32_t oncpu; /* the CPU this rank ran on when it last began to wait */
    char pad0_[NPI_CACHELINE - 24];
    npi_flag bell; /* point-to-point doorbell: bumped by every sender */
    char pad1_[NPI_CACHELINE - sizeof(npi_flag)];
} npi_shm_ctl;

/* Point-to-point slot: header line plus inline payload. */
#define NPI_P2P_SLOTS  8
#define NPI_P2P_SLOT   4096
#define NPI_P2P_INLINE (NPI_P2P_SLOT - NPI_CACHELINE)

typedef struct npi_p2p_slot {
    _Atomic uint32_t state;
    int32_t tag;
    uint64_t bytes;
    uint64_t addr;
    char pad_[NPI_CACHELINE - 24];
    char data[NPI_P2P_INLINE];
} npi_p2p_slot;

/* A channel from one sender to one receiver. */
typedef struct npi_p2p_chan {
    npi_flag freed; /* receiver: bumped whenever a slot changes state */
    char pad0_[NPI_CACHELINE - sizeof(npi_flag)];
    npi_flag prod; /* sender: stream chunks produced */
    char pad1_[NPI_CACHELINE - sizeof(npi_flag)];
    npi_flag dack; /* receiver: stream chunks consumed */
    char pad2_[NPI_CACHELINE - sizeof(npi_flag)];
    npi_p2p_slot slot[NPI_P2P_SLOTS];
    /* followed by 2 stream chunks of p2p_chunk bytes */
} npi_p2p_chan;

typedef struct npi_shm_hdr {
    _Atomic uint64_t magic;
    _Atomic uint32_t attached;
    _Atomic uint32_t broken; /* a rank saw a peer die: the communicator is dead */
    uint32_t n;
    uint32_t cores; /* the creator's CPU count: every rank decides with the same */
    uint64_t size;
    uint64_t off_ctl, off_scratch, off_eager, off_cells, off_p2p;
    uint64_t eager, cell, p2p_chunk, chan_size;
} npi_shm_hdr;

/* A process's view of one mapped segment. */
typedef struct npi_shm {
    npi_shm_hdr *hdr;
    char *base;
    size_t size;
    int n, me;
    long spin; /* polls before yielding, for this many ranks on this node */
    int cores; /* CPUs this process may run on */
    npi_shm_ctl *ctl;
    char name[96];
} npi_shm;

/* Sizes of the areas, fixed at np_init from NUMPUSH_SHM_* settings. */
typedef struct npi_shm_params {
    size_t eager;             /* bytes per rank and parity for small payloads */
    size_t cell;              /* bytes per rank and half for pipelined transfers (0: auto) */
    size_t p2p_chunk;         /* bytes per point-to-point stream chunk */
    uint64_t timeout_ns;      /* a dead peer is reported within this (0: no bound) */
    uint64_t wait_timeout_ns; /* a wait for a live peer gives up after this (0: never) */
    long spin;                /* -1: auto (see npi_shm_attach) */
    int cma;                  /* -1 auto, 0 off, 1 forced */
    size_t copy_stream;       /* npi_copy bypasses the caches from this size (0: never) */
} npi_shm_params;

extern npi_shm_params npi_shm_conf;

/* The eager area per rank and parity for n ranks: the configured size, but
 * at most 32 MiB in all for many ranks (and never below 16 KiB), since
 * every rank's area is touched sooner or later and stays resident. */
static inline size_t npi_shm_eager_size(size_t conf, int n)
{
    size_t cap = ((size_t)32 << 20) / (size_t)(n > 0 ? n : 1);
    if (cap < 16384)
        cap = 16384;
    return conf < cap ? conf : cap;
}

/* Read the NUMPUSH_* settings of this module.  Errors: NP_ERR_CONFIG. */
np_err npi_shm_configure(void);

/* Create (me == 0) or open (others) the segment "/numpush-<job>-<id>" for n
 * ranks and map it.  Blocks until the segment exists (others) or the
 * timeout passes.  The last rank to map it unlinks its name.  Errors:
 * NP_ERR_SYSTEM, NP_ERR_TIMEOUT, NP_ERR_NOMEM. */
np_err npi_shm_attach(npi_shm *s, const char *job, uint64_t id, int n, int me);

/* Unmap.  Never fails. */
void npi_shm_detach(npi_shm *s);

static inline char *npi_shm_eager(npi_shm *s, int rank, uint64_t seq)
{
    return s->base + s->hdr->off_eager + ((size_t)rank * 2 + (seq & 1)) * s->hdr->eager;
}

static inline char *npi_shm_cell(npi_shm *s, int rank, uint64_t half)
{
    return s->base + s->hdr->off_cells + ((size_t)rank * 2 + (half & 1)) * s->hdr->cell;
}

/* counts and displacements published by the root of a v-collective. */
static inline uint64_t *npi_shm_scratch(npi_shm *s, uint64_t seq)
{
    return (uint64_t *)(s->base + s->hdr->off_scratch) + (seq & 1) * 2 * (size_t)s->n;
}

static inline npi_p2p_chan *npi_shm_chan(npi_shm *s, int src, int dst)
{
    return (npi_p2p_chan *)(s->base + s->hdr->off_p2p +
                            ((size_t)src * (size_t)s->n + (size_t)dst) * s->hdr->chan_size);
}

static inline char *npi_shm_chan_chunk(npi_shm *s, npi_p2p_chan *c, uint64_t k)
{
    return (char *)(c + 1) + (k & 1) * s->hdr->p2p_chunk;
}

/* ------------------------------------------------------------ flags and waiting (wait.c) */

/* Publish v (release) and wake sleepers if any announced themselves. */
void npi_flag_set(npi_flag *f, uint64_t v);

static inline uint64_t npi_flag_get(npi_flag *f)
{
    return atomic_load_explicit(&f->v, memory_order_acquire);
}

/* Add one to f (for doorbells written by several ranks) and wake sleepers. */
void npi_flag_bump(npi_flag *f);

typedef bool (*npi_ready_fn)(void *arg);

/* Wait until ready(arg) holds, sleeping on f between checks.  While
 * waiting, checks every few milliseconds that rank peer of s (every rank if
 * peer < 0) is alive and that s is not broken.  A live peer is waited for
 * without limit unless NUMPUSH_WAIT_TIMEOUT is set; a dead one is reported
 * within NUMPUSH_TIMEOUT.  Errors: NP_ERR_PEER (a peer died: s is marked
 * broken), NP_ERR_TIMEOUT (NUMPUSH_WAIT_TIMEOUT passed); the message names
 * who. */
np_err npi_shm_wait(npi_shm *s, npi_flag *f, npi_ready_fn ready, void *arg, int peer,
                    const char *who);

/* Wait until rank q's collective flag of parity p reaches at least v. */
np_err npi_shm_wait_flag(npi_shm *s, int q, int p, uint64_t v, const char *who);

/* Whether process pid is gone (no such process, or a zombie). */
bool npi_pid_dead(pid_t pid);

/* ------------------------------------------------------------ copies (copy.c) */

/* memcpy that first aligns the destination to 64 bytes, so a bulk copy
 * never runs with a misaligned destination (see BENCHMARKS.md), and that
 * writes copies of npi_shm_conf.copy_stream bytes and more with
 * non-temporal stores (copy.c says why).  Stores are complete (fenced)
 * when it returns, so a flag posted afterwards orders after them. */
void npi_copy(void *dst, const void *src, size_t n);

/* npi_copy of one piece of a destination of total bytes, written piece by
 * piece (a pipelined receive): streams when total would.  The source
 * should be a shared cell that is read again soon, the destination the
 * caller's buffer. */
void npi_copy_piece(void *dst, const void *src, size_t n, size_t total);

/* Single copy between this process and pid with process_vm_readv/writev,
 * looping over partial transfers.  Errors: NP_ERR_PEER (pid gone),
 * NP_ERR_SYSTEM. */
np_err npi_cma_read(pid_t pid, void *dst, uint64_t remote, size_t n);
np_err npi_cma_write(pid_t pid, uint64_t remote, const void *src, size_t n);

/* Whether this kernel lets this process read its own memory with
 * process_vm_readv (a seccomp filter may forbid it). */
bool npi_cma_syscall_works(void);

#endif
