#!/bin/sh
# Without single copy (NUMPUSH_CMA=0): cells and p2p streams carry everything.
NUMPUSH_CMA=0 "$(dirname "$0")/coll_run.sh" 2 || exit 1
NUMPUSH_CMA=0 exec "$(dirname "$0")/coll_run.sh" 3 --quick
