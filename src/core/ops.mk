# src/core/ops.mk: dtypes, reduction ops and their kernels (see
# src/core/Makefile.include), with their tests and benchmark.
libnumpush_la_SOURCES += \
	src/core/dtype.c \
	src/core/op.c

# The kernels need flags of their own, so they build as a convenience library
# folded into libnumpush.  User CFLAGS come after per-target ones and usually
# hold -O2, which would cancel a -O3 here; explicit -f options survive any -O
# level, so these name what matters: vectorise with the dynamic cost model
# (-O2's "very-cheap" model skips loops of unknown length), never contract
# a*b+c into an FMA (results must not depend on the clone or the machine).
# No -march: the avx2 clone is chosen at run time (see reduce_kernels.c).
noinst_LTLIBRARIES += libnpi_kernels.la
libnpi_kernels_la_SOURCES = src/core/reduce_kernels.c src/core/reduce_kernels.h
libnpi_kernels_la_CFLAGS = $(AM_CFLAGS) -O3 -ftree-vectorize $(NPI_VECT_CFLAGS) \
	-ffp-contract=off
libnumpush_la_LIBADD += libnpi_kernels.la

if HAVE_CHECK
check_PROGRAMS += tests/test_ops
tests_test_ops_SOURCES = tests/test_ops.c
tests_test_ops_CFLAGS = $(TEST_CFLAGS)
tests_test_ops_LDADD = $(TEST_LIBS)
TESTS += tests/test_ops
endif

# Benchmark of the kernels against memcpy (usage at the top of bench/bench_kernels.c).
noinst_PROGRAMS += bench/bench_kernels
bench_bench_kernels_SOURCES = bench/bench_kernels.c
bench_bench_kernels_LDADD = libnumpush.la
