/*
 * numpush-run: start the ranks of a job, serve their rendezvous store, forward
 * their output, and end the job as a whole.
 *
 * The launcher is one thread with a poll loop over a signalfd (SIGCHLD,
 * SIGINT, SIGTERM, SIGHUP), the ranks' stdout/stderr pipes and a pipe on which
 * the store thread reports np_abort requests.  The store itself (kvstore.c)
 * runs in a second thread so that a slow rank's output never delays another
 * rank's rendezvous.
 *
 * Every rank is the leader of its own process group, so one killpg() reaches
 * whatever it started, including the --rsh command and what runs under it.
 * Each rank also gets PR_SET_PDEATHSIG, so a launcher killed with SIGKILL
 * still takes its ranks with it.
 */
#include "config.h"

#include "kvstore.h"
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long ranks get between SIGTERM and SIGKILL.  One second keeps "the
 * others are stopped within 2 s" with room for the launcher's own work. */
#define RUN_GRACE_MS 1000
/* After the last rank exits, how long to wait for a grandchild still holding
 * an output pipe open before giving up on its last lines. */
#define RUN_DRAIN_MS 1000
#define RUN_LINE_MAX (64 * 1024)

typedef struct run_stream {
    int fd;  /* -1 once closed */
    int out; /* 1 or 2: where its lines go */
    char *buf;
    size_t len, cap;
} run_stream;

typedef struct run_rank {
    int rank;
    int host; /* index into hosts */
    int local_rank, local_size;
    pid_t pid;
    int in_fd; /* agent's stdin (remote ranks): closing it stops the agent */
    run_stream out, err;
    bool exited;
    int status;
} run_rank;

typedef struct run_opts {
    int np;
    run_hosts hosts;
    const char *rsh;
    char **xvars;
    int nx;
    bool tag_output;
    double timeout_s;
    npi_run_bind bind;
    char **prog; /* program and its arguments */
} run_opts;

static run_rank *run_ranks;
static int run_nranks;
static int run_abort_pipe[2] = {-1, -1};
static char run_jobid[16];
static int run_watchdog_fd = -1; /* see run_watchdog_start() */

static void run_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void run_die(int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "numpush-run: %s\n", msg);
    exit(code);
}

static void run_usage(FILE *f)
{
    fprintf(f, "Usage: numpush-run [options] PROGRAM [ARGS...]\n"
               "Start PROGRAM as the ranks of one numpush job.\n\n"
               "  -n, -np N              number of ranks (default: the slots of the hosts)\n"
               "  -H, --host H[:S],...   hosts and their slots (default: this host)\n"
               "      --hostfile FILE    'host slots=N' per line, '#' comments\n"
               "      --rsh CMD          command that runs 'CMD HOST COMMAND...' like ssh\n"
               "                         (default: ssh)\n"
               "  -x VAR | -x VAR=VALUE  export VAR to every rank\n"
               "      --tag-output       prefix every output line with [rank]\n"
               "      --timeout S        stop the job after S seconds (exit code 124)\n"
               "      --bind-to auto|core|none  bind each rank to one core (hwloc); auto (the\n"
               "                     default) binds when a host's ranks fit its cores\n"
               "      --oversubscribe    accepted; more ranks than slots is always allowed\n"
               "  -h, --help             this text\n"
               "      --version          print the version\n\n"
               "Ranks see NUMPUSH_RANK, NUMPUSH_SIZE, NUMPUSH_LOCAL_RANK, NUMPUSH_LOCAL_SIZE,\n"
               "NUMPUSH_JOBID, NUMPUSH_RUN_ADDR and NUMPUSH_SECRET (the rendezvous store).\n"
               "The exit code is the first failing rank's (128+signal if it was killed).\n");
}

/* Take an option's value from "--opt=value" or the next argument. */
static const char *run_optval(int argc, char **argv, int *i, const char *name)
{
    const char *a = argv[*i];
    const char *eq = strchr(a, '=');
    if (eq && a[1] == '-')
        return eq + 1;
    if (*i + 1 >= argc)
        run_die(1, "option %s needs a value (see --help)", name);
    return argv[++*i];
}

static bool run_is_opt(const char *a, const char *name)
{
    size_t n = strlen(name);
    return !strncmp(a, name, n) && (a[n] == '\0' || (a[n] == '=' && name[1] == '-'));
}

static int run_parse_int(const char *s, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 1000000)
        run_die(1, "%s: '%s' is not a valid number", what, s);
    return (int)v;
}

static void run_parse_args(int argc, char **argv, run_opts *o)
{
    char err[512];
    o->np = -1;
    o->rsh = "ssh";
    o->xvars = calloc((size_t)argc, sizeof *o->xvars);
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (a[0] != '-')
            break;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            run_usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
            printf("numpush-run (numpush) %s\n", PACKAGE_VERSION);
            exit(0);
        } else if (!strcmp(a, "-n") || !strcmp(a, "-np") || run_is_opt(a, "--np") ||
                   run_is_opt(a, "--n")) {
            o->np = run_parse_int(run_optval(argc, argv, &i, "-n"), "-n");
        } else if (!strcmp(a, "-H") || run_is_opt(a, "--host") || !strcmp(a, "-host")) {
            if (npi_run_hosts_parse_list(&o->hosts, run_optval(argc, argv, &i, "--host"), err,
                                         sizeof err))
                run_die(1, "%s", err);
        } else if (run_is_opt(a, "--hostfile") || !strcmp(a, "-hostfile") ||
                   run_is_opt(a, "--machinefile") || !strcmp(a, "-f")) {
            if (npi_run_hosts_parse_file(&o->hosts, run_optval(argc, argv, &i, "--hostfile"), err,
                                         sizeof err))
                run_die(1, "%s", err);
        } else if (run_is_opt(a, "--rsh") || run_is_opt(a, "--launcher-exec")) {
            o->rsh = run_optval(argc, argv, &i, "--rsh");
        } else if (!strcmp(a, "-x")) {
            o->xvars[o->nx++] = (char *)run_optval(argc, argv, &i, "-x");
        } else if (!strcmp(a, "--tag-output") || !strcmp(a, "-tag-output")) {
            o->tag_output = true;
        } else if (run_is_opt(a, "--timeout")) {
            const char *v = run_optval(argc, argv, &i, "--timeout");
            char *end;
            o->timeout_s = strtod(v, &end);
            if (end == v || *end || !(o->timeout_s > 0))
                run_die(1, "--timeout: '%s' is not a positive number of seconds", v);
        } else if (run_is_opt(a, "--bind-to")) {
            const char *v = run_optval(argc, argv, &i, "--bind-to");
            int mode = npi_run_bind_parse(v);
            if (mode < 0)
                run_die(1, "--bind-to: '%s' is not 'auto', 'core' or 'none'", v);
            o->bind = (npi_run_bind)mode;
        } else if (!strcmp(a, "--oversubscribe") || !strcmp(a, "-oversubscribe")) {
            /* Oversubscription is always allowed; accepted for mpirun habits. */
        } else {
            run_die(1, "unknown option '%s' (see --help)", a);
        }
    }
    if (i >= argc)
        run_die(1, "no program to run (see --help)");
    o->prog = argv + i;
    if (o->np == 0)
        run_die(1, "-n 0: a job needs at least one rank");
    if (o->np < 0) {
        if (o->hosts.n == 0)
            run_die(1, "say how many ranks with -n N (or give hosts with slots)");
        o->np = 0;
        for (int h = 0; h < o->hosts.n; h++)
            o->np += o->hosts.v[h].slots;
    }
    if (o->hosts.n == 0 && npi_run_hosts_parse_list(&o->hosts, "localhost", err, sizeof err))
        run_die(1, "%s", err);
    if (o->hosts.n == 1 && o->hosts.v[0].local && o->hosts.v[0].slots < o->np)
        o->hosts.v[0].slots = o->np;
}

/* Whether prog can be executed here: a path, or a name found in PATH. */
static bool run_prog_exists(const char *prog)
{
    if (strchr(prog, '/'))
        return access(prog, X_OK) == 0;
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char buf[PATH_MAX];
    for (const char *p = path; *p;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        snprintf(buf, sizeof buf, "%.*s/%s", (int)len, len ? p : ".", prog);
        struct stat st;
        if (!access(buf, X_OK) && !stat(buf, &st) && S_ISREG(st.st_mode))
            return true;
        p += len;
        if (*p == ':')
            p++;
    }
    return false;
}

/* Short, unique per job, and only [a-z0-9]: it names /dev/shm segments as
 * "numpush-<jobid>-...", so it must hold no '-' and stay well under NAME_MAX. */
static void run_make_id(char *out, size_t n, size_t len)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[64];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        uint64_t x = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull ^ (uint64_t)time(NULL);
        for (size_t i = 0; i < sizeof rnd; i++, x = x * 6364136223846793005ull + 1)
            rnd[i] = (unsigned char)(x >> 33);
    }
    if (len >= n)
        len = n - 1;
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[rnd[i] % 36];
    out[len] = '\0';
}

static void run_make_secret(char *out, size_t n)
{
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        run_die(1, "getrandom failed: %s", strerror(errno));
    for (size_t i = 0; i < sizeof rnd && 2 * i + 2 < n; i++)
        snprintf(out + 2 * i, 3, "%02x", rnd[i]);
}

/* ------------------------------------------------------------ output forwarding */

static bool run_tag;

static void run_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* Our own stdout is gone: drop output, keep managing the job. */
        p += w;
        n -= (size_t)w;
    }
}

/* Write one line (with its newline, if any) in a single write() so that lines
 * of different ranks never interleave. */
static void run_emit(int rank, int out, const char *line, size_t n)
{
    if (!run_tag) {
        run_write_all(out, line, n);
        return;
    }
    char stackbuf[4096];
    char tag[32];
    int tl = snprintf(tag, sizeof tag, "[%d] ", rank);
    size_t total = (size_t)tl + n;
    char *b = total <= sizeof stackbuf ? stackbuf : malloc(total);
    if (!b) {
        run_write_all(out, line, n);
        return;
    }
    memcpy(b, tag, (size_t)tl);
    memcpy(b + tl, line, n);
    run_write_all(out, b, total);
    if (b != stackbuf)
        free(b);
}

static void run_stream_flush(run_rank *r, run_stream *s, bool all)
{
    size_t start = 0;
    for (;;) {
        char *nl = memchr(s->buf + start, '\n', s->len - start);
        if (!nl)
            break;
        size_t n = (size_t)(nl - (s->buf + start)) + 1;
        run_emit(r->rank, s->out, s->buf + start, n);
        start += n;
    }
    /* A line longer than RUN_LINE_MAX goes out in pieces rather than holding
     * the launcher's memory hostage; a final unterminated line gets its
     * newline so the next rank's line starts on its own. */
    if (s->len - start >= RUN_LINE_MAX || (all && s->len > start)) {
        s->buf[s->len++] = '\n';
        run_emit(r->rank, s->out, s->buf + start, s->len - start);
        start = s->len;
    }
    memmove(s->buf, s->buf + start, s->len - start);
    s->len -= start;
}

static void run_stream_read(run_rank *r, run_stream *s)
{
    if (!s->buf) {
        s->cap = RUN_LINE_MAX + 4096 + 1;
        s->buf = malloc(s->cap);
        if (!s->buf)
            run_die(1, "out of memory");
    }
    ssize_t n = read(s->fd, s->buf + s->len, s->cap - 1 - s->len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        run_stream_flush(r, s, true);
        close(s->fd);
        s->fd = -1;
        return;
    }
    s->len += (size_t)n;
    run_stream_flush(r, s, false);
}

/* ------------------------------------------------------------ starting ranks */

static bool run_needs_quote(const char *s)
{
    if (!*s)
        return true;
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=,@%+-", *s))
            return true;
    return false;
}

/* Quote one word for the remote shell: ssh joins its arguments with spaces
 * and hands them to a shell, so every word must survive that. */
static char *run_shell_quote(const char *s)
{
    if (!run_needs_quote(s))
        return strdup(s);
    size_t n = 3;
    for (const char *p = s; *p; p++)
        n += *p == '\'' ? 4 : 1;
    char *q = malloc(n), *o = q;
    if (!q)
        run_die(1, "out of memory");
    *o++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *p;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return q;
}

typedef struct run_env {
    char **v;
    int n, cap;
} run_env;

static void run_env_set(run_env *e, const char *name, const char *val)
{
    size_t nl = strlen(name);
    char *kv = malloc(nl + strlen(val) + 2);
    if (!kv)
        run_die(1, "out of memory");
    sprintf(kv, "%s=%s", name, val);
    for (int i = 0; i < e->n; i++) {
        if (!strncmp(e->v[i], name, nl) && e->v[i][nl] == '=') {
            free(e->v[i]);
            e->v[i] = kv;
            return;
        }
    }
    if (e->n + 2 > e->cap) {
        e->cap = e->cap ? e->cap * 2 : 64;
        e->v = realloc(e->v, (size_t)e->cap * sizeof *e->v);
        if (!e->v)
            run_die(1, "out of memory");
    }
    e->v[e->n++] = kv;
    e->v[e->n] = NULL;
}

static void run_env_free(run_env *e)
{
    for (int i = 0; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
}

/* The child side of a fork: nothing here may allocate after the environment
 * was built, and every failure ends the child with 127 as a shell would. */
static void run_child(const run_opts *o, run_rank *r, bool remote, char **argv, char **envp,
                      int out_w, int err_w, int in_r, pid_t parent)
{
    setpgid(0, 0);
    /* A launcher that dies without cleaning up (SIGKILL) still takes its
     * ranks with it; the getppid() check closes the race with an early death. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    dup2(in_r, 0);
    dup2(out_w, 1);
    dup2(err_w, 2);
    if (in_r > 2)
        close(in_r);
    if (out_w > 2)
        close(out_w);
    if (err_w > 2)
        close(err_w);
    if (!remote)
        npi_run_bind_core(o->bind, r->local_rank, r->local_size);
    environ = envp;
    execvp(argv[0], argv);
    fprintf(stderr, "numpush-run: rank %d: cannot run %s: %s\n", r->rank, argv[0], strerror(errno));
    _exit(127);
}

static const char *run_self_exe(void)
{
    static char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0)
        return "numpush-run";
    path[n] = '\0';
    return path;
}

/* Build the rsh command line that starts the agent on a remote host. */
static char **run_remote_argv(const run_opts *o, const char *host)
{
    int cap = 32;
    for (char **p = o->prog; *p; p++)
        cap++;
    char **v = calloc((size_t)cap, sizeof *v);
    char *rsh = strdup(o->rsh);
    if (!v || !rsh)
        run_die(1, "out of memory");
    int n = 0;
    for (char *save = NULL, *t = strtok_r(rsh, " \t", &save); t && n < 8;
         t = strtok_r(NULL, " \t", &save))
        v[n++] = t;
    if (n == 0)
        run_die(1, "--rsh: empty command");
    v[n++] = (char *)host;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        strcpy(cwd, "/");
    v[n++] = run_shell_quote(run_self_exe());
    v[n++] = "--agent";
    v[n++] = "--wdir";
    v[n++] = run_shell_quote(cwd);
    v[n++] = "--bind-to";
    v[n++] = o->bind == NPI_RUN_BIND_CORE ? "core" : o->bind == NPI_RUN_BIND_NONE ? "none" : "auto";
    v[n++] = "--";
    for (char **p = o->prog; *p; p++)
        v[n++] = run_shell_quote(*p);
    v[n] = NULL;
    return v;
}

/* Local addresses a remote rank may reach us on: the source address of the
 * route towards that host first (when its name resolves), then every
 * non-loopback IPv4 address of this machine. */
static void run_store_addrs(const char *host, int port, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM}, *ai = NULL;
    if (!getaddrinfo(host, "9", &hints, &ai) && ai) {
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in me;
        socklen_t ml = sizeof me;
        if (s >= 0 && !connect(s, ai->ai_addr, ai->ai_addrlen) &&
            !getsockname(s, (struct sockaddr *)&me, &ml)) {
            char a[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &me.sin_addr, a, sizeof a);
            len += (size_t)snprintf(out + len, n - len, "%s,", a);
        }
        if (s >= 0)
            close(s);
        freeaddrinfo(ai);
    }
    struct ifaddrs *ifs = NULL;
    if (!getifaddrs(&ifs)) {
        for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
            if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
                (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
                continue;
            char a[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof a);
            if (strstr(out, a) == NULL && len + strlen(a) + 2 < n)
                len += (size_t)snprintf(out + len, n - len, "%s,", a);
        }
        freeifaddrs(ifs);
    }
    snprintf(out + len, n - len, "127.0.0.1:%d", port);
}

static void run_spawn(const run_opts *o, run_rank *r, const char *secret, int port)
{
    const run_host *h = &o->hosts.v[r->host];
    bool remote = !h->local;
    char num[32], addrs[1024];
    run_env env = {0};
    if (!remote)
        for (char **e = environ; *e; e++) {
            char *eq = strchr(*e, '=');
            if (!eq)
                continue;
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(eq - *e), *e);
            run_env_set(&env, name, eq + 1);
        }
    for (int i = 0; i < o->nx; i++) {
        char *eq = strchr(o->xvars[i], '=');
        if (eq) {
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(eq - o->xvars[i]), o->xvars[i]);
            run_env_set(&env, name, eq + 1);
        } else if (getenv(o->xvars[i])) {
            run_env_set(&env, o->xvars[i], getenv(o->xvars[i]));
        }
    }
    snprintf(num, sizeof num, "%d", r->rank);
    run_env_set(&env, "NUMPUSH_RANK", num);
    snprintf(num, sizeof num, "%d", run_nranks);
    run_env_set(&env, "NUMPUSH_SIZE", num);
    snprintf(num, sizeof num, "%d", r->local_rank);
    run_env_set(&env, "NUMPUSH_LOCAL_RANK", num);
    snprintf(num, sizeof num, "%d", r->local_size);
    run_env_set(&env, "NUMPUSH_LOCAL_SIZE", num);
    run_env_set(&env, "NUMPUSH_JOBID", run_jobid);
    run_env_set(&env, "NUMPUSH_SECRET", secret);
    if (remote) {
        run_store_addrs(h->name, port, addrs, sizeof addrs);
        /* Hosts reached through --rsh may share this machine's hostname (network
         * namespaces, containers); the name the user gave them is what tells
         * their ranks apart, unless the user exported NUMPUSH_NODE. */
        bool user_node = false;
        for (int i = 0; i < o->nx; i++)
            user_node |= !strncmp(o->xvars[i], "NUMPUSH_NODE", 12);
        if (!user_node)
            run_env_set(&env, "NUMPUSH_NODE", h->name);
    } else {
        snprintf(addrs, sizeof addrs, "127.0.0.1:%d", port);
    }
    run_env_set(&env, "NUMPUSH_RUN_ADDR", addrs);

    int outp[2], errp[2], inp[2] = {-1, -1};
    if (pipe2(outp, O_CLOEXEC) || pipe2(errp, O_CLOEXEC))
        run_die(1, "pipe: %s", strerror(errno));
    int in_r;
    if (remote) {
        if (pipe2(inp, O_CLOEXEC))
            run_die(1, "pipe: %s", strerror(errno));
        in_r = inp[0];
    } else if (r->rank == 0 && !isatty(0)) {
        in_r = 0; /* Rank 0 reads the launcher's stdin, as with mpirun. */
    } else {
        in_r = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    char **argv = remote ? run_remote_argv(o, h->name) : o->prog;
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        run_die(1, "fork: %s", strerror(errno));
    if (pid == 0)
        run_child(o, r, remote, argv, env.v, outp[1], errp[1], in_r, parent);
    setpgid(pid, pid);
    r->pid = pid;
    if (run_watchdog_fd >= 0)
        run_write_all(run_watchdog_fd, (const char *)&pid, sizeof pid);
    close(outp[1]);
    close(errp[1]);
    if (in_r > 0)
        close(in_r);
    r->out = (run_stream){.fd = outp[0], .out = 1};
    r->err = (run_stream){.fd = errp[0], .out = 2};
    r->in_fd = -1;
    if (remote) {
        /* The agent reads its environment from stdin, so the secret never
         * shows in a remote process list; then stdin stays open as the
         * agent's lifeline. */
        for (int i = 0; i < env.n; i++) {
            if (strchr(env.v[i], '\n'))
                continue;
            run_write_all(inp[1], env.v[i], strlen(env.v[i]));
            run_write_all(inp[1], "\n", 1);
        }
        run_write_all(inp[1], "\n", 1);
        r->in_fd = inp[1];
        /* The remote argv (a few quoted words per rank) is kept: freeing it
         * would need ownership tracking for no gain in a one-shot launcher. */
    }
    run_env_free(&env);
}

/* ------------------------------------------------------------ ending the job */

static void run_signal_all(int sig)
{
    for (int i = 0; i < run_nranks; i++) {
        run_rank *r = &run_ranks[i];
        if (r->pid <= 0 || r->exited)
            continue;
        if (r->in_fd >= 0 && sig == SIGTERM) {
            close(r->in_fd);
            r->in_fd = -1;
        }
        if (killpg(r->pid, sig) && errno == ESRCH)
            kill(r->pid, sig);
    }
}

static const char *run_signame(int sig)
{
    const char *s = sigabbrev_np(sig);
    static char buf[32];
    snprintf(buf, sizeof buf, "SIG%s", s ? s : "?");
    return buf;
}

/* Remove this job's segments: a rank killed by a signal cannot unlink its
 * own.  The job id is random [a-z0-9]{10}, so matching it anywhere in a
 * "numpush*" name cannot hit another job's. */
void npi_run_shm_cleanup(const char *jobid)
{
    if (!jobid || strlen(jobid) < 4)
        return;
    DIR *d = opendir("/dev/shm");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strncmp(e->d_name, "numpush", 7) && strstr(e->d_name, jobid)) {
            char path[512];
            snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
            unlink(path);
        }
    }
    closedir(d);
}

static void run_on_abort(void *arg, int rank, int code)
{
    int msg[2] = {rank, code};
    if (write(run_abort_pipe[1], msg, sizeof msg) < 0) {
        /* The pipe is only full if the main loop is gone; nothing to do. */
    }
}

/* The watchdog outlives a launcher killed by SIGKILL: PR_SET_PDEATHSIG ends
 * the ranks themselves, but not what they started, nor does it remove their
 * segments.  It is forked before any thread or rank exists, learns every
 * rank's process group through a pipe, and on the pipe's EOF (the launcher
 * is gone, however it ended) kills those groups and removes the job's
 * segments. */
static void run_watchdog_start(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC))
        return;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return;
    }
    if (pid > 0) {
        close(p[0]);
        run_watchdog_fd = p[1];
        return;
    }
    /* Signals aimed at the launcher's group (a terminal's ^C) must not end
     * the watchdog before the launcher has done its own cleanup. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    close(p[1]);
    for (int fd = 3; fd < 1024; fd++)
        if (fd != p[0])
            close(fd);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        close(devnull);
    }
    size_t n = 0, cap = 64;
    pid_t *groups = malloc(cap * sizeof *groups);
    pid_t g;
    while (groups && read(p[0], &g, sizeof g) == (ssize_t)sizeof g) {
        if (n == cap) {
            pid_t *more = realloc(groups, 2 * cap * sizeof *groups);
            if (!more)
                break;
            groups = more;
            cap *= 2;
        }
        groups[n++] = g;
    }
    for (size_t i = 0; groups && i < n; i++)
        killpg(groups[i], SIGKILL);
    npi_run_shm_cleanup(run_jobid);
    _exit(0);
}

static int64_t run_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How the job is ending: the first reason wins and sets the exit code. */
static bool run_stopping;
static int run_exit_code;
static int64_t run_kill_at = -1;

/* Begin ending the job: TERM now, KILL after the grace period. */
static void run_stop(int code)
{
    if (run_stopping)
        return;
    run_stopping = true;
    run_exit_code = code;
    run_signal_all(SIGTERM);
    run_kill_at = run_now_ms() + RUN_GRACE_MS;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--agent"))
        return npi_run_agent_main(argc, argv);
    run_opts o = {0};
    run_parse_args(argc, argv, &o);
    /* Two pipes and a store connection per rank: large jobs need more
     * descriptors than the usual soft limit of 1024. */
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    run_tag = o.tag_output;
    run_nranks = o.np;

    char err[512];
    for (int h = 0; h < o.hosts.n; h++) {
        if (o.hosts.v[h].local || strcmp(o.rsh, "ssh"))
            continue;
        /* With ssh, a name that does not resolve can only fail later and
         * noisily; say so now.  A custom --rsh may use names of its own. */
        struct addrinfo *ai = NULL;
        int rc = getaddrinfo(o.hosts.v[h].name, NULL, NULL, &ai);
        if (rc)
            run_die(1, "unknown host '%s': %s", o.hosts.v[h].name, gai_strerror(rc));
        freeaddrinfo(ai);
    }
    bool any_local = false, any_remote = false;
    for (int h = 0; h < o.hosts.n; h++) {
        any_local |= o.hosts.v[h].local;
        any_remote |= !o.hosts.v[h].local;
    }
    if (any_local && !run_prog_exists(o.prog[0]))
        run_die(127, "program '%s' not found%s", o.prog[0],
                strchr(o.prog[0], '/') ? " or not executable" : " in PATH");

    /* Place ranks by slot, host after host; more ranks than slots wrap around
     * and fill the hosts again (oversubscription). */
    run_ranks = calloc((size_t)run_nranks, sizeof *run_ranks);
    int *per_host = calloc((size_t)o.hosts.n, sizeof *per_host);
    if (!run_ranks || !per_host)
        run_die(1, "out of memory");
    for (int r = 0; r < run_nranks;)
        for (int h = 0; h < o.hosts.n && r < run_nranks; h++)
            for (int s = 0; s < o.hosts.v[h].slots && r < run_nranks; s++, r++) {
                run_ranks[r].rank = r;
                run_ranks[r].host = h;
                run_ranks[r].local_rank = per_host[h]++;
            }
    for (int r = 0; r < run_nranks; r++)
        run_ranks[r].local_size = per_host[run_ranks[r].host];

    run_make_id(run_jobid, sizeof run_jobid, 10);
    char secret[64];
    run_make_secret(secret, sizeof secret);

    run_watchdog_start();

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGQUIT);
    /* Blocked before the store thread starts, so only the signalfd sees them. */
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0 || pipe2(run_abort_pipe, O_CLOEXEC | O_NONBLOCK))
        run_die(1, "signalfd/pipe: %s", strerror(errno));

    npi_kvs *store = NULL;
    if (npi_kvs_start(&store, any_remote ? NULL : "127.0.0.1", 0, secret, run_nranks, run_on_abort,
                      NULL, err, sizeof err))
        run_die(1, "cannot start the rendezvous store: %s", err);
    int port = npi_kvs_port(store);

    int64_t start = run_now_ms();
    for (int r = 0; r < run_nranks; r++)
        run_spawn(&o, &run_ranks[r], secret, port);

    int live = run_nranks;
    int64_t drain_until = -1;
    int64_t timeout_at = o.timeout_s > 0 ? start + (int64_t)(o.timeout_s * 1000) : -1;
    struct pollfd *pfd = calloc((size_t)(2 * run_nranks + 2), sizeof *pfd);
    run_stream **pstream = calloc((size_t)(2 * run_nranks + 2), sizeof *pstream);
    run_rank **prank = calloc((size_t)(2 * run_nranks + 2), sizeof *prank);
    if (!pfd || !pstream || !prank)
        run_die(1, "out of memory");

    for (;;) {
        int n = 0;
        pfd[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
        pfd[n++] = (struct pollfd){.fd = run_abort_pipe[0], .events = POLLIN};
        int open_streams = 0;
        for (int i = 0; i < run_nranks; i++) {
            run_stream *ss[2] = {&run_ranks[i].out, &run_ranks[i].err};
            for (int k = 0; k < 2; k++) {
                if (ss[k]->fd < 0)
                    continue;
                open_streams++;
                pstream[n] = ss[k];
                prank[n] = &run_ranks[i];
                pfd[n++] = (struct pollfd){.fd = ss[k]->fd, .events = POLLIN};
            }
        }
        int64_t now = run_now_ms();
        if (live == 0) {
            if (open_streams == 0)
                break;
            if (drain_until < 0)
                drain_until = now + RUN_DRAIN_MS;
            if (now >= drain_until)
                break;
        }
        if (timeout_at >= 0 && now >= timeout_at && !run_stopping) {
            fprintf(stderr, "numpush-run: job exceeded --timeout %g s; stopping %d rank(s)\n",
                    o.timeout_s, live);
            run_stop(124);
        }
        if (run_kill_at >= 0 && now >= run_kill_at) {
            run_signal_all(SIGKILL);
            run_kill_at = -1;
        }
        int64_t next = -1;
        int64_t cands[3] = {run_stopping ? -1 : timeout_at, run_kill_at,
                            live == 0 ? drain_until : -1};
        for (int k = 0; k < 3; k++)
            if (cands[k] >= 0 && (next < 0 || cands[k] < next))
                next = cands[k];
        int wait_ms = next < 0 ? -1 : (int)(next > now ? next - now : 0);
        int rc = poll(pfd, (nfds_t)n, wait_ms);
        if (rc < 0 && errno != EINTR)
            run_die(1, "poll: %s", strerror(errno));
        for (int i = 2; i < n; i++)
            if (pfd[i].revents)
                run_stream_read(prank[i], pstream[i]);
        if (pfd[1].revents & POLLIN) {
            int msg[2];
            while (read(run_abort_pipe[0], msg, sizeof msg) == (ssize_t)sizeof msg) {
                if (!run_stopping)
                    fprintf(stderr,
                            "numpush-run: rank %d called abort with code %d; stopping the job\n",
                            msg[0], msg[1]);
                run_stop(msg[1] ? msg[1] : 1);
            }
        }
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo == SIGCHLD)
                    continue;
                int sig = (int)si.ssi_signo;
                if (run_stopping) {
                    /* A second interrupt means "now". */
                    run_signal_all(SIGKILL);
                    continue;
                }
                fprintf(stderr, "numpush-run: got %s; stopping %d rank(s)\n", run_signame(sig),
                        live);
                run_stop(128 + sig);
            }
            pid_t pid;
            int status;
            while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                for (int i = 0; i < run_nranks; i++) {
                    run_rank *r = &run_ranks[i];
                    if (r->pid != pid || r->exited)
                        continue;
                    r->exited = true;
                    r->status = status;
                    live--;
                    if (r->in_fd >= 0) {
                        close(r->in_fd);
                        r->in_fd = -1;
                    }
                    /* Grandchildren left in the rank's group go with it. */
                    killpg(pid, SIGKILL);
                    bool failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
                    if (failed && !run_stopping) {
                        const char *host = o.hosts.v[r->host].name;
                        if (WIFSIGNALED(status))
                            fprintf(stderr,
                                    "numpush-run: rank %d (pid %d on %s) was killed by %s; "
                                    "stopping the other ranks\n",
                                    r->rank, (int)pid, host, run_signame(WTERMSIG(status)));
                        else
                            fprintf(stderr,
                                    "numpush-run: rank %d (pid %d on %s) exited with code %d; "
                                    "stopping the other ranks\n",
                                    r->rank, (int)pid, host, WEXITSTATUS(status));
                        run_stop(WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                                     : WEXITSTATUS(status));
                    }
                }
            }
        }
    }
    for (int i = 0; i < run_nranks; i++) {
        run_stream *ss[2] = {&run_ranks[i].out, &run_ranks[i].err};
        for (int k = 0; k < 2; k++) {
            if (ss[k]->fd >= 0) {
                run_stream_flush(&run_ranks[i], ss[k], true);
                close(ss[k]->fd);
            }
            free(ss[k]->buf);
        }
    }
    npi_kvs_stop(store);
    npi_run_shm_cleanup(run_jobid);
    return run_exit_code;
}
