# Shared helpers of the tests/test_run_*.sh scripts (sourced, not run).
# They find the launcher and the probe through NUMPUSH_BUILDDIR (set by
# `make check`; defaults to the current directory when run by hand).
B=${NUMPUSH_BUILDDIR:-$PWD}
S=${NUMPUSH_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
RUN=$B/numpush-run
PROBE=$B/tests/test_boot_probe
# A word that only this script's processes carry, so leftovers can be found.
MARK=npmark$$x$RANDOM
FAILS=0
FAILED=""

say() { printf '%s: %s\n' "$(basename "$0")" "$*"; }
bad() {
    say "FAIL: $*"
    FAILS=$((FAILS + 1))
    FAILED="$FAILED
    $*"
}

# expect_rc WANT GOT WHAT
expect_rc() {
    if [ "$2" -ne "$1" ]; then bad "$3: exit code $2, expected $1"; else say "ok: $3 (exit $2)"; fi
}

# No process of this script may outlive a job.
check_clean() {
    sleep 0.2
    if pgrep -f "$MARK" >/dev/null; then
        bad "$1: processes left behind:"; pgrep -af "$MARK"
        pkill -KILL -f "$MARK"
    fi
}

# Milliseconds since the epoch.
now_ms() { date +%s%3N; }

finish() {
    # The failures again at the end, where a log's tail (all CI shows) has them.
    if [ "$FAILS" -ne 0 ]; then say "$FAILS failure(s):$FAILED"; exit 1; fi
    say "all passed"; exit 0
}

# netns_three_hosts TAG: three "hosts" made of network namespaces, the first
# holding a bridge (198.18.0.1/24) that veth pairs join the other two to
# (198.18.0.2 and .3; the benchmarking range, never routed).  Sets NS, N0, N1
# and N2, deletes the namespaces when the script ends, and skips the test
# (exit 77) where namespaces cannot be made.  TAG (one letter) keeps the
# names of tests that run at the same time apart.
netns_three_hosts() {
    NS="np$1$$a np$1$$b np$1$$c"
    set -- $NS "$1"
    N0=$1 N1=$2 N2=$3
    trap netns_cleanup EXIT
    trap 'netns_cleanup; exit 1' INT TERM
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
        ip link add "v$$$4$i" type veth peer name "w$$$4$i"
        ip link set "v$$$4$i" netns "$N0"
        ip link set "w$$$4$i" netns "$ns"
        ip -n "$N0" link set "v$$$4$i" master br0 up
        ip -n "$ns" addr add "198.18.0.$i/24" dev "w$$$4$i"
        ip -n "$ns" link set "w$$$4$i" up
        ip -n "$ns" link set lo up
        i=$((i + 1))
    done
    set +e
}

netns_cleanup() {
    for ns in $NS; do ip netns del "$ns" 2>/dev/null; done
}
