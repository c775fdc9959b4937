#!/bin/sh
# np_shm_alloc windows and np_rwlock inside them with 1, 2 and 4 ranks;
# afterwards no numpush segment may be left in /dev/shm.
set -e
b=${NUMPUSH_BUILDDIR:-.}
before=$(ls /dev/shm 2>/dev/null | grep -c '^npw' || true)
for n in 1 2 4; do
    "$b/numpush-run" -n "$n" --timeout 60 "$b/tests/test_shm_window"
done
after=$(ls /dev/shm 2>/dev/null | grep -c '^npw' || true)
if [ "$after" -gt "$before" ]; then
    echo "shm_window: segments left in /dev/shm" >&2
    exit 1
fi
