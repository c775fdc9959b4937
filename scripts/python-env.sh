#!/usr/bin/env bash
# Create (or refresh) the project's Python environment in .venv and install
# the numpush bindings into it, built against the in-tree library.
#
#   scripts/python-env.sh [BUILDDIR]
#
# BUILDDIR is the configured build tree holding .libs/libnumpush.so (default:
# $NUMPUSH_BUILDDIR, else _build).  The venv gets numpy, pandas, msgpack,
# pytest and mpi4py (the peer the shared-semantics tests compare against; it
# is optional and skipped with NUMPUSH_NO_MPI4PY=1).  Safe to run again: it
# only installs what is missing and rebuilds the extension when a source of
# it is newer than the installed one.  PYTHON picks the interpreter that
# creates the venv (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
builddir=${1:-${NUMPUSH_BUILDDIR:-$top/_build}}
builddir=$(cd "$builddir" && pwd)
venv=${NUMPUSH_VENV:-$top/.venv}
python=${PYTHON:-python3}

if [ ! -f "$builddir/.libs/libnumpush.so" ]; then
  echo "python-env: no libnumpush.so in $builddir/.libs: build numpush first (scripts/build.sh)" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "python-env: creating $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)

want=(numpy pandas msgpack pytest setuptools wheel)
[ "${NUMPUSH_NO_MPI4PY:-0}" = 1 ] || want+=(mpi4py)
missing=()
for p in "${want[@]}"; do
  "$venv/bin/python" -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('$p') is None)" \
    2>/dev/null || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "python-env: installing ${missing[*]}"
  # mpi4py compiles against the system's Open MPI (mpicc.openmpi); a failure
  # there only costs the mpi4py comparison, not the bindings.
  for p in "${missing[@]}"; do
    if [ "$p" = mpi4py ]; then
      MPICC=${MPICC:-$(command -v mpicc.openmpi || command -v mpicc || echo mpicc)} \
        "${pip[@]}" install mpi4py || echo "python-env: mpi4py did not install; its comparison tests will be skipped" >&2
    else
      "${pip[@]}" install "$p"
    fi
  done
fi

# Rebuild the extension when the library or any binding source is newer than
# the stamp left by the last install into this venv for this build tree.
stamp="$venv/.numpush-stamp"
need=1
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$builddir" ]; then
  newer=$(find bindings/python "$builddir/.libs/libnumpush.so" include/numpush \
            -newer "$stamp" \( -name '*.py' -o -name '*.c' -o -name '*.h' -o -name '*.toml' \
            -o -name 'libnumpush.so' \) -print -quit 2>/dev/null)
  [ -z "$newer" ] && need=0
fi
if [ "$need" = 1 ]; then
  echo "python-env: installing bindings/python against $builddir"
  rm -rf bindings/python/build
  NUMPUSH_BUILDDIR=$builddir NUMPUSH_SRCDIR=$top \
    "${pip[@]}" install --no-build-isolation --no-deps --force-reinstall ./bindings/python
  rm -rf bindings/python/build bindings/python/*.egg-info
  echo "$builddir" >"$stamp"
fi
echo "python-env: ok ($venv)"
