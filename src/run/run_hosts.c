/*
 * Host lists for numpush-run: -H/--host "h1:slots,h2" and --hostfile lines
 * "host slots=N" with '#' comments, as mpirun reads them.
 */
#include "config.h"

#include "run.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int hosts_add(run_hosts *hosts, const char *name, size_t len, int slots)
{
    /* A host named twice adds its slots, as mpirun does with repeated names. */
    for (int i = 0; i < hosts->n; i++) {
        if (strlen(hosts->v[i].name) == len && !strncmp(hosts->v[i].name, name, len)) {
            hosts->v[i].slots += slots;
            return 0;
        }
    }
    if (hosts->n == hosts->cap) {
        int cap = hosts->cap ? hosts->cap * 2 : 8;
        run_host *v = realloc(hosts->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        hosts->v = v;
        hosts->cap = cap;
    }
    run_host *h = &hosts->v[hosts->n];
    h->name = strndup(name, len);
    if (!h->name)
        return -1;
    h->slots = slots;
    h->local = npi_run_host_is_local(h->name);
    hosts->n++;
    return 0;
}

static bool hosts_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != '_' && c != '@')
            return false;
    }
    return true;
}

static int hosts_parse_slots(const char *s, size_t len, int *out)
{
    if (len == 0 || len > 9)
        return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1)
        return -1;
    *out = v;
    return 0;
}

int npi_run_hosts_parse_list(run_hosts *hosts, const char *list, char *err, size_t errlen)
{
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        size_t nlen = colon ? (size_t)(colon - p) : len;
        int slots = 1;
        if (!hosts_name_ok(p, nlen) ||
            (colon && hosts_parse_slots(colon + 1, len - nlen - 1, &slots))) {
            snprintf(err, errlen, "bad host entry '%.*s' in '%s' (expected host[:slots])", (int)len,
                     p, list);
            return -1;
        }
        if (hosts_add(hosts, p, nlen, slots)) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    if (hosts->n == 0) {
        snprintf(err, errlen, "empty host list");
        return -1;
    }
    return 0;
}

int npi_run_hosts_parse_file(run_hosts *hosts, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open hostfile %s: %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *tok[4];
        int ntok = 0;
        for (char *save = NULL, *t = strtok_r(line, " \t\r\n", &save); t;
             t = strtok_r(NULL, " \t\r\n", &save)) {
            if (ntok == 4)
                break;
            tok[ntok++] = t;
        }
        if (ntok == 0)
            continue;
        int slots = 1;
        bool ok = hosts_name_ok(tok[0], strlen(tok[0])) && ntok <= 2;
        if (ok && ntok == 2) {
            /* Open MPI writes "slots=N"; MPICH writes "host:N".  Take both. */
            const char *v = !strncmp(tok[1], "slots=", 6)        ? tok[1] + 6
                            : !strncmp(tok[1], "max_slots=", 10) ? tok[1] + 10
                                                                 : NULL;
            ok = v && !hosts_parse_slots(v, strlen(v), &slots);
        }
        char *colon = ok && ntok == 1 ? strchr(tok[0], ':') : NULL;
        if (colon) {
            ok = !hosts_parse_slots(colon + 1, strlen(colon + 1), &slots);
            *colon = '\0';
        }
        if (!ok) {
            snprintf(err, errlen, "hostfile %s line %d: expected 'host [slots=N]'", path, lineno);
            rc = -1;
            break;
        }
        if (hosts_add(hosts, tok[0], strlen(tok[0]), slots)) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
    }
    fclose(f);
    if (rc == 0 && hosts->n == 0) {
        snprintf(err, errlen, "hostfile %s names no host", path);
        rc = -1;
    }
    return rc;
}

bool npi_run_host_is_local(const char *name)
{
    if (!strcmp(name, "localhost") || !strcmp(name, "127.0.0.1") || !strcmp(name, "::1"))
        return true;
    char me[256] = "";
    gethostname(me, sizeof me - 1);
    if (!strcmp(name, me))
        return true;
    /* A short name matches the first label of the full host name. */
    size_t n = strlen(name);
    return !strncmp(me, name, n) && me[n] == '.';
}

void npi_run_hosts_free(run_hosts *hosts)
{
    for (int i = 0; i < hosts->n; i++)
        free(hosts->v[i].name);
    free(hosts->v);
    hosts->v = NULL;
    hosts->n = hosts->cap = 0;
}
