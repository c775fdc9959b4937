#!/usr/bin/env bash
# Quick start, command 1: install what is needed, build, run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
cd _build
./numpush-info
