/*
 * A test-only bootstrap for fabric tests and benchmarks: an npi_boot whose
 * key-value store is a directory of files, so that processes forked by the
 * test (and processes in other network namespaces, which share the file
 * system) can publish and look up fabric addresses without numpush-run.
 *
 * put writes key to a temporary file and renames it into place (readers
 * never see half a value); get polls for the file; fence makes a file per
 * rank and generation and waits for all of them.
 */
#ifndef NUMPUSH_TEST_FAB_STORE_H
#define NUMPUSH_TEST_FAB_STORE_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "boot.h"

typedef struct fst_impl {
    char dir[256];
    int gen;
    double timeout;
} fst_impl;

static void fst_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static np_err fst_put(npi_boot *b, const char *key, const void *val, size_t len)
{
    fst_impl *s = b->impl;
    char tmp[600], path[600];
    snprintf(tmp, sizeof(tmp), "%s/.%s.%d.tmp", s->dir, key, b->rank);
    snprintf(path, sizeof(path), "%s/%s", s->dir, key);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return NP_ERR_BOOTSTRAP;
    size_t w = fwrite(val, 1, len, f);
    if (fclose(f) != 0 || w != len || rename(tmp, path) != 0)
        return NP_ERR_BOOTSTRAP;
    return NP_OK;
}

static np_err fst_get(npi_boot *b, const char *key, void *val, size_t cap, size_t *len)
{
    fst_impl *s = b->impl;
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", s->dir, key);
    /* Keys are published before the fence that precedes every get, so a
     * missing key will not appear: wait only briefly. */
    for (int i = 0; i < 20; i++) {
        FILE *f = fopen(path, "rb");
        if (f) {
            size_t n = fread(val, 1, cap, f);
            fclose(f);
            *len = n;
            return NP_OK;
        }
        fst_sleep_ms(5);
    }
    return NP_ERR_TIMEOUT;
}

static np_err fst_fence(npi_boot *b)
{
    fst_impl *s = b->impl;
    char path[600];
    s->gen++;
    snprintf(path, sizeof(path), "%s/.fence.%d.%d", s->dir, s->gen, b->rank);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    if (fd < 0)
        return NP_ERR_BOOTSTRAP;
    close(fd);
    int waited = 0;
    for (int r = 0; r < b->size; r++) {
        snprintf(path, sizeof(path), "%s/.fence.%d.%d", s->dir, s->gen, r);
        struct stat st;
        while (stat(path, &st) != 0) {
            fst_sleep_ms(1);
            if (++waited > (int)(s->timeout * 1000))
                return NP_ERR_TIMEOUT;
        }
    }
    return NP_OK;
}

static void fst_finalize(npi_boot *b) {}

static void fst_abort(npi_boot *b, int code)
{
    _exit(code);
}

static const npi_boot_ops fst_ops = {
    .put = fst_put,
    .get = fst_get,
    .fence = fst_fence,
    .finalize = fst_finalize,
    .abort = fst_abort,
};

/* Fill b as rank of size over the store in dir (which must exist). */
static void fst_init(npi_boot *b, fst_impl *s, const char *dir, int rank, int size)
{
    memset(b, 0, sizeof(*b));
    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    s->timeout = 30;
    b->method = "test-files";
    b->rank = rank;
    b->size = size;
    b->node_id = rank;
    b->node_count = size;
    b->ops = &fst_ops;
    b->impl = s;
}

/* A fresh store directory under /tmp; the caller removes it with
 * fst_cleanup. */
static int fst_mkdir(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/numpush-fab-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static void fst_cleanup(const char *dir)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    int r = system(cmd);
    (void)r;
}

#endif
