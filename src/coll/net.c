/*
 * Messages of the algorithms between nodes: every send carries the
 * caller's collective signature in its envelope, and every receive checks
 * it.  A wait has no deadline of its own (MPI semantics, as within a node):
 * a peer that computes for minutes before it joins is alive, and its
 * transport says so (the kernel acknowledges tcp's keepalives, libzmq's
 * thread answers heartbeats).  Dead peers and links are the transports' to
 * find, within NUMPUSH_TIMEOUT, and fail the wait with NP_ERR_PEER.
 */
#include "net.h"

#include <string.h>

static void net_env(const npi_net *g, int step, size_t bytes, npi_envelope *e)
{
    memset(e, 0, sizeof *e);
    e->kind = NPI_ENV_COLL;
    e->comm_id = g->cid;
    e->tag = npi_net_tag(g, step);
    e->dtype = g->sig.dtype;
    e->count = g->sig.count;
    e->payload_len = bytes;
    e->coll = g->sig.coll;
    e->root = g->sig.root;
    e->op = g->sig.op;
}

np_err npi_net_isend(npi_net *g, int to, int step, const void *buf, size_t bytes, npi_fab_req **req)
{
    npi_envelope e;
    net_env(g, step, bytes, &e);
    np_err err = npi_fab_isend_env(g->fab, g->peer[to], &e, buf, bytes, req);
    if (err != NP_OK)
        *req = NULL;
    return err;
}

np_err npi_net_irecv(npi_net *g, int from, int step, void *buf, size_t cap, npi_fab_req **req)
{
    np_err err = npi_fab_irecv(g->fab, g->peer[from], g->cid, npi_net_tag(g, step), buf, cap, req);
    if (err != NP_OK)
        *req = NULL;
    return err;
}

np_err npi_net_send(npi_net *g, int to, int step, const void *buf, size_t bytes)
{
    npi_fab_req *r;
    np_err err = npi_net_isend(g, to, step, buf, bytes, &r);
    return err != NP_OK ? err : npi_net_wait(g, &r);
}

np_err npi_net_recv(npi_net *g, int from, int step, void *buf, size_t cap)
{
    npi_fab_req *r;
    np_err err = npi_net_irecv(g, from, step, buf, cap, &r);
    return err != NP_OK ? err : npi_net_wait(g, &r);
}

np_err npi_net_arm(npi_net *g, npi_fab_req **slot, int32_t *why)
{
    if (*slot)
        npi_fab_cancel(g->fab, slot);
    *why = NP_ERR_MISMATCH;
    np_err err = npi_fab_irecv(g->fab, NP_ANY_SOURCE, g->cid, npi_net_tag(g, NPI_NET_ALARM), why,
                               sizeof *why, slot);
    if (err != NP_OK)
        *slot = NULL;
    g->alarm = slot;
    g->alarm_why = why;
    return err;
}

void npi_net_alarm(npi_net *g, np_err why)
{
    npi_fab_req *r;
    int32_t w = (int32_t)why;
    for (int i = 0; i < g->n; i++) {
        if (i == g->me || npi_net_isend(g, i, NPI_NET_ALARM, &w, sizeof w, &r) != NP_OK)
            continue;
        /* Best effort: a dead peer must not keep the others from hearing. */
        npi_fab_wait(g->fab, &r, npi_now_ns() + 200000000ull, NULL);
        if (r)
            npi_fab_cancel(g->fab, &r);
    }
}

/* The error an alarm received (status st, reason why) stands for. */
static np_err net_alarm_error(npi_net *g, const npi_fab_status *st, int32_t why, const char *late)
{
    npi_coll_sig theirs;
    npi_envelope_sig(&st->env, &theirs);
    np_err m = npi_coll_sig_check(&g->sig, npi_fab_rank(g->fab), &theirs, st->source);
    if (m != NP_OK && !*late)
        return m;
    if (st->bytes == sizeof why && why != NP_ERR_MISMATCH && why != NP_OK)
        return npi_error(NP_ERR_MISMATCH, "%s: %srank %d passed invalid arguments (%s)", g->who,
                         late, st->source, np_errname((np_err)why));
    return npi_error(NP_ERR_MISMATCH, "%s: %srank %d found that the ranks disagree about this call",
                     g->who, late, st->source);
}

np_err npi_net_alarm_late(npi_net *g, npi_fab_req **slot, int32_t why)
{
    if (*slot == NULL)
        return NP_OK;
    bool done = false;
    npi_fab_status st;
    memset(&st, 0, sizeof st);
    np_err err = npi_fab_test(g->fab, slot, &done, &st);
    if (!done || (err != NP_OK && err != NP_ERR_TRUNCATE))
        return NP_OK;
    return net_alarm_error(g, &st, why,
                           "the previous call on this communicator failed (reported late: this "
                           "rank had left it before the alarm came; this call itself completed): ");
}

/* How often a waiting participant looks for an alarm: the wait itself
 * blocks in the transport, so the common path costs nothing extra. */
#define NET_ALARM_CHECK_NS 20000000ull

static bool net_takes_part(const npi_net *g, int rank)
{
    for (int i = 0; i < g->n; i++)
        if (i != g->me && g->peer[i] == rank)
            return true;
    return false;
}

/* Wait for *req while watching for an alarm: as npi_fab_wait otherwise,
 * until g->deadline (0: none). */
static np_err net_wait_watch(npi_net *g, npi_fab_req **req, npi_fab_status *st)
{
    /* The transport polls briefly before it sleeps (NPI_FAB_SPIN_NS). */
    for (;;) {
        uint64_t now = npi_now_ns(), until = g->deadline;
        bool watch = g->alarm && *g->alarm;
        if (watch && (until == 0 || now + NET_ALARM_CHECK_NS < until))
            until = now + NET_ALARM_CHECK_NS;
        np_err err = npi_fab_wait(g->fab, req, until, st);
        if (err != NP_ERR_TIMEOUT || (g->deadline && until >= g->deadline))
            return err;
        bool done = false;
        npi_fab_status ast;
        memset(&ast, 0, sizeof ast);
        err = npi_fab_test(g->fab, g->alarm, &done, &ast);
        if (!done)
            continue;
        g->alarm = NULL;
        if (err != NP_OK && err != NP_ERR_TRUNCATE) {
            /* A rank is gone (the transport failed the alarm's wildcard
             * receive).  If it takes part in this call, the call cannot
             * complete, whichever peer this rank waits for: around a ring
             * it may be a live one that waits in turn for the dead one,
             * or one never heard from, whose transport may take until
             * the timeout to tell (ofi: listen_probe.h).  A
             * rank outside the call leaves it to the request itself. */
            if (!net_takes_part(g, ast.source))
                continue;
            npi_fab_cancel(g->fab, req);
            return npi_error(err, "%s: rank %d, which takes part in this call, is gone (%s)",
                             g->who, ast.source, npi_fab_peer_why(g->fab, ast.source));
        }
        return net_alarm_error(g, &ast, *g->alarm_why, "");
    }
}

np_err npi_net_wait(npi_net *g, npi_fab_req **req)
{
    if (*req == NULL)
        return NP_OK;
    npi_fab_status st;
    memset(&st, 0, sizeof st);
    st.env.kind = NPI_ENV_P2P;
    int peer = -1;
    np_err err = net_wait_watch(g, req, &st);
    if (err == NP_ERR_TIMEOUT) {
        /* Only NUMPUSH_WAIT_TIMEOUT ends a wait for live peers. */
        npi_fab_cancel(g->fab, req);
        return npi_error(NP_ERR_TIMEOUT,
                         "%s: the other nodes are alive but did not come within "
                         "NUMPUSH_WAIT_TIMEOUT",
                         g->who);
    }
    peer = st.source;
    /* A receive: compare the sender's call with ours before trusting the
     * payload (a truncation is usually a disagreement about the count). */
    if (st.env.kind == NPI_ENV_COLL && (err == NP_OK || err == NP_ERR_TRUNCATE)) {
        npi_coll_sig theirs;
        npi_envelope_sig(&st.env, &theirs);
        np_err m = npi_coll_sig_check(&g->sig, npi_fab_rank(g->fab), &theirs, peer);
        if (m != NP_OK) {
            npi_net_alarm(g, NP_ERR_MISMATCH);
            return m;
        }
        if (err == NP_ERR_TRUNCATE) {
            npi_net_alarm(g, NP_ERR_MISMATCH);
            return npi_error(NP_ERR_MISMATCH,
                             "%s: rank %d sent %llu bytes where this rank expected fewer (counts "
                             "disagree)",
                             g->who, peer, (unsigned long long)st.bytes);
        }
    }
    return err;
}

np_err npi_net_waitall(npi_net *g, int n, npi_fab_req **reqs)
{
    np_err first = NP_OK;
    for (int i = 0; i < n; i++) {
        if (reqs[i] == NULL)
            continue;
        if (first != NP_OK) {
            npi_fab_cancel(g->fab, &reqs[i]);
            continue;
        }
        first = npi_net_wait(g, &reqs[i]);
    }
    return first;
}

np_err npi_net_sendrecv(npi_net *g, int to, const void *sbuf, size_t sbytes, int from, void *rbuf,
                        size_t rbytes, int step)
{
    npi_fab_req *r[2] = {NULL, NULL};
    np_err err = npi_net_irecv(g, from, step, rbuf, rbytes, &r[0]);
    if (err == NP_OK)
        err = npi_net_isend(g, to, step, sbuf, sbytes, &r[1]);
    if (err != NP_OK) {
        if (r[0])
            npi_fab_cancel(g->fab, &r[0]);
        return err;
    }
    return npi_net_waitall(g, 2, r);
}

np_err npi_net_fold_in(npi_net *g, void *acc, void *tmp, size_t count, np_dtype dt, np_op op,
                       int step, int final_step, int *p, int *nr)
{
    int n = g->n, me = g->me;
    size_t bytes = count * np_dtype_size(dt);
    *p = 1;
    while (*p * 2 <= n)
        *p *= 2;
    int extra = n - *p;
    if (me < 2 * extra && me % 2 == 0) {
        *nr = -1;
        np_err err = npi_net_send(g, me + 1, step, acc, bytes);
        return err != NP_OK ? err : npi_net_recv(g, me + 1, final_step, acc, bytes);
    }
    if (me < 2 * extra) {
        np_err err = npi_net_recv(g, me - 1, step, tmp, bytes);
        if (err != NP_OK)
            return err;
        npi_reduce(tmp, acc, count, dt, op);
        *nr = me / 2;
    } else {
        *nr = me - extra;
    }
    return NP_OK;
}

np_err npi_net_fold_out(npi_net *g, const void *acc, size_t bytes, int p, int final_step)
{
    if (g->me >= 2 * (g->n - p))
        return NP_OK;
    return npi_net_send(g, g->me - 1, final_step, acc, bytes);
}
