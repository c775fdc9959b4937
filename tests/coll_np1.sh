#!/bin/sh
# Every collective, split communicators and p2p with one rank (all sizes).
exec "$(dirname "$0")/coll_run.sh" 1
