#!/usr/bin/env bash
# Install everything numpush needs to build, test and benchmark on Debian 12.
# Safe to run again: apt-get skips what is already there.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(
  # build
  build-essential autoconf automake libtool pkg-config
  # libraries numpush links
  libmsgpack-dev libhwloc-dev libzmq3-dev libfabric-dev libpmix-dev
  # tests, fuzzing, launcher tests across network namespaces
  check clang libclang-rt-14-dev iproute2 procps hwloc libfabric-bin
  # peers for tests and benchmarks
  openmpi-bin libopenmpi-dev mpich libmpich-dev iperf3
  # Python bindings
  python3 python3-dev python3-venv
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: system packages present"
