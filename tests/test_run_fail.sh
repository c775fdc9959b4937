#!/bin/sh
# How numpush-run ends a job that goes wrong: a rank exits 3, a rank is
# SIGKILLed, a rank calls abort, the launcher is SIGTERMed, --timeout, and
# usage errors.  Each must give the right code, stop the other ranks within
# 2 s, print one line saying why, and leave no process or /dev/shm segment.
. "$(dirname "$0")/run_common.sh"
ERR=$(mktemp)
trap 'rm -f "$ERR"' EXIT

# elapsed_ok START MAXMS WHAT
elapsed_ok() {
    el=$(($(now_ms) - $1))
    if [ $el -gt $2 ]; then bad "$3 took $el ms (limit $2)"; fi
}

# A rank exits 3 while the others sleep 30 s.
t=$(now_ms)
"$RUN" -n 4 "$PROBE" --exit-rank 2 --code 3 --sleep 30 --marker "$MARK" >/dev/null 2>"$ERR"
expect_rc 3 $? "rank exits 3"
elapsed_ok $t 2500 "rank exits 3"
grep -q 'rank 2 .*exited with code 3' "$ERR" || bad "rank exits 3: message: $(cat "$ERR")"
check_clean "rank exits 3"

# A rank is SIGKILLed: 128+9, and its segments go too.
t=$(now_ms)
"$RUN" -n 3 sh -c 'echo x >/dev/shm/numpush-$NUMPUSH_JOBID-test$NUMPUSH_RANK;
    [ $NUMPUSH_RANK = 1 ] && kill -KILL $$; exec sleep 30' "$MARK" 2>"$ERR"
expect_rc 137 $? "rank SIGKILLed"
elapsed_ok $t 2500 "rank SIGKILLed"
grep -q 'rank 1 .*killed by SIGKILL' "$ERR" || bad "SIGKILL: message: $(cat "$ERR")"
ls /dev/shm | grep -q "test[0-2]$" && { bad "segments left: $(ls /dev/shm | grep 'test[0-2]$')"; }
check_clean "rank SIGKILLed"

# A rank asks the launcher to abort the job through the store.
"$RUN" -n 3 "$PROBE" --abort-rank 1 --code 5 --marker "$MARK" >/dev/null 2>"$ERR"
expect_rc 5 $? "rank calls abort(5)"
check_clean "abort"

# The launcher is SIGTERMed: every rank goes, code 128+15.
"$RUN" -n 4 sh -c 'trap "" TERM; exec sleep 30' "$MARK" 2>"$ERR" &
pid=$!
sleep 0.5
t=$(now_ms)
kill -TERM $pid
wait $pid
expect_rc 143 $? "launcher SIGTERMed (ranks ignore TERM, so KILL follows)"
elapsed_ok $t 2500 "launcher SIGTERMed"
check_clean "launcher SIGTERMed"

# SIGINT, as from a terminal's ^C.
"$RUN" -n 2 sh -c "exec sleep 30" "$MARK" 2>"$ERR" &
pid=$!
sleep 0.3
kill -INT $pid
wait $pid
expect_rc 130 $? "launcher SIGINTed"
check_clean "launcher SIGINTed"

# The launcher is SIGKILLed: its ranks die with it (PR_SET_PDEATHSIG), and
# so do their children and segments (the launcher's watchdog).  The grandchild
# is a shell that cannot exec its command away, so it keeps the marker.
"$RUN" -n 3 sh -c 'echo x >/dev/shm/numpush-$NUMPUSH_JOBID-gc$NUMPUSH_RANK;
    sh -c "sleep 30; :" "$0" & sleep 30; echo survived' "$MARK" &
pid=$!
sleep 0.3
kill -KILL $pid
wait $pid 2>/dev/null
check_clean "launcher SIGKILLed"
ls /dev/shm | grep -q "gc[0-2]$" && bad "segments left after launcher SIGKILL: $(ls /dev/shm | grep 'gc[0-2]$')"
say "ok: launcher SIGKILLed leaves no rank"

# --timeout 2 on a sleeping program.
t=$(now_ms)
"$RUN" -n 2 --timeout 2 sh -c "exec sleep 30" "$MARK" 2>"$ERR"
expect_rc 124 $? "--timeout 2"
elapsed_ok $t 3500 "--timeout 2"
grep -q 'timeout' "$ERR" || bad "--timeout message: $(cat "$ERR")"
check_clean "--timeout"

# Usage errors: one line, non-zero code, nothing started.
one_line() { # WHAT then the command
    what=$1; shift
    "$@" >/dev/null 2>"$ERR"
    rc=$?
    if [ $rc -eq 0 ] || [ "$(wc -l <"$ERR")" -ne 1 ]; then
        bad "$what: exit $rc, stderr: $(cat "$ERR")"
    else
        say "ok: $what (exit $rc): $(cat "$ERR")"
    fi
}
one_line "-n 0" "$RUN" -n 0 "$PROBE"
one_line "missing program" "$RUN" -n 2 ./no-such-program-$MARK
one_line "unknown host" "$RUN" -H no-such-host.invalid:2 "$PROBE"
hf=$(mktemp)
printf 'localhost slots=2\nlocalhost slots=two\n' >"$hf"
one_line "malformed hostfile" "$RUN" --hostfile "$hf" "$PROBE"
rm -f "$hf"
one_line "bad --bind-to" "$RUN" -n 1 --bind-to socketz "$PROBE"
one_line "unknown option" "$RUN" --frobnicate -n 1 "$PROBE"
check_clean "usage errors"
finish
