/*
 * Communicators: the world, and those derived from it by split and dup.
 *
 * Each communicator has a 64-bit id that names its shared segment
 * ("/numpush-<job>-<id>"), so two communicators never share flags, cells or
 * channels and their collectives cannot mix.  The world is id 0; a derived
 * communicator's id hashes its parent's id, how many communicators the
 * parent has derived before (the same on every parent rank, because
 * derivation is collective) and its color, so every member computes the
 * same id without talking and different colors get different segments.
 */
#include "comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "boot.h"
#include "coll/coll.h"
#include "coll/hier.h"
#include "shm/topo.h"

static np_comm *comm_world;
static np_comm *comm_list;
static int *comm_world_group; /* world rank -> hwloc group */

/* A value peers read with process_vm_readv to prove single copy works. */
static volatile uint64_t comm_probe_word = 0x6e70636d61707262ull;

np_err npi_comm_check(const np_comm *comm, const char *who)
{
    if (comm_world == NULL)
        return npi_error(NP_ERR_NOT_INIT, "%s: numpush is not initialised", who);
    if (comm == NULL)
        return npi_error(NP_ERR_COMM, "%s: the communicator is NULL", who);
    if (comm->magic != NPI_COMM_MAGIC)
        return npi_error(NP_ERR_COMM, "%s: not a live communicator (freed?)", who);
    return NP_OK;
}

np_comm *np_comm_world(void)
{
    return comm_world;
}

int np_comm_rank(const np_comm *comm)
{
    return comm && comm->magic == NPI_COMM_MAGIC ? comm->rank : -1;
}

int np_comm_size(const np_comm *comm)
{
    return comm && comm->magic == NPI_COMM_MAGIC ? comm->size : -1;
}

void *npi_comm_tmp(np_comm *comm, size_t bytes)
{
    if (comm->tmp_cap >= bytes)
        return comm->tmp;
    void *p = NULL;
    if (posix_memalign(&p, 4096, bytes) != 0)
        return NULL;
    free(comm->tmp);
    comm->tmp = p;
    comm->tmp_cap = bytes;
    return p;
}

static void comm_destroy(np_comm *c)
{
    if (!c)
        return;
    for (np_comm **pp = &comm_list; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    if (c->has_shm)
        npi_shm_detach(&c->shm);
    npi_hier_destroy(c);
    c->magic = 0;
    free(c->world_of);
    free(c->group);
    free(c->p2p_head);
    free(c->p2p_tail);
    free(c->p2p_sent_chunks);
    free(c->p2p_recv_chunks);
    free(c->tmp);
    free(c);
}

/* Allocate a communicator of n ranks in which the caller is rank me, and
 * attach its segment when all its ranks share this node. */
static np_err comm_create(uint64_t id, int n, int me, const int *world_of, bool cma, np_comm **out)
{
    npi_boot *b = npi_boot_self();
    np_comm *c = calloc(1, sizeof *c);
    if (!c)
        return npi_error(NP_ERR_NOMEM, "communicator: out of memory");
    c->id = id;
    c->size = n;
    c->rank = me;
    c->world_of = malloc((size_t)n * sizeof *c->world_of);
    c->group = calloc((size_t)n, sizeof *c->group);
    c->p2p_head = calloc((size_t)n, sizeof(uint64_t));
    c->p2p_tail = calloc((size_t)n, sizeof(uint64_t));
    c->p2p_sent_chunks = calloc((size_t)n, sizeof(uint64_t));
    c->p2p_recv_chunks = calloc((size_t)n, sizeof(uint64_t));
    if (!c->world_of || !c->group || !c->p2p_head || !c->p2p_tail || !c->p2p_sent_chunks ||
        !c->p2p_recv_chunks) {
        comm_destroy(c);
        return npi_error(NP_ERR_NOMEM, "communicator: out of memory");
    }
    memcpy(c->world_of, world_of, (size_t)n * sizeof *world_of);
    /* Groups renumbered densely for this communicator's ranks. */
    c->ngroups = 1;
    if (comm_world_group) {
        int map[64];
        c->ngroups = 0;
        for (int q = 0; q < n; q++) {
            int g = comm_world_group[world_of[q]], k = 0;
            while (k < c->ngroups && map[k] != g)
                k++;
            if (k == c->ngroups && k < 64)
                map[c->ngroups++] = g;
            c->group[q] = k < 64 ? k : 63;
        }
    }
    c->has_shm = true;
    for (int q = 0; q < n; q++)
        if (b->node_of_rank[world_of[q]] != b->node_of_rank[b->rank])
            c->has_shm = false;
    c->cma = cma;
    if (c->has_shm) {
        np_err err = npi_shm_attach(&c->shm, b->job, id, n, me);
        if (err != NP_OK) {
            c->has_shm = false;
            comm_destroy(c);
            return err;
        }
    } else {
        /* Ranks on several nodes: shared memory inside each, the fabric
         * between their leaders. */
        np_err err = npi_hier_create(c);
        if (err != NP_OK) {
            comm_destroy(c);
            return err;
        }
    }
    c->magic = NPI_COMM_MAGIC;
    c->next = comm_list;
    comm_list = c;
    *out = c;
    return NP_OK;
}

/* Decide once, for the world, whether single copy works between every pair
 * of ranks: each rank reads a word from its right neighbour (a Yama or
 * seccomp policy may forbid it) and the ranks agree on the AND. */
static np_err comm_probe_cma(np_comm *w)
{
    int want = npi_shm_conf.cma;
    uint8_t ok = want != 0 && npi_cma_syscall_works();
    w->shm.ctl[w->rank].probe_addr = (uint64_t)(uintptr_t)&comm_probe_word;
    np_err err = np_barrier(w);
    if (err != NP_OK)
        return err;
    if (ok && w->size > 1) {
        int q = (w->rank + 1) % w->size;
        uint64_t got = 0;
        ok = npi_cma_read(w->shm.ctl[q].pid, &got, w->shm.ctl[q].probe_addr, sizeof got) == NP_OK &&
             got == comm_probe_word;
        npi_error_clear();
    }
    uint8_t *all = malloc((size_t)w->size);
    if (!all)
        return npi_error(NP_ERR_NOMEM, "np_init: out of memory");
    err = npi_coll_allgather_bytes(&ok, all, 1, w, "np_init");
    bool every = true;
    for (int q = 0; q < w->size; q++)
        every = every && all[q];
    free(all);
    w->cma = err == NP_OK && every;
    if (want == 1 && !w->cma && w->rank == 0)
        fprintf(stderr, "numpush: NUMPUSH_CMA=1 but process_vm_readv is refused between ranks; "
                        "using shared cells\n");
    return err;
}

/* Whether single copy works inside this node, probed once on the world's
 * node-local part when the world spans nodes (-1: not yet). */
static int comm_node_cma = -1;

np_err npi_comm_create_sub(uint64_t id, int n, int me, const int *world_of, np_comm **out)
{
    np_err err = comm_create(id, n, me, world_of, comm_node_cma == 1, out);
    if (err != NP_OK)
        return err;
    np_comm *c = *out;
    /* Out of the registry: the parent owns it. */
    for (np_comm **pp = &comm_list; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    c->next = NULL;
    if (comm_node_cma < 0) {
        /* The first one is the world's node-local part, made while the
         * world is being created; the probe's collectives check that
         * numpush is up, so let this communicator stand in until then. */
        np_comm *world = comm_world;
        if (!comm_world)
            comm_world = c;
        err = comm_probe_cma(c);
        comm_world = world;
        comm_node_cma = c->cma;
        if (err != NP_OK) {
            npi_comm_destroy_sub(c);
            *out = NULL;
        }
    }
    return err;
}

void npi_comm_destroy_sub(np_comm *c)
{
    comm_destroy(c);
}

np_err npi_comm_world_create(void)
{
    npi_boot *b = npi_boot_self();
    /* Only a job that spans nodes opens the fabric (every rank takes part,
     * so any two ranks can talk); on one node no socket is opened. */
    if (b->node_count > 1) {
        np_err ferr = npi_hier_open(b);
        if (ferr != NP_OK)
            return ferr;
    }
    /* Let any process of this user read our memory with process_vm_readv
     * even under Yama's ptrace_scope=1 (siblings are not descendants). */
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    int *ids = malloc((size_t)b->size * sizeof *ids);
    if (!ids)
        return npi_error(NP_ERR_NOMEM, "np_init: out of memory");
    for (int q = 0; q < b->size; q++)
        ids[q] = q;
    np_comm *w = NULL;
    np_err err = comm_create(0, b->size, b->rank, ids, false, &w);
    free(ids);
    if (err != NP_OK)
        return err;
    comm_world = w;
    if (w->has_shm && (err = comm_probe_cma(w)) != NP_OK) {
        comm_destroy(w);
        comm_world = NULL;
        return err;
    }
    /* The probe's barrier made every rank's binding visible.  Two ranks
     * have no use for a hierarchy, and loading one costs milliseconds. */
    if (w->has_shm && w->size >= 3) {
        int *cpu = malloc((size_t)w->size * sizeof *cpu);
        comm_world_group = malloc((size_t)w->size * sizeof *comm_world_group);
        if (cpu && comm_world_group) {
            const char *level;
            for (int q = 0; q < w->size; q++)
                cpu[q] = w->shm.ctl[q].cpu;
            w->ngroups = npi_topo_groups(w->size, cpu, comm_world_group, &level);
            memcpy(w->group, comm_world_group, (size_t)w->size * sizeof *w->group);
            const char *dbg = npi_config_get("NUMPUSH_DEBUG", NULL);
            if (dbg && atoi(dbg) > 0 && w->rank == 0)
                fprintf(stderr, "numpush: %d ranks in %d %s group(s)\n", w->size, w->ngroups,
                        level);
        }
        free(cpu);
    }
    return NP_OK;
}

void npi_comm_release_all(void)
{
    while (comm_list) {
        np_comm *c = comm_list;
        comm_destroy(c);
    }
    comm_world = NULL;
    free(comm_world_group);
    comm_world_group = NULL;
    comm_node_cma = -1;
    npi_hier_close();
}

static uint64_t comm_mix(uint64_t x)
{
    /* splitmix64's finaliser: spreads every input bit over the output. */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

typedef struct comm_member {
    int32_t color, key;
} comm_member;

np_err np_comm_split(np_comm *comm, int color, int key, np_comm **out)
{
    static const char who[] = "np_comm_split";
    np_err err = npi_comm_check(comm, who);
    if (err != NP_OK)
        return err;
    if (out == NULL)
        return npi_error(NP_ERR_NULL, "%s: out is NULL", who);
    *out = NULL;
    if (color < 0 && color != NP_UNDEFINED)
        return npi_error(NP_ERR_ARG, "%s: color %d is negative (only NP_UNDEFINED may be)", who,
                         color);
    int n = comm->size;
    comm_member mine = {color, key};
    comm_member *all = malloc((size_t)n * sizeof *all);
    int *world_of = malloc((size_t)n * sizeof *world_of);
    if (!all || !world_of) {
        free(all);
        free(world_of);
        return npi_error(NP_ERR_NOMEM, "%s: out of memory", who);
    }
    err = npi_coll_allgather_bytes(&mine, all, sizeof mine, comm, who);
    uint64_t serial = comm->nsplit++;
    if (err != NP_OK || color == NP_UNDEFINED)
        goto done;
    /* Members in (key, rank in comm) order; insertion sort keeps it simple
     * and stable, and communicators are small. */
    int m = 0, me = -1;
    int *order = malloc((size_t)n * sizeof *order);
    if (!order) {
        err = npi_error(NP_ERR_NOMEM, "%s: out of memory", who);
        goto done;
    }
    for (int q = 0; q < n; q++) {
        if (all[q].color != color)
            continue;
        int i = m++;
        while (i > 0 && all[order[i - 1]].key > all[q].key) {
            order[i] = order[i - 1];
            i--;
        }
        order[i] = q;
    }
    for (int i = 0; i < m; i++) {
        world_of[i] = comm->world_of[order[i]];
        if (order[i] == comm->rank)
            me = i;
    }
    free(order);
    uint64_t id = comm_mix(comm_mix(comm->id ^ comm_mix(serial)) ^ (uint64_t)(uint32_t)color);
    if (id == 0)
        id = 1;
    err = comm_create(id, m, me, world_of, comm->cma, out);
done:
    free(all);
    free(world_of);
    return err;
}

np_err np_comm_split_type(np_comm *comm, int type, int key, np_comm **out)
{
    static const char who[] = "np_comm_split_type";
    np_err err = npi_comm_check(comm, who);
    if (err != NP_OK)
        return err;
    if (type != NP_COMM_TYPE_NODE)
        return npi_error(NP_ERR_ARG, "%s: unknown split type %d", who, type);
    npi_boot *b = npi_boot_self();
    return np_comm_split(comm, b->node_of_rank[b->rank], key, out);
}

np_err np_comm_dup(np_comm *comm, np_comm **out)
{
    np_err err = npi_comm_check(comm, "np_comm_dup");
    if (err != NP_OK)
        return err;
    return np_comm_split(comm, 0, comm->rank, out);
}

np_err np_comm_free(np_comm **comm)
{
    static const char who[] = "np_comm_free";
    if (comm == NULL)
        return npi_error(NP_ERR_NULL, "%s: comm is NULL", who);
    np_err err = npi_comm_check(*comm, who);
    if (err != NP_OK)
        return err;
    if (*comm == comm_world)
        return npi_error(NP_ERR_COMM, "%s: the world communicator cannot be freed", who);
    /* Collective, so no peer is still reading this rank's areas; the
     * communicator goes away even if a peer died. */
    err = (*comm)->has_shm || (*comm)->hier ? np_barrier(*comm) : NP_OK;
    comm_destroy(*comm);
    *comm = NULL;
    return err;
}
