"""A port of mpi4py's tutorial example "Compute Pi" (numerical integration
of 4 / (1 + x**2) over [0, 1]) to numpush: the only change is the import.

    numpush-run -n 4 .venv/bin/python examples/python/mpi4py_tutorial_compute_pi.py

The tutorial's version uses Bcast and Reduce on numpy buffers with mpi4py
datatypes; with ``from numpush import MPI`` the same lines run on numpush.
"""
import math

import numpy as np

from numpush import MPI  # was: from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()

N = np.array(0, dtype="i")
if rank == 0:
    N.fill(10_000_000)
comm.Bcast([N, MPI.INT], root=0)

h = 1.0 / N
s = 0.0
CHUNK = 100_000  # the tutorial loops over i = rank, rank + size, ...; here by chunks
for start in range(rank * CHUNK, int(N), size * CHUNK):
    x = h * (np.arange(start, min(start + CHUNK, int(N)), dtype="d") + 0.5)
    s += np.sum(4.0 / (1.0 + x * x))
PI = np.array(s * h, dtype="d")

total = np.array(0.0, dtype="d") if rank == 0 else None
comm.Reduce([PI, MPI.DOUBLE], [total, MPI.DOUBLE] if rank == 0 else None, op=MPI.SUM, root=0)

# The lowercase methods work as in mpi4py too.
pi = comm.bcast(float(total) if rank == 0 else None, root=0)
if rank == 0:
    print(f"pi is approximately {pi:.16f}, error {abs(pi - math.pi):.2e}")
assert abs(pi - math.pi) < 1e-10
