/*
 * For tests that need a network of their own, in a forked child: a new
 * network namespace with only loopback up, whose one ephemeral port is
 * port, so that a connect to 127.0.0.1:port where nothing listens always
 * meets itself (TCP's simultaneous open).  Needs root (CAP_NET_ADMIN).
 */
#ifndef NUMPUSH_TESTS_NETNS_PRIVATE_H
#define NUMPUSH_TESTS_NETNS_PRIVATE_H

#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* 0 once this process is in such a namespace; -1 where it cannot be made
 * (the process then stays where it was). */
static inline int netns_private_enter(int port)
{
    if (unshare(CLONE_NEWNET) != 0)
        return -1;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    int ok = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP;
    ok = ok && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
    if (fd >= 0)
        close(fd);
    FILE *f = ok ? fopen("/proc/sys/net/ipv4/ip_local_port_range", "w") : NULL;
    if (!f)
        return -1;
    ok = fprintf(f, "%d %d\n", port, port) > 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Run child() in a forked process inside such a namespace: its return
 * value (0 or 1 by the tests' convention), 2 where the namespace cannot be
 * made, 3 where the child did not exit normally. */
static inline int netns_private_run(int port, int (*child)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return 3;
    if (pid == 0)
        _exit(netns_private_enter(port) != 0 ? 2 : child());
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return 3;
    return WEXITSTATUS(st);
}

#endif
