/*
 * np_shm_alloc / np_shm_query / np_shm_free and np_rwlock inside a window.
 * Run by tests/shm_window.sh under numpush-run with 1, 2 and 4 ranks.
 *
 * Every rank allocates a part of a different size (rank 0 also a lock),
 * writes its rank into every byte of its part, and checks every other
 * rank's part through np_shm_query; then all ranks increment one counter
 * in rank 0's part under the lock, and the total must be exact.
 */
#include <numpush/numpush.h>
#include <numpush/shm_lock.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int me;

#define CHECK_OK(call)                                                                             \
    do {                                                                                           \
        np_err e_ = (call);                                                                        \
        if (e_ != NP_OK) {                                                                         \
            fprintf(stderr, "rank %d: %s:%d: %s -> %s: %s\n", me, __FILE__, __LINE__, #call,       \
                    np_errname(e_), np_last_error());                                              \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

typedef struct head {
    np_rwlock lock;
    long counter;
} head;

static size_t part_size(int rank)
{
    return rank == 0 ? sizeof(head) + 1000 : 1000 * (size_t)rank + 3;
}

int main(int argc, char **argv)
{
    enum { ITER = 2000 };
    CHECK_OK(np_init(&argc, &argv));
    np_comm *node;
    CHECK_OK(np_comm_split_type(np_comm_world(), NP_COMM_TYPE_NODE, 0, &node));
    me = np_comm_rank(node);
    int n = np_comm_size(node);

    void *mine;
    np_shm_win *win;
    CHECK_OK(np_shm_alloc(part_size(me), node, &mine, &win));
    if (((uintptr_t)mine & 63) != 0) {
        fprintf(stderr, "rank %d: part not on a cache line\n", me);
        return 1;
    }
    unsigned char *bytes = mine;
    size_t skip = me == 0 ? sizeof(head) : 0;
    memset(bytes + skip, 'A' + me, part_size(me) - skip);
    CHECK_OK(np_barrier(node));
    for (int r = 0; r < n; r++) {
        void *p;
        size_t sz;
        CHECK_OK(np_shm_query(win, r, &p, &sz));
        if (sz != part_size(r)) {
            fprintf(stderr, "rank %d: part %d has %zu bytes, expected %zu\n", me, r, sz,
                    part_size(r));
            return 1;
        }
        for (size_t i = r == 0 ? sizeof(head) : 0; i < sz; i++) {
            if (((unsigned char *)p)[i] != 'A' + r) {
                fprintf(stderr, "rank %d: byte %zu of part %d wrong\n", me, i, r);
                return 1;
            }
        }
    }
    void *p0;
    size_t sz0;
    CHECK_OK(np_shm_query(win, 0, &p0, &sz0));
    head *h = p0;
    for (int i = 0; i < ITER; i++) {
        CHECK_OK(np_rwlock_wrlock(&h->lock, -1));
        h->counter++;
        CHECK_OK(np_rwlock_unlock(&h->lock));
    }
    CHECK_OK(np_barrier(node));
    if (h->counter != (long)n * ITER) {
        fprintf(stderr, "rank %d: counter %ld, expected %ld\n", me, h->counter, (long)n * ITER);
        return 1;
    }
    void *bad;
    size_t badsz;
    if (np_shm_query(win, n, &bad, &badsz) != NP_ERR_RANK) {
        fprintf(stderr, "rank %d: query of rank %d accepted\n", me, n);
        return 1;
    }
    CHECK_OK(np_shm_free(&win));
    if (win != NULL)
        return 1;
    /* A window of nothing at all is allowed, as in MPI. */
    CHECK_OK(np_shm_alloc(0, node, &mine, &win));
    CHECK_OK(np_shm_free(&win));
    CHECK_OK(np_comm_free(&node));
    if (me == 0)
        printf("test_shm_window: %d ranks ok\n", n);
    CHECK_OK(np_finalize());
    return 0;
}
