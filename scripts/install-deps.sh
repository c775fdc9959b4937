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
  # the tipc tests in a KVM guest (tests/tipc_vm.sh)
  qemu-system-x86 busybox-static
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

# tests/tipc_vm.sh boots Debian's own kernel (which ships tipc.ko) in a KVM
# guest, for hosts whose kernel has no TIPC.  The kernel package is fetched
# and unpacked into a cache, never installed into this host.
VM_KERNEL=${NUMPUSH_VM_KERNEL:-/var/cache/numpush/vm-kernel}
vm_kernel_pkg() {
  apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}
if ! ls "$VM_KERNEL"/boot/vmlinuz-* >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # apt downloads as the user _apt where it can write.
  chmod 755 "$tmp"
  if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi
  pkg=$(vm_kernel_pkg)
  # Package lists that are missing or older than the archive's current
  # kernel (whose package name changes with each ABI) are refreshed once.
  if [ -z "$pkg" ] || ! (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null 2>&1); then
    $SUDO apt-get update -qq || true
    pkg=$(vm_kernel_pkg)
  fi
  # Without the kernel only tests/tipc_vm.sh is lost (it skips and says
  # why), so a failed download warns instead of stopping the install.
  if [ -n "$pkg" ] && { ls "$tmp"/"$pkg"_*.deb >/dev/null 2>&1 ||
    (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null); }; then
    $SUDO mkdir -p "$(dirname "$VM_KERNEL")"
    $SUDO rm -rf "$VM_KERNEL.new"
    $SUDO dpkg-deb -x "$tmp"/"$pkg"_*.deb "$VM_KERNEL.new"
    # Whole or not at all: a half-unpacked tree is never taken for a kernel.
    $SUDO rm -rf "$VM_KERNEL"
    $SUDO mv "$VM_KERNEL.new" "$VM_KERNEL"
    echo "install-deps: $pkg unpacked into $VM_KERNEL (for tests/tipc_vm.sh)"
  else
    echo "install-deps: warning: could not fetch Debian's kernel package; tests/tipc_vm.sh will skip" >&2
  fi
fi
