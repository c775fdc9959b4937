/*
 * Hierarchical collectives: a communicator whose ranks span nodes runs
 * every collective as (1) a shared-memory collective inside each node over
 * its node-local sub-communicator, (2) an algorithm of net_*.c among one
 * leader per node over the fabric, (3) a shared-memory collective inside
 * each node again.  Only the leaders touch the network, so a node's link
 * carries each byte once however many ranks the node has.
 *
 * The leader of a node is its lowest rank, except on the root's node of a
 * rooted collective, where the root itself leads (no extra hop inside the
 * root's node).  Nodes are numbered by their lowest rank.
 *
 * When a leader's part between nodes fails, its node's ranks learn it from
 * a status word that every collective hands from the leader to its node
 * once the part between nodes is over: it travels with the final node-local
 * broadcast (barrier, bcast, allreduce, allgather; small scatters and
 * alltoalls, whose final node-local scatter becomes a broadcast of the
 * node's blocks with the word in front), or as a broadcast of its own,
 * eight bytes in one eager round, before the final node-local scatter
 * (large scatter, scatterv, alltoall) or after the leader's part (gather,
 * gatherv, reduce).  That extra round costs about a microsecond and makes
 * a non-leader of a gather or reduce wait for its leader's part between
 * nodes, which it used to skip; it is the price of a rank never returning
 * NP_OK from a call its node's leader saw fail.  Ranks with only one rank
 * on their node skip it.
 *
 * A rank whose own arguments are wrong (NULL buffer, root out of range)
 * does not just return: it sends the other nodes' leaders an alarm naming
 * its error and publishes a failing signature in its node's shared memory
 * (hier_bad_args), so that the ranks waiting for it fail at once with
 * NP_ERR_MISMATCH instead of NP_ERR_PEER after NUMPUSH_TIMEOUT.
 */
#include "hier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coll.h"
#include "net.h"
#include "shm/shm.h"

struct npi_hier {
    np_comm *node; /* this rank's node-local sub-communicator (shared memory) */
    int nnodes, mynode;
    int *node_of;  /* comm rank -> node index */
    int *lrank_of; /* comm rank -> rank in its node's sub-communicator */
    int *nsize;    /* node -> ranks on it */
    int *nfirst;   /* node -> offset of its ranks in members */
    int *members;  /* comm ranks grouped by node, ascending within each */
    int *peer;     /* node -> fabric rank of this call's leader */
    bool contig;   /* members[i] == i: each node's ranks are consecutive */
    uint64_t cid;  /* fabric comm id of collective traffic */
    /* The alarm receives of the last two calls (leaders), by parity of the
     * call's sequence number, and where their reasons land: the previous
     * call's stays posted through the next one, which reports an alarm
     * that came after this rank had left that call. */
    npi_fab_req *alarm[2];
    int32_t why[2];
    void *scr[3]; /* scratch buffers, grown on demand */
    size_t scr_cap[3];
};

static npi_fab *hier_fab;
/* Chunk of the pipelined broadcast (NUMPUSH_HIER_CHUNK). */
static size_t hier_chunk = (size_t)4 << 20;
/* Node-local payloads up to this size travel in one broadcast with their
 * leader's status word. */
#define HIER_PACK 4096

/* ---------------------------------------------------------------- lifetime */

np_err npi_hier_open(npi_boot *b)
{
    long chunk = 0;
    if (npi_config_long("NUMPUSH_HIER_CHUNK", &chunk) == NP_OK && chunk >= 4096)
        hier_chunk = (size_t)chunk;
    if (hier_fab)
        return NP_OK;
    return npi_fab_open(b, NULL, true, &hier_fab);
}

void npi_hier_close(void)
{
    if (hier_fab)
        npi_fab_close(&hier_fab, 1000);
}

static uint64_t hier_mix(uint64_t x)
{
    /* splitmix64's finaliser, so ids of different nodes never collide. */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void npi_hier_destroy(np_comm *comm)
{
    npi_hier *h = comm->hier;
    if (!h)
        return;
    if (h->node)
        npi_comm_destroy_sub(h->node);
    free(h->node_of);
    free(h->lrank_of);
    free(h->nsize);
    free(h->nfirst);
    free(h->members);
    free(h->peer);
    for (int i = 0; i < 3; i++)
        free(h->scr[i]);
    for (int i = 0; i < 2; i++)
        if (h->alarm[i] && hier_fab)
            npi_fab_cancel(hier_fab, &h->alarm[i]);
    free(h);
    comm->hier = NULL;
}

np_err npi_hier_create(np_comm *comm)
{
    npi_boot *b = npi_boot_self();
    int n = comm->size;
    if (!hier_fab)
        return npi_error(NP_ERR_NOT_IMPLEMENTED,
                         "communicator: ranks span nodes but the fabric is not open");
    npi_hier *h = calloc(1, sizeof *h);
    if (!h)
        return npi_error(NP_ERR_NOMEM, "communicator: out of memory");
    comm->hier = h;
    h->node_of = malloc((size_t)n * sizeof(int));
    h->lrank_of = malloc((size_t)n * sizeof(int));
    h->nsize = calloc((size_t)n, sizeof(int));
    h->nfirst = calloc((size_t)n, sizeof(int));
    h->members = malloc((size_t)n * sizeof(int));
    h->peer = malloc((size_t)n * sizeof(int));
    int *bootnode = malloc((size_t)n * sizeof(int));
    if (!h->node_of || !h->lrank_of || !h->nsize || !h->nfirst || !h->members || !h->peer ||
        !bootnode) {
        free(bootnode);
        npi_hier_destroy(comm);
        return npi_error(NP_ERR_NOMEM, "communicator: out of memory");
    }
    /* Nodes in order of their lowest rank in comm. */
    h->nnodes = 0;
    for (int q = 0; q < n; q++) {
        int bn = b->node_of_rank[comm->world_of[q]], k = 0;
        while (k < h->nnodes && bootnode[k] != bn)
            k++;
        if (k == h->nnodes)
            bootnode[h->nnodes++] = bn;
        h->node_of[q] = k;
        h->lrank_of[q] = h->nsize[k]++;
    }
    for (int k = 1; k < h->nnodes; k++)
        h->nfirst[k] = h->nfirst[k - 1] + h->nsize[k - 1];
    h->contig = true;
    for (int q = 0; q < n; q++) {
        int k = h->node_of[q];
        h->members[h->nfirst[k] + h->lrank_of[q]] = q;
        h->contig = h->contig && h->nfirst[k] + h->lrank_of[q] == q;
    }
    h->mynode = h->node_of[comm->rank];
    h->cid = hier_mix(comm->id ^ 0x68696572636f6c6cull);
    /* The node-local part: its ranks' world ranks, and an id that differs
     * per node, since namespaces that play hosts share /dev/shm. */
    int k = h->mynode, ln = h->nsize[k];
    int *wof = bootnode; /* reused: n >= ln */
    for (int i = 0; i < ln; i++)
        wof[i] = comm->world_of[h->members[h->nfirst[k] + i]];
    uint64_t id = hier_mix(comm->id ^ hier_mix(0x6e6f6465ull + (uint64_t)b->node_id));
    np_err err = npi_comm_create_sub(id ? id : 1, ln, h->lrank_of[comm->rank], wof, &h->node);
    free(bootnode);
    if (err != NP_OK) {
        h->node = NULL;
        npi_hier_destroy(comm);
    }
    return err;
}

/* Whether every node has as many ranks, each node's in consecutive
 * ranks: what the algorithms between nodes that need equal blocks ask. */
static bool hier_even(const npi_hier *h)
{
    if (!h->contig)
        return false;
    for (int k = 1; k < h->nnodes; k++)
        if (h->nsize[k] != h->nsize[0])
            return false;
    return true;
}

/* ---------------------------------------------------------------- one call */

typedef struct hier_call {
    np_comm *c;
    npi_hier *h;
    np_comm *L; /* the node's sub-communicator */
    int ln;     /* its size */
    int lroot;  /* local rank of this node's leader for this call */
    bool leader;
    uint64_t seq;
    npi_net g;
} hier_call;

static void hier_begin(hier_call *x, np_comm *c, npi_coll coll, np_dtype dt, size_t count, int root,
                       np_op op, const char *who)
{
    npi_hier *h = c->hier;
    uint64_t seq = ++c->seq;
    x->c = c;
    x->h = h;
    x->seq = seq;
    x->L = h->node;
    x->ln = h->nsize[h->mynode];
    for (int k = 0; k < h->nnodes; k++) {
        int lc = h->members[h->nfirst[k]];
        if (root >= 0 && h->node_of[root] == k)
            lc = root;
        h->peer[k] = c->world_of[lc];
        if (k == h->mynode) {
            x->lroot = h->lrank_of[lc];
            x->leader = lc == c->rank;
        }
    }
    x->g.fab = hier_fab;
    x->g.cid = h->cid;
    x->g.n = h->nnodes;
    x->g.me = h->mynode;
    x->g.peer = h->peer;
    x->g.tagbase = (int32_t)((seq & 0x7fffffu) << 8);
    x->g.sig.coll = coll;
    x->g.sig.dtype = dt;
    x->g.sig.count = count;
    x->g.sig.root = root;
    x->g.sig.op = op;
    x->g.who = who;
    /* Live peers are waited for (see net.c); dead ones the transport finds. */
    x->g.deadline = npi_shm_conf.wait_timeout_ns ? npi_now_ns() + npi_shm_conf.wait_timeout_ns : 0;
    x->g.alarm = NULL;
    /* Leaders listen for a mismatch alarm during the whole call; a call
     * with one node would never need it. */
    if (x->leader && h->nnodes > 1 &&
        npi_net_arm(&x->g, &h->alarm[seq & 1], &h->why[seq & 1]) != NP_OK)
        npi_error_clear();
}

/* A leader whose node-local part failed with a disagreement tells the
 * other leaders, who would otherwise wait for it until the timeout. */
static np_err hier_local_failed(hier_call *x, np_err err)
{
    if (x->leader && err == NP_ERR_MISMATCH) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", np_last_error());
        npi_net_alarm(&x->g, NP_ERR_MISMATCH);
        npi_error(err, "%s", msg);
    }
    return err;
}

/* The end of a call whose node-local step failed on this rank.  The
 * status round after it follows each rank's own arguments (its size is
 * the caller's count), so it can disagree in turn and, where this rank
 * ran ahead of it, be reported late by the node's next call.  That
 * mismatch belongs to this call, which returns its failure already: mark
 * it told, as coll.c does for a mismatch a call reports itself. */
void npi_hier_break_node(np_comm *comm)
{
    np_comm *node = comm->hier->node;
    if (node && node->has_shm && node->shm.hdr)
        atomic_store(&node->shm.hdr->broken, 1);
}

static np_err hier_failed_end(hier_call *x, np_err err, np_err f)
{
    if (x->L->ahead)
        x->L->ahead_told = true;
    return err != NP_OK ? err : f;
}

static void *hier_scratch(npi_hier *h, int i, size_t bytes)
{
    if (bytes == 0)
        bytes = 1;
    if (h->scr_cap[i] >= bytes)
        return h->scr[i];
    void *p = NULL;
    if (posix_memalign(&p, 4096, bytes) != 0)
        return NULL;
    free(h->scr[i]);
    h->scr[i] = p;
    h->scr_cap[i] = bytes;
    return p;
}

#define HIER_SCRATCH(var, x, i, bytes)                                                             \
    do {                                                                                           \
        if (!((var) = hier_scratch((x)->h, (i), (bytes))))                                         \
            return npi_error(NP_ERR_NOMEM, "%s: out of memory (%zu bytes)", (x)->g.who,            \
                             (size_t)(bytes));                                                     \
    } while (0)

static np_err hier_remote(hier_call *x, int32_t e)
{
    return npi_error((np_err)e, "%s: this node's leader failed between nodes (%s)", x->g.who,
                     np_errname((np_err)e));
}

/* The leader hands buf (bytes) and its status err to the node's other
 * ranks; every rank returns the status (or a local failure). */
static np_err hier_fanout(hier_call *x, void *buf, size_t bytes, np_err err)
{
    /* A leader that left the previous call before another rank's alarm
     * about it came (a rooted call's leaves need nothing back) reports it
     * now, with its node, as the ranks of a node report a mismatch found
     * after they ran ahead (coll.c). */
    if (x->leader && err == NP_OK && x->h->nnodes > 1) {
        int p = (int)((x->seq - 1) & 1);
        err = npi_net_alarm_late(&x->g, &x->h->alarm[p], x->h->why[p]);
    }
    if (x->ln == 1)
        return err;
    int32_t e = (int32_t)err;
    np_err le;
    if (bytes <= HIER_PACK) {
        char pk[8 + HIER_PACK];
        if (x->leader) {
            memcpy(pk, &e, 4);
            if (err == NP_OK && bytes)
                memcpy(pk + 8, buf, bytes);
        }
        if ((le = np_bcast(pk, 8 + bytes, NP_BYTE, x->lroot, x->L)) != NP_OK)
            return x->leader && err != NP_OK ? err : le;
        if (x->leader)
            return err;
        memcpy(&e, pk, 4);
        if (e != NP_OK)
            return hier_remote(x, e);
        if (bytes)
            memcpy(buf, pk + 8, bytes);
        return NP_OK;
    }
    if ((le = np_bcast(&e, 4, NP_BYTE, x->lroot, x->L)) != NP_OK)
        return x->leader && err != NP_OK ? err : le;
    if (e != NP_OK)
        return x->leader ? err : hier_remote(x, e);
    return np_bcast(buf, bytes, NP_BYTE, x->lroot, x->L);
}

/* The node's status after the leader's part: every rank of the node
 * returns err of its leader (eight bytes in one node-local eager round). */
static np_err hier_status(hier_call *x, np_err err)
{
    return hier_fanout(x, NULL, 0, err);
}

/* The last node-local step of scatter and alltoall: rank i of the node
 * gets block i (b bytes) of the leader's src, and the leader's status.
 * When the node's blocks are small they ride with the status word in one
 * broadcast (no extra round); otherwise the status goes first and the
 * scatter only if it is NP_OK. */
static np_err hier_deliver(hier_call *x, const char *src, void *recvbuf, size_t count, np_dtype dt,
                           size_t b, np_err err)
{
    if (x->ln == 1)
        return err;
    size_t all = (size_t)x->ln * b;
    np_err e;
    if (all <= HIER_PACK) {
        char tmp[HIER_PACK];
        char *buf = x->leader ? (char *)src : tmp;
        if ((e = hier_fanout(x, buf, all, err)) != NP_OK)
            return e;
        if (recvbuf != NP_IN_PLACE && b > 0)
            npi_copy(recvbuf, buf + (size_t)np_comm_rank(x->L) * b, b);
        return NP_OK;
    }
    if ((e = hier_status(x, err)) != NP_OK)
        return e;
    return np_scatter(x->leader ? src : NULL, recvbuf, count, dt, x->lroot, x->L);
}

/* What a rank whose own arguments failed their check (bad, with its
 * message recorded) does instead of returning at once: it alarms the
 * other nodes' leaders, which would otherwise wait for its node until
 * NUMPUSH_TIMEOUT, and publishes a failing signature in its node's shared
 * memory, where its node's ranks wait for it.  pre is the number of
 * node-local steps the collective has before the part between nodes (0
 * for bcast and scatter, 2 for gatherv, 1 for the others): the rank stands
 * in for each of them with a failing signature and then takes part in the
 * node's status round, as its node's other ranks do on the failure path.
 * Returns bad with its message. */
static np_err hier_bad_args(np_comm *comm, npi_coll coll, np_dtype dt, size_t count, int root,
                            np_op op, const char *who, np_err bad, int pre)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", np_last_error());
    bool rooted = npi_coll_has_root(coll), root_ok = root >= 0 && root < comm->size;
    hier_call x;
    hier_begin(&x, comm, coll, dt, count, rooted && root_ok ? root : -1, op, who);
    x.g.sig.root = root;
    /* Every rank of the other nodes hears it: with a root this rank cannot
     * trust, it cannot tell which rank leads the root's node.  The ranks
     * that do not lead this call keep the alarm as an unexpected message,
     * a few bytes per failed call. */
    int *all = x.g.n > 1 ? malloc((size_t)comm->size * sizeof(int)) : NULL;
    if (all) {
        npi_net g = x.g;
        g.n = 0;
        g.me = -1;
        for (int q = 0; q < comm->size; q++)
            if (x.h->node_of[q] != x.h->mynode)
                all[g.n++] = comm->world_of[q];
        g.peer = all;
        npi_net_alarm(&g, bad);
        free(all);
    }
    if (x.ln > 1) {
        npi_coll_sig sig = x.g.sig;
        for (int i = 0; i < (pre > 0 || x.leader ? pre : 1); i++)
            npi_coll_fail(x.L, &sig, bad, who);
        if (x.leader || pre > 0)
            hier_status(&x, bad);
    }
    return npi_error(bad, "%s", msg);
}

/* ---------------------------------------------------------------- barrier */

/*
 * Barrier: node-local barrier, dissemination among the leaders, then the
 * leaders release their nodes with a status word.
 */
np_err npi_hier_barrier(np_comm *comm)
{
    hier_call x;
    hier_begin(&x, comm, NPI_COLL_BARRIER, NP_BYTE, 0, -1, NP_OP_NULL, "np_barrier");
    np_err err = x.ln > 1 ? np_barrier(x.L) : NP_OK;
    if (err != NP_OK)
        return hier_local_failed(&x, err);
    if (x.leader)
        err = npi_net_barrier_dissemination(&x.g);
    return hier_fanout(&x, NULL, 0, err);
}

/* ---------------------------------------------------------------- bcast */

typedef struct hier_bc {
    hier_call *x;
    char *buf;
    size_t done;
} hier_bc;

static np_err hier_bcast_chunk(void *arg, size_t off, size_t len)
{
    hier_bc *a = arg;
    a->done = off + len;
    return np_bcast(a->buf + off, len, NP_BYTE, a->x->lroot, a->x->L);
}

/*
 * Broadcast: leaders first (binomial tree for small messages; pipelined
 * chain for large ones, or scatter-allgather with NUMPUSH_HIER_BCAST=sag),
 * then each node from its leader.  For large messages on nodes with
 * several ranks the two phases overlap: each chunk is broadcast inside the
 * node while the next one crosses the network.
 */
np_err npi_hier_bcast(void *buf, size_t count, np_dtype dt, int root, np_comm *comm)
{
    static const char who[] = "np_bcast";
    size_t bytes;
    np_err err = npi_coll_check_dtype(dt, count, 1, who, &bytes);
    if (err == NP_OK)
        err = npi_coll_check_root(root, comm->size, who);
    if (err == NP_OK)
        err = npi_coll_check_buf(buf, count, who, "buf");
    if (err != NP_OK)
        return hier_bad_args(comm, NPI_COLL_BCAST, dt, count, root, NP_OP_NULL, who, err, 0);
    hier_call x;
    hier_begin(&x, comm, NPI_COLL_BCAST, dt, count, root, NP_OP_NULL, who);
    int nroot = x.h->node_of[root];
    bool chunks = x.ln > 1 && bytes > 2 * hier_chunk;
    if (!chunks) {
        if (x.leader) {
            npi_decide_net_in in = {NPI_COLL_BCAST, bytes, count, x.g.n, true, hier_even(x.h)};
            switch (npi_decide_net(&in)) {
            case NPI_NET_KNOMIAL:
                err = npi_net_bcast_knomial(&x.g, buf, bytes, nroot, npi_decide_knomial_k());
                break;
            case NPI_NET_SAG:
                err = npi_net_bcast_scatter_allgather(&x.g, buf, bytes, nroot);
                break;
            case NPI_NET_CHAIN:
                err = npi_net_bcast_chain(&x.g, buf, bytes, nroot, hier_chunk, NULL, NULL);
                break;
            default:
                err = npi_net_bcast_binomial(&x.g, buf, bytes, nroot);
                break;
            }
        }
        return hier_fanout(&x, buf, bytes, err);
    }
    char *b = buf;
    np_err le = NP_OK;
    size_t done = 0;
    if (x.leader) {
        hier_bc a = {&x, b, 0};
        err = npi_net_bcast_chain(&x.g, buf, bytes, nroot, hier_chunk, hier_bcast_chunk, &a);
        done = a.done;
    }
    /* Ranks that are not leaders (and a leader whose chain failed) take
     * the node-local chunks that remain. */
    for (size_t off = done; off < bytes && le == NP_OK; off += hier_chunk) {
        size_t len = bytes - off < hier_chunk ? bytes - off : hier_chunk;
        le = np_bcast(b + off, len, NP_BYTE, x.lroot, x.L);
    }
    if (le != NP_OK)
        return err != NP_OK ? err : le;
    int32_t e = (int32_t)err;
    if ((le = np_bcast(&e, 4, NP_BYTE, x.lroot, x.L)) != NP_OK)
        return err != NP_OK ? err : le;
    if (x.leader || e == NP_OK)
        return err;
    return hier_remote(&x, e);
}

/* ---------------------------------------------------------------- reductions */

/*
 * Allreduce: node-local reduce to the leader, allreduce among leaders
 * (recursive doubling for small vectors, ring for large ones), node-local
 * broadcast of the result.
 */
np_err npi_hier_allreduce(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, np_op op,
                          np_comm *comm)
{
    static const char who[] = "np_allreduce";
    size_t bytes;
    np_err err = npi_op_check(who, dt, op);
    if (err == NP_OK)
        err = npi_coll_check_dtype(dt, count, 1, who, &bytes);
    if (err == NP_OK && sendbuf != NP_IN_PLACE)
        err = npi_coll_check_buf(sendbuf, count, who, "sendbuf");
    if (err == NP_OK)
        err = npi_coll_check_buf(recvbuf, count, who, "recvbuf");
    if (err != NP_OK)
        return hier_bad_args(comm, NPI_COLL_ALLREDUCE, dt, count, -1, op, who, err, 1);
    hier_call x;
    hier_begin(&x, comm, NPI_COLL_ALLREDUCE, dt, count, -1, op, who);
    if (x.ln > 1) {
        const void *s = sendbuf == NP_IN_PLACE && !x.leader ? recvbuf : sendbuf;
        if ((err = np_reduce(s, recvbuf, count, dt, op, x.lroot, x.L)) != NP_OK) {
            /* Every rank still joins the final broadcast: a rank that ran
             * ahead of the reduce (an eager non-root) learns there why the
             * call failed. */
            hier_local_failed(&x, err);
            np_err f = hier_fanout(&x, recvbuf, bytes, x.leader ? err : NP_OK);
            return hier_failed_end(&x, err, f);
        }
    } else if (sendbuf != NP_IN_PLACE) {
        npi_copy(recvbuf, sendbuf, bytes);
    }
    if (x.leader && bytes > 0) {
        void *tmp;
        npi_decide_net_in in = {NPI_COLL_ALLREDUCE,     bytes,         count, x.g.n,
                                npi_op_commutative(op), hier_even(x.h)};
        npi_net_alg alg = npi_decide_net(&in);
        if (alg == NPI_NET_RING) {
            size_t es = np_dtype_size(dt);
            HIER_SCRATCH(tmp, &x, 0, (count / (size_t)x.g.n + 1) * es);
            err = npi_net_allreduce_ring(&x.g, recvbuf, tmp, count, dt, op);
        } else if (alg == NPI_NET_RABENSEIFNER) {
            HIER_SCRATCH(tmp, &x, 0, bytes);
            err = npi_net_allreduce_rabenseifner(&x.g, recvbuf, tmp, count, dt, op);
        } else {
            HIER_SCRATCH(tmp, &x, 0, bytes);
            err = npi_net_allreduce_recdbl(&x.g, recvbuf, tmp, count, dt, op);
        }
    }
    return hier_fanout(&x, recvbuf, bytes, err);
}

/*
 * Reduce: node-local reduce to each node's leader (the root on its node),
 * then a binomial reduction among the leaders to the root.
 */
np_err npi_hier_reduce(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, np_op op,
                       int root, np_comm *comm)
{
    static const char who[] = "np_reduce";
    size_t bytes;
    np_err err = npi_op_check(who, dt, op);
    if (err == NP_OK)
        err = npi_coll_check_dtype(dt, count, 1, who, &bytes);
    if (err == NP_OK)
        err = npi_coll_check_root(root, comm->size, who);
    bool is_root = comm->rank == root, in_place = is_root && sendbuf == NP_IN_PLACE;
    if (err == NP_OK && !in_place)
        err = npi_coll_check_buf(sendbuf, count, who, "sendbuf");
    if (err == NP_OK && is_root)
        err = npi_coll_check_buf(recvbuf, count, who, "recvbuf");
    if (err != NP_OK)
        return hier_bad_args(comm, NPI_COLL_REDUCE, dt, count, root, op, who, err, 1);
    hier_call x;
    hier_begin(&x, comm, NPI_COLL_REDUCE, dt, count, root, op, who);
    void *acc = recvbuf, *tmp;
    if (x.leader && !is_root)
        HIER_SCRATCH(acc, &x, 1, bytes);
    if (x.ln > 1) {
        if ((err = np_reduce(sendbuf, acc, count, dt, op, x.lroot, x.L)) != NP_OK) {
            hier_local_failed(&x, err);
            np_err f = hier_status(&x, x.leader ? err : NP_OK);
            return hier_failed_end(&x, err, f);
        }
        if (!x.leader)
            return hier_status(&x, NP_OK);
    } else if (!in_place) {
        npi_copy(acc, sendbuf, bytes);
    }
    if (bytes > 0) {
        if ((tmp = hier_scratch(x.h, 0, bytes)) == NULL)
            err = npi_error(NP_ERR_NOMEM, "%s: out of memory (%zu bytes)", who, bytes);
        else if (npi_decide_net(&(npi_decide_net_in){NPI_COLL_REDUCE, bytes, count, x.g.n,
                                                     npi_op_commutative(op), hier_even(x.h)}) ==
                 NPI_NET_KNOMIAL)
            err = npi_net_reduce_knomial(&x.g, acc, tmp, count, dt, op, x.h->node_of[root],
                                         npi_decide_knomial_k());
        else
            err = npi_net_reduce_binomial(&x.g, acc, tmp, count, dt, op, x.h->node_of[root]);
    }
    return hier_status(&x, err);
}

/* ---------------------------------------------------------------- gathers */

/* Offsets (bytes) of each node's block when every rank has b bytes. */
static void hier_node_blocks(hier_call *x, size_t b, size_t *off, size_t *len)
{
    for (int k = 0; k < x->h->nnodes; k++) {
        off[k] = (size_t)x->h->nfirst[k] * b;
        len[k] = (size_t)x->h->nsize[k] * b;
    }
}

/* Move blocks of b bytes from node order (src) to rank order (dst). */
static void hier_unpack(hier_call *x, char *dst, const char *src, size_t b)
{
    for (int i = 0; i < x->c->size; i++)
        npi_copy(dst + (size_t)x->h->members[i] * b, src + (size_t)i * b, b);
}

static void hier_pack(hier_call *x, char *dst, const char *src, size_t b)
{
    for (int i = 0; i < x->c->size; i++)
        npi_copy(dst + (size_t)i * b, src + (size_t)x->h->members[i] * b, b);
}

#define HIER_NODES_MAX 256

/* Binomial gathers and scatters between leaders need one block size for
 * every node and blocks in node order; they beat the linear ones (one
 * message per node at the root) once nodes are many and blocks small. */
static bool hier_binomial_ok(hier_call *x, size_t node_bytes)
{
    npi_decide_net_in in = {NPI_COLL_GATHER, node_bytes, 0, x->h->nnodes, true, hier_even(x->h)};
    return npi_decide_net(&in) == NPI_NET_BINOMIAL;
}

/*
 * Gather: node-local gather to each node's leader (the root on its node),
 * then the leaders' blocks to the root (linear: nodes are few).  When each
 * node's ranks are consecutive, blocks land straight in recvbuf.
 */
np_err npi_hier_gather(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, int root,
                       np_comm *comm)
{
    static const char who[] = "np_gather";
    size_t b;
    np_err err = npi_coll_check_dtype(dt, count, (size_t)comm->size, who, &b);
    if (err == NP_OK)
        err = npi_coll_check_root(root, comm->size, who);
    bool is_root = comm->rank == root, in_place = is_root && sendbuf == NP_IN_PLACE;
    if (err == NP_OK && !in_place)
        err = npi_coll_check_buf(sendbuf, count, who, "sendbuf");
    if (err == NP_OK && is_root)
        err = npi_coll_check_buf(recvbuf, count, who, "recvbuf");
    if (err != NP_OK)
        return hier_bad_args(comm, NPI_COLL_GATHER, dt, count, root, NP_OP_NULL, who, err, 1);
    /* Every rank sees the same node count: no need to tell the others. */
    if (comm->hier->nnodes > HIER_NODES_MAX)
        return npi_error(NP_ERR_NOT_IMPLEMENTED, "%s: more than %d nodes", who, HIER_NODES_MAX);
    hier_call x;
    hier_begin(&x, comm, NPI_COLL_GATHER, dt, count, root, NP_OP_NULL, who);
    npi_hier *h = x.h;
    int n = comm->size, k = h->mynode;
    size_t off[HIER_NODES_MAX], len[HIER_NODES_MAX];
    hier_node_blocks(&x, b, off, len);
    /* Where this node's block is assembled, in local-rank order. */
    char *all = NULL, *blk = NULL;
    if (is_root) {
        if (h->contig) {
            all = recvbuf;
        } else {
            HIER_SCRATCH(all, &x, 1, (size_t)n * b);
            if (in_place)
                npi_copy(all + off[k] + (size_t)x.lroot * b, (char *)recvbuf + (size_t)root * b, b);
        }
        blk = all + off[k];
    } else if (x.leader && x.ln > 1) {
        HIER_SCRATCH(blk, &x, 1, len[k]);
    }
    const void *mine = in_place ? (const void *)((char *)recvbuf + (size_t)root * b) : sendbuf;
    if (x.ln > 1) {
        const void *s = in_place && h->contig ? NP_IN_PLACE : mine;
        if ((err = np_gather(s, blk, count, dt, x.lroot, x.L)) != NP_OK) {
            hier_local_failed(&x, err);
            np_err f = hier_status(&x, x.leader ? err : NP_OK);
            return hier_failed_end(&x, err, f);
        }
        if (!x.leader)
            return hier_status(&x, NP_OK);
    } else if (is_root && !(in_place && h->contig)) {
        npi_copy(blk, mine, b);
    } else if (!is_root) {
        blk = (char *)sendbuf;
    }
    if (hier_binomial_ok(&x, len[k])) {
        char *tmp;
        HIER_SCRATCH(tmp, &x, 0, (size_t)h->nnodes * len[k]);
        err = npi_net_gather_binomial(&x.g, h->node_of[root], blk, all, tmp, len[k]);
    } else {
        err = npi_net_gatherv_linear(&x.g, h->node_of[root], blk, len[k], all, off, len);
    }
    if (err == NP_OK && is_root && !h->contig)
        hier_unpack(&x, recvbuf, all, b);
    return hier_status(&x, err);
}

/*
 * Gatherv: node-local gather of the counts and gatherv of the data to each
 * leader, then each node's concatenation to the root, which cuts it at
 * the counts it was given and places each rank's part at its displacement.
 */
np_err npi_hier_gatherv(const void *sendbuf, size_t sendcount, void *recvbuf, const size_t *counts,
                        const size_t *displs, np_dtype dt, int root, np_comm *comm)
{
    static const char who[] = "np_gatherv";
    size_t sb;
    np_err err = npi_coll_check_dtype(dt, sendcount, 1, who, &sb);
    if (err == NP_OK)
        err = npi_coll_check_root(root, comm->size, who);
    bool is_root = comm->rank == root, in_place = is_root && sendbuf == NP_IN_PLACE;
    if (err == NP_OK && !in_place)
        err = npi_coll_check_buf(sendbuf, sendcount, who, "sendbuf");
    if (err == NP_OK && is_root && (!counts || !displs))
        err = npi_error(NP_ERR_NULL, "%s: counts or displs is NULL at the root", who);
    if (err != NP_OK)
        return hier_bad_args(comm, NPI_COLL_GATHERV, dt, sendcount, root, NP_OP_NULL, who, err, 2);
    /* Every rank sees the same node count: no need to tell the others. */
    if (comm->hier->nnodes > HIER_NODES_MAX)
        return npi_error(NP_ERR_NOT_IMPLEMENTED, "%s: more than %d nodes", who, HIER_NODES_MAX);
    hier_call x;
    hier_begin(&x, comm, NPI_COLL_GATHERV, dt, sendcount, root, NP_OP_NULL, who);
    npi_hier *h = x.h;
    size_t es = np_dtype_size(dt);
    int k = h->mynode, nroot = h->node_of[root];
    size_t *lc = NULL, *ld = NULL;
    char *blk = (char *)sendbuf;
    size_t blen = sb;
    if (x.ln > 1) {
        /* Leaders learn their ranks' counts; the root knows them all. */
        uint64_t mine = sendcount;
        size_t *tmpc;
        HIER_SCRATCH(tmpc, &x, 2, 2 * (size_t)x.ln * sizeof(size_t));
        lc = tmpc;
        ld = tmpc + x.ln;
        if ((err = np_gather(&mine, lc, 1, NP_UINT64, x.lroot, x.L)) != NP_OK) {
            /* The leader stands in for the gatherv its ranks go on to, so
             * that they fail there and then hear why. */
            if (x.leader) {
                hier_local_failed(&x, err);
                npi_coll_sig sig = {NPI_COLL_GATHERV, dt, sendcount, x.lroot, NP_OP_NULL};
                npi_coll_fail(x.L, &sig, err, who);
            }
            np_err f = hier_status(&x, x.leader ? err : NP_OK);
            return hier_failed_end(&x, err, f);
        }
        if (x.leader && k == nroot) {
            for (int i = 0; i < x.ln; i++)
                ld[i] = displs[h->members[h->nfirst[k] + i]];
            err = np_gatherv(sendbuf, sendcount, recvbuf, lc, ld, dt, x.lroot, x.L);
        } else if (x.leader) {
            size_t tot = 0;
            for (int i = 0; i < x.ln; i++) {
                ld[i] = tot;
                tot += lc[i];
            }
            HIER_SCRATCH(blk, &x, 1, tot * es);
            blen = tot * es;
            err = np_gatherv(sendbuf, sendcount, blk, lc, ld, dt, x.lroot, x.L);
        } else {
            err = np_gatherv(sendbuf, sendcount, NULL, NULL, NULL, dt, x.lroot, x.L);
        }
        if (err != NP_OK || !x.leader) {
            hier_local_failed(&x, err);
            np_err f = hier_status(&x, x.leader ? err : NP_OK);
            return hier_failed_end(&x, err, f);
        }
    } else if (is_root && !in_place && sb) {
        npi_copy((char *)recvbuf + displs[root] * es, sendbuf, sb);
    }
    if (!is_root) {
        npi_fab_req *r = NULL;
        err = npi_net_isend(&x.g, nroot, 10, blk, blen, &r);
        if (err == NP_OK)
            err = npi_net_wait(&x.g, &r);
        return hier_status(&x, err);
    }
    /* The root: each other node's concatenation into scratch, then cut. */
    size_t off[HIER_NODES_MAX], len[HIER_NODES_MAX], tot = 0;
    for (int j = 0; j < h->nnodes; j++) {
        off[j] = tot;
        len[j] = 0;
        if (j == nroot)
            continue;
        for (int i = 0; i < h->nsize[j]; i++)
            len[j] += counts[h->members[h->nfirst[j] + i]] * es;
        tot += len[j];
    }
    char *all;
    HIER_SCRATCH(all, &x, 0, tot);
    err = npi_net_gatherv_linear(&x.g, nroot, NULL, 0, all, off, len);
    for (int j = 0; j < h->nnodes && err == NP_OK; j++) {
        if (j == nroot)
            continue;
        size_t o = off[j];
        for (int i = 0; i < h->nsize[j]; i++) {
            int q = h->members[h->nfirst[j] + i];
            npi_copy((char *)recvbuf + displs[q] * es, all + o, counts[q] * es);
            o += counts[q] * es;
        }
    }
    return hier_status(&x, err);
}

/*
 * Allgather: node-local gather to the leader, ring allgather of the nodes'
 * blocks among leaders, node-local broadcast of the whole result.
 */
np_err npi_hier_allgather(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt,
                          np_comm *comm)
{
    static const char who[] = "np_allgather";
    size_t b;
    np_err err = npi_coll_check_dtype(dt, count, (size_t)comm->size, who, &b);
    bool in_place = sendbuf == NP_IN_PLACE;
    if (err == NP_OK && !in_place)
        err = npi_coll_check_buf(sendbuf, count, who, "sendbuf");
    if (err == NP_OK)
        err = npi_coll_check_buf(recvbuf, count, who, "recvbuf");
    if (err != NP_OK)
        return hier_bad_args(comm, NPI_COLL_ALLGATHER, dt, count, -1, NP_OP_NULL, who, err, 1);
    /* Every rank sees the same node count: no need to tell the others. */
    if (comm->hier->nnodes > HIER_NODES_MAX)
        return npi_error(NP_ERR_NOT_IMPLEMENTED, "%s: more than %d nodes", who, HIER_NODES_MAX);
    hier_call x;
    hier_begin(&x, comm, NPI_COLL_ALLGATHER, dt, count, -1, NP_OP_NULL, who);
    npi_hier *h = x.h;
    int n = comm->size, k = h->mynode, me = comm->rank;
    size_t off[HIER_NODES_MAX], len[HIER_NODES_MAX];
    hier_node_blocks(&x, b, off, len);
    char *all = recvbuf;
    if (!h->contig && x.leader)
        HIER_SCRATCH(all, &x, 1, (size_t)n * b);
    const char *mine = in_place ? (char *)recvbuf + (size_t)me * b : sendbuf;
    if (x.ln > 1) {
        const void *s = in_place && h->contig && x.leader ? NP_IN_PLACE : (const void *)mine;
        err = np_gather(s, x.leader ? all + off[k] : NULL, count, dt, x.lroot, x.L);
        if (err != NP_OK) {
            hier_local_failed(&x, err);
            np_err f = hier_fanout(&x, recvbuf, (size_t)n * b, x.leader ? err : NP_OK);
            return hier_failed_end(&x, err, f);
        }
    } else if (!(in_place && h->contig)) {
        npi_copy(all + off[k], mine, b);
    }
    if (x.leader && b > 0) {
        err = npi_net_allgatherv_ring(&x.g, all, off, len);
        if (err == NP_OK && !h->contig)
            hier_unpack(&x, recvbuf, all, b);
    }
    return hier_fanout(&x, recvbuf, (size_t)n * b, err);
}

/* ---------------------------------------------------------------- scatters */

/*
 * Scatter: the root sends each other node's blocks to its leader (linear:
 * nodes are few), then each node scatters from its leader.
 */
np_err npi_hier_scatter(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt, int root,
                        np_comm *comm)
{
    static const char who[] = "np_scatter";
    size_t b;
    np_err err = npi_coll_check_dtype(dt, count, (size_t)comm->size, who, &b);
    if (err == NP_OK)
        err = npi_coll_check_root(root, comm->size, who);
    bool is_root = comm->rank == root, in_place = is_root && recvbuf == NP_IN_PLACE;
    if (err == NP_OK && is_root)
        err = npi_coll_check_buf(sendbuf, count, who, "sendbuf");
    if (err == NP_OK && !in_place)
        err = npi_coll_check_buf(recvbuf, count, who, "recvbuf");
    if (err != NP_OK)
        return hier_bad_args(comm, NPI_COLL_SCATTER, dt, count, root, NP_OP_NULL, who, err, 0);
    /* Every rank sees the same node count: no need to tell the others. */
    if (comm->hier->nnodes > HIER_NODES_MAX)
        return npi_error(NP_ERR_NOT_IMPLEMENTED, "%s: more than %d nodes", who, HIER_NODES_MAX);
    hier_call x;
    hier_begin(&x, comm, NPI_COLL_SCATTER, dt, count, root, NP_OP_NULL, who);
    npi_hier *h = x.h;
    int n = comm->size, k = h->mynode;
    size_t off[HIER_NODES_MAX], len[HIER_NODES_MAX];
    hier_node_blocks(&x, b, off, len);
    const char *all = sendbuf;
    char *blk = recvbuf;
    if (is_root && !h->contig) {
        char *p;
        HIER_SCRATCH(p, &x, 1, (size_t)n * b);
        hier_pack(&x, p, sendbuf, b);
        all = p;
    }
    if (x.leader && !is_root && x.ln > 1)
        HIER_SCRATCH(blk, &x, 1, len[k]);
    void *rb = in_place ? (void *)NP_IN_PLACE : recvbuf;
    bool binomial = hier_binomial_ok(&x, len[k]);
    /* Only the root's node with large blocks scatters before its status
     * round, so that the node's scatter overlaps the root's sends; every
     * other node hears its leader's status first (see hier_deliver). */
    bool overlap = k == h->node_of[root] && !binomial && (size_t)x.ln * b > HIER_PACK;
    if (!x.leader) {
        if (!overlap)
            return hier_deliver(&x, NULL, recvbuf, count, dt, b, NP_OK);
        np_err le = np_scatter(NULL, recvbuf, count, dt, x.lroot, x.L);
        np_err f = hier_status(&x, NP_OK);
        return le != NP_OK ? le : f;
    }
    if (binomial) {
        char *tmp, *mine = is_root && x.ln == 1 ? (in_place ? NULL : recvbuf) : blk;
        HIER_SCRATCH(tmp, &x, 0, (size_t)h->nnodes * len[k]);
        if (is_root && (x.ln > 1 || in_place))
            HIER_SCRATCH(mine, &x, 2, len[k]);
        err = npi_net_scatter_binomial(&x.g, h->node_of[root], all, mine, tmp, len[k]);
        return hier_deliver(&x, is_root ? all + off[k] : mine, rb, count, dt, b, err);
    }
    /* The root's sends go out before its node's scatter, which they then
     * overlap when blocks are large. */
    npi_fab_req **rr = NULL;
    if (is_root) {
        rr = calloc((size_t)h->nnodes, sizeof *rr);
        if (!rr)
            err = npi_error(NP_ERR_NOMEM, "%s: out of memory", who);
        for (int j = 0; j < h->nnodes && err == NP_OK; j++)
            if (j != k)
                err = npi_net_isend(&x.g, j, 11, all + off[j], len[j], &rr[j]);
    } else {
        npi_fab_req *r = NULL;
        err = npi_net_irecv(&x.g, h->node_of[root], 11, blk, len[k], &r);
        if (err == NP_OK)
            err = npi_net_wait(&x.g, &r);
    }
    const char *src = is_root ? all + off[k] : blk;
    np_err le = NP_OK;
    if (overlap)
        le = np_scatter(src, rb, count, dt, x.lroot, x.L);
    else if (x.ln == 1 && is_root && !in_place)
        npi_copy(recvbuf, src, b);
    if (rr) {
        np_err w = npi_net_waitall(&x.g, h->nnodes, rr);
        err = err != NP_OK ? err : w;
        free(rr);
    }
    if (overlap) {
        np_err f = hier_status(&x, err != NP_OK ? err : le);
        return err != NP_OK ? err : le != NP_OK ? le : f;
    }
    return hier_deliver(&x, src, rb, count, dt, b, err);
}

/*
 * Scatterv: leaders learn their ranks' counts with a node-local gather,
 * the root packs and sends each other node its ranks' parts, and each node
 * scatters from its leader.
 */
np_err npi_hier_scatterv(const void *sendbuf, const size_t *counts, const size_t *displs,
                         void *recvbuf, size_t recvcount, np_dtype dt, int root, np_comm *comm)
{
    static const char who[] = "np_scatterv";
    size_t rb;
    np_err err = npi_coll_check_dtype(dt, recvcount, 1, who, &rb);
    if (err == NP_OK)
        err = npi_coll_check_root(root, comm->size, who);
    bool is_root = comm->rank == root, in_place = is_root && recvbuf == NP_IN_PLACE;
    if (err == NP_OK && is_root && (!counts || !displs))
        err = npi_error(NP_ERR_NULL, "%s: counts or displs is NULL at the root", who);
    if (err == NP_OK && !in_place)
        err = npi_coll_check_buf(recvbuf, recvcount, who, "recvbuf");
    if (err != NP_OK)
        return hier_bad_args(comm, NPI_COLL_SCATTERV, dt, recvcount, root, NP_OP_NULL, who, err, 1);
    /* Every rank sees the same node count: no need to tell the others. */
    if (comm->hier->nnodes > HIER_NODES_MAX)
        return npi_error(NP_ERR_NOT_IMPLEMENTED, "%s: more than %d nodes", who, HIER_NODES_MAX);
    hier_call x;
    hier_begin(&x, comm, NPI_COLL_SCATTERV, dt, recvcount, root, NP_OP_NULL, who);
    npi_hier *h = x.h;
    size_t es = np_dtype_size(dt);
    int k = h->mynode, nroot = h->node_of[root];
    size_t *lc = NULL, *ld = NULL;
    if (x.ln > 1) {
        uint64_t mine = recvcount;
        size_t *tmpc;
        HIER_SCRATCH(tmpc, &x, 2, 2 * (size_t)x.ln * sizeof(size_t));
        lc = tmpc;
        ld = tmpc + x.ln;
        if ((err = np_gather(&mine, lc, 1, NP_UINT64, x.lroot, x.L)) != NP_OK) {
            hier_local_failed(&x, err);
            np_err f = hier_status(&x, x.leader ? err : NP_OK);
            return hier_failed_end(&x, err, f);
        }
        if (!x.leader) {
            /* On the root's node the scatterv overlaps the root's sends
             * and the status comes after it; elsewhere it comes first. */
            np_err le = NP_OK;
            if (k == nroot)
                le = np_scatterv(NULL, NULL, NULL, recvbuf, recvcount, dt, x.lroot, x.L);
            np_err f = hier_status(&x, NP_OK);
            if (le != NP_OK || f != NP_OK || k == nroot)
                return le != NP_OK ? le : f;
            return np_scatterv(NULL, NULL, NULL, recvbuf, recvcount, dt, x.lroot, x.L);
        }
    }
    if (!is_root) {
        size_t tot = recvcount;
        char *blk = recvbuf;
        if (x.ln > 1) {
            tot = 0;
            for (int i = 0; i < x.ln; i++) {
                ld[i] = tot;
                tot += lc[i];
            }
            HIER_SCRATCH(blk, &x, 1, tot * es);
        }
        npi_fab_req *r = NULL;
        err = npi_net_irecv(&x.g, nroot, 11, blk, tot * es, &r);
        if (err == NP_OK)
            err = npi_net_wait(&x.g, &r);
        if ((err = hier_status(&x, err)) != NP_OK || x.ln == 1)
            return err;
        return np_scatterv(blk, lc, ld, recvbuf, recvcount, dt, x.lroot, x.L);
    }
    /* The root packs every other node's parts, in node order. */
    size_t off[HIER_NODES_MAX], len[HIER_NODES_MAX], tot = 0;
    for (int j = 0; j < h->nnodes; j++) {
        off[j] = tot;
        len[j] = 0;
        if (j == nroot)
            continue;
        for (int i = 0; i < h->nsize[j]; i++)
            len[j] += counts[h->members[h->nfirst[j] + i]] * es;
        tot += len[j];
    }
    char *all;
    HIER_SCRATCH(all, &x, 0, tot);
    for (int j = 0; j < h->nnodes; j++) {
        size_t o = off[j];
        for (int i = 0; i < h->nsize[j] && j != nroot; i++) {
            int q = h->members[h->nfirst[j] + i];
            npi_copy(all + o, (const char *)sendbuf + displs[q] * es, counts[q] * es);
            o += counts[q] * es;
        }
    }
    npi_fab_req **rr = calloc((size_t)h->nnodes, sizeof *rr);
    if (!rr)
        return npi_error(NP_ERR_NOMEM, "%s: out of memory", who);
    for (int j = 0; j < h->nnodes && err == NP_OK; j++)
        if (j != nroot)
            err = npi_net_isend(&x.g, j, 11, all + off[j], len[j], &rr[j]);
    np_err le = NP_OK;
    if (x.ln > 1) {
        for (int i = 0; i < x.ln; i++) {
            int q = h->members[h->nfirst[k] + i];
            lc[i] = counts[q];
            ld[i] = displs[q];
        }
        le = np_scatterv(sendbuf, lc, ld, recvbuf, recvcount, dt, x.lroot, x.L);
    } else if (!in_place && rb) {
        npi_copy(recvbuf, (const char *)sendbuf + displs[root] * es, rb);
    }
    np_err w = npi_net_waitall(&x.g, h->nnodes, rr);
    free(rr);
    err = err != NP_OK ? err : w;
    np_err f = hier_status(&x, err != NP_OK ? err : le);
    return err != NP_OK ? err : le != NP_OK ? le : f;
}

/* ---------------------------------------------------------------- alltoall */

/*
 * Alltoall: node-local gather of every rank's whole send buffer to the
 * leader, pairwise exchange among leaders of the blocks each node sends
 * each other node, node-local scatter of each rank's receive buffer.
 * Each block crosses the network once; the leader moves the bytes of its
 * node three times in memory.
 */
np_err npi_hier_alltoall(const void *sendbuf, void *recvbuf, size_t count, np_dtype dt,
                         np_comm *comm)
{
    static const char who[] = "np_alltoall";
    size_t b;
    int n = comm->size;
    np_err err = npi_coll_check_dtype(dt, count, (size_t)n, who, &b);
    bool in_place = sendbuf == NP_IN_PLACE;
    if (err == NP_OK && !in_place)
        err = npi_coll_check_buf(sendbuf, count, who, "sendbuf");
    if (err == NP_OK)
        err = npi_coll_check_buf(recvbuf, count, who, "recvbuf");
    if (err != NP_OK)
        return hier_bad_args(comm, NPI_COLL_ALLTOALL, dt, count, -1, NP_OP_NULL, who, err, 1);
    /* Every rank sees the same node count: no need to tell the others. */
    if (comm->hier->nnodes > HIER_NODES_MAX)
        return npi_error(NP_ERR_NOT_IMPLEMENTED, "%s: more than %d nodes", who, HIER_NODES_MAX);
    hier_call x;
    hier_begin(&x, comm, NPI_COLL_ALLTOALL, dt, count, -1, NP_OP_NULL, who);
    npi_hier *h = x.h;
    int k = h->mynode, ln = x.ln, nn = h->nnodes;
    size_t row = (size_t)n * b; /* one rank's whole send (or receive) buffer */
    const char *mine = in_place ? recvbuf : sendbuf;
    if (!x.leader) {
        if ((err = np_gather(mine, NULL, count * (size_t)n, dt, x.lroot, x.L)) != NP_OK) {
            np_err f = hier_status(&x, NP_OK);
            return hier_failed_end(&x, err, f);
        }
        return hier_deliver(&x, NULL, recvbuf, count * (size_t)n, dt, row, NP_OK);
    }
    /* G[i][q]: local rank i's block for comm rank q. */
    char *G, *S, *R;
    if (ln > 1) {
        HIER_SCRATCH(G, &x, 0, (size_t)ln * row);
        if ((err = np_gather(mine, G, count * (size_t)n, dt, x.lroot, x.L)) != NP_OK) {
            hier_local_failed(&x, err);
            return hier_failed_end(&x, err, hier_status(&x, err));
        }
    } else {
        G = (char *)mine;
    }
    size_t soff[HIER_NODES_MAX], slen[HIER_NODES_MAX];
    size_t roff[HIER_NODES_MAX], rlen[HIER_NODES_MAX], tot = 0;
    for (int j = 0; j < nn; j++) {
        soff[j] = roff[j] = tot;
        slen[j] = rlen[j] = (size_t)ln * (size_t)h->nsize[j] * b;
        rlen[j] = (size_t)h->nsize[j] * (size_t)ln * b;
        tot += slen[j];
    }
    /* Both directions of node pair (k, j) are ln * nsize[j] blocks. */
    HIER_SCRATCH(S, &x, 1, 2 * tot);
    R = S + tot;
    /* S for node j: [i][m] = G[i][members of j, m-th]. */
    for (int j = 0; j < nn; j++)
        for (int i = 0; i < ln; i++)
            for (int m = 0; m < h->nsize[j]; m++)
                npi_copy(S + soff[j] + ((size_t)i * h->nsize[j] + m) * b,
                         G + (size_t)i * row + (size_t)h->members[h->nfirst[j] + m] * b, b);
    npi_decide_net_in in = {NPI_COLL_ALLTOALL, slen[0], 0, nn, true, hier_even(h)};
    if (npi_decide_net(&in) == NPI_NET_BRUCK)
        err = npi_net_alltoall_bruck(&x.g, S, R, slen[0]);
    else
        err = npi_net_alltoallv_pairwise(&x.g, S, soff, slen, R, roff, rlen);
    /* R from node j: [i][m] = block from j's i-th rank to my m-th rank.
     * T[m][q] = the block from comm rank q to my m-th rank. */
    char *T = G;
    if (ln == 1) {
        T = recvbuf;
    } else if (G == mine) {
        HIER_SCRATCH(T, &x, 2, (size_t)ln * row);
    }
    if (err == NP_OK)
        for (int j = 0; j < nn; j++)
            for (int i = 0; i < h->nsize[j]; i++)
                for (int m = 0; m < ln; m++)
                    npi_copy(T + (size_t)m * row + (size_t)h->members[h->nfirst[j] + i] * b,
                             R + roff[j] + ((size_t)i * ln + m) * b, b);
    (void)k;
    return hier_deliver(&x, T, recvbuf, count * (size_t)n, dt, row, err);
}

/* ---------------------------------------------------------------- point to point */

np_err npi_hier_send(const void *buf, size_t bytes, np_dtype dt, size_t count, int dest, int tag,
                     np_comm *comm)
{
    npi_envelope e;
    memset(&e, 0, sizeof e);
    e.kind = NPI_ENV_P2P;
    e.comm_id = comm->id;
    e.tag = tag;
    e.dtype = dt;
    e.count = count;
    npi_fab_req *r = NULL;
    np_err err = npi_fab_isend_env(hier_fab, comm->world_of[dest], &e, buf, bytes, &r);
    if (err != NP_OK)
        return err;
    /* As in MPI, a send may wait long for its receiver to come and take
     * the data; only a receiver the fabric reports dead ends it early. */
    int peer = comm->world_of[dest];
    while ((err = npi_fab_wait(hier_fab, &r, npi_fab_deadline(hier_fab), NULL)) == NP_ERR_TIMEOUT)
        if (npi_fab_peer_state(hier_fab, peer) != NP_OK)
            break;
    if (err == NP_ERR_TIMEOUT) {
        npi_fab_cancel(hier_fab, &r);
        return npi_error(NP_ERR_PEER, "np_send: rank %d is gone", dest);
    }
    return err;
}

np_err npi_hier_recv(void *buf, size_t cap, np_dtype dt, int src, int tag, np_comm *comm,
                     np_status *st)
{
    int peer = src == NP_ANY_SOURCE ? NP_ANY_SOURCE : comm->world_of[src];
    npi_fab_req *r = NULL;
    npi_fab_status fs;
    memset(&fs, 0, sizeof fs);
    np_err err = npi_fab_irecv(hier_fab, peer, comm->id, tag, buf, cap, &r);
    if (err != NP_OK)
        return err;
    /* A receive may legitimately wait long for its sender; only a dead
     * sender (reported by the fabric) ends it early. */
    while ((err = npi_fab_wait(hier_fab, &r, npi_fab_deadline(hier_fab), &fs)) == NP_ERR_TIMEOUT)
        if (peer != NP_ANY_SOURCE && npi_fab_peer_state(hier_fab, peer) != NP_OK)
            break;
    if (err == NP_ERR_TIMEOUT) {
        npi_fab_cancel(hier_fab, &r);
        return npi_error(NP_ERR_PEER, "np_recv: rank %d is gone", src);
    }
    int from = -1;
    for (int q = 0; q < comm->size; q++)
        if (comm->world_of[q] == fs.source)
            from = q;
    if (st) {
        st->source = from;
        st->tag = fs.tag;
        st->count = (size_t)(fs.bytes / np_dtype_size(dt));
        st->error = err;
    }
    return err;
}
