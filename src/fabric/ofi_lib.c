/* libfabric loaded on first use (ofi_lib.h says why). */
#include "config.h"

#include "ofi_lib.h"

#include "npi.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

npi_ofi_lib npi_ofi;

static pthread_once_t ofi_lib_once = PTHREAD_ONCE_INIT;
static np_err ofi_lib_err = NP_ERR_TRANSPORT;
static char ofi_lib_why[512] = "not loaded";

/* One exported function of the library lib (loaded as libname), by name,
 * into *slot. */
static bool ofi_lib_sym(void *lib, const char *libname, const char *name, void **slot)
{
    *slot = dlsym(lib, name);
    if (*slot)
        return true;
    const char *why = dlerror();
    snprintf(ofi_lib_why, sizeof(ofi_lib_why), "%s has no %s (%s)", libname, name,
             why ? why : "no reason given");
    return false;
}

static void ofi_lib_open(void)
{
    /* RTLD_LOCAL: libfabric's symbols stay out of the process's global
     * namespace, as they were not in it before this transport was wanted;
     * the providers it loads itself resolve against it all the same. */
    const char *name = npi_config_get("NUMPUSH_OFI_LIBRARY", NULL);
    if (!name || !*name)
        name = NPI_OFI_SONAME;
    void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(ofi_lib_why, sizeof(ofi_lib_why), "%s (NUMPUSH_OFI_LIBRARY may name another)",
                 why ? why : name);
        return;
    }
    npi_ofi_lib f;
    if (!ofi_lib_sym(lib, name, "fi_getinfo", (void **)&f.getinfo) ||
        !ofi_lib_sym(lib, name, "fi_freeinfo", (void **)&f.freeinfo) ||
        !ofi_lib_sym(lib, name, "fi_dupinfo", (void **)&f.dupinfo) ||
        !ofi_lib_sym(lib, name, "fi_fabric", (void **)&f.fabric) ||
        !ofi_lib_sym(lib, name, "fi_strerror", (void **)&f.strerror)) {
        dlclose(lib);
        return;
    }
    /* The library stays loaded until the process ends: providers keep
     * threads and handlers of their own that outlive any one endpoint. */
    npi_ofi = f;
    ofi_lib_err = NP_OK;
}

np_err npi_ofi_lib_load(void)
{
    pthread_once(&ofi_lib_once, ofi_lib_open);
    if (ofi_lib_err == NP_OK)
        return NP_OK;
    return npi_error(ofi_lib_err, "ofi: cannot load libfabric: %s", ofi_lib_why);
}

const char *npi_ofi_strerror(int errnum)
{
    return npi_ofi.strerror ? npi_ofi.strerror(errnum) : "libfabric not loaded";
}

void npi_ofi_freeinfo(struct fi_info *info)
{
    if (info)
        npi_ofi.freeinfo(info);
}
