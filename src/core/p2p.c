/*
 * Point to point within a node: np_send and np_recv.
 *
 * Each ordered pair of ranks has a channel in the communicator's segment: a
 * ring of NPI_P2P_SLOTS message slots that only the sender fills (in order)
 * and only the receiver empties (in any order, because a receive matches by
 * tag), plus two stream chunks.  A message that fits a slot travels inline
 * and np_send returns at once.  A larger one is a rendezvous: the slot
 * carries the sender's buffer address and the receiver reads it with one
 * process_vm_readv, or, without single copy, the sender streams it through
 * the chunks.  The receiver scans a channel from its oldest slot, so among
 * messages with one tag from one source the oldest always matches first.
 */
#include <string.h>

#include "comm.h"
#include "coll/hier.h"

enum {
    P2P_FREE = 0,
    P2P_INLINE = 1,
    P2P_CMA = 2,
    P2P_STREAM = 3,
    P2P_CONSUMED = 4,
};

typedef struct p2p_state_arg {
    npi_p2p_slot *slot;
    uint32_t state;
    bool equal; /* wait for state == value (true) or != value (false) */
} p2p_state_arg;

static bool p2p_state_ready(void *arg)
{
    p2p_state_arg *a = arg;
    uint32_t s = atomic_load_explicit(&a->slot->state, memory_order_acquire);
    return a->equal ? s == a->state : s != a->state;
}

typedef struct p2p_flag_arg {
    npi_flag *f;
    uint64_t v;
} p2p_flag_arg;

static bool p2p_flag_at_least(void *arg)
{
    p2p_flag_arg *a = arg;
    return npi_flag_get(a->f) >= a->v;
}

static bool p2p_flag_changed(void *arg)
{
    p2p_flag_arg *a = arg;
    return npi_flag_get(a->f) != a->v;
}

static np_err p2p_check(np_comm *comm, np_dtype dt, size_t count, const void *buf, int peer,
                        bool any_ok, int tag, const char *who, size_t *bytes)
{
    np_err err = npi_comm_check(comm, who);
    if (err != NP_OK)
        return err;
    if (!comm->has_shm && !comm->hier)
        return npi_error(NP_ERR_NOT_IMPLEMENTED, "%s: peers on other nodes need the fabric", who);
    if (!npi_dtype_valid(dt))
        return npi_error(NP_ERR_DTYPE, "%s: unknown datatype %d", who, (int)dt);
    if (count > SIZE_MAX / np_dtype_size(dt))
        return npi_error(NP_ERR_COUNT, "%s: count %zu is too large", who, count);
    *bytes = count * np_dtype_size(dt);
    if (buf == NULL && count > 0)
        return npi_error(NP_ERR_NULL, "%s: buf is NULL with count %zu", who, count);
    if ((peer < 0 || peer >= comm->size) && !(any_ok && peer == NP_ANY_SOURCE))
        return npi_error(NP_ERR_RANK, "%s: rank %d out of range for a communicator of size %d", who,
                         peer, comm->size);
    if ((tag < 0 || tag > NP_TAG_MAX) && !(any_ok && tag == NP_ANY_TAG))
        return npi_error(NP_ERR_TAG, "%s: tag %d out of range 0..%d", who, tag, NP_TAG_MAX);
    return NP_OK;
}

np_err np_send(const void *buf, size_t count, np_dtype dt, int dest, int tag, np_comm *comm)
{
    static const char who[] = "np_send";
    size_t bytes;
    np_err err = p2p_check(comm, dt, count, buf, dest, false, tag, who, &bytes);
    if (err != NP_OK)
        return err;
    if (comm->hier)
        return npi_hier_send(buf, bytes, dt, count, dest, tag, comm);
    npi_shm *s = &comm->shm;
    npi_p2p_chan *ch = npi_shm_chan(s, comm->rank, dest);
    npi_p2p_slot *slot = &ch->slot[comm->p2p_head[dest] % NPI_P2P_SLOTS];
    p2p_state_arg free_arg = {slot, P2P_FREE, true};
    if ((err = npi_shm_wait(s, &ch->freed, p2p_state_ready, &free_arg, dest, who)) != NP_OK)
        return err;
    slot->tag = tag;
    slot->bytes = bytes;
    uint32_t kind = bytes <= NPI_P2P_INLINE ? P2P_INLINE : comm->cma ? P2P_CMA : P2P_STREAM;
    if (kind == P2P_INLINE)
        memcpy(slot->data, buf, bytes);
    slot->addr = (uint64_t)(uintptr_t)buf;
    atomic_store_explicit(&slot->state, kind, memory_order_release);
    comm->p2p_head[dest]++;
    npi_flag_bump(&s->ctl[dest].bell);
    if (kind == P2P_INLINE)
        return NP_OK;
    if (kind == P2P_CMA) {
        /* The receiver reads our buffer; it must stay put until it is done. */
        p2p_state_arg done = {slot, P2P_CMA, false};
        return npi_shm_wait(s, &ch->freed, p2p_state_ready, &done, dest, who);
    }
    size_t chunk = s->hdr->p2p_chunk;
    const char *src = buf;
    for (size_t off = 0; off < bytes; off += chunk) {
        uint64_t g = comm->p2p_sent_chunks[dest];
        if (g >= 2) {
            p2p_flag_arg room = {&ch->dack, g - 1};
            if ((err = npi_shm_wait(s, &ch->dack, p2p_flag_at_least, &room, dest, who)) != NP_OK)
                return err;
        }
        size_t len = bytes - off < chunk ? bytes - off : chunk;
        npi_copy(npi_shm_chan_chunk(s, ch, g), src + off, len);
        npi_flag_set(&ch->prod, g + 1);
        comm->p2p_sent_chunks[dest] = g + 1;
    }
    return NP_OK;
}

/* The oldest message from src to the caller with a matching tag, or NULL. */
static npi_p2p_slot *p2p_match(np_comm *comm, int src, int tag)
{
    npi_p2p_chan *ch = npi_shm_chan(&comm->shm, src, comm->rank);
    uint64_t tail = comm->p2p_tail[src];
    for (int k = 0; k < NPI_P2P_SLOTS; k++) {
        npi_p2p_slot *slot = &ch->slot[(tail + (uint64_t)k) % NPI_P2P_SLOTS];
        uint32_t st = atomic_load_explicit(&slot->state, memory_order_acquire);
        if (st == P2P_FREE)
            return NULL;
        if (st != P2P_CONSUMED && (tag == NP_ANY_TAG || slot->tag == tag))
            return slot;
    }
    return NULL;
}

/* Mark slot consumed and give back, in order, every slot consumed so far. */
static void p2p_release(np_comm *comm, int src, npi_p2p_slot *slot)
{
    npi_p2p_chan *ch = npi_shm_chan(&comm->shm, src, comm->rank);
    atomic_store_explicit(&slot->state, P2P_CONSUMED, memory_order_release);
    for (;;) {
        npi_p2p_slot *t = &ch->slot[comm->p2p_tail[src] % NPI_P2P_SLOTS];
        if (atomic_load_explicit(&t->state, memory_order_acquire) != P2P_CONSUMED)
            break;
        atomic_store_explicit(&t->state, P2P_FREE, memory_order_release);
        comm->p2p_tail[src]++;
    }
    npi_flag_bump(&ch->freed);
}

np_err np_recv(void *buf, size_t count, np_dtype dt, int src, int tag, np_comm *comm, np_status *st)
{
    static const char who[] = "np_recv";
    size_t cap;
    np_err err = p2p_check(comm, dt, count, buf, src, true, tag, who, &cap);
    if (err != NP_OK)
        return err;
    if (comm->hier)
        return npi_hier_recv(buf, cap, dt, src, tag, comm, st);
    npi_shm *s = &comm->shm;
    npi_flag *bell = &s->ctl[comm->rank].bell;
    npi_p2p_slot *slot = NULL;
    int from = src;
    for (;;) {
        uint64_t seen = npi_flag_get(bell);
        if (src != NP_ANY_SOURCE) {
            slot = p2p_match(comm, src, tag);
        } else {
            for (int k = 0; k < comm->size && !slot; k++) {
                from = (comm->rank + k) % comm->size;
                slot = p2p_match(comm, from, tag);
            }
        }
        if (slot)
            break;
        p2p_flag_arg changed = {bell, seen};
        if ((err = npi_shm_wait(s, bell, p2p_flag_changed, &changed, src, who)) != NP_OK)
            return err;
    }
    uint32_t kind = atomic_load_explicit(&slot->state, memory_order_acquire);
    size_t bytes = slot->bytes;
    bool truncated = bytes > cap;
    if (kind == P2P_INLINE && !truncated) {
        memcpy(buf, slot->data, bytes);
    } else if (kind == P2P_CMA && !truncated) {
        err = npi_cma_read(s->ctl[from].pid, buf, slot->addr, bytes);
    } else if (kind == P2P_STREAM) {
        /* A truncated stream is still drained, so the channel stays usable. */
        npi_p2p_chan *ch = npi_shm_chan(s, from, comm->rank);
        size_t chunk = s->hdr->p2p_chunk;
        for (size_t off = 0; off < bytes && err == NP_OK; off += chunk) {
            uint64_t g = comm->p2p_recv_chunks[from];
            p2p_flag_arg ready = {&ch->prod, g + 1};
            if ((err = npi_shm_wait(s, &ch->prod, p2p_flag_at_least, &ready, from, who)) != NP_OK)
                break;
            size_t len = bytes - off < chunk ? bytes - off : chunk;
            if (!truncated)
                npi_copy_piece((char *)buf + off, npi_shm_chan_chunk(s, ch, g), len, bytes);
            npi_flag_set(&ch->dack, g + 1);
            comm->p2p_recv_chunks[from] = g + 1;
        }
    }
    int got_tag = slot->tag;
    p2p_release(comm, from, slot);
    if (st) {
        st->source = from;
        st->tag = got_tag;
        st->count = bytes / np_dtype_size(dt);
        st->error = err != NP_OK ? err : truncated ? NP_ERR_TRUNCATE : NP_OK;
    }
    if (err != NP_OK)
        return err;
    if (truncated)
        return npi_error(NP_ERR_TRUNCATE,
                         "%s: message of %zu bytes from rank %d (tag %d) exceeds the %zu-byte "
                         "buffer",
                         who, bytes, from, got_tag, cap);
    return NP_OK;
}
