#!/bin/sh
# Job start-up: from the launcher's start to initialisation returning on every
# rank, and to the launcher's exit, for numpush-run against mpirun.openmpi and
# mpirun.mpich starting a trivial MPI program of the same shape, in the same
# run (see ../shared/BENCHMARKS.md: ratios, never absolute times from another
# day).
#
# The numpush rank calls np_init when the library has it, else the bootstrap
# alone (npi_boot_init + a fence), and prints the wall clock once it returns.
# Each figure is the median of REPS runs (default 5).
#
# Usage: bench/bench_startup.sh [BUILDDIR] [-n "2 8 32"] [-r REPS]
# Output: a table on stdout and bench_startup.csv in the current directory.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=${NUMPUSH_BUILDDIR:-$SRC/_build}
SIZES="2 8 32"
REPS=5
while [ $# -gt 0 ]; do
    case $1 in
    -n) SIZES=$2; shift 2 ;;
    -r) REPS=$2; shift 2 ;;
    *) B=$(cd "$1" && pwd); shift ;;
    esac
done
RUN=$B/numpush-run
[ -x "$RUN" ] || { echo "bench_startup: no $RUN (build first, or pass the build dir)" >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

cat >"$W/np_rank.c" <<'C'
#include "boot.h"
#include <stdio.h>
#include <time.h>
#ifdef USE_NP_INIT
#include <numpush/numpush.h>
#endif
static long long wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
int main(int argc, char **argv)
{
#ifdef USE_NP_INIT
    if (np_init(&argc, &argv))
        return 1;
    printf("T %lld\n", wall_ns());
    fflush(stdout);
    np_finalize();
#else
    npi_boot b;
    if (npi_boot_init(&b) || b.ops->fence(&b))
        return 1;
    printf("T %lld\n", wall_ns());
    fflush(stdout);
    npi_boot_finalize(&b);
#endif
    return 0;
}
C
cat >"$W/mpi_rank.c" <<'C'
#include <mpi.h>
#include <stdio.h>
#include <time.h>
int main(int argc, char **argv)
{
    struct timespec ts;
    MPI_Init(&argc, &argv);
    clock_gettime(CLOCK_REALTIME, &ts);
    printf("T %lld\n", ts.tv_sec * 1000000000LL + ts.tv_nsec);
    fflush(stdout);
    MPI_Finalize();
    return 0;
}
C
LIB=$B/.libs
DEF=""
if nm -D "$LIB/libnumpush.so" 2>/dev/null | grep -q ' T np_init$'; then DEF=-DUSE_NP_INIT; fi
cc -O2 $DEF -I"$SRC/include" -I"$SRC/src/core" -I"$SRC/src" -I"$B" "$W/np_rank.c" -o "$W/np_rank" \
    -L"$LIB" -Wl,-rpath,"$LIB" -lnumpush || exit 1
WHAT_NP="npi_boot_init+fence"
[ -n "$DEF" ] && WHAT_NP="np_init"
HAVE_OMPI=0 HAVE_MPICH=0
command -v mpicc.openmpi >/dev/null && command -v mpirun.openmpi >/dev/null &&
    mpicc.openmpi -O2 "$W/mpi_rank.c" -o "$W/ompi_rank" && HAVE_OMPI=1
command -v mpicc.mpich >/dev/null && command -v mpirun.mpich >/dev/null &&
    mpicc.mpich -O2 "$W/mpi_rank.c" -o "$W/mpich_rank" && HAVE_MPICH=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# once N CMD...: prints "init_ms exit_ms" for one run, or "fail".
once() {
    n=$1
    shift
    t0=$(date +%s%N)
    out=$(timeout 120 "$@" 2>"$W/err")
    rc=$?
    t1=$(date +%s%N)
    cnt=$(printf '%s\n' "$out" | grep -c '^T ')
    if [ $rc -ne 0 ] || [ "$cnt" -ne "$n" ]; then
        echo fail
        return
    fi
    printf '%s\n' "$out" | awk -v t0="$t0" -v t1="$t1" \
        '/^T /{ if ($2 > m) m = $2 } END { printf "%.1f %.1f\n", (m - t0) / 1e6, (t1 - t0) / 1e6 }'
}

# median N CMD...: medians over REPS runs, "init exit".
median() {
    : >"$W/m"
    i=0
    while [ $i -lt $REPS ]; do
        once "$@" >>"$W/m"
        i=$((i + 1))
    done
    if grep -q fail "$W/m"; then
        echo "fail fail"
        return
    fi
    sort -n -k1 "$W/m" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}' >"$W/a"
    sort -n -k2 "$W/m" | awk '{a[NR]=$2} END {print a[int((NR+1)/2)]}' >"$W/b"
    echo "$(cat "$W/a") $(cat "$W/b")"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "fail" || b == "fail" || a <= 0) print "-"; else printf "%.2fx", b / a }'; }

echo "# start-up: launcher start -> $WHAT_NP / MPI_Init returned on every rank (init), -> launcher exit (exit)"
echo "# median of $REPS runs, ms; ratio = peer time / numpush time (>1: numpush faster); $(nproc) cores"
printf '%-4s %-22s %-22s %-22s %-14s %-14s\n' n "numpush init/exit" "openmpi init/exit" "mpich init/exit" "vs ompi i/e" "vs mpich i/e"
echo "n,numpush_init_ms,numpush_exit_ms,openmpi_init_ms,openmpi_exit_ms,mpich_init_ms,mpich_exit_ms" >bench_startup.csv
for n in $SIZES; do
    set -- $(median $n "$RUN" -n $n "$W/np_rank")
    npi=$1 npe=$2
    oi=- oe=- mi=- me=-
    if [ $HAVE_OMPI = 1 ]; then
        set -- $(median $n mpirun.openmpi --oversubscribe -n $n "$W/ompi_rank")
        oi=$1 oe=$2
    fi
    if [ $HAVE_MPICH = 1 ]; then
        set -- $(median $n mpirun.mpich -n $n "$W/mpich_rank")
        mi=$1 me=$2
    fi
    printf '%-4s %-22s %-22s %-22s %-14s %-14s\n' $n "$npi / $npe" "$oi / $oe" "$mi / $me" \
        "$(ratio $npi $oi) $(ratio $npe $oe)" "$(ratio $npi $mi) $(ratio $npe $me)"
    echo "$n,$npi,$npe,$oi,$oe,$mi,$me" >>bench_startup.csv
done
