#!/bin/sh
# Mismatches, argument errors and a rank SIGKILLed mid-broadcast (cells and cma).
B=${NUMPUSH_BUILDDIR:-$PWD}
for n in 1 2 4; do "$B/tests/test_coll_fail" -n $n errors || exit 1; done
"$B/tests/test_coll_fail" -n 3 kill-cells || exit 1
exec "$B/tests/test_coll_fail" -n 4 kill-cma
