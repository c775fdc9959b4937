"""Shared fixtures.  Every rank runs the same tests in the same order, so a
collective in a test meets its peers; tests must not skip on some ranks
only."""
import os
import sys

import pytest

if os.environ.get("NUMPUSH_TEST_MPI") == "mpi4py":
    from mpi4py import MPI
else:
    from numpush import MPI


@pytest.fixture
def comm():
    c = MPI.COMM_WORLD
    yield c
    # A barrier after each test keeps a failure in one test from letting
    # ranks drift into the next test's collectives out of step.
    c.Barrier()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With several ranks, the first failure stops the job.  A test that
    fails on some ranks only leaves them out of step with the others, whose
    next collectives then wait for peers that never come (on a split
    communicator no mismatch check can see it), until the launcher's timeout
    minutes later.  So the failing rank prints its report and aborts, which
    ends every rank at once."""
    outcome = yield
    rep = outcome.get_result()
    world = MPI.COMM_WORLD
    if rep.failed and world.Get_size() > 1:
        rank = world.Get_rank()
        sys.stderr.write(f"\nrank {rank}: FAILED {item.nodeid} ({rep.when})\n{rep.longreprtext}\n"
                         f"rank {rank}: stopping the job (the other ranks would wait for this one "
                         "in the collectives it skipped)\n")
        sys.stderr.flush()
        world.Abort(1)
