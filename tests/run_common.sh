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

say() { printf '%s: %s\n' "$(basename "$0")" "$*"; }
bad() { say "FAIL: $*"; FAILS=$((FAILS + 1)); }

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
    if [ "$FAILS" -ne 0 ]; then say "$FAILS failure(s)"; exit 1; fi
    say "all passed"; exit 0
}
