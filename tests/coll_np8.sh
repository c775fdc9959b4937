#!/bin/sh
# Every collective with 8 ranks (small sizes).
exec "$(dirname "$0")/coll_run.sh" 8 --quick
