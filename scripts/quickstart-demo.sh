#!/usr/bin/env bash
# Quick start, command 1: install what is needed, build, run the demo.
#   - numpush-info: version, transports, topology, every setting;
#   - the C demo with 4 ranks (broadcast, scatter, compute, allreduce, gather);
#   - the Python DataFrame demo with 4 ranks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
NUMPUSH_NO_MPI4PY=1 bash scripts/python-env.sh _build >/dev/null
cd _build
echo "== numpush-info"
./numpush-info
echo
echo "== numpush-run -n 4 examples/demo"
./numpush-run -n 4 examples/demo
echo
echo "== numpush-run -n 4 python examples/python/dataframe_demo.py"
./numpush-run -n 4 ../.venv/bin/python ../examples/python/dataframe_demo.py
