#!/bin/sh
# Every collective, split communicators and p2p with 3 ranks (all sizes).
exec "$(dirname "$0")/coll_run.sh" 3
