"""numpush DataFrame demo: scatter a frame, compute per rank, allreduce a
summary, gather the result.

    numpush-run -n 4 .venv/bin/python examples/python/dataframe_demo.py

Rank 0 builds a frame of sensor readings; scatter splits it by rows (the
index comes along); each rank adds a column and computes per-sensor sums and
counts over its rows; allreduce adds the numeric summaries elementwise in
numpush's C kernels; gather(concat=True) brings the enriched rows back to
rank 0 as one frame.  None of the numeric data is pickled.
"""
import numpy as np
import pandas as pd

import numpush

comm = numpush.COMM_WORLD
SENSORS = ["north", "south", "east", "west"]

if comm.rank == 0:
    n = 1_000_000
    rng = np.random.default_rng(42)
    frame = pd.DataFrame({
        "sensor": pd.Categorical(rng.choice(SENSORS, n), categories=SENSORS),
        "temp": rng.normal(15.0, 8.0, n),
        "rain": rng.gamma(0.5, 2.0, n),
    }, index=pd.date_range("2024-01-01", periods=n, freq="min", tz="UTC", name="time"))
else:
    frame = None

t0 = numpush.Wtime()
part = comm.scatter(frame, root=0)  # rows split as np.array_split does

# Per rank: a derived column, then per-sensor sums and counts as a numeric frame
# with the same shape and columns on every rank.
part["hot"] = part["temp"] > 25.0
summary = (part.groupby("sensor", observed=False)[["temp", "rain", "hot"]]
           .sum().astype("float64"))
summary["rows"] = part.groupby("sensor", observed=False).size().astype("float64")

total = comm.allreduce(summary, op=numpush.SUM)  # elementwise, every rank gets it
whole = comm.gather(part, root=0, concat=True)   # one frame back at rank 0
elapsed = numpush.Wtime() - t0

if comm.rank == 0:
    mean = total[["temp", "rain"]].div(total["rows"], axis=0)
    mean["hot share"] = total["hot"] / total["rows"]
    print(f"{comm.size} ranks, {len(whole):,} rows, {elapsed * 1e3:.1f} ms")
    print(mean.round(3).to_string())
    # The gathered frame equals the original plus the new column.
    check = frame.assign(hot=frame["temp"] > 25.0)
    pd.testing.assert_frame_equal(whole, check)
    assert int(total["rows"].sum()) == len(frame)
    print("dataframe demo: ok")
