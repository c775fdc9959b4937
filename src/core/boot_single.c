/*
 * The singleton: no launcher, one rank.  It keeps its own puts in a small
 * list so that code which publishes and then reads back (as every rank does
 * for its node name) works unchanged with one rank.
 */
#include "config.h"

#include "boot_methods.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct single_item {
    char *key;
    void *val;
    size_t len;
    struct single_item *next;
} single_item;

static np_err single_put(npi_boot *b, const char *key, const void *val, size_t len)
{
    single_item **head = (single_item **)&b->impl;
    single_item *it = *head;
    while (it && strcmp(it->key, key))
        it = it->next;
    void *copy = malloc(len ? len : 1);
    if (!copy)
        return npi_error(NP_ERR_NOMEM, "bootstrap singleton: put of %s: out of memory", key);
    memcpy(copy, val, len);
    if (!it) {
        it = calloc(1, sizeof *it);
        if (!it || !(it->key = strdup(key))) {
            free(it);
            free(copy);
            return npi_error(NP_ERR_NOMEM, "bootstrap singleton: put of %s: out of memory", key);
        }
        it->next = *head;
        *head = it;
    } else {
        free(it->val);
    }
    it->val = copy;
    it->len = len;
    return NP_OK;
}

static np_err single_get(npi_boot *b, const char *key, void *val, size_t cap, size_t *len)
{
    for (single_item *it = b->impl; it; it = it->next) {
        if (strcmp(it->key, key))
            continue;
        memcpy(val, it->val, it->len < cap ? it->len : cap);
        if (len)
            *len = it->len;
        if (it->len > cap)
            return npi_error(NP_ERR_TRUNCATE,
                             "bootstrap singleton: get of %s: value has %zu bytes, room for %zu",
                             key, it->len, cap);
        return NP_OK;
    }
    /* Nobody else can ever put it: waiting would only delay the same answer. */
    return npi_error(NP_ERR_TIMEOUT, "bootstrap singleton: get of %s: no such key", key);
}

static np_err single_fence(npi_boot *b)
{
    return NP_OK;
}

static void single_finalize(npi_boot *b)
{
    for (single_item *it = b->impl, *next; it; it = next) {
        next = it->next;
        free(it->key);
        free(it->val);
        free(it);
    }
    b->impl = NULL;
}

static void single_abort(npi_boot *b, int code) {}

static const npi_boot_ops single_ops = {
    .put = single_put,
    .get = single_get,
    .fence = single_fence,
    .finalize = single_finalize,
    .abort = single_abort,
};

static bool single_detect(char *why, size_t n)
{
    snprintf(why, n, "no launcher variables found");
    return true;
}

static np_err single_init(npi_boot *b)
{
    b->rank = 0;
    b->size = 1;
    b->local_rank = 0;
    b->local_size = 1;
    snprintf(b->job, sizeof b->job, "s%ld", (long)getpid());
    b->ops = &single_ops;
    b->has_store = true;
    return NP_OK;
}

const npi_boot_method npi_boot_method_single = {
    .name = "singleton",
    .detect = single_detect,
    .init = single_init,
};
