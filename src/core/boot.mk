# src/core/boot.mk: bootstrap methods (see src/core/bootstrap.c), the
# rendezvous store they share with the launcher, and numpush-run itself.
libnumpush_la_SOURCES += \
	src/core/bootstrap.c \
	src/core/boot_methods.h \
	src/core/boot_run.c \
	src/core/boot_env.c \
	src/core/boot_pmi1.c \
	src/core/boot_single.c \
	src/core/kvstore.c \
	src/core/kvstore.h
# PMIx is optional: boot_pmix.c always builds, and without NPI_HAVE_PMIX
# its method detects nothing (bootstrap.c then names the launcher it cannot
# serve); the top Makefile.am links $(PMIX_LIBS) only when it was found.
libnumpush_la_SOURCES += src/core/boot_pmix.c

bin_PROGRAMS += numpush-run
numpush_run_SOURCES = \
	src/run/numpush_run.c \
	src/run/run.h \
	src/run/run_hosts.c \
	src/run/run_agent.c \
	src/run/run_bind.c \
	src/core/kvstore.c \
	src/core/kvstore.h
# Own flags give the launcher its own copy of kvstore.o, apart from the
# library's kvstore.lo; it links no libnumpush so it stays a plain binary
# that can exec itself as the remote agent.
numpush_run_CFLAGS = $(AM_CFLAGS)
numpush_run_LDADD = $(HWLOC_LIBS)

# The probe is a rank of the multi-process tests below; it reaches into
# boot.h, so it needs the internal include paths but not Check.
if HAVE_CHECK
check_PROGRAMS += tests/test_boot_probe
tests_test_boot_probe_SOURCES = tests/test_boot_probe.c
tests_test_boot_probe_LDADD = libnumpush.la
check_PROGRAMS += tests/test_kvstore
tests_test_kvstore_SOURCES = tests/test_kvstore.c tests/netns_private.h
tests_test_kvstore_CFLAGS = $(TEST_CFLAGS)
tests_test_kvstore_LDADD = $(TEST_LIBS)
TESTS += tests/test_kvstore
# Real processes through numpush-run, other launchers and network
# namespaces; each script skips (77) only what this machine cannot do.
dist_check_SCRIPTS += tests/test_run_basic.sh tests/test_run_fail.sh tests/test_run_peers.sh \
	tests/test_run_netns.sh tests/netns_rsh.sh
TESTS += tests/test_run_basic.sh tests/test_run_fail.sh tests/test_run_peers.sh \
	tests/test_run_netns.sh
endif
EXTRA_DIST += tests/run_common.sh bench/bench_startup.sh
