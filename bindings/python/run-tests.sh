#!/usr/bin/env bash
# Build the Python bindings into the project venv and run their tests under
# numpush-run with 1, 2 and 4 ranks (each rank runs every test, in the same
# order).  Used by `make check` (bindings/python/Makefile.include) and by hand:
#
#   NUMPUSH_BUILDDIR=_build bindings/python/run-tests.sh [RANKS...]
#
# Prints one line "python: N passed, N failed" (counted over rank counts;
# a rank count passes when every rank's pytest and the launcher exit 0).
# Also runs the mpi4py comparison (test_shared.py under mpirun.openmpi)
# when mpi4py and Open MPI are there, unless NUMPUSH_PY_NO_MPI4PY=1.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
builddir=$(cd "${NUMPUSH_BUILDDIR:-$top/_build}" && pwd)
venv=${NUMPUSH_VENV:-$top/.venv}
ranks=("$@")
[ "${#ranks[@]}" -gt 0 ] || ranks=(1 2 4)
tests=("$here/tests/test_objects.py" "$here/tests/test_shared.py" "$here/tests/test_errors.py"
       "$here/tests/test_abort.py")

NUMPUSH_BUILDDIR=$builddir bash "$top/scripts/python-env.sh" "$builddir" || {
  echo "python: 0 passed, 1 failed (environment)"; exit 1; }
launcher=$builddir/numpush-run
[ -x "$launcher" ] || { echo "python-tests: no $launcher" >&2; echo "python: 0 passed, 1 failed"; exit 1; }

export NUMPUSH_BUILDDIR=$builddir
pass=0 fail=0
# Run from the build tree so that the source package in bindings/python does
# not shadow the installed one (which holds the compiled extension).
cd "$builddir"
for n in "${ranks[@]}"; do
  log=$builddir/python-tests-n$n.log
  # --timeout bounds a hang (a collective that one rank never reaches).
  if timeout -k 10 600 "$launcher" -n "$n" --timeout 540 "$venv/bin/python" -m pytest -q \
       -p no:cacheprovider --color=no "${tests[@]}" >"$log" 2>&1; then
    pass=$((pass + 1)); echo "PASS: python tests, $n rank(s)"
  else
    fail=$((fail + 1)); echo "FAIL: python tests, $n rank(s) (log: $log)"; tail -30 "$log"
  fi
done

# Shared arrays and frames serve a multiprocessing pool inside one process
# tree, so their tests run once, outside any launcher.
if [ -f "$here/tests/test_shm.py" ]; then
  log=$builddir/python-tests-shm.log
  # faulthandler_timeout: a test stuck for 120 s prints every thread's
  # stack into the log before the timeout kills the run.
  if timeout -k 10 300 "$venv/bin/python" -m pytest -q -p no:cacheprovider --color=no \
       -o faulthandler_timeout=120 "$here/tests/test_shm.py" >"$log" 2>&1; then
    pass=$((pass + 1)); echo "PASS: python shared arrays and frames"
  else
    fail=$((fail + 1)); echo "FAIL: python shared arrays and frames (log: $log)"; tail -30 "$log"
  fi
fi

if [ "${NUMPUSH_PY_NO_MPI4PY:-0}" != 1 ] && command -v mpirun.openmpi >/dev/null &&
   "$venv/bin/python" -c "import mpi4py" 2>/dev/null; then
  for n in 2 4; do
    log=$builddir/python-tests-mpi4py-n$n.log
    if timeout -k 10 300 env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
         NUMPUSH_TEST_MPI=mpi4py mpirun.openmpi --oversubscribe -n "$n" \
         "$venv/bin/python" -m pytest -q -p no:cacheprovider --color=no "$here/tests/test_shared.py" \
         >"$log" 2>&1; then
      pass=$((pass + 1)); echo "PASS: shared semantics under mpi4py, $n ranks"
    else
      fail=$((fail + 1)); echo "FAIL: shared semantics under mpi4py, $n ranks (log: $log)"; tail -30 "$log"
    fi
  done
fi
echo "python: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
