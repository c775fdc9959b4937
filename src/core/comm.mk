# src/core/comm.mk: lifetime, communicators and point to point (see
# src/core/Makefile.include); shared memory, collectives, their tests and
# the demo are in src/shm, src/coll, tests and examples (this file too, so
# that one engineer's build rules stay in one place).
libnumpush_la_SOURCES += \
	src/core/init.c \
	src/core/comm.c \
	src/core/comm.h \
	src/core/p2p.c \
	src/shm/shm.h \
	src/shm/segment.c \
	src/shm/wait.c \
	src/shm/copy.c \
	src/shm/topo.h \
	src/shm/topo.c \
	src/coll/coll.h \
	src/coll/coll.c \
	src/coll/decide.h \
	src/coll/decide.c \
	src/coll/barrier.c \
	src/coll/bcast.c \
	src/coll/allgather.c \
	src/coll/scatter.c \
	src/coll/scatterv.c \
	src/coll/gather.c \
	src/coll/gatherv.c \
	src/coll/alltoall.c \
	src/coll/reduce.c \
	src/coll/allreduce.c

# Conformance and failure tests of the collectives: multi-rank programs
# driven by tests/coll_*.sh (under numpush-run, except test_coll_fail, which
# starts its own ranks so that survivors of a killed rank can report).
if HAVE_CHECK
check_PROGRAMS += tests/test_coll tests/test_coll_fail tests/test_shm
tests_test_coll_SOURCES = tests/test_coll.c
tests_test_coll_LDADD = libnumpush.la
tests_test_coll_fail_SOURCES = tests/test_coll_fail.c
tests_test_coll_fail_LDADD = libnumpush.la
tests_test_shm_SOURCES = tests/test_shm.c
tests_test_shm_CFLAGS = $(TEST_CFLAGS)
tests_test_shm_LDADD = $(TEST_LIBS)
dist_check_SCRIPTS += tests/coll_np1.sh tests/coll_np2.sh tests/coll_np3.sh tests/coll_np4.sh \
	tests/coll_np5.sh tests/coll_np8.sh tests/coll_nocma.sh tests/coll_fail.sh tests/coll_big.sh \
	tests/coll_topo.sh
TESTS += tests/test_shm tests/coll_np1.sh tests/coll_np2.sh tests/coll_np3.sh \
	tests/coll_np4.sh tests/coll_np5.sh tests/coll_np8.sh tests/coll_nocma.sh tests/coll_fail.sh \
	tests/coll_big.sh tests/coll_topo.sh
endif
EXTRA_DIST += tests/coll_run.sh

# The demo of the README: numpush-run -n 4 examples/demo
noinst_PROGRAMS += examples/demo
examples_demo_SOURCES = examples/demo.c
examples_demo_LDADD = libnumpush.la
