#!/usr/bin/env bash
# Quick start, command 2: install what is needed, build, run the whole test suite.
# Ends with one line "tests: N passed, N failed" counted from the test harness.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || exit 1
bash scripts/build.sh || exit 1
cd _build
make -j"$(nproc)" check >check.out 2>&1
status=$?
grep -E '^(PASS|FAIL|ERROR|SKIP|XFAIL|XPASS):' check.out || true
if [ $status -ne 0 ]; then
  echo "---- failing test logs ----"
  for log in $(find . -name '*.log' ! -name config.log ! -name test-suite.log); do
    if grep -qE '^:test-result: (FAIL|ERROR)' "${log%.log}.trs" 2>/dev/null; then
      echo "== $log"; tail -40 "$log"
    fi
  done
fi
pass=$(grep -cE '^PASS:' check.out)
fail=$(grep -cE '^(FAIL|ERROR|XPASS):' check.out)
skip=$(grep -cE '^SKIP:' check.out)

# The release tarball must build and pass the same suite from a read-only
# source tree (make distcheck); it counts as one more test.  Skip it with
# NUMPUSH_NO_DISTCHECK=1 for a quicker run.
if [ "${NUMPUSH_NO_DISTCHECK:-0}" != 1 ] && [ $status -eq 0 ]; then
  if make -j"$(nproc)" distcheck >distcheck.out 2>&1; then
    echo "PASS: make distcheck"; pass=$((pass + 1))
  else
    echo "FAIL: make distcheck"; tail -40 distcheck.out; fail=$((fail + 1)); status=1
  fi
fi
echo "tests: $pass passed, $fail failed, $skip skipped"
exit $status
