#!/bin/sh
# Ranks on three "hosts": network namespaces joined by veth pairs to a bridge
# in the first one, addresses in 198.18.0.0/24 (the benchmarking range, never
# routed).  numpush-run runs in the first namespace and reaches all three
# through --rsh netns_rsh.sh; the ranks must meet through its store across
# the namespaces and see three nodes.  Skips (77) when namespaces cannot be
# made here (no root, no CAP_SYS_ADMIN, or no ip tool).
. "$(dirname "$0")/run_common.sh"
RSH=$S/tests/netns_rsh.sh
netns_three_hosts t

# 2 ranks on each of three hosts.
out=$(ip netns exec "$N0" "$RUN" -H "$N0:2,$N1:2,$N2:2" --rsh "$RSH" "$PROBE" --expect-size 6 \
    --expect-nodes 3 --expect-method numpush-run --marker "$MARK")
rc=$?
expect_rc 0 $rc "6 ranks on 3 namespaces"
[ "$(printf '%s\n' "$out" | grep -c '^probe ok .* local [01] of 2 node [012]/3')" -eq 6 ] ||
    bad "layout over 3 namespaces: $out"

# Uneven: 3 ranks, one per host, from a hostfile; big values.
hf=$(mktemp)
printf '%s slots=1\n%s slots=1 # second\n%s\n' "$N0" "$N1" "$N2" >"$hf"
ip netns exec "$N0" "$RUN" --hostfile "$hf" --rsh "$RSH" --tag-output "$PROBE" --expect-size 3 \
    --expect-nodes 3 --bytes 200000 --marker "$MARK" >/dev/null
expect_rc 0 $? "hostfile, one rank per namespace, 200 kB values"
rm -f "$hf"

# A remote rank fails: its code comes back through the agent and the rsh,
# and the ranks on the other hosts are stopped.
t=$(now_ms)
ip netns exec "$N0" "$RUN" -H "$N0:1,$N1:1,$N2:1" --rsh "$RSH" "$PROBE" --exit-rank 2 --code 3 \
    --sleep 30 --marker "$MARK" >/dev/null 2>&1
expect_rc 3 $? "remote rank exits 3"
el=$(($(now_ms) - t))
[ $el -le 3000 ] || bad "remote failure took $el ms to end the job"

# The launcher is SIGTERMed while remote ranks run.
ip netns exec "$N0" "$RUN" -H "$N1:2,$N2:2" --rsh "$RSH" sh -c 'exec sleep 30' "$MARK" 2>/dev/null &
pid=$!
sleep 0.7
kill -TERM $pid
wait $pid
expect_rc 143 $? "launcher SIGTERMed with remote ranks"
check_clean "netns"
finish
