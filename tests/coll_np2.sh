#!/bin/sh
# Every collective, split communicators and p2p with 2 ranks (all sizes, 64 MiB too).
exec "$(dirname "$0")/coll_run.sh" 2 --large
