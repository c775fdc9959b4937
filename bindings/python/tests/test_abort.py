"""An uncaught exception on one rank ends the whole job with that rank's
traceback and a non-zero exit (rank 0 runs a small job of its own)."""
import os
import subprocess
import sys

import pytest

SCRIPT = """
import numpush, time
comm = numpush.COMM_WORLD
if comm.rank == 1:
    raise ValueError("boom on rank one")
comm.barrier()          # the other ranks wait here until the job is aborted
time.sleep(60)
"""


def test_exception_aborts_job(comm):
    if comm.rank != 0:
        return
    launcher = os.path.join(os.environ.get("NUMPUSH_BUILDDIR", ""), "numpush-run")
    if not os.path.exists(launcher) or os.environ.get("NUMPUSH_TEST_MPI") == "mpi4py":
        pytest.skip("needs numpush-run (NUMPUSH_BUILDDIR)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMPUSH_")
           or k in ("NUMPUSH_BUILDDIR", "NUMPUSH_PY_CORE")}
    p = subprocess.run([launcher, "-n", "2", "--timeout", "50", sys.executable, "-c", SCRIPT],
                       capture_output=True, text=True, timeout=55, env=env)
    assert p.returncode != 0
    assert "ValueError: boom on rank one" in p.stderr
    assert "rank 1 of 2" in p.stderr
