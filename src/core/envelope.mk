# src/core/envelope.mk (see src/core/Makefile.include): message envelopes,
# configuration, numpush-info, their tests and the envelope fuzz target.
libnumpush_la_SOURCES += \
	src/core/envelope.h \
	src/core/envelope.c \
	src/core/config.c

# numpush-info reads the topology with hwloc itself, so it links hwloc too.
bin_PROGRAMS += numpush-info
numpush_info_SOURCES = src/run/numpush_info.c
numpush_info_LDADD = libnumpush.la $(HWLOC_LIBS)

if HAVE_CHECK
check_PROGRAMS += tests/test_envelope tests/test_config
tests_test_envelope_SOURCES = tests/test_envelope.c
tests_test_envelope_CFLAGS = $(TEST_CFLAGS)
tests_test_envelope_LDADD = $(TEST_LIBS) $(MSGPACK_LIBS)
tests_test_config_SOURCES = tests/test_config.c
tests_test_config_CFLAGS = $(TEST_CFLAGS)
tests_test_config_LDADD = $(TEST_LIBS)
TESTS += tests/test_envelope tests/test_config
endif

# A shell test of numpush-info; it needs no Check.
dist_check_SCRIPTS += tests/test_info.sh
TESTS += tests/test_info.sh

# The libFuzzer target compiles the decoder and the few files it calls into
# itself, all with coverage and sanitizers, rather than linking libnumpush:
# the library is built without instrumentation (and with gcc-specific kernel
# flags), and the fuzzer can only steer through code it can see.  If
# envelope.c starts calling into another file, add that file here.
# See fuzz/README.md for how to build and run it.
if ENABLE_FUZZ
noinst_PROGRAMS += fuzz/fuzz_envelope
fuzz_fuzz_envelope_SOURCES = fuzz/fuzz_envelope.c src/core/envelope.c src/core/error.c \
	src/core/dtype.c src/core/op.c src/core/reduce_kernels.c
fuzz_fuzz_envelope_CFLAGS = $(AM_CFLAGS) -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined
fuzz_fuzz_envelope_LDFLAGS = -fsanitize=fuzzer,address,undefined
fuzz_fuzz_envelope_LDADD = $(MSGPACK_LIBS)
endif
EXTRA_DIST += fuzz/README.md fuzz/envelope.dict fuzz/corpus/p2p fuzz/corpus/p2p_max \
	fuzz/corpus/reduce fuzz/corpus/barrier fuzz/corpus/bcast
