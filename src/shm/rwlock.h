/*
 * The layout behind np_rwlock (include/numpush/shm_lock.h).
 *
 * Ownership is recorded in the lock words themselves, so that no process can
 * die between taking the lock and saying who took it:
 *  - writer: 0 when no writer holds or waits for the lock, else the thread
 *    id of the writer that owns it (it may still be waiting for readers to
 *    leave);
 *  - reader[i]: 0 for a free slot, else the thread id of a reader.
 * A reader claims a slot and then checks writer; a writer claims writer and
 * then checks the slots.  Both steps are sequentially consistent, so at
 * least one of the two sees the other (the Dekker pattern), and a reader
 * that sees a writer gives its slot back.
 *
 * seq is the one futex word every waiter sleeps on; a releaser bumps it and
 * wakes only when waiters says someone sleeps (or is about to).  dirty is
 * set when a dead writer's lock was taken back; the next acquirer clears it
 * and reports NP_ERR_LOCK.
 */
#ifndef NUMPUSH_SHM_RWLOCK_H
#define NUMPUSH_SHM_RWLOCK_H

#include <stdatomic.h>
#include <stdint.h>

#include <numpush/shm_lock.h>

typedef struct npi_rwlock {
    _Atomic uint32_t writer;
    _Atomic uint32_t seq;
    _Atomic uint32_t waiters;
    _Atomic uint32_t dirty;
    uint32_t pad_[12];
    _Atomic uint32_t reader[NP_RWLOCK_READERS];
} npi_rwlock;

_Static_assert(sizeof(npi_rwlock) == NP_RWLOCK_SIZE, "npi_rwlock must fill np_rwlock");

#endif
