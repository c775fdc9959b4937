#!/bin/sh
# /init of the KVM guest that tests/tipc_vm.sh boots (busybox sh, run by
# the kernel as process 1 from the initramfs).  Loads tipc, runs the tipc
# tests, prints "NPVM: NAME: exit RC" for each and "NPVM: done" at the end,
# then powers the guest off.  /etc/vm.env (written by tipc_vm.sh) gives the
# build tree's path B and the guest's LD_LIBRARY_PATH.
PATH=/bin:/usr/sbin
export PATH
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# The kernel found no /dev/console in the initramfs to give us.
exec </dev/console >/dev/console 2>&1
mkdir -p /dev/shm /run
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t tmpfs run /run
# The initramfs is in memory and writable already; a tmpfs on /tmp would
# hide a build tree under /tmp.
chmod 1777 /tmp
ip link set lo up
hostname tipcvm
. /etc/vm.env
export LD_LIBRARY_PATH
NUMPUSH_BUILDDIR=$B
export NUMPUSH_BUILDDIR
T=$B/tests

say() { echo "NPVM: $*"; }

for m in $(cat /modules/order); do
    insmod "/modules/$m.ko" || say "insmod $m: exit 1"
done

# run NAME SECONDS PROGRAM ARGS...: one test, its output on the console.
run() {
    name=$1 lim=$2
    shift 2
    echo "== $name"
    t=$(date +%s)
    timeout "$lim" "$@"
    say "$name ($(($(date +%s) - t)) s): exit $?"
}

# ranks N PER_NODE TIMEOUT PROGRAM ARGS...: N ranks started without a
# launcher (env://, as tests/coll_netns.sh's envrun), PER_NODE to a node
# name, over tipc, NUMPUSH_TIMEOUT=TIMEOUT; their logs in /tmp/rank.R,
# their exit codes in codes.
# With NODES_NS set ("na nb"), node i's ranks run in the i-th network
# namespace and meet at ROOT_IP (the first namespace's address).
port=20000
NODES_NS=""
ROOT_IP=127.0.0.1
ranks() {
    n=$1 per=$2 tmo=$3
    shift 3
    port=$((port + 1))
    rm -f /tmp/rank.*
    pids=""
    r=0
    while [ "$r" -lt "$n" ]; do
        in=""
        [ -n "$NODES_NS" ] && in="$IP netns exec $(echo $NODES_NS | cut -d' ' -f$((r / per + 1)))"
        $in env NUMPUSH_RANK=$r NUMPUSH_SIZE="$n" NUMPUSH_ROOT=$ROOT_IP:$port \
            NUMPUSH_NODE=node$((r / per)) NUMPUSH_FABRIC=tipc NUMPUSH_DEBUG=1 \
            NUMPUSH_TEST_ACROSS_NODES=1 NUMPUSH_TIMEOUT="$tmo" timeout 120 "$@" >"/tmp/rank.$r" 2>&1 &
        pids="$pids $!"
        r=$((r + 1))
    done
    codes=""
    for p in $pids; do
        wait "$p"
        codes="$codes $?"
    done
}

# opened_tipc N: every rank's NUMPUSH_DEBUG line names tipc as the fabric
# it opened (so the traffic between nodes went over tipc, not tcp).
opened_tipc() {
    r=0
    while [ "$r" -lt "$1" ]; do
        grep -q "^numpush: rank $r: fabric tipc$" "/tmp/rank.$r" || {
            echo "rank $r did not open the tipc fabric"
            return 1
        }
        r=$((r + 1))
    done
}

# coll NAME N PER_NODE: the collective conformance program over tipc.
coll() {
    name=$1 n=$2 per=$3
    echo "== $name"
    t=$(date +%s)
    ranks "$n" "$per" 20 "$T/test_coll" --quick
    rc=0
    for c in $codes; do [ "$c" -eq 0 ] || rc=$c; done
    opened_tipc "$n" || rc=1
    grep -h '^test_coll:' /tmp/rank.*
    [ "$rc" -eq 0 ] || tail -n 15 /tmp/rank.*
    say "$name ($(($(date +%s) - t)) s): exit $rc"
}

# kill NAME: test_hier_fail's "kill" mode, 6 ranks on 3 nodes: rank 4 dies
# by SIGKILL mid-allreduce; every survivor must get NP_ERR_PEER in time
# (test_hier_fail checks the bounds and exits 0 when they hold).
kill_rank() {
    name=$1
    echo "== $name"
    t=$(date +%s)
    ranks 6 2 3 "$T/test_hier_fail" kill
    rc=0
    r=0
    for c in $codes; do
        if [ "$r" -eq 4 ]; then
            # Killed by the signal: 137 from timeout, which relays it.
            [ "$c" -eq 137 ] || { echo "rank 4 exit $c, expected 137 (SIGKILL)"; rc=1; }
        elif [ "$c" -ne 0 ] || ! grep -q "^rank $r: ERR_PEER after" "/tmp/rank.$r"; then
            echo "rank $r exit $c, expected 0 after NP_ERR_PEER"
            rc=1
        fi
        r=$((r + 1))
    done
    opened_tipc 6 || rc=1
    grep -h '^rank' /tmp/rank.*
    say "$name ($(($(date +%s) - t)) s): exit $rc"
}

run "tipc unit tests (test_tipc)" 60 "$T/test_tipc"
# test_fabric's 5 s NUMPUSH_TIMEOUT assumes a machine at full speed: in an
# emulated guest that shares the host with other tests, filling the huge
# case's 2 GiB alone can outlast it.
NUMPUSH_TIMEOUT=15
export NUMPUSH_TIMEOUT
run "fabric conformance over tipc (test_tipc_conformance)" 170 "$T/test_tipc_conformance"
coll "test_coll --quick over tipc, 2 nodes x 1 rank" 2 1
coll "test_coll --quick over tipc, 3 nodes x 1 rank" 3 1
# Two ranks per node: the non-leaders first talk on a split communicator,
# long after their connection was requested (fabric case "idle").
coll "test_coll --quick over tipc, 2 nodes x 2 ranks" 4 2
kill_rank "a rank killed mid-allreduce over tipc, 3 nodes x 2 ranks: NP_ERR_PEER"

# Two TIPC nodes: network namespaces na and nb joined by a veth pair
# (198.18.7.0/24, the benchmarking range), each with its own TIPC node
# identity and a bearer on its end of the pair, so that tipc crosses a
# real link (name distribution, link supervision) rather than one node's
# loopback.
IP=/usr/sbin/ip
two_nodes() {
    $IP netns add na && $IP netns add nb &&
        $IP link add va netns na type veth peer name vb netns nb &&
        $IP -n na addr add 198.18.7.1/24 dev va && $IP -n nb addr add 198.18.7.2/24 dev vb &&
        $IP -n na link set va up && $IP -n nb link set vb up &&
        $IP -n na link set lo up && $IP -n nb link set lo up &&
        $IP netns exec na tipc node set identity npvm-a &&
        $IP netns exec nb tipc node set identity npvm-b &&
        $IP netns exec na tipc bearer enable media eth dev va &&
        $IP netns exec nb tipc bearer enable media eth dev vb || return 1
    k=0
    until $IP netns exec na tipc link list | grep -q ':vb: up'; do
        k=$((k + 1))
        [ $k -le 100 ] || { echo "the TIPC link between na and nb never came up"; return 1; }
        sleep 0.1
    done
    $IP netns exec na tipc link list
}

# fabric_link CASE...: test_fabric's cases with rank 0 in na and rank 1 in
# nb (as tests/test_fabric_netns.sh does for tcp); linkdown takes va down.
fabric_link() {
    name="fabric cases across the TIPC link"
    echo "== $name"
    t=$(date +%s)
    rc=0
    for c in "$@"; do
        d=$(mktemp -d /tmp/fab.XXXXXX)
        NPF_LINK=va timeout 40 $IP netns exec na "$T/test_fabric" --rank 0 --size 2 --dir "$d" \
            -t tipc -c "$c" &
        p0=$!
        timeout 40 $IP netns exec nb "$T/test_fabric" --rank 1 --size 2 --dir "$d" -t tipc -c "$c" &
        p1=$!
        c0=0 c1=0
        wait $p0 || c0=$?
        wait $p1 || c1=$?
        rm -rf "$d"
        if [ $c0 -eq 0 ] && [ $c1 -eq 0 ]; then
            echo "PASS: link tipc/$c"
        else
            echo "FAIL: link tipc/$c (rank 0 exit $c0, rank 1 exit $c1)"
            rc=1
        fi
    done
    say "$name ($(($(date +%s) - t)) s): exit $rc"
}

if two_nodes; then
    say "two TIPC nodes joined by a veth pair: exit 0"
    NODES_NS="na nb" ROOT_IP=198.18.7.1
    fabric_link zero ordering unexpected many garbage timeout idle death
    coll "test_coll --quick over a TIPC link, 2 nodes x 1 rank" 2 1
    # Last: the link stays down.
    fabric_link linkdown
else
    say "two TIPC nodes joined by a veth pair: exit 1"
fi

say done
sync
poweroff -f
