/*
 * numpush-info: what this build of numpush is and how it would run here.
 *
 * Prints the version, the transports compiled in, the node's topology as
 * hwloc sees it (or as NUMPUSH_TOPOLOGY describes it), the bootstrap method
 * and the collective decision table (once those modules provide them), and
 * every NUMPUSH_* setting with its value and where the value came from.
 * It needs no launcher and starts no communication, so it is safe to run
 * anywhere, which is why the quick start uses it as the first demo.
 */
#include "config.h"

#include "npi.h"

#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/*
 * Hooks for sections that other modules print.  They are weak so that this
 * program builds and runs before those modules exist; a module provides one
 * by defining the function with exactly this prototype in the library:
 *
 *   npi_info_bootstrap  (src/core/bootstrap.c): which bootstrap method this
 *       process would use and why (launcher variables seen, PMIx found...).
 *   npi_info_decisions  (src/coll/decide.c): the collective decision table,
 *       one line per collective and size range, with any NUMPUSH_*_ALG
 *       override applied.
 *
 * Each writes its section's lines (indented by two spaces) to out.  Weak
 * references resolve through the shared library at load time; a fully
 * static link does not pull them in, so calling them directly is the better
 * choice once they exist.
 */
void npi_info_bootstrap(FILE *out) __attribute__((weak));
void npi_info_decisions(FILE *out) __attribute__((weak));

static void info_usage(FILE *out)
{
    fprintf(out, "Usage: numpush-info [--help] [--version]\n"
                 "\n"
                 "Print the numpush version, the transports compiled in, the node's topology,\n"
                 "the bootstrap method, the collective decision table and every NUMPUSH_*\n"
                 "setting with its value and where it came from (default or environment).\n"
                 "\n"
                 "  -h, --help     show this help and exit\n"
                 "  -V, --version  print the version and exit\n"
                 "\n"
                 "NUMPUSH_TOPOLOGY replaces the machine's topology with an hwloc synthetic\n"
                 "description (\"pack:2 l3:2 core:2 pu:1\") or an hwloc XML file.\n");
}

static void info_transports(FILE *out)
{
    fprintf(out, "Transports and launcher support compiled in:\n");
    fprintf(out, "  tcp    yes (always)\n");
#ifdef NPI_HAVE_ZMQ
    fprintf(out, "  zmq    yes\n");
#else
    fprintf(out, "  zmq    no (libzmq absent or --without-zmq)\n");
#endif
#ifdef NPI_HAVE_OFI
    fprintf(out, "  ofi    yes\n");
#else
    fprintf(out, "  ofi    no (libfabric absent or --without-ofi)\n");
#endif
#ifdef NPI_HAVE_TIPC
    fprintf(out, "  tipc   yes (kernel support is probed at run time)\n");
#else
    fprintf(out, "  tipc   no (linux/tipc.h not found at configure time)\n");
#endif
#ifdef NPI_HAVE_PMIX
    fprintf(out, "  pmix   yes (bootstrap under Open MPI's mpirun and Slurm)\n");
#else
    fprintf(out, "  pmix   no (libpmix absent or --without-pmix)\n");
#endif
}

/* Whether NUMPUSH_TOPOLOGY names an XML file rather than a synthetic
 * description: an existing file, or anything that looks like a path. */
static bool info_topology_is_xml(const char *v)
{
    size_t n = strlen(v);
    return access(v, F_OK) == 0 || strchr(v, '/') != NULL ||
           (n >= 4 && strcmp(v + n - 4, ".xml") == 0);
}

/* Print the topology summary; returns false (after saying why) if the
 * topology could not be loaded. */
static bool info_topology(FILE *out)
{
    npi_config_source src;
    const char *spec = npi_config_get("NUMPUSH_TOPOLOGY", &src);
    bool custom = spec != NULL && spec[0] != '\0';
    bool xml = custom && info_topology_is_xml(spec);
    hwloc_topology_t topo;
    bool ok = false;

    if (hwloc_topology_init(&topo) != 0) {
        fprintf(out, "Topology: hwloc_topology_init failed\n");
        return false;
    }
    if (custom) {
        int rc =
            xml ? hwloc_topology_set_xml(topo, spec) : hwloc_topology_set_synthetic(topo, spec);
        if (rc != 0) {
            fprintf(out, "Topology: NUMPUSH_TOPOLOGY='%s' is not a valid hwloc %s\n", spec,
                    xml ? "XML file" : "synthetic description (e.g. \"pack:2 l3:2 core:2 pu:1\")");
            goto out;
        }
    }
    if (hwloc_topology_load(topo) != 0) {
        fprintf(out, "Topology: hwloc could not load %s\n", custom ? spec : "this machine");
        goto out;
    }
    if (!custom)
        fprintf(out, "Topology (this machine, from hwloc %s):\n", HWLOC_VERSION);
    else
        fprintf(out, "Topology (NUMPUSH_TOPOLOGY %s \"%s\"):\n", xml ? "XML file" : "synthetic",
                spec);
    static const struct {
        hwloc_obj_type_t type;
        const char *label;
    } kinds[] = {
        {HWLOC_OBJ_PACKAGE, "packages"},
        {HWLOC_OBJ_NUMANODE, "NUMA nodes"},
        {HWLOC_OBJ_L3CACHE, "L3 caches"},
        {HWLOC_OBJ_CORE, "cores"},
        {HWLOC_OBJ_PU, "PUs"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        fprintf(out, "  %-11s %d\n", kinds[i].label, hwloc_get_nbobjs_by_type(topo, kinds[i].type));
    ok = true;
out:
    hwloc_topology_destroy(topo);
    return ok;
}

static void info_bootstrap(FILE *out)
{
    fprintf(out, "Bootstrap:\n");
    if (npi_info_bootstrap != NULL)
        npi_info_bootstrap(out);
    else
        fprintf(out, "  (not reported by this build yet)\n");
}

static void info_decisions(FILE *out)
{
    fprintf(out, "Collective decision table:\n");
    if (npi_info_decisions != NULL)
        npi_info_decisions(out);
    else
        fprintf(out, "  (not reported by this build yet)\n");
}

static void info_settings(FILE *out)
{
    const npi_config_entry *table = npi_config_table();
    int width = 0;
    for (const npi_config_entry *c = table; c->name != NULL; c++)
        if ((int)strlen(c->name) > width)
            width = (int)strlen(c->name);

    fprintf(out, "Settings (name, value, source, description):\n");
    for (const npi_config_entry *c = table; c->name != NULL; c++) {
        npi_config_source src;
        const char *v = npi_config_get(c->name, &src);
        fprintf(out, "  %-*s  %-10s  %-11s  %s\n", width, c->name, v[0] != '\0' ? v : "\"\"",
                src == NPI_CONFIG_ENV ? "environment" : "default", c->description);
    }

    /* A misspelt variable is otherwise silently ignored, so point it out. */
    bool header = false;
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, "NUMPUSH_", 8) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        size_t n = eq != NULL ? (size_t)(eq - *e) : strlen(*e);
        bool known = false;
        for (const npi_config_entry *c = table; c->name != NULL && !known; c++)
            known = strlen(c->name) == n && strncmp(c->name, *e, n) == 0;
        if (known)
            continue;
        if (!header)
            fprintf(out, "Other NUMPUSH_* variables set (launcher variables, or typos?):\n");
        header = true;
        fprintf(out, "  %.*s\n", (int)n, *e);
    }
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            info_usage(stdout);
            return EXIT_SUCCESS;
        }
        if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
            printf("numpush-info (numpush) %s\n", NP_VERSION_STRING);
            return EXIT_SUCCESS;
        }
        fprintf(stderr, "numpush-info: unknown argument '%s'\n", argv[i]);
        info_usage(stderr);
        return 2;
    }

    FILE *out = stdout;
    fprintf(out, "numpush %s\n\n", NP_VERSION_STRING);
    info_transports(out);
    fputc('\n', out);
    bool topo_ok = info_topology(out);
    fputc('\n', out);
    info_bootstrap(out);
    fputc('\n', out);
    info_decisions(out);
    fputc('\n', out);
    info_settings(out);
    if (!topo_ok) {
        fprintf(stderr, "numpush-info: could not load the topology (see above)\n");
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}
