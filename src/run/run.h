/*
 * Internal header of the numpush-run launcher (src/run/numpush_run.c and its
 * helpers).  Nothing here is part of libnumpush.
 */
#ifndef NUMPUSH_RUN_H
#define NUMPUSH_RUN_H

#include <stdbool.h>
#include <stddef.h>

/* One host of the job and how many ranks it takes before oversubscription. */
typedef struct run_host {
    char *name;
    int slots;
    bool local; /* started by fork, not through --rsh */
} run_host;

typedef struct run_hosts {
    run_host *v;
    int n, cap;
} run_hosts;

/* Parse "h1:slots,h2,h3:2" and append to hosts.  Returns 0, or -1 with a
 * one-line reason in err. */
int npi_run_hosts_parse_list(run_hosts *hosts, const char *list, char *err, size_t errlen);

/* Parse a hostfile: "host [slots=N]" per line, '#' comments, blank lines. */
int npi_run_hosts_parse_file(run_hosts *hosts, const char *path, char *err, size_t errlen);

/* Whether name denotes the machine the launcher runs on. */
bool npi_run_host_is_local(const char *name);

void npi_run_hosts_free(run_hosts *hosts);

/* Remove /dev/shm/numpush* segments whose name carries jobid. */
void npi_run_shm_cleanup(const char *jobid);

/* Run as the remote agent (numpush-run --agent ...): see run_agent.c. */
int npi_run_agent_main(int argc, char **argv);

/* Bind the calling process to one core chosen by its local rank (hwloc).
 * Returns 0 or -1 (a warning has been printed). */
/* How ranks are bound to cores (--bind-to). */
typedef enum npi_run_bind {
    NPI_RUN_BIND_AUTO, /* core when this host's ranks fit its cores, else none */
    NPI_RUN_BIND_CORE,
    NPI_RUN_BIND_NONE
} npi_run_bind;

/* Parse "auto", "core" or "none"; -1 for anything else. */
int npi_run_bind_parse(const char *text);

/* Bind the calling process, local rank local_rank of local_size on this
 * host, as mode says.  Returns 0 when bound or when mode leaves it unbound. */
int npi_run_bind_core(npi_run_bind mode, int local_rank, int local_size);

#endif
