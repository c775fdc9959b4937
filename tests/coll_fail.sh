#!/bin/sh
# Mismatches, argument errors, a rank SIGKILLed mid-broadcast (cells and
# cma), and a rank that computes for longer than NUMPUSH_TIMEOUT before a
# broadcast (it bounds the detection of dead peers, not waits for live ones).
B=${NUMPUSH_BUILDDIR:-$PWD}
for n in 1 2 4; do "$B/tests/test_coll_fail" -n $n errors || exit 1; done
"$B/tests/test_coll_fail" -n 3 kill-cells || exit 1
"$B/tests/test_coll_fail" -n 4 kill-cma || exit 1
NUMPUSH_TIMEOUT=2 "$B/tests/test_coll_fail" -n 3 late || exit 1
exec env NUMPUSH_TIMEOUT=2 NUMPUSH_WAIT_TIMEOUT=1 "$B/tests/test_coll_fail" -n 3 late
