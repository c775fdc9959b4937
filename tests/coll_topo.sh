#!/bin/sh
# The hierarchy-aware broadcast on a synthetic two-package node (this
# machine is flat): 4 and 5 ranks, every size, tree forced for bcast.
export NUMPUSH_TOPOLOGY="package:2 core:2 pu:1"
"$(dirname "$0")/coll_run.sh" 4 --quick --tree || exit 1
exec "$(dirname "$0")/coll_run.sh" 5 --quick --tree
