/*
 * PMI-1 over PMI_FD, the "simple" wire protocol of MPICH's hydra: text lines
 * of space-separated name=value pairs on an inherited socket.  We use init,
 * get_maxes, get_appnum, get_my_kvsname, put, get, barrier_in, finalize and
 * abort.
 *
 * Values are arbitrary bytes but PMI-1 values are words, so they travel as
 * hex after a one-letter tag: "v<hex>" for a value that fits vallen_max, and
 * "c<count>" for one split over the keys "<key>~<i>".  Keys with characters
 * other than [A-Za-z0-9._-], or too long for keylen_max, are replaced by a
 * hash ("h<16 hex>").  PMI-1 get does not wait, so a missing key is polled
 * until NUMPUSH_BOOT_TIMEOUT.
 */
#include "config.h"

#include "boot_methods.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PMI_LINE_MAX 4096

typedef struct pmi_impl {
    int fd;
    char kvs[256];
    int keylen_max, vallen_max;
    char in[PMI_LINE_MAX + 1];
    size_t in_len;
} pmi_impl;

static int pmi_send(pmi_impl *p, const char *line)
{
    size_t n = strlen(line);
    while (n > 0) {
        ssize_t w = write(p->fd, line, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        line += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read one reply line (without its newline) into out. */
static int pmi_recv(pmi_impl *p, char *out, size_t cap)
{
    for (;;) {
        char *nl = memchr(p->in, '\n', p->in_len);
        if (nl) {
            size_t n = (size_t)(nl - p->in);
            snprintf(out, cap, "%.*s", (int)n, p->in);
            memmove(p->in, nl + 1, p->in_len - n - 1);
            p->in_len -= n + 1;
            return 0;
        }
        if (p->in_len >= PMI_LINE_MAX)
            return -1;
        ssize_t r = read(p->fd, p->in + p->in_len, PMI_LINE_MAX - p->in_len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p->in_len += (size_t)r;
    }
}

/* The value of name in a reply line ("cmd=x rc=0 name=value ..."). */
static bool pmi_field(const char *line, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *s = line; s && *s;) {
        while (*s == ' ')
            s++;
        if (!strncmp(s, name, nl) && s[nl] == '=') {
            const char *v = s + nl + 1, *end = strchr(v, ' ');
            size_t len = end ? (size_t)(end - v) : strlen(v);
            snprintf(out, cap, "%.*s", (int)len, v);
            return true;
        }
        s = strchr(s, ' ');
    }
    return false;
}

/* One request and its reply; the reply must carry cmd=expect.  *rc gets the
 * reply's rc (0 when it has none). */
static np_err pmi_call(pmi_impl *p, const char *req, const char *expect, char *reply, size_t cap,
                       int *rc_out)
{
    char cmd[64];
    if (pmi_send(p, req) || pmi_recv(p, reply, cap))
        return npi_error(NP_ERR_BOOTSTRAP,
                         "bootstrap pmi1: lost the process manager on PMI_FD "
                         "during %.*s",
                         (int)strcspn(req, " \n"), req);
    if (!pmi_field(reply, "cmd", cmd, sizeof cmd) || strcmp(cmd, expect))
        return npi_error(NP_ERR_BOOTSTRAP, "bootstrap pmi1: expected cmd=%s, got '%.80s'", expect,
                         reply);
    char rc[16];
    *rc_out = pmi_field(reply, "rc", rc, sizeof rc) ? atoi(rc) : 0;
    return NP_OK;
}

/* A key PMI-1 will take as it is, or a hash of it. */
static void pmi_key(const pmi_impl *p, const char *key, const char *suffix, char *out, size_t cap)
{
    char full[NPI_BOOT_NODE_MAX + 1100];
    snprintf(full, sizeof full, "%s%s", key, suffix);
    bool plain = strlen(full) < (size_t)p->keylen_max && strlen(full) < cap;
    for (const char *c = full; *c && plain; c++)
        plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                *c == '.' || *c == '_' || *c == '-' || *c == '~';
    if (plain) {
        memcpy(out, full, strlen(full) + 1);
        return;
    }
    uint64_t h = 1469598103934665603ull;
    for (const char *c = full; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    snprintf(out, cap, "h%016llx", (unsigned long long)h);
}

static np_err pmi_put_raw(npi_boot *b, pmi_impl *p, const char *key, const char *value)
{
    size_t n = strlen(p->kvs) + strlen(key) + strlen(value) + 64;
    char *req = malloc(n), reply[256];
    if (!req)
        return npi_error(NP_ERR_NOMEM, "bootstrap pmi1: out of memory");
    snprintf(req, n, "cmd=put kvsname=%s key=%s value=%s\n", p->kvs, key, value);
    int rc = 0;
    np_err e = pmi_call(p, req, "put_result", reply, sizeof reply, &rc);
    free(req);
    if (!e && rc)
        e = npi_error(NP_ERR_BOOTSTRAP, "bootstrap pmi1: put of %s refused: %.100s", key, reply);
    return e;
}

static np_err pmi_put(npi_boot *b, const char *key, const void *val, size_t len)
{
    pmi_impl *p = b->impl;
    static const char hex[] = "0123456789abcdef";
    /* Room per piece: vallen_max less the tag and a terminating NUL. */
    size_t piece = (size_t)(p->vallen_max - 2) / 2;
    size_t count = len <= piece ? 1 : (len + piece - 1) / piece;
    char k[256];
    np_err e = NP_OK;
    char *value = malloc(2 * piece + 2);
    if (!value)
        return npi_error(NP_ERR_NOMEM, "bootstrap pmi1: out of memory");
    for (size_t i = 0; i < count && !e; i++) {
        const unsigned char *src = (const unsigned char *)val + i * piece;
        size_t m = len - i * piece < piece ? len - i * piece : piece;
        value[0] = 'v';
        for (size_t j = 0; j < m; j++) {
            value[1 + 2 * j] = hex[src[j] >> 4];
            value[2 + 2 * j] = hex[src[j] & 15];
        }
        value[1 + 2 * m] = '\0';
        char suffix[24] = "";
        if (count > 1)
            snprintf(suffix, sizeof suffix, "~%zu", i);
        pmi_key(p, key, suffix, k, sizeof k);
        e = pmi_put_raw(b, p, k, value);
    }
    if (!e && count > 1) {
        snprintf(value, 2 * piece + 2, "c%zu", count);
        pmi_key(p, key, "", k, sizeof k);
        e = pmi_put_raw(b, p, k, value);
    }
    free(value);
    return e;
}

/* Get one word; *found false when the process manager does not have it yet. */
static np_err pmi_get_raw(npi_boot *b, pmi_impl *p, const char *key, char *out, size_t cap,
                          bool *found)
{
    char req[512];
    char *reply = malloc(PMI_LINE_MAX + 1);
    if (!reply)
        return npi_error(NP_ERR_NOMEM, "bootstrap pmi1: out of memory");
    snprintf(req, sizeof req, "cmd=get kvsname=%s key=%s\n", p->kvs, key);
    int rc = 0;
    np_err e = pmi_call(p, req, "get_result", reply, PMI_LINE_MAX + 1, &rc);
    *found = !e && rc == 0 && pmi_field(reply, "value", out, cap);
    free(reply);
    return e;
}

static int pmi_unhex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode "v<hex>" into dst at offset off (up to cap); returns the byte count. */
static long pmi_decode(const char *word, unsigned char *dst, size_t off, size_t cap)
{
    size_t n = strlen(word + 1);
    if (word[0] != 'v' || n % 2)
        return -1;
    for (size_t j = 0; j < n / 2; j++) {
        int hi = pmi_unhex(word[1 + 2 * j]), lo = pmi_unhex(word[2 + 2 * j]);
        if (hi < 0 || lo < 0)
            return -1;
        if (off + j < cap)
            dst[off + j] = (unsigned char)(hi << 4 | lo);
    }
    return (long)(n / 2);
}

static np_err pmi_get(npi_boot *b, const char *key, void *val, size_t cap, size_t *len)
{
    pmi_impl *p = b->impl;
    char k[256];
    char *word = malloc((size_t)p->vallen_max + 2);
    if (!word)
        return npi_error(NP_ERR_NOMEM, "bootstrap pmi1: out of memory");
    pmi_key(p, key, "", k, sizeof k);
    uint64_t deadline = npi_now_ns() + (uint64_t)npi_boot_timeout_ms() * 1000000ull;
    bool found = false;
    np_err e;
    unsigned delay_us = 200;
    while (!(e = pmi_get_raw(b, p, k, word, (size_t)p->vallen_max + 2, &found)) && !found) {
        if (npi_now_ns() >= deadline) {
            e = npi_error(NP_ERR_TIMEOUT,
                          "bootstrap pmi1: get of %s timed out after %d ms "
                          "(NUMPUSH_BOOT_TIMEOUT)",
                          key, npi_boot_timeout_ms());
            break;
        }
        usleep(delay_us);
        if (delay_us < 20000)
            delay_us *= 2;
    }
    size_t total = 0;
    if (!e && word[0] == 'c') {
        long count = atol(word + 1);
        for (long i = 0; i < count && !e; i++) {
            char suffix[24];
            snprintf(suffix, sizeof suffix, "~%ld", i);
            pmi_key(p, key, suffix, k, sizeof k);
            e = pmi_get_raw(b, p, k, word, (size_t)p->vallen_max + 2, &found);
            long m = !e && found ? pmi_decode(word, val, total, cap) : -1;
            if (!e && m < 0)
                e = npi_error(NP_ERR_BOOTSTRAP,
                              "bootstrap pmi1: piece %ld of %s is missing or "
                              "malformed",
                              i, key);
            total += m > 0 ? (size_t)m : 0;
        }
    } else if (!e) {
        long m = pmi_decode(word, val, 0, cap);
        if (m < 0)
            e = npi_error(NP_ERR_BOOTSTRAP, "bootstrap pmi1: value of %s is malformed", key);
        total = m > 0 ? (size_t)m : 0;
    }
    free(word);
    if (e)
        return e;
    if (len)
        *len = total;
    if (total > cap)
        return npi_error(NP_ERR_TRUNCATE,
                         "bootstrap pmi1: get of %s: value has %zu bytes, room "
                         "for %zu",
                         key, total, cap);
    return NP_OK;
}

static np_err pmi_fence(npi_boot *b)
{
    pmi_impl *p = b->impl;
    char reply[256];
    int rc;
    np_err e = pmi_call(p, "cmd=barrier_in\n", "barrier_out", reply, sizeof reply, &rc);
    if (!e && rc)
        e = npi_error(NP_ERR_PEER, "bootstrap pmi1: barrier failed: %.100s", reply);
    return e;
}

static void pmi_finalize(npi_boot *b)
{
    pmi_impl *p = b->impl;
    if (!p)
        return;
    char reply[256];
    int rc;
    pmi_call(p, "cmd=finalize\n", "finalize_ack", reply, sizeof reply, &rc);
    npi_error_clear();
    close(p->fd);
    free(p);
    b->impl = NULL;
}

static void pmi_abort(npi_boot *b, int code)
{
    pmi_impl *p = b->impl;
    char req[64];
    snprintf(req, sizeof req, "cmd=abort exitcode=%d\n", code);
    if (p)
        pmi_send(p, req);
}

static const npi_boot_ops pmi_ops = {
    .put = pmi_put,
    .get = pmi_get,
    .fence = pmi_fence,
    .finalize = pmi_finalize,
    .abort = pmi_abort,
};

static bool pmi_detect(char *why, size_t n)
{
    const char *fd = getenv("PMI_FD");
    if (!fd || !*fd)
        return false;
    snprintf(why, n, "PMI_FD=%s", fd);
    return true;
}

static np_err pmi_init(npi_boot *b)
{
    int fd;
    if (!npi_boot_env_int("PMI_FD", &fd) || fd < 0)
        return npi_error(NP_ERR_BOOTSTRAP, "bootstrap pmi1: PMI_FD is not a file descriptor");
    if (!npi_boot_env_int("PMI_RANK", &b->rank) || !npi_boot_env_int("PMI_SIZE", &b->size))
        return npi_error(NP_ERR_BOOTSTRAP, "bootstrap pmi1: PMI_FD is set but PMI_RANK or "
                                           "PMI_SIZE is not");
    pmi_impl *p = calloc(1, sizeof *p);
    if (!p)
        return npi_error(NP_ERR_NOMEM, "bootstrap pmi1: out of memory");
    p->fd = fd;
    char reply[512], v[256];
    int rc = 0;
    np_err e = pmi_call(p, "cmd=init pmi_version=1 pmi_subversion=1\n", "response_to_init", reply,
                        sizeof reply, &rc);
    if (!e && rc)
        e = npi_error(NP_ERR_BOOTSTRAP, "bootstrap pmi1: init refused: %.100s", reply);
    if (!e)
        e = pmi_call(p, "cmd=get_maxes\n", "maxes", reply, sizeof reply, &rc);
    if (!e) {
        p->keylen_max = pmi_field(reply, "keylen_max", v, sizeof v) ? atoi(v) : 64;
        p->vallen_max = pmi_field(reply, "vallen_max", v, sizeof v) ? atoi(v) : 1024;
        /* Our lines must fit our own reply buffer too. */
        if (p->vallen_max > PMI_LINE_MAX - 512)
            p->vallen_max = PMI_LINE_MAX - 512;
        if (p->keylen_max > 255)
            p->keylen_max = 255;
        if (p->vallen_max < 64 || p->keylen_max < 20)
            e = npi_error(NP_ERR_BOOTSTRAP, "bootstrap pmi1: limits too small: %.100s", reply);
    }
    if (!e)
        e = pmi_call(p, "cmd=get_appnum\n", "appnum", reply, sizeof reply, &rc);
    if (!e)
        e = pmi_call(p, "cmd=get_my_kvsname\n", "my_kvsname", reply, sizeof reply, &rc);
    if (!e && !pmi_field(reply, "kvsname", p->kvs, sizeof p->kvs))
        e = npi_error(NP_ERR_BOOTSTRAP, "bootstrap pmi1: no kvsname in '%.100s'", reply);
    if (e) {
        free(p);
        return e;
    }
    npi_boot_job_from(b->job, sizeof b->job, 'p', p->kvs);
    b->local_rank = -1;
    b->impl = p;
    b->ops = &pmi_ops;
    b->has_store = true;
    return NP_OK;
}

const npi_boot_method npi_boot_method_pmi1 = {
    .name = "pmi1",
    .detect = pmi_detect,
    .init = pmi_init,
};
