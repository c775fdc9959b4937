#!/bin/sh
# The same bootstrap probe started by other launchers: Open MPI's mpirun
# (PMIx), MPICH's hydra (PMI-1 over PMI_FD) and env:// (torchrun-style), each
# checking rank, size, local rank and every peer's value.  A launcher that is
# not installed is skipped with a message; if none is, the test skips (77).
. "$(dirname "$0")/run_common.sh"
RAN=0

if command -v mpirun.openmpi >/dev/null; then
    if grep -q '^#define NPI_HAVE_PMIX 1' "$B/config.h" 2>/dev/null; then
        for n in 1 4; do
            OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
                timeout 60 mpirun.openmpi --oversubscribe -n $n "$PROBE" --expect-size $n \
                --expect-method pmix --bytes 3000 --marker "$MARK" >/dev/null
            expect_rc 0 $? "mpirun.openmpi -n $n (PMIx)"
        done
        RAN=1
    else
        # Without PMIx built in, a job under mpirun must refuse to start as singletons.
        OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 60 \
            mpirun.openmpi --oversubscribe -n 2 "$PROBE" --marker "$MARK" >/dev/null 2>&1
        [ $? -ne 0 ] || bad "mpirun.openmpi without PMIx support should fail"
    fi
else
    say "skip: mpirun.openmpi is not installed (Debian: openmpi-bin)"
fi

if command -v mpirun.mpich >/dev/null; then
    for n in 1 4; do
        # 3000 bytes is over hydra's vallen_max, so values travel in pieces.
        timeout 60 mpirun.mpich -n $n "$PROBE" --expect-size $n --expect-method pmi1 \
            --bytes 3000 --marker "$MARK" >/dev/null
        expect_rc 0 $? "mpirun.mpich -n $n (PMI-1)"
    done
    RAN=1
else
    say "skip: mpirun.mpich is not installed (Debian: mpich)"
fi

# env://: no launcher at all; rank 0 serves the store at NUMPUSH_ROOT.  Ranks
# start in reverse order so that the others must wait for rank 0.
port=$((20000 + $$ % 20000))
pids=""
for r in 3 2 1 0; do
    NUMPUSH_ROOT=127.0.0.1:$port NUMPUSH_RANK=$r NUMPUSH_SIZE=4 NUMPUSH_SECRET=s$$ \
        NUMPUSH_BOOT_TIMEOUT=20 "$PROBE" --expect-size 4 --expect-method env --marker "$MARK" \
        >/dev/null &
    pids="$pids $!"
    sleep 0.05
done
okc=0
for p in $pids; do wait $p && okc=$((okc + 1)); done
[ $okc -eq 4 ] || bad "env:// -n 4: $okc of 4 ranks ok"
say "ok: env:// -n 4"

# A process that another launcher says is one of several tasks must not come
# up alone.
OMPI_COMM_WORLD_SIZE=4 "$PROBE" >/dev/null 2>&1 && bad "OMPI_COMM_WORLD_SIZE=4 alone came up"
err=$(SLURM_NTASKS=2 "$PROBE" 2>&1)
printf '%s' "$err" | grep -q 'SLURM_NTASKS=2' || bad "foreign size message: $err"
say "ok: refuses a singleton when a launcher says there are several tasks"
check_clean "peers"
finish
