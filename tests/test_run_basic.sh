#!/bin/sh
# numpush-run on one host: -n 1..8 with the bootstrap probe, output
# forwarding, --tag-output, -x, hosts and hostfiles, --bind-to, help/version.
. "$(dirname "$0")/run_common.sh"

for n in 1 2 3 4 5 6 7 8; do
    out=$("$RUN" -n $n "$PROBE" --expect-size $n --expect-method numpush-run --marker "$MARK")
    rc=$?
    oks=$(printf '%s\n' "$out" | grep -c '^probe ok')
    [ $rc -eq 0 ] && [ "$oks" -eq $n ] || bad "-n $n: exit $rc, $oks of $n ranks ok"
done
say "ok: -n 1..8"
check_clean "-n 1..8"

# A large value (1 MiB) through the store.
"$RUN" -n 4 "$PROBE" --bytes 1048576 --marker "$MARK" >/dev/null
expect_rc 0 $? "-n 4 with 1 MiB values"

# Lines stay whole: 4 ranks each print 300 long lines at once.
out=$("$RUN" -n 4 --tag-output sh -c 'i=0; while [ $i -lt 300 ]; do
    echo "line-$NUMPUSH_RANK-$i-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-end"; i=$((i+1)); done' "$MARK")
total=$(printf '%s\n' "$out" | wc -l)
good=$(printf '%s\n' "$out" | grep -cE '^\[([0-3])\] line-\1-[0-9]+-a+-end$')
[ "$total" -eq 1200 ] && [ "$good" -eq 1200 ] || bad "--tag-output: $good of $total lines whole and tagged (want 1200)"
say "ok: line-by-line forwarding with --tag-output"

# stderr goes to stderr; an unterminated last line still arrives.
err=$("$RUN" -n 2 sh -c 'printf "to-err" >&2; printf "to-out"' 2>&1 >/dev/null)
[ "$(printf '%s\n' "$err" | grep -c '^to-err$')" -eq 2 ] || bad "stderr forwarding: '$err'"

# -x VAR=val and -x VAR.
out=$(NP_TEST_A=from-env "$RUN" -n 2 -x NP_TEST_A -x NP_TEST_B=given sh -c 'echo "$NP_TEST_A $NP_TEST_B"')
[ "$(printf '%s\n' "$out" | grep -c '^from-env given$')" -eq 2 ] || bad "-x: '$out'"

# Hosts: localhost slots, a hostfile with comments, -n from the slots.
hf=$(mktemp)
printf '# two slots here\nlocalhost slots=2   # trailing comment\n\n' >"$hf"
out=$("$RUN" --hostfile "$hf" "$PROBE" --expect-size 2 --marker "$MARK")
expect_rc 0 $? "--hostfile with comments, -n from slots"
out=$("$RUN" -H localhost:3 -np 5 --oversubscribe "$PROBE" --expect-size 5 --expect-nodes 1 --marker "$MARK")
expect_rc 0 $? "-H localhost:3 -np 5 (oversubscribed)"
rm -f "$hf"

# --bind-to core: each rank runs on exactly one CPU.
out=$("$RUN" -n 2 --bind-to core sh -c 'grep Cpus_allowed_list /proc/self/status')
[ "$(printf '%s\n' "$out" | grep -cE 'Cpus_allowed_list:\s+[0-9]+$')" -eq 2 ] || bad "--bind-to core: '$out'"
say "ok: --bind-to core"

# The default (auto) binds when the ranks fit the cores and leaves an
# oversubscribed host unbound; --bind-to none never binds.
# Cores, not hardware threads: auto binds one rank per core.
ncpu=$(lscpu -p=core | grep -v '^#' | sort -u | wc -l)
one_cpu='Cpus_allowed_list:\s+[0-9]+$'
out=$("$RUN" -n "$ncpu" sh -c 'grep Cpus_allowed_list /proc/self/status')
[ "$(printf '%s\n' "$out" | grep -cE "$one_cpu")" -eq "$ncpu" ] || bad "--bind-to auto, $ncpu ranks: '$out'"
if [ "$ncpu" -gt 1 ]; then
    out=$("$RUN" -n $((ncpu * 2)) sh -c 'grep Cpus_allowed_list /proc/self/status')
    [ "$(printf '%s\n' "$out" | grep -cE "$one_cpu")" -eq 0 ] || bad "--bind-to auto, oversubscribed: '$out'"
    out=$("$RUN" -n 2 --bind-to none sh -c 'grep Cpus_allowed_list /proc/self/status')
    [ "$(printf '%s\n' "$out" | grep -cE "$one_cpu")" -eq 0 ] || bad "--bind-to none: '$out'"
fi
say "ok: --bind-to auto and none"

"$RUN" --help | grep -q -- '--hostfile' || bad "--help"
"$RUN" --version | grep -q 'numpush' || bad "--version"

# python3 scripts run like any program, and see their rank.
if command -v python3 >/dev/null; then
    out=$("$RUN" -n 2 python3 -c 'import os; print("py", os.environ["NUMPUSH_RANK"])')
    [ "$(printf '%s\n' "$out" | grep -c '^py [01]$')" -eq 2 ] || bad "python3: '$out'"
fi

# A foreign client without the job secret is refused and the job is unaffected.
"$RUN" -n 3 "$PROBE" --foreign 1 --expect-size 3 --marker "$MARK" >/dev/null
expect_rc 0 $? "foreign client with wrong/missing secret refused, job fine"
check_clean "basic"
finish
