"""Shared fixtures.  Every rank runs the same tests in the same order, so a
collective in a test meets its peers; tests must not skip on some ranks
only."""
import os

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
