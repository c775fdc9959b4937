/*
 * numpush: reader/writer locks that live in shared memory.
 *
 * An np_rwlock is 256 bytes that any process mapping the same memory (an
 * np_shm_alloc window, a numpush.shm segment, any MAP_SHARED mapping) can
 * lock.  Zero-filled memory is an unlocked lock, so a fresh segment needs no
 * initialisation; np_rwlock_init is there for memory that was used before.
 *
 * Uncontended locking and unlocking are a few atomic instructions and no
 * system call.  Waiters spin briefly, yield, then sleep on a futex.
 *
 * Robustness: the lock records the thread id of its writer and of each
 * reader.  A waiter that has waited for a while checks whether the holders
 * are still alive; a dead writer's lock is taken back and the next thread to
 * acquire the lock (for reading or writing) gets NP_ERR_LOCK once: it holds
 * the lock, but the data it protects may be half-written.  Dead readers are
 * dropped silently, since a reader changes nothing.  Holders are identified
 * by thread id, so the processes must share a pid namespace; a dead holder
 * whose id has been reused by a new thread is taken for alive.
 *
 * At most NP_RWLOCK_READERS threads hold one lock for reading at once;
 * further readers wait for a free reader slot.  Writers are preferred: once
 * a writer waits, new readers wait behind it.  Locks are not recursive.
 */
#ifndef NUMPUSH_SHM_LOCK_H
#define NUMPUSH_SHM_LOCK_H

#include <numpush/numpush.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NP_RWLOCK_SIZE    256
#define NP_RWLOCK_READERS 48

/* Opaque; place it in shared memory, 64-byte aligned. */
typedef struct np_rwlock {
    unsigned char opaque_[NP_RWLOCK_SIZE];
} __attribute__((aligned(64))) np_rwlock;

/* Reset *lock to unlocked (equivalent to zero-filling it).  Only while no
 * process uses the lock.  Errors: NP_ERR_NULL. */
np_err np_rwlock_init(np_rwlock *lock);

/* Acquire for reading (shared) or writing (exclusive).  timeout in seconds:
 * negative waits for ever, 0 only tries.  Returns NP_OK, or NP_ERR_LOCK with
 * the lock held when a previous writer died holding it, or NP_ERR_TIMEOUT
 * (not held), NP_ERR_ARG when the caller already holds the lock for
 * writing, NP_ERR_NULL. */
np_err np_rwlock_rdlock(np_rwlock *lock, double timeout);
np_err np_rwlock_wrlock(np_rwlock *lock, double timeout);

/* Release the caller's hold (read or write).  Errors: NP_ERR_ARG when the
 * calling thread holds nothing, NP_ERR_NULL. */
np_err np_rwlock_unlock(np_rwlock *lock);

#ifdef __cplusplus
}
#endif
#endif
