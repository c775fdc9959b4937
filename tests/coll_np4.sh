#!/bin/sh
# Every collective, split communicators and p2p with 4 ranks on 2 cores (all sizes, 64 MiB too).
exec "$(dirname "$0")/coll_run.sh" 4 --large
