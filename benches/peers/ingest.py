"""Peer of the ingestion line of `microreboot bench infer`: the same Alibaba v2022 CSV rows
read with polars on one core, with the same row handling as traces/src/alibaba.rs: self calls
and rows with both ends unknown dropped, a repeated (traceid, rpc_id, um, dm) dropped as a
duplicate, then calls counted per edge. The kernel remembers the keys of at least the last
65,536 rows, polars de-duplicates globally: the synthetic duplicates are adjacent, so both
drop them, and polars also drops the rare random key collisions further apart than the
kernel's window (2 of 1,000,000 rows here; both print their call counts).

    python benches/peers/ingest.py DIR [--runs N]

DIR is what `microreboot bench infer --export DIR` wrote. Best of N runs, like the kernel's.
"""

import argparse
import os
import time

os.environ.setdefault("POLARS_MAX_THREADS", "1")  # one core, as the kernel's reader

import polars as pl  # noqa: E402

PLACEHOLDERS = ["", "(?)", "?", "UNKNOWN", "UNAVAILABLE", "USER", "NaN", "nan", "null", "None"]


def ingest(path):
    df = pl.read_csv(path, infer_schema_length=0)  # every column as text, like the reader
    um_unknown = pl.col("um").is_in(PLACEHOLDERS)
    dm_unknown = pl.col("dm").is_in(PLACEHOLDERS)
    calls = (
        df.filter(~(um_unknown & dm_unknown) & (pl.col("um") != pl.col("dm")))
        .unique(subset=["traceid", "rpc_id", "um", "dm"], keep="first", maintain_order=True)
    )
    edges = calls.group_by(["um", "dm"]).len()
    return df.height, calls.height, edges.height


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    path = f"{args.dir}/alibaba.csv"
    best = float("inf")
    for _ in range(args.runs):
        t = time.perf_counter()
        rows, calls, edges = ingest(path)
        best = min(best, time.perf_counter() - t)
    print(
        f"polars ingest ({pl.thread_pool_size()} thread): {rows} rows in {best:.3f} s: "
        f"{rows / best / 1e6:.2f} M rows/s ({calls} calls, {edges} edges)"
    )


if __name__ == "__main__":
    main()
