# src/shm/window.mk: node-shared windows (np_shm_alloc) and the robust
# reader/writer locks that guard them (np_rwlock, <numpush/shm_lock.h>).
# Included from src/shm/Makefile.include.
libnumpush_la_SOURCES += src/shm/window.c src/shm/rwlock.c src/shm/rwlock.h

numpushinclude_HEADERS += include/numpush/shm_lock.h

EXTRA_DIST += bindings/python/src/_shm.c bindings/python/numpush/shm.py bindings/python/tests/test_shm.py \
	examples/python/shm_pool.py bench/bench_shm_handoff.py

if HAVE_CHECK
check_PROGRAMS += tests/test_shm_lock
tests_test_shm_lock_SOURCES = tests/test_shm_lock.c
tests_test_shm_lock_CFLAGS = $(TEST_CFLAGS)
tests_test_shm_lock_LDADD = $(TEST_LIBS)
TESTS += tests/test_shm_lock

# Windows across ranks go through numpush-run (see tests/shm_window.sh).
check_PROGRAMS += tests/test_shm_window
tests_test_shm_window_SOURCES = tests/test_shm_window.c
tests_test_shm_window_CFLAGS = $(TEST_CFLAGS)
tests_test_shm_window_LDADD = $(TEST_LIBS)
dist_check_SCRIPTS += tests/shm_window.sh
TESTS += tests/shm_window.sh
endif
