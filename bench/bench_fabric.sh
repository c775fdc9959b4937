#!/bin/sh
# Fabric point-to-point figures next to iperf3, measured in one run:
#   1. loopback: iperf3, then bench_fabric for every transport, then iperf3
#      again (the machine is shared; the two iperf3 runs bracket the noise);
#   2. the same across a veth pair between two network namespaces in
#      198.18.0.0/15, created here and removed on exit (skipped with a
#      message when namespaces are not permitted).
# For each transport the 64 MiB bandwidth is printed as a fraction of the
# mean iperf3 bandwidth of the same link.
#
#   bench/bench_fabric.sh [BUILDDIR] [MAXBYTES]
# ofi runs once per libfabric provider tested here, labelled ofi/rxm
# (tcp;ofi_rxm), ofi/net (libfabric 1.17's native RDM over TCP) and
# ofi/sockets; tipc is left out (kernels here lack it).
set -u
builddir=${1:-${NUMPUSH_BUILDDIR:-$(pwd)}}
max=${2:-67108864}
bench="$builddir/bench/bench_fabric"
[ -x "$bench" ] || { echo "bench_fabric not built in $builddir" >&2; exit 1; }
command -v iperf3 >/dev/null 2>&1 || { echo "iperf3 is not installed" >&2; exit 1; }

tag=$$
nsa="npba$tag"
nsb="npbb$tag"
va="npbva$tag"
vb="npbvb$tag"
net=$((tag % 250 + 2))
ipa="198.18.$net.1"
ipb="198.18.$net.2"
dir=""
spid=""
cleanup() {
    [ -n "$spid" ] && kill "$spid" 2>/dev/null
    ip netns del "$nsa" 2>/dev/null
    ip netns del "$nsb" 2>/dev/null
    [ -n "$dir" ] && rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# iperf3 MB/s from server-side namespace prefix $1 (may be empty), client
# prefix $2, server address $3.
iperf() {
    port=$((5201 + tag % 1000))
    $1 iperf3 -s -1 -B "$3" -p $port >/dev/null 2>&1 &
    spid=$!
    sleep 0.5
    $2 iperf3 -c "$3" -p $port -t 3 -f M 2>/dev/null |
        awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i == "MBytes/sec") print $(i - 1) }'
    wait "$spid" 2>/dev/null
    spid=""
}

report() { # $1 link name, $2 iperf before, $3 iperf after, $4 bench output
    echo "$4"
    echo "$1: iperf3 $2 MB/s before, $3 MB/s after"
    echo "$4" | awk -v a="$2" -v b="$3" -v link="$1" -v max="$max" '
        $2 == max { printf "%s: %s %s B: %.0f MB/s = %.2f of iperf3 (mean %.0f MB/s)\n",
                    link, $1, $2, $4, $4 / ((a + b) / 2), (a + b) / 2 }'
}

transports="tcp zmq"
grep -q '^#define NPI_HAVE_OFI 1' "$builddir/config.h" 2>/dev/null &&
    transports="$transports ofi:tcp;ofi_rxm ofi:net ofi:sockets"
# The label a transport's lines carry: ofi/rxm, ofi/sockets, else its name.
label() {
    case "$1" in
    ofi:tcp\;ofi_rxm) echo ofi/rxm ;;
    ofi:*) echo "ofi/${1#ofi:}" ;;
    *) echo "$1" ;;
    esac
}

echo "== loopback"
i1=$(iperf "" "" 127.0.0.1)
out="# transport bytes latency_us bandwidth_MBps"
for tv in $transports; do
    t=${tv%%:*}
    prov=""
    [ "$t" != "$tv" ] && prov=${tv#*:}
    o=$(NUMPUSH_OFI_PROVIDER="$prov" "$bench" -t "$t" -m "$max" | grep -v '^#' |
        awk -v l="$(label "$tv")" '{ $1 = l; print }')
    [ -n "$o" ] && out="$out
$o"
done
i2=$(iperf "" "" 127.0.0.1)
report loopback "$i1" "$i2" "$out"

echo "== veth pair between namespaces"
if ! ip netns add "$nsa" 2>/dev/null; then
    echo "skipped: cannot create network namespaces here"
    exit 0
fi
ip netns add "$nsb" &&
    ip link add "$va" netns "$nsa" type veth peer name "$vb" netns "$nsb" &&
    ip netns exec "$nsa" ip addr add "$ipa/24" dev "$va" &&
    ip netns exec "$nsb" ip addr add "$ipb/24" dev "$vb" &&
    ip netns exec "$nsa" ip link set "$va" up && ip netns exec "$nsb" ip link set "$vb" up &&
    ip netns exec "$nsa" ip link set lo up && ip netns exec "$nsb" ip link set lo up || exit 1
A="ip netns exec $nsa"
B="ip netns exec $nsb"
i1=$(iperf "$B" "$A" "$ipb")
out="# transport bytes latency_us bandwidth_MBps"
for tv in $transports; do
    t=${tv%%:*}
    prov=""
    [ "$t" != "$tv" ] && prov=${tv#*:}
    dir=$(mktemp -d /tmp/numpush-bench-XXXXXX)
    NUMPUSH_OFI_PROVIDER="$prov" NUMPUSH_TCP_IF=198.18.0.0/15 \
        $B "$bench" --rank 1 --dir "$dir" -t "$t" -m "$max" &
    p1=$!
    o=$(NUMPUSH_OFI_PROVIDER="$prov" NUMPUSH_TCP_IF=198.18.0.0/15 \
        $A "$bench" --rank 0 --dir "$dir" -t "$t" -m "$max" |
        awk -v l="$(label "$tv")" '{ $1 = l; print }')
    wait $p1
    rm -rf "$dir"
    dir=""
    [ -n "$o" ] && out="$out
$o"
done
i2=$(iperf "$B" "$A" "$ipb")
report veth "$i1" "$i2" "$out"
