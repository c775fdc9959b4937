#!/bin/sh
# numpush-info: version, where a setting came from, and a synthetic topology.
set -u
info="${NUMPUSH_BUILDDIR:-.}/numpush-info"
fail=0
check() { # check DESCRIPTION COMMAND...: run a test, report it, remember failures
    desc=$1
    shift
    if "$@"; then
        echo "ok: $desc"
    else
        echo "FAIL: $desc"
        fail=1
    fi
}
out=$(mktemp) || exit 99
trap 'rm -f "$out"' EXIT

"$info" --version >"$out" 2>&1
check "--version prints the version" grep -q '^numpush-info (numpush) 0\.1\.0$' "$out"
"$info" --help >"$out" 2>&1
check "--help prints usage" grep -q '^Usage: numpush-info' "$out"
"$info" --no-such-option >"$out" 2>&1
check "an unknown option exits with 2" test $? -eq 2

# Clear every setting inherited from the caller so the defaults are known.
for v in $(env | sed -n 's/^\(NUMPUSH_[A-Z0-9_]*\)=.*/\1/p'); do
    case $v in NUMPUSH_BUILDDIR | NUMPUSH_SRCDIR) ;; *) unset "$v" ;; esac
done

NUMPUSH_SPIN=123 NUMPUSH_TOPOLOGY="pack:2 l3:2 core:2 pu:1" "$info" >"$out" 2>&1
rc=$?
check "numpush-info exits 0" test $rc -eq 0
check "the version line comes first" sh -c "head -1 '$out' | grep -q '^numpush 0\.1\.0$'"
check "tcp is always compiled in" grep -q '^  tcp  *yes' "$out"
check "an environment value says environment" grep -Eq '^  NUMPUSH_SPIN +123 +environment ' "$out"
check "an unset setting says default" grep -Eq '^  NUMPUSH_TIMEOUT +5 +default ' "$out"
check "the synthetic topology is named" grep -q 'synthetic "pack:2 l3:2 core:2 pu:1"' "$out"
check "2 packages" grep -Eq '^  packages +2$' "$out"
check "4 L3 caches" grep -Eq '^  L3 caches +4$' "$out"
check "8 cores" grep -Eq '^  cores +8$' "$out"
check "8 PUs" grep -Eq '^  PUs +8$' "$out"
check "at least one NUMA node" grep -Eq '^  NUMA nodes +[1-9]' "$out"
check "the bootstrap section exists" grep -q '^Bootstrap:$' "$out"
check "the decision table section exists" grep -q '^Collective decision table:$' "$out"

NUMPUSH_TOPOLOGY="pack:2 numa:2 core:3 pu:2" "$info" >"$out" 2>&1
check "NUMA nodes from a synthetic topology" grep -Eq '^  NUMA nodes +4$' "$out"
check "PUs from a synthetic topology" grep -Eq '^  PUs +24$' "$out"

NUMPUSH_TOPOLOGY="bogus:7" "$info" >"$out" 2>&1
rc=$?
check "a bad topology fails" test $rc -ne 0
check "a bad topology is explained" grep -q "NUMPUSH_TOPOLOGY='bogus:7' is not a valid hwloc" "$out"

NUMPUSH_SPNI=1 "$info" >"$out" 2>&1
check "a misspelt variable is pointed out" grep -q '^  NUMPUSH_SPNI$' "$out"

if [ $fail -ne 0 ]; then
    echo "--- last output:"
    cat "$out"
fi
exit $fail
