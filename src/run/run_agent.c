/*
 * The remote agent: what numpush-run starts on another host through --rsh,
 * one per rank, as "numpush-run --agent [--wdir DIR] [--bind-to core] --
 * PROGRAM ARGS...".
 *
 * It reads the rank's environment from stdin ("NAME=value" lines up to an
 * empty line), so the job secret never appears on a command line, then starts
 * the program in its own process group.  Its stdin stays open as a lifeline:
 * EOF (the launcher closed it, or ssh went away) or SIGTERM/SIGINT/SIGHUP
 * stops the program (TERM, then KILL after a grace period).  The agent exits
 * with the program's code, or 128+signal when the program was killed, so the
 * launcher sees the same code through ssh.
 */
#include "config.h"

#include "run.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define AGENT_GRACE_MS 1000

static int agent_read_env(void)
{
    char line[8192];
    size_t len = 0;
    for (;;) {
        char c;
        ssize_t n = read(0, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        if (c != '\n') {
            if (len + 1 < sizeof line)
                line[len++] = c;
            continue;
        }
        if (len == 0)
            return 0;
        line[len] = '\0';
        len = 0;
        char *eq = strchr(line, '=');
        if (eq) {
            *eq = '\0';
            setenv(line, eq + 1, 1);
        }
    }
}

int npi_run_agent_main(int argc, char **argv)
{
    const char *wdir = NULL;
    npi_run_bind bind = NPI_RUN_BIND_AUTO;
    int i = 2;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--wdir") && i + 1 < argc)
            wdir = argv[++i];
        else if (!strcmp(argv[i], "--bind-to") && i + 1 < argc) {
            int mode = npi_run_bind_parse(argv[++i]);
            bind = mode < 0 ? NPI_RUN_BIND_AUTO : (npi_run_bind)mode;
        } else if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "numpush-run --agent: no program\n");
        return 127;
    }
    if (agent_read_env()) {
        fprintf(stderr, "numpush-run --agent: no environment on stdin\n");
        return 127;
    }
    /* The remote working directory follows the launcher's when it exists, as
     * mpirun does; otherwise the program starts where the login put it. */
    if (wdir && chdir(wdir)) {
    }
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("numpush-run --agent: fork");
        return 127;
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (freopen("/dev/null", "r", stdin) == NULL) {
        }
        const char *lr = getenv("NUMPUSH_LOCAL_RANK");
        const char *ls = getenv("NUMPUSH_LOCAL_SIZE");
        npi_run_bind_core(bind, lr ? atoi(lr) : 0, ls ? atoi(ls) : 1);
        execvp(argv[i], argv + i);
        fprintf(stderr, "numpush-run: rank %s: cannot run %s: %s\n",
                getenv("NUMPUSH_RANK") ? getenv("NUMPUSH_RANK") : "?", argv[i], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    int stopping = 0;
    for (;;) {
        struct pollfd pfd[2] = {{.fd = sfd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
        int rc = poll(pfd, stopping ? 1 : 2, stopping ? AGENT_GRACE_MS : -1);
        if (rc == 0 && stopping) {
            killpg(pid, SIGKILL);
            stopping = 2;
            continue;
        }
        if (!stopping && pfd[1].revents) {
            char buf[256];
            if (read(0, buf, sizeof buf) <= 0) {
                killpg(pid, SIGTERM);
                stopping = 1;
            }
        }
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si && si.ssi_signo != SIGCHLD &&
                !stopping) {
                killpg(pid, SIGTERM);
                stopping = 1;
            }
            int status;
            if (waitpid(pid, &status, WNOHANG) == pid) {
                killpg(pid, SIGKILL);
                /* A failed or stopped job may leave segments on this host,
                 * where the launcher's own cleanup cannot reach. */
                bool failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
                if (failed || stopping)
                    npi_run_shm_cleanup(getenv("NUMPUSH_JOBID"));
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
        }
    }
}
