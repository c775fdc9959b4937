/*
 * Configuration: every NUMPUSH_* setting, read in one place.
 *
 * The table comes from NPI_CONFIG_LIST (config_table.h), so a setting is
 * declared once and is automatically known to npi_config_get and listed by
 * numpush-info.  Values are read from the environment on every call rather
 * than cached: settings are read rarely (at init, when choosing an
 * algorithm), and not caching means tests and numpush-info always see the
 * environment as it is now.
 */
#include "config_table.h"
#include "npi.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const npi_config_entry cfg_table[] = {
#define CFG_ENTRY_(name, def, desc) {#name, def, desc},
    NPI_CONFIG_LIST(CFG_ENTRY_)
#undef CFG_ENTRY_
        {NULL, NULL, NULL},
};

const npi_config_entry *npi_config_table(void)
{
    return cfg_table;
}

static const npi_config_entry *cfg_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (const npi_config_entry *c = cfg_table; c->name != NULL; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

const char *npi_config_get(const char *name, npi_config_source *src)
{
    const npi_config_entry *c = cfg_find(name);
    if (c == NULL)
        return NULL;
    /* An empty value counts as unset, so `NUMPUSH_X= prog` restores the
     * default the way shells and launchers usually clear a variable. */
    const char *v = getenv(c->name);
    if (v != NULL && v[0] != '\0') {
        if (src != NULL)
            *src = NPI_CONFIG_ENV;
        return v;
    }
    if (src != NULL)
        *src = NPI_CONFIG_DEFAULT;
    return c->default_val;
}

/* Look a setting up for numeric parsing; the caller names itself in errors. */
static np_err cfg_numeric(const char *name, const char *who, const char **val,
                          npi_config_source *src)
{
    if (cfg_find(name) == NULL)
        return npi_error(NP_ERR_INTERNAL, "%s: unknown setting %s (add it to config_table.h)", who,
                         name != NULL ? name : "(null)");
    *val = npi_config_get(name, src);
    if ((*val)[0] == '\0')
        return npi_error(NP_ERR_CONFIG, "%s has no value and no numeric default", name);
    return NP_OK;
}

/* Whether the text after a number is only blanks (values from env files
 * often carry a trailing space or newline). */
static bool cfg_only_space(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return *s == '\0';
}

static const char *cfg_origin(npi_config_source src)
{
    return src == NPI_CONFIG_ENV ? "from the environment" : "default";
}

np_err npi_config_double(const char *name, double *out)
{
    const char *val;
    npi_config_source src;
    np_err err = cfg_numeric(name, "npi_config_double", &val, &src);
    if (err != NP_OK)
        return err;
    char *end;
    errno = 0;
    double d = strtod(val, &end);
    if (end == val || !cfg_only_space(end))
        return npi_error(NP_ERR_CONFIG, "%s='%s' (%s) is not a number", name, val, cfg_origin(src));
    if (errno == ERANGE || !isfinite(d))
        return npi_error(NP_ERR_CONFIG, "%s='%s' (%s) is not a finite number in range", name, val,
                         cfg_origin(src));
    *out = d;
    return NP_OK;
}

np_err npi_config_long(const char *name, long *out)
{
    const char *val;
    npi_config_source src;
    np_err err = cfg_numeric(name, "npi_config_long", &val, &src);
    if (err != NP_OK)
        return err;
    char *end;
    errno = 0;
    /* Base 10 only: with base 0 a leading zero would silently mean octal. */
    long l = strtol(val, &end, 10);
    if (end == val || !cfg_only_space(end))
        return npi_error(NP_ERR_CONFIG, "%s='%s' (%s) is not a whole number", name, val,
                         cfg_origin(src));
    if (errno == ERANGE)
        return npi_error(NP_ERR_CONFIG, "%s='%s' (%s) is out of range", name, val, cfg_origin(src));
    *out = l;
    return NP_OK;
}
