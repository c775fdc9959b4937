#!/usr/bin/env bash
# Configure and build numpush in _build/ (an out-of-tree build).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x configure ] || ./autogen.sh >/dev/null
mkdir -p _build
cd _build
[ -f Makefile ] || ../configure --prefix="$PWD/../_install" >configure.out || { cat configure.out; exit 1; }
make -j"$(nproc)" >make.out 2>&1 || { tail -50 make.out; exit 1; }
echo "build: ok (_build/)"
