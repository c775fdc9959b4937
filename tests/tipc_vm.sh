#!/bin/sh
# The tipc transport for real where this kernel has no TIPC: a small guest
# boots Debian 12's own kernel (which ships tipc.ko; fetched and unpacked,
# never installed, by scripts/install-deps.sh into
# /var/cache/numpush/vm-kernel, or NUMPUSH_VM_KERNEL) from an initramfs
# made here of busybox, iproute2's ip and tipc, the built test programs and
# every library they load.  The guest (tests/tipc_vm_init.sh) loads tipc
# and runs: tipc's unit tests, the fabric conformance suite over tipc
# (test_tipc_conformance, which must run, not skip), test_coll over tipc
# between 2 and 3 nodes with 1 and 2 ranks per node, a rank killed
# mid-allreduce (NP_ERR_PEER on the survivors), and, between two network
# namespaces that are two TIPC nodes joined by a veth bearer, the fabric
# cases and test_coll again.  Each
# guest test prints "NPVM: NAME: exit RC"; this passes only if the guest
# reached its end and all of them exited 0.  Skips (77) with the reason
# where the guest cannot be built, and where this kernel has AF_TIPC itself
# (test_tipc_conformance then runs the suite on the host).  The temporary
# tree and qemu go on every exit path.
set -u

B=${NUMPUSH_BUILDDIR:-$(pwd)}
S=${NUMPUSH_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
KDIR=${NUMPUSH_VM_KERNEL:-/var/cache/numpush/vm-kernel}
# Seconds the guest may take, boot to power-off.
LIMIT=${NUMPUSH_VM_TIMEOUT:-360}

skip() {
    echo "SKIP: tipc_vm: $*"
    exit 77
}

[ -x "$B/tests/test_tipc_conformance" ] || skip "$B/tests/test_tipc_conformance not built"
if "$B/tests/test_tipc_conformance" --probe >/dev/null 2>&1; then
    skip "this kernel has AF_TIPC: test_tipc_conformance runs the suite here"
fi
command -v qemu-system-x86_64 >/dev/null 2>&1 ||
    skip "no qemu-system-x86_64 (Debian: qemu-system-x86; scripts/install-deps.sh)"
# KVM where the processor's virtualization backs it.  Some hosts' /dev/kvm
# is a paravirtual hypervisor (kvm_pvm, on machines that are themselves
# guests) that runs only kernels built for it: Debian's kernel hangs there
# before its first message, so the guest runs under qemu's emulator
# instead (about 100 s for everything here).  NUMPUSH_VM_ACCEL=kvm|tcg
# chooses.
accel=${NUMPUSH_VM_ACCEL:-}
if [ -z "$accel" ]; then
    if ! (exec 3<>/dev/kvm) 2>/dev/null; then
        why="/dev/kvm cannot be opened for reading and writing"
    elif [ ! -d /sys/module/kvm_intel ] && [ ! -d /sys/module/kvm_amd ]; then
        why="this host's KVM is not hardware-assisted ($(ls -d /sys/module/kvm_* 2>/dev/null |
            sed 's|.*/||' | tr '\n' ' ' | sed 's/ $//')), it cannot boot Debian's kernel"
    else
        why=""
    fi
    accel=kvm
    [ -n "$why" ] && accel=tcg && echo "tipc_vm: $why: emulating the guest (tcg)"
fi
case $accel in
kvm) qaccel="-enable-kvm -cpu host" ;;
tcg) qaccel="-accel tcg,thread=multi -cpu max" ;;
*) skip "NUMPUSH_VM_ACCEL=$accel: expected kvm or tcg" ;;
esac
BB=$(command -v busybox 2>/dev/null) || skip "no busybox (Debian: busybox-static)"
set -- "$KDIR"/boot/vmlinuz-*
[ -f "$1" ] || skip "no kernel in $KDIR (scripts/install-deps.sh fetches Debian's)"
KERNEL=$1
KVER=${KERNEL##*/vmlinuz-}
MODS=$KDIR/lib/modules/$KVER

tmp=""
qpid=""
cleanup() {
    [ -n "$qpid" ] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
    [ -n "$tmp" ] && rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
tmp=$(mktemp -d /tmp/numpush-tipcvm-XXXXXX) || exit 1
root=$tmp/root
mkdir -p "$root/bin" "$root/modules" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" \
    "$root/etc" || exit 1
start=$(date +%s)

# The program itself, not libtool's wrapper script (which needs bash and
# the build tree's paths).
real() {
    if [ -f "$(dirname "$1")/.libs/$(basename "$1")" ]; then
        echo "$(dirname "$1")/.libs/$(basename "$1")"
    else
        echo "$1"
    fi
}

# Every shared library a program loads, the loader included, at the same
# path in the guest; libdirs collects their folders for LD_LIBRARY_PATH.
libdirs=""
addlibs() {
    for lib in $(LD_LIBRARY_PATH=$B/.libs ldd "$1" 2>/dev/null |
        awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
        [ -f "$root$lib" ] && continue
        mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib" || return 1
        case ":$libdirs:" in *":$(dirname "$lib"):"*) ;; *) libdirs="$libdirs:$(dirname "$lib")" ;; esac
    done
}

# The build tree's programs keep their paths (test_tipc_conformance finds
# test_fabric through NUMPUSH_BUILDDIR).
mkdir -p "$root$B/tests" || exit 1
for p in tests/test_fabric tests/test_tipc tests/test_tipc_conformance tests/test_coll \
    tests/test_hier_fail numpush-run; do
    src=$(real "$B/$p")
    [ -f "$src" ] || { echo "FAIL: $B/$p not built"; exit 1; }
    cp "$src" "$root$B/$p" && addlibs "$src" || { echo "FAIL: copying $p"; exit 1; }
done

# busybox for the shell and the tools; iproute2's ip and tipc (with their
# libraries) in /usr/sbin, for what busybox's ip lacks (busybox's shell
# runs its own applet for a bare "ip").
cp -L "$BB" "$root/bin/busybox" && addlibs "$BB" || exit 1
for a in $("$BB" --list); do [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"; done
mkdir -p "$root/usr/sbin" || exit 1
for t in ip tipc; do
    p=$(PATH=/usr/sbin:/sbin:$PATH command -v "$t") || continue
    cp -L "$p" "$root/usr/sbin/$t" && addlibs "$p" || exit 1
done

# tipc.ko and what it depends on (the package has no modules.dep: the
# .modinfo section of each module names its dependencies), in load order,
# uncompressed (busybox insmod may not read compressed modules).
modfile() {
    find "$MODS/kernel" \( -name "$1.ko" -o -name "$1.ko.*" \) 2>/dev/null | head -n 1
}
added=" "
addmod() {
    case $added in *" $1 "*) return 0 ;; esac
    f=$(modfile "$1")
    [ -n "$f" ] || { echo "FAIL: no module $1 under $MODS"; return 1; }
    case $f in
    *.ko) cp "$f" "$root/modules/$1.ko" ;;
    *.ko.xz) xz -dc "$f" >"$root/modules/$1.ko" ;;
    *.ko.zst) zstd -dcq "$f" >"$root/modules/$1.ko" ;;
    *.ko.gz) gzip -dc "$f" >"$root/modules/$1.ko" ;;
    *) echo "FAIL: cannot read $f"; return 1 ;;
    esac || return 1
    for d in $(tr '\0' '\n' <"$root/modules/$1.ko" | sed -n 's/^depends=//p' | tr ',' ' '); do
        addmod "$d" || return 1
    done
    added="$added$1 "
    echo "$1" >>"$root/modules/order"
}
addmod tipc || exit 1
addmod veth || exit 1

cat >"$root/etc/vm.env" <<EOF
B='$B'
LD_LIBRARY_PATH='$B/.libs$libdirs'
EOF
cp "$S/tests/tipc_vm_init.sh" "$root/init" || exit 1
chmod +x "$root/init"
(cd "$root" && find . | "$BB" cpio -o -H newc >"$tmp/initrd" 2>/dev/null) || exit 1
echo "tipc_vm: initramfs $(($(wc -c <"$tmp/initrd") / 1048576)) MiB, kernel $KVER, built in $(($(date +%s) - start)) s"

# The huge fabric case holds 2 GiB in each of two ranks; memory the guest
# never touches costs the host nothing.
timeout -k 5 "$LIMIT" qemu-system-x86_64 $qaccel -smp 2 -m 6G \
    -nodefaults -no-user-config -display none -serial stdio -no-reboot \
    -kernel "$KERNEL" -initrd "$tmp/initrd" \
    -append "console=ttyS0 panic=-1 quiet" </dev/null >"$tmp/console" 2>&1 &
qpid=$!
wait "$qpid"
qrc=$?
qpid=""
tr -d '\r' <"$tmp/console"
echo "tipc_vm: qemu exit $qrc after $(($(date +%s) - start)) s"

# The guest's verdict: every test it ran, and that it reached the end.
n=$(tr -d '\r' <"$tmp/console" | grep -c '^NPVM: .*: exit [0-9]*$')
bad=$(tr -d '\r' <"$tmp/console" | grep '^NPVM: .*: exit [0-9]*$' | grep -vc ': exit 0$')
if ! tr -d '\r' <"$tmp/console" | grep -q '^NPVM: done$'; then
    echo "FAIL: tipc_vm: the guest did not finish (qemu exit $qrc; $n test(s) reported)"
    exit 1
fi
[ "$n" -gt 0 ] || { echo "FAIL: tipc_vm: the guest ran no test"; exit 1; }
echo "tipc_vm: $((n - bad)) passed, $bad failed"
[ "$bad" -eq 0 ]
