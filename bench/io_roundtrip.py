"""Benchmark 3: an asset's 1,000,000-row DataFrame written and read back by the next asset.

Worker: `python -m bench.io_roundtrip WORK_DIR ROWS` prints the timings as JSON.
Round trip = `dagster.materialize([frame, consumer])` (the upstream asset returns the frame, the
IO manager writes it, the downstream asset gets it loaded) on an ephemeral instance created
beforehand, a fresh DuckDB file each time:
`DltDatasetIOManager` vs `DuckDBPandasIOManager`; raw DuckDB (`CREATE TABLE AS` from the frame,
then `.df()`, no Dagster) is shown for scale. Read = one `load_input()` call (timed alone, its
context built before) of a freshly created IO manager on the table just written, vs raw DuckDB
(connect + `SELECT *` + `.df()`).
"""

import os
import sys
import time

import duckdb
import pandas as pd
from dagster import (
    AssetKey,
    DagsterInstance,
    asset,
    build_input_context,
    build_output_context,
    materialize,
)
from dagster._core.types.dagster_type import resolve_dagster_type
from dagster_duckdb_pandas import DuckDBPandasIOManager

from bench.common import alternate, emit, quiet_logs, timed
from bench.data import frame, write_project

MANIFEST = """\
project:
  name: bench_io
destinations:
  warehouse:
    type: duckdb
datasets:
  bench_io:
    destination: [warehouse]
"""

DATA: dict = {}
FRAME_TYPE = resolve_dagster_type(pd.DataFrame)


@asset
def frame_asset() -> pd.DataFrame:
    return DATA["frame"]


@asset
def consumer(frame_asset: pd.DataFrame) -> None:
    assert len(frame_asset) == len(DATA["frame"])


def main(work: str, rows: int) -> None:
    quiet_logs()
    from dltplus_dagster import DltDatasetIOManager, DltProjectResource, current

    project_dir = write_project(os.path.join(work, "project_io"), MANIFEST, {})
    ours_db = os.path.join(current.project(project_dir).local_dir, "warehouse.duckdb")
    scratch = os.path.join(work, "scratch_io")
    os.makedirs(scratch, exist_ok=True)
    peer_db = os.path.join(scratch, "peer.duckdb")
    raw_db = os.path.join(scratch, "raw.duckdb")
    PEER_CONFIG = {"database": peer_db, "schema": "bench_io", "connection_config": {}}
    DATA["frame"] = frame(rows)
    instance = DagsterInstance.ephemeral()  # created before the timings, shared by both
    read_times: dict = {"ours": [], "dagster_duckdb": [], "raw_duckdb": []}

    def fresh(path: str) -> None:
        for p in (path, path + ".wal"):
            if os.path.exists(p):
                os.remove(p)

    def ours_manager() -> DltDatasetIOManager:
        return DltDatasetIOManager(dataset="bench_io",
                                   dlt_project=DltProjectResource(project_dir=project_dir))

    def peer_manager() -> DuckDBPandasIOManager:
        return DuckDBPandasIOManager(database=peer_db, schema="bench_io")

    def read_with(manager, resource_config=None) -> float:
        """Seconds of one `load_input()`; the context is built first, outside the timing (with
        no instance given, Dagster builds an ephemeral one for each context: ~80 ms)."""
        ctx = build_input_context(
            resource_config=resource_config,
            asset_key=AssetKey("frame_asset"),
            upstream_output=build_output_context(asset_key=AssetKey("frame_asset")),
            dagster_type=FRAME_TYPE,
            instance=instance,
        )
        t0 = time.perf_counter()
        df = manager.load_input(ctx)
        elapsed = time.perf_counter() - t0
        assert len(df) == rows
        return elapsed

    def ours() -> float:
        fresh(ours_db)
        t = timed(lambda: materialize([frame_asset, consumer],
                                      resources={"io_manager": ours_manager()}, instance=instance))
        read_times["ours"].append(read_with(ours_manager()))
        return t

    def peer() -> float:
        fresh(peer_db)
        t = timed(lambda: materialize([frame_asset, consumer],
                                      resources={"io_manager": peer_manager()}, instance=instance))
        read_times["dagster_duckdb"].append(
            read_with(peer_manager().create_io_manager(None), PEER_CONFIG))
        return t

    def raw() -> float:
        fresh(raw_db)

        def write_read() -> None:
            with duckdb.connect(raw_db) as con:
                df = DATA["frame"]  # noqa: F841  (read by DuckDB's replacement scan)
                con.execute("CREATE SCHEMA bench_io")
                con.execute("CREATE TABLE bench_io.frame_asset AS SELECT * FROM df")
            read_raw()

        return timed(write_read)

    def read_raw() -> None:
        with duckdb.connect(raw_db) as con:
            assert len(con.sql("SELECT * FROM bench_io.frame_asset").df()) == rows

    def raw_read_only() -> float:
        t = timed(read_raw)
        read_times["raw_duckdb"].append(t)
        return t

    times = alternate({"ours": ours, "dagster_duckdb": peer, "raw_duckdb": raw,
                       "raw_read": raw_read_only})
    del times["raw_read"]
    n = len(times["ours"])
    emit({"roundtrip": times, "read": {k: v[-n:] for k, v in read_times.items()}})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
