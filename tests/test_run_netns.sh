#!/bin/sh
# Ranks on three "hosts": network namespaces joined by veth pairs to a bridge
# in the first one, addresses in 198.18.0.0/24 (the benchmarking range, never
# routed).  numpush-run runs in the first namespace and reaches all three
# through --rsh netns_rsh.sh; the ranks must meet through its store across
# the namespaces and see three nodes.  Skips (77) when namespaces cannot be
# made here (no root, no CAP_SYS_ADMIN, or no ip tool).
. "$(dirname "$0")/run_common.sh"
RSH=$S/tests/netns_rsh.sh
NS="npt$$a npt$$b npt$$c"
set -- $NS
N0=$1 N1=$2 N2=$3

cleanup() {
    for ns in $NS; do ip netns del "$ns" 2>/dev/null; done
}
trap cleanup EXIT
trap 'cleanup; exit 1' INT TERM

if ! command -v ip >/dev/null; then
    say "skip: no 'ip' command (Debian: iproute2)"
    exit 77
fi
if ! ip netns add "$N0" 2>/dev/null; then
    say "skip: 'ip netns add' is not permitted here (needs root / CAP_SYS_ADMIN)"
    exit 77
fi
set -e
ip netns add "$N1"
ip netns add "$N2"
ip -n "$N0" link add br0 type bridge
ip -n "$N0" addr add 198.18.0.1/24 dev br0
ip -n "$N0" link set br0 up
ip -n "$N0" link set lo up
i=2
for ns in "$N1" "$N2"; do
    ip link add "v$$x$i" type veth peer name "w$$x$i"
    ip link set "v$$x$i" netns "$N0"
    ip link set "w$$x$i" netns "$ns"
    ip -n "$N0" link set "v$$x$i" master br0 up
    ip -n "$ns" addr add "198.18.0.$i/24" dev "w$$x$i"
    ip -n "$ns" link set "w$$x$i" up
    ip -n "$ns" link set lo up
    i=$((i + 1))
done
set +e

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
