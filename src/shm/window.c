/*
 * Node-shared windows: np_shm_alloc, np_shm_query, np_shm_free (like
 * MPI_Win_allocate_shared).
 *
 * Every rank's part lives in one segment, one after the other in rank order,
 * each starting on a cache line (WIN_ALIGN) so that neighbouring parts never
 * share a line.  The lowest rank creates the segment; its handle reaches the
 * others by np_bcast; the sizes by one np_allgather that also carries each
 * rank's host identity, so ranks on different nodes are refused (NP_ERR_COMM)
 * consistently on every rank before anything is created.
 *
 * Lifetime: the segment is an anonymous memfd.  The creator broadcasts its
 * pid, descriptor number and inode; the others open /proc/<pid>/fd/<n>
 * (allowed between processes of the same user), check the inode (so a
 * reused descriptor number cannot attach the wrong file) and map it.  Once
 * every rank has mapped it, the creator closes its descriptor, so the memory
 * is held only by the mappings and goes away with the last of them, however
 * the processes end: there is never a name in /dev/shm to leak.  Where
 * memfd_create or /proc is missing (or a rank cannot open the creator's
 * descriptor, say in another pid namespace), a named POSIX segment is used
 * instead and unlinked as soon as every rank has mapped it; only a crash in
 * that short window can leave a name behind.
 */
#include "npi.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define WIN_ALIGN 64
#define WIN_HOST  56

struct np_shm_win {
    np_comm *comm;
    char *base;
    size_t total;
    int size;
    size_t *off;
    size_t *len;
};

/* What every rank tells the others: the size of its part and its host. */
typedef struct win_info {
    uint64_t size;
    char host[WIN_HOST];
} win_info;

/* What the creator tells the others: where to find the segment. */
typedef struct win_handle {
    int32_t err; /* nonzero: creation failed (an np_err) */
    int32_t method;
    int32_t pid;
    int32_t fd;
    uint64_t ino;
    uint64_t dev;
    char name[32];
} win_handle;

enum { WIN_MEMFD = 0, WIN_NAMED = 1 };

/* Identify the host: its boot id (distinct per machine and boot) when the
 * kernel offers one, else its host name. */
static void win_host(char *out)
{
    memset(out, 0, WIN_HOST);
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f != NULL) {
        if (fgets(out, WIN_HOST, f) == NULL)
            out[0] = '\0';
        fclose(f);
    }
    if (out[0] == '\0')
        gethostname(out, WIN_HOST - 1);
}

/* Create the segment at the root: fill h, keep the descriptor in *fd. */
static void win_create(int method, size_t total, win_handle *h, int *fd)
{
    static unsigned serial;
    *fd = -1;
    if (method == WIN_MEMFD) {
#if defined(__linux__) && defined(MFD_CLOEXEC)
        *fd = memfd_create("numpush-win", MFD_CLOEXEC);
#else
        errno = ENOSYS;
#endif
    } else {
        /* Short enough for macOS's 31-byte limit on names. */
        snprintf(h->name, sizeof h->name, "/npw%x.%x", (unsigned)getpid(), serial++);
        *fd = shm_open(h->name, O_RDWR | O_CREAT | O_EXCL, 0600);
    }
    struct stat st;
    if (*fd < 0 || ftruncate(*fd, (off_t)total) != 0 || fstat(*fd, &st) != 0) {
        h->err = npi_error(NP_ERR_SYSTEM, "np_shm_alloc: creating a %zu-byte %s segment: %s", total,
                           method == WIN_MEMFD ? "memfd" : "named", strerror(errno));
        if (*fd >= 0)
            close(*fd);
        if (method == WIN_NAMED && *fd >= 0)
            shm_unlink(h->name);
        *fd = -1;
        return;
    }
    h->method = method;
    h->pid = (int32_t)getpid();
    h->fd = *fd;
    h->ino = (uint64_t)st.st_ino;
    h->dev = (uint64_t)st.st_dev;
}

/* Open the root's segment at a non-root rank. */
static np_err win_open(const win_handle *h, int *fd)
{
    char path[64];
    if (h->method == WIN_MEMFD) {
        snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)h->pid, (int)h->fd);
        *fd = open(path, O_RDWR | O_CLOEXEC);
    } else {
        snprintf(path, sizeof path, "%s", h->name);
        *fd = shm_open(h->name, O_RDWR, 0600);
    }
    if (*fd < 0)
        return npi_error(NP_ERR_SYSTEM, "np_shm_alloc: opening %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(*fd, &st) != 0 || (uint64_t)st.st_ino != h->ino || (uint64_t)st.st_dev != h->dev) {
        close(*fd);
        *fd = -1;
        return npi_error(NP_ERR_SYSTEM, "np_shm_alloc: %s is not the segment the root created",
                         path);
    }
    return NP_OK;
}

/* One attempt with one method; collective.  On success *base is mapped on
 * every rank; on failure nothing is mapped on any rank. */
static np_err win_attach(int method, size_t total, np_comm *comm, char **base)
{
    int rank = np_comm_rank(comm);
    win_handle h;
    memset(&h, 0, sizeof h);
    int fd = -1;
    np_err err, mine = NP_OK;
    *base = NULL;
    if (rank == 0)
        win_create(method, total, &h, &fd);
    err = np_bcast(&h, sizeof h, NP_BYTE, 0, comm);
    if (err != NP_OK)
        goto out;
    if (h.err != 0) {
        err = rank == 0 ? (np_err)h.err
                        : npi_error((np_err)h.err, "np_shm_alloc: rank 0 could not create "
                                                   "the segment");
        goto out;
    }
    if (rank != 0)
        mine = win_open(&h, &fd);
    if (mine == NP_OK) {
        void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
            mine = npi_error(NP_ERR_SYSTEM, "np_shm_alloc: mapping %zu bytes: %s", total,
                             strerror(errno));
        else
            *base = p;
    }
    /* Every rank learns whether every rank has mapped the segment; only
     * then may the root let go of it (and unlink a named one). */
    int32_t worst = (int32_t)mine, any;
    err = np_allreduce(&worst, &any, 1, NP_INT32, NP_MAX, comm);
    if (err == NP_OK && any != 0)
        err = mine != NP_OK ? mine
                            : npi_error((np_err)any, "np_shm_alloc: another rank could not map "
                                                     "the segment");
    if (err != NP_OK && *base != NULL) {
        munmap(*base, total);
        *base = NULL;
    }
out:
    if (fd >= 0)
        close(fd);
    if (rank == 0 && method == WIN_NAMED && h.err == 0 && h.name[0] != '\0')
        shm_unlink(h.name);
    return err;
}

np_err np_shm_alloc(size_t size, np_comm *comm, void **ptr, np_shm_win **win)
{
    static const char who[] = "np_shm_alloc";
    if (ptr == NULL || win == NULL)
        return npi_error(NP_ERR_NULL, "%s: ptr and win must not be NULL", who);
    int n = np_comm_size(comm), rank = np_comm_rank(comm);
    if (n <= 0)
        return npi_error(NP_ERR_COMM, "%s: invalid communicator", who);

    np_err err = NP_OK;
    np_shm_win *w = calloc(1, sizeof *w);
    win_info *all = calloc((size_t)n, sizeof *all);
    win_info me;
    memset(&me, 0, sizeof me);
    me.size = size;
    win_host(me.host);
    /* Everyone takes part in the allgather even without memory for the
     * result, so that no peer is left waiting; the failure shows after. */
    err = np_allgather(&me, all != NULL ? all : NULL, all != NULL ? sizeof me : 0, NP_BYTE, comm);
    if (err == NP_OK && (w == NULL || all == NULL))
        err = npi_error(NP_ERR_NOMEM, "%s: no memory for %d ranks", who, n);
    if (err != NP_OK)
        goto fail;
    for (int i = 1; i < n; i++) {
        if (memcmp(all[i].host, all[0].host, WIN_HOST) != 0) {
            err = npi_error(NP_ERR_COMM,
                            "%s: ranks 0 and %d are on different nodes; "
                            "split the communicator with np_comm_split_type "
                            "(NP_COMM_TYPE_NODE) first",
                            who, i);
            goto fail;
        }
    }
    w->off = calloc((size_t)n, sizeof *w->off);
    w->len = calloc((size_t)n, sizeof *w->len);
    if (w->off == NULL || w->len == NULL) {
        /* Every rank reaches this point, and a rank out of memory must not
         * leave the others in the attach; so fail only after agreeing. */
        err = NP_ERR_NOMEM;
    }
    size_t total = 0;
    for (int i = 0; i < n && w->off != NULL && w->len != NULL; i++) {
        w->off[i] = total;
        w->len[i] = all[i].size;
        size_t step = (all[i].size + WIN_ALIGN - 1) / WIN_ALIGN * WIN_ALIGN;
        if (step < all[i].size || total + step < total) {
            err = npi_error(NP_ERR_COUNT,
                            "%s: the ranks' sizes add up to more than fits "
                            "in memory",
                            who);
            break;
        }
        total += step;
    }
    int32_t bad = (int32_t)err, any_bad;
    np_err e2 = np_allreduce(&bad, &any_bad, 1, NP_INT32, NP_MAX, comm);
    if (e2 != NP_OK || any_bad != 0) {
        err = e2 != NP_OK    ? e2
              : err != NP_OK ? err
                             : npi_error((np_err)any_bad, "%s: another rank failed", who);
        goto fail;
    }
    w->comm = comm;
    w->size = n;
    w->total = total;
    if (total > 0) {
        err = win_attach(WIN_MEMFD, total, comm, &w->base);
        /* The error is the same on every rank, so all retry together. */
        if (err == NP_ERR_SYSTEM)
            err = win_attach(WIN_NAMED, total, comm, &w->base);
        if (err != NP_OK)
            goto fail;
    }
    free(all);
    npi_error_clear();
    *ptr = w->base != NULL ? w->base + w->off[rank] : NULL;
    *win = w;
    return NP_OK;
fail:
    free(all);
    if (w != NULL) {
        free(w->off);
        free(w->len);
        free(w);
    }
    return err;
}

np_err np_shm_query(np_shm_win *win, int rank, void **ptr, size_t *size)
{
    if (win == NULL || ptr == NULL || size == NULL)
        return npi_error(NP_ERR_NULL, "np_shm_query: win, ptr and size must not be NULL");
    if (rank < 0 || rank >= win->size)
        return npi_error(NP_ERR_RANK,
                         "np_shm_query: rank %d out of range for a window of %d "
                         "ranks",
                         rank, win->size);
    *ptr = win->base != NULL ? win->base + win->off[rank] : NULL;
    *size = win->len[rank];
    return NP_OK;
}

np_err np_shm_free(np_shm_win **win)
{
    if (win == NULL || *win == NULL)
        return npi_error(NP_ERR_NULL, "np_shm_free: win is NULL");
    np_shm_win *w = *win;
    /* Collective, so that no rank unmaps while a peer may still store into
     * the part it will read next; the memory itself lives until the last
     * rank unmaps. */
    np_err err = np_barrier(w->comm);
    if (w->base != NULL)
        munmap(w->base, w->total);
    free(w->off);
    free(w->len);
    free(w);
    *win = NULL;
    return err;
}
