#!/bin/sh
# One broadcast of more than 2^31 bytes between 2 ranks, single copy and cells.
exec "$(dirname "$0")/coll_run.sh" 2 --big
