#!/bin/sh
# The fabric conformance cases with the two ranks in two network namespaces
# joined by a veth pair in 198.18.0.0/15 (the benchmarking range, never
# routed), once per transport, plus a case that takes the link down under a
# waiting rank.  The namespaces and the pair are created here and removed on
# every exit path.  Exit 77 (skipped) with the reason when this host does
# not let us create namespaces.
set -u

builddir=${NUMPUSH_BUILDDIR:-$(pwd)}
prog="$builddir/tests/test_fabric"
[ -x "$prog" ] || { echo "SKIP: $prog not built"; exit 77; }
command -v ip >/dev/null 2>&1 || { echo "SKIP: no ip(8) command"; exit 77; }

tag=$$
nsa="npfa$tag"
nsb="npfb$tag"
va="npva$tag"
vb="npvb$tag"
net=$((tag % 250 + 2))
ipa="198.18.$net.1"
ipb="198.18.$net.2"
dir=""
pids=""

cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    ip netns del "$nsa" 2>/dev/null
    ip netns del "$nsb" 2>/dev/null
    [ -n "$dir" ] && rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if ! err=$(ip netns add "$nsa" 2>&1); then
    echo "SKIP: cannot create a network namespace here (ip netns add: $err)"
    exit 77
fi
ip netns add "$nsb" || exit 1

# (Re)create the link between the namespaces; the linkdown case takes it
# down, so every case starts from a fresh pair.
mklink() {
    ip netns exec "$nsa" ip link del "$va" 2>/dev/null
    ip link add "$va" netns "$nsa" type veth peer name "$vb" netns "$nsb" || return 1
    ip netns exec "$nsa" ip addr add "$ipa/24" dev "$va" &&
        ip netns exec "$nsb" ip addr add "$ipb/24" dev "$vb" &&
        ip netns exec "$nsa" ip link set "$va" up &&
        ip netns exec "$nsb" ip link set "$vb" up &&
        ip netns exec "$nsa" ip link set lo up &&
        ip netns exec "$nsb" ip link set lo up
}

# ofi runs once per libfabric provider tested here (ofi:PROVIDER); tipc is
# left out: this host's kernel has no TIPC, and tests/tipc_vm.sh runs these
# cases over a TIPC bearer on a veth pair inside a guest instead.
transports=tcp
grep -q '^#define NPI_HAVE_ZMQ 1' "$builddir/config.h" 2>/dev/null && transports="$transports zmq"
grep -q '^#define NPI_HAVE_OFI 1' "$builddir/config.h" 2>/dev/null &&
    transports="$transports ofi:tcp;ofi_rxm ofi:net"
# The sockets provider misses deadlines on a loaded 2-core machine (its own
# progress threads starve); run it on request only.
[ "${NUMPUSH_TEST_OFI_SOCKETS:-0}" = 1 ] && transports="$transports ofi:sockets"

failed=0
for tv in $transports; do
    t=${tv%%:*}
    prov=""
    [ "$t" != "$tv" ] && prov=${tv#*:}
    export NUMPUSH_OFI_PROVIDER="$prov"
    for c in zero ordering unexpected many garbage timeout death linkdown; do
        mklink || { echo "FAIL: could not create the veth pair"; exit 1; }
        dir=$(mktemp -d /tmp/numpush-fabns-XXXXXX)
        start=$(date +%s)
        NUMPUSH_TCP_IF=198.18.0.0/15 NPF_LINK=$va timeout 40 \
            ip netns exec "$nsa" "$prog" --rank 0 --size 2 --dir "$dir" -t "$t" -c "$c" &
        p0=$!
        NUMPUSH_TCP_IF=198.18.0.0/15 timeout 40 \
            ip netns exec "$nsb" "$prog" --rank 1 --size 2 --dir "$dir" -t "$t" -c "$c" &
        p1=$!
        pids="$p0 $p1"
        rc=0
        wait "$p0" || rc=1
        wait "$p1" || rc=1
        pids=""
        rm -rf "$dir"
        dir=""
        if [ $rc -eq 0 ]; then
            echo "PASS: netns $tv/$c ($(($(date +%s) - start)) s)"
        else
            echo "FAIL: netns $tv/$c"
            failed=$((failed + 1))
        fi
    done
done
echo "netns: $failed failed"
[ $failed -eq 0 ]
