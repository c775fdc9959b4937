#!/bin/sh
# Shared by the tests/coll_*.sh scripts (run, not sourced): run
# tests/test_coll under numpush-run with $1 ranks and the remaining
# arguments, and check that no segment of the job is left in /dev/shm.
B=${NUMPUSH_BUILDDIR:-$PWD}
n=$1
shift
before=$(ls /dev/shm 2>/dev/null | grep '^numpush-' | tr '\n' ' ')
"$B/numpush-run" -n "$n" --timeout 600 "$B/tests/test_coll" "$@"
rc=$?
# Other jobs on the machine create segments too, but only for moments:
# a name that is new and still there a second later was left behind.
sleep 1
for name in $(ls /dev/shm 2>/dev/null | grep '^numpush-'); do
    case " $before " in *" $name "*) continue ;; esac
    sleep 1
    if [ -e "/dev/shm/$name" ]; then
        echo "FAIL: segment /dev/shm/$name left behind" >&2
        rc=1
    fi
done
exit $rc
