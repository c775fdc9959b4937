/*
 * Point-to-point latency and bandwidth over each fabric transport, OSU
 * style: latency is half the round trip of a ping-pong, averaged over the
 * timed iterations after a warm-up; bandwidth is a window of back-to-back
 * sends followed by a 0-byte acknowledgement, as osu_bw does.
 *
 *   bench_fabric [-t tcp|zmq] [-m MAXBYTES] [-i ROUNDTRIPS]
 *       fork two ranks on this host (loopback or NUMPUSH_TCP_IF) and print
 *       one line per (transport, size)
 *   bench_fabric --rank R --dir D [-t T] [-m MAXBYTES] [-i ROUNDTRIPS]
 *       one rank of a run whose ranks meet through the file store in D (for
 *       ranks in separate network namespaces; bench_fabric.sh does this)
 *
 * Output lines: "transport size latency_us bandwidth_MBps", rank 0 only.
 * bench/bench_fabric.sh runs it next to iperf3 over loopback and a veth
 * pair and prints the ratio to the iperf3 figure.
 */
#include "config.h"

#include "fabric/fabric.h"
#include "fabric/match.h"
#include "../tests/fab_store.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BF_COMM 3u

/* Ping-pong round trips of the small sizes (-i; the large ones take fewer). */
static int bf_base_iters = 2000;

static int bf_iters(size_t n, int base)
{
    if (n >= (16u << 20))
        return 10;
    if (n >= (1u << 20))
        return 40;
    if (n >= (64u << 10))
        return base / 4 > 100 ? base / 4 : 100;
    return base;
}

static int bf_fail(np_err e, const char *what)
{
    fprintf(stderr, "bench_fabric: %s: %s: %s\n", what, np_errname(e), np_last_error());
    return 1;
}

static int bf_run(npi_fab *fab, int rank, const char *tn, size_t maxb)
{
    int peer = 1 - rank;
    uint8_t *buf = aligned_alloc(4096, maxb + 4096);
    if (!buf)
        return 1;
    memset(buf, 7, maxb);
    np_err e;
    for (size_t n = 8; n <= maxb; n *= (n < 4096 ? 8 : 4)) {
        /* Latency: ping-pong. */
        int it = bf_iters(n, bf_base_iters), warm = it / 10 + 2;
        double t0 = 0;
        for (int i = 0; i < it + warm; i++) {
            if (i == warm)
                t0 = npi_now_ns();
            if (rank == 0) {
                if ((e = npi_fab_send(fab, peer, BF_COMM, 1, buf, n)) ||
                    (e = npi_fab_recv(fab, peer, BF_COMM, 1, buf, n, NULL)))
                    return bf_fail(e, "ping");
            } else {
                if ((e = npi_fab_recv(fab, peer, BF_COMM, 1, buf, n, NULL)) ||
                    (e = npi_fab_send(fab, peer, BF_COMM, 1, buf, n)))
                    return bf_fail(e, "pong");
            }
        }
        double lat = (npi_now_ns() - t0) / 1e3 / it / 2;
        /* Bandwidth: windows of sends from rank 0, each acknowledged. */
        int win = n >= (1u << 20) ? 4 : 32;
        int bit = bf_iters(n, 200) / (n >= (1u << 20) ? 2 : 1) + 2;
        npi_fab_req *r[32];
        for (int i = 0; i < bit + 2; i++) {
            if (i == 2)
                t0 = npi_now_ns();
            for (int w = 0; w < win; w++) {
                e = rank == 0 ? npi_fab_isend(fab, peer, BF_COMM, 2, buf, n, &r[w])
                              : npi_fab_irecv(fab, peer, BF_COMM, 2, buf, n, &r[w]);
                if (e)
                    return bf_fail(e, "window");
            }
            if ((e = npi_fab_waitall(fab, win, r, npi_fab_deadline(fab), NULL)))
                return bf_fail(e, "window wait");
            e = rank == 0 ? npi_fab_recv(fab, peer, BF_COMM, 3, NULL, 0, NULL)
                          : npi_fab_send(fab, peer, BF_COMM, 3, NULL, 0);
            if (e)
                return bf_fail(e, "ack");
        }
        double secs = (npi_now_ns() - t0) / 1e9;
        double mbps = (double)n * win * bit / secs / 1e6;
        if (rank == 0) {
            printf("%-4s %10zu %10.2f %10.1f\n", tn, n, lat, mbps);
            fflush(stdout);
        }
    }
    free(buf);
    return 0;
}

static int bf_rank(const char *tn, const char *dir, int rank, size_t maxb)
{
    npi_boot boot;
    fst_impl impl;
    fst_init(&boot, &impl, dir, rank, 2);
    npi_fab *fab;
    np_err e = npi_fab_open(&boot, tn, true, &fab);
    if (e)
        return bf_fail(e, "npi_fab_open");
    int rc = bf_run(fab, rank, tn, maxb);
    boot.ops->fence(&boot);
    npi_fab_close(&fab, 1000);
    return rc;
}

int main(int argc, char **argv)
{
    const char *tn = NULL, *dir = NULL;
    int rank = -1;
    size_t maxb = 64u << 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-t"))
            tn = argv[i + 1];
        else if (!strcmp(argv[i], "-m"))
            maxb = strtoull(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "-i"))
            bf_base_iters = atoi(argv[i + 1]) > 0 ? atoi(argv[i + 1]) : bf_base_iters;
        else if (!strcmp(argv[i], "--rank"))
            rank = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
    }
    signal(SIGPIPE, SIG_IGN);
    setenv("NUMPUSH_TIMEOUT", "60", 0);
    if (rank >= 0) {
        if (!dir || !tn) {
            fprintf(stderr, "usage: %s --rank R --dir D -t T [-m MAXBYTES]\n", argv[0]);
            return 2;
        }
        return bf_rank(tn, dir, rank, maxb);
    }
    printf("# transport bytes latency_us bandwidth_MBps\n");
    int rc = 0;
    for (int t = 0; npi_fab_transports[t]; t++) {
        const char *name = npi_fab_transports[t]->name;
        if (tn && strcmp(tn, name) != 0)
            continue;
        char d[64];
        if (fst_mkdir(d, sizeof(d)) != 0)
            return 1;
        pid_t pid[2];
        for (int r = 0; r < 2; r++)
            if ((pid[r] = fork()) == 0)
                _exit(bf_rank(name, d, r, maxb));
        for (int r = 0; r < 2; r++) {
            int st;
            waitpid(pid[r], &st, 0);
            if (!WIFEXITED(st) || WEXITSTATUS(st))
                rc = 1;
        }
        fst_cleanup(d);
    }
    return rc;
}
