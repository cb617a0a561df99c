"""Benchmark 7: a partition backfill vs one unpartitioned run vs dagster-dlt's backfill, and
partitions started together.

Worker: `python -m bench.partitions WORK_DIR ROWS` prints the timings and checks as JSON.
The source (`sources/daily_src.py` of a generated project) yields the rows of a pyarrow table
whose `created_at` falls in `[start_date, end_date)`: ROWS rows spread evenly over the 30 days of
January 2026 (~33k a day for 1M), cut from one table sorted by time, in 100k-row batches, as
Parquet (like benchmark 1). Every variant appends into a fresh DuckDB file per repetition and is
checked afterwards (outside the timing): exactly ROWS rows and one dlt load.

- ours: the pipeline's `partitions: {type: daily, source_args: {start_date: "{partition_start}",
  end_date: "{partition_end}"}}`; a single-run backfill of the 30 partitions (`materialize` with
  the partition range tags, as a backfill's run has them);
- unpartitioned: the same source and rows in one unpartitioned pipeline asset (args = the whole
  month);
- dagster-dlt: `@dlt_assets(partitions_def=DailyPartitionsDefinition(...),
  backfill_policy=BackfillPolicy.single_run())` (its default for time windows), the body passing
  `context.partition_time_window` to the source, as its docs show; its `dlt.pipeline()` is
  created before the timing, as in benchmark 1;
- dagster-dlt unpartitioned (no target, for scale): what partitioning costs the peer.

Then 4 partitions are materialized as 4 processes at once into one DuckDB file
(`python -m bench.partitions --one PROJECT_DIR KEY` each): failures, rows per partition exact.
"""

import datetime as dt
import gc
import importlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.common import PYTHON, REPO, alternate, dlt_defaults, emit, quiet_logs, timed
from bench.data import write_project

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAYS = 30
END = START + dt.timedelta(days=DAYS)
DAY_US = 86_400_000_000
FIRST_KEY, LAST_KEY = START.date().isoformat(), (END - dt.timedelta(days=1)).date().isoformat()
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
CONCURRENT_KEYS = ("2026-01-10", "2026-01-11", "2026-01-12", "2026-01-13")
OURS_OP, WHOLE_OP = "dlt_pipeline_pipe_daily", "dlt_pipeline_pipe_whole"

SOURCE_MODULE = '''\
"""Partition benchmark source: the rows whose created_at falls in [start_date, end_date)."""

import dlt

from bench.partitions import END, START, window_batches


@dlt.source
def daily_source(start_date: str = START.isoformat(), end_date: str = END.isoformat(),
                 rows: int = 1000, batch: int = 100_000):
    """`rows` rows over 30 days; the window's share of them."""

    @dlt.resource(name="events", write_disposition="append", file_format="parquet")
    def events():
        yield from window_batches(rows, start_date, end_date, batch)

    return events
'''

MANIFEST = """\
project:
  name: bench_partitions
destinations:
  warehouse:
    type: duckdb
sources:
  daily_src:
    type: daily_src.daily_source
    with_args: {{rows: {rows}}}
  whole_src:
    type: daily_src.daily_source
    with_args: {{rows: {rows}, start_date: "{start}", end_date: "{end}"}}
pipelines:
  pipe_daily:
    source: daily_src
    destination: warehouse
    dataset_name: bench_daily
    partitions:
      type: daily
      start: "{first}"
      end: "{end_day}"
      source_args:
        start_date: "{{partition_start}}"
        end_date: "{{partition_end}}"
  pipe_whole:
    source: whole_src
    destination: warehouse
    dataset_name: bench_whole
"""

# --- the data -------------------------------------------------------------------------------

_TABLES: dict[int, tuple[Any, Any]] = {}  # rows -> (table, its created_at in epoch µs)


def daily_table(rows: int) -> tuple[Any, Any]:
    """Benchmark 1's six columns, `created_at` spread evenly over the 30 days (sorted), and
    `created_at` as epoch microseconds (numpy) to cut windows with."""
    import numpy as np
    import pyarrow as pa

    from bench.data import arrow_table

    if rows not in _TABLES:
        table = arrow_table(rows)
        micros = np.arange(rows, dtype=np.int64) * (DAYS * DAY_US) // rows + _micros(START)
        created = pa.array(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        table = table.set_column(table.schema.get_field_index("created_at"), "created_at",
                                 created)
        _TABLES[rows] = table, micros
    return _TABLES[rows]


def window_batches(rows: int, start: str, end: str, batch: int) -> Any:
    """Record batches of the rows in `[start, end)` (ISO 8601), cut from the sorted table."""
    import numpy as np

    table, micros = daily_table(rows)
    lo, hi = (int(np.searchsorted(micros, _micros(dt.datetime.fromisoformat(p))))
              for p in (start, end))
    return table.slice(lo, hi - lo).to_batches(max_chunksize=batch)


def _micros(point: dt.datetime) -> int:
    return (point - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def rows_per_day(rows: int) -> list[int]:
    """Expected rows of each of the 30 days."""
    import numpy as np

    offsets = np.arange(rows, dtype=np.int64) * (DAYS * DAY_US) // rows
    return [int(n) for n in np.bincount(offsets // DAY_US, minlength=DAYS)]


def loaded(db: str, dataset: str) -> tuple[dict[int, int], int]:
    """Rows per day index and number of dlt loads in `dataset.events` of the DuckDB file."""
    import duckdb

    start_us = _micros(START)
    with duckdb.connect(db, read_only=True) as con:
        days = con.execute(
            f"SELECT (epoch_us(created_at) - {start_us}) // {DAY_US} AS d, count(*) "
            f"FROM {dataset}.events GROUP BY d").fetchall()
        loads = con.execute(f"SELECT count(*) FROM {dataset}._dlt_loads").fetchone()
    return {int(d): int(n) for d, n in days}, int(loads[0]) if loads else 0


# --- the rows of the table (called by bench.__main__ with its `row`) -----------------------


def partition_rows(result: dict[str, Any], raw: dict[str, Any], row: Callable[..., dict]
                   ) -> list[dict]:
    """Table rows of the worker's `result`: the two backfill ratios and the concurrency check."""
    from bench.common import median, pair_ratio, pair_ratios

    raw["partitions"] = result
    t, together = result["backfill"], result["concurrent"]
    label = f"7 backfill 30 daily partitions, {result['rows']:,} rows arrow (1 run)"
    vs_whole = pair_ratio(t["ours"], t["unpartitioned"])
    vs_peer = pair_ratio(t["ours"], t["dagster_dlt"])
    ok = together["failures"] == 0 and together["rows_exact"]
    outcome = f"{together['failures']} failed, rows {'exact' if together['rows_exact'] else 'WRONG'}"
    return [
        row(label, median(t["ours"]), "one unpartitioned run", median(t["unpartitioned"]),
            vs_whole, "<= 1.15", vs_whole <= 1.15,
            ratios=pair_ratios(t["ours"], t["unpartitioned"])),
        row(label, median(t["ours"]), "dagster-dlt single-run backfill",
            median(t["dagster_dlt"]), vs_peer, "<= 1.00", vs_peer <= 1.0,
            ratios=pair_ratios(t["ours"], t["dagster_dlt"])),
        row(f"7 dagster-dlt backfill, {result['rows']:,} rows (for scale)", median(t["dagster_dlt"]),
            "dagster-dlt unpartitioned", median(t["dagster_dlt_unpartitioned"]),
            pair_ratio(t["dagster_dlt"], t["dagster_dlt_unpartitioned"]), None, None),
        row(f"7 {len(CONCURRENT_KEYS)} partitions as {len(CONCURRENT_KEYS)} runs at once, "
            "one DuckDB file", together["seconds"], outcome, float("nan"), float("nan"),
            "0 failed, rows exact", ok),
    ]


# --- the worker ----------------------------------------------------------------------------


def main(work: str, rows: int) -> None:
    quiet_logs()
    project_dir = write_project(
        os.path.join(work, "project_partitions"),
        MANIFEST.format(rows=rows, start=START.isoformat(), end=END.isoformat(), first=FIRST_KEY,
                        end_day=END.date().isoformat()),
        {"daily_src": SOURCE_MODULE},
    )
    sys.path.insert(0, project_dir)
    backfill = measure(work, project_dir, rows)
    concurrent = run_together(project_dir, rows)
    emit({"rows": rows, "backfill": backfill, "concurrent": concurrent})


def measure(work: str, project_dir: str, rows: int) -> dict[str, list[float]]:
    """Alternating timings of the variants, each checked for exact rows and one load."""
    import dlt
    from dagster import (
        AssetExecutionContext,
        BackfillPolicy,
        DagsterInstance,
        DailyPartitionsDefinition,
        materialize,
    )
    from dagster_dlt import DagsterDltResource, dlt_assets

    from dltplus_dagster import build_definitions, current

    defs = build_definitions(project_dir)
    instance = DagsterInstance.ephemeral()  # as in a deployment, the instance exists already
    assets = {a.op.name: a for a in defs.assets or [] if hasattr(a, "op")}
    resources = dict(defs.resources or {})
    duckdb_file = os.path.join(current.project(project_dir).local_dir, "warehouse.duckdb")
    backfill_tags = {RANGE_START: FIRST_KEY, RANGE_END: LAST_KEY}

    from sources.daily_src import daily_source  # the project's own module

    # build the data outside of any timing, in the module the source imports (not __main__)
    importlib.import_module("bench.partitions").daily_table(rows)
    scratch = os.path.join(work, "scratch_partitions")
    os.makedirs(scratch, exist_ok=True)

    def fresh(path: str) -> str:
        if os.path.exists(path):
            os.remove(path)
        return path

    def check(db: str, dataset: str) -> None:
        days, loads = loaded(db, dataset)
        assert sum(days.values()) == rows and loads == 1, (dataset, days, loads)

    def ours(op: str, dataset: str, tags: dict[str, str] | None) -> float:
        fresh(duckdb_file)
        result: list[Any] = []
        gc.collect()  # the previous variant's garbage is not collected inside this timing
        t = timed(lambda: result.append(
            materialize([assets[op]], resources=resources, instance=instance, tags=tags)))
        assert result[0].success
        check(duckdb_file, dataset)
        return t

    def dagster_dlt(partitioned: bool) -> float:
        pdir = os.path.join(scratch, uuid.uuid4().hex)
        db = fresh(os.path.join(scratch, "dagster_dlt.duckdb"))
        with dlt_defaults(scratch):
            pipeline = dlt.pipeline(pipeline_name="bench_dagster_dlt_daily",
                                    destination=dlt.destinations.duckdb(db),
                                    dataset_name="bench_dagster_dlt", pipelines_dir=pdir)
            peer = dagster_dlt_asset(pipeline, partitioned)
            result: list[Any] = []
            gc.collect()
            t = timed(lambda: result.append(materialize(
                [peer], resources={"dlt": DagsterDltResource()}, instance=instance,
                tags=backfill_tags if partitioned else None)))
        assert result[0].success
        check(db, "bench_dagster_dlt")
        shutil.rmtree(pdir, ignore_errors=True)
        return t

    def dagster_dlt_asset(pipeline: Any, partitioned: bool) -> Any:
        """dagster-dlt's asset over the 30 days, or over the whole month unpartitioned."""
        if not partitioned:
            @dlt_assets(dlt_source=daily_source(rows=rows), dlt_pipeline=pipeline,
                        name="bench_dagster_dlt_whole")
            def whole(context: AssetExecutionContext, dlt: DagsterDltResource) -> Any:
                yield from dlt.run(context=context)

            return whole

        @dlt_assets(dlt_source=daily_source(rows=rows), dlt_pipeline=pipeline,
                    name="bench_dagster_dlt_daily",
                    partitions_def=DailyPartitionsDefinition(start_date=FIRST_KEY,
                                                             end_date=END.date().isoformat()),
                    backfill_policy=BackfillPolicy.single_run())
        def daily(context: AssetExecutionContext, dlt: DagsterDltResource) -> Any:
            window = context.partition_time_window
            source = daily_source(start_date=window.start.isoformat(),
                                  end_date=window.end.isoformat(), rows=rows)
            yield from dlt.run(context=context, dlt_source=source)

        return daily

    return alternate({
        "ours": lambda: ours(OURS_OP, "bench_daily", backfill_tags),
        "unpartitioned": lambda: ours(WHOLE_OP, "bench_whole", None),
        "dagster_dlt": lambda: dagster_dlt(True),
        # for scale: what partitioning costs dagster-dlt (Dagster's events of 30 partitions)
        "dagster_dlt_unpartitioned": lambda: dagster_dlt(False),
    })


def run_together(project_dir: str, rows: int) -> dict[str, Any]:
    """4 partitions as 4 processes started at once, into one fresh DuckDB file."""
    from dltplus_dagster import current

    duckdb_file = os.path.join(current.project(project_dir).local_dir, "warehouse.duckdb")
    if os.path.exists(duckdb_file):
        os.remove(duckdb_file)
    t0 = time.perf_counter()
    procs = [subprocess.Popen([PYTHON, "-m", "bench.partitions", "--one", project_dir, key],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
             for key in CONCURRENT_KEYS]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    seconds = time.perf_counter() - t0
    failed = {key: out[-3000:] for key, p, out in zip(CONCURRENT_KEYS, procs, outputs, strict=True)
              if p.returncode != 0}
    days, loads = loaded(duckdb_file, "bench_daily") if os.path.exists(duckdb_file) else ({}, 0)
    expected = rows_per_day(rows)
    want = {(dt.date.fromisoformat(k) - START.date()).days: 0 for k in CONCURRENT_KEYS}
    want = {d: expected[d] for d in want}
    return {"seconds": seconds, "failures": len(failed), "failed": failed, "loads": loads,
            "rows_per_day": {str(d): n for d, n in sorted(days.items())},
            "expected_per_day": {str(d): n for d, n in sorted(want.items())},
            "rows_exact": days == want and loads == len(CONCURRENT_KEYS)}


def run_one(project_dir: str, key: str) -> None:
    """One partition in its own process and ephemeral instance (one of the 4 started at once)."""
    quiet_logs()
    from dagster import DagsterInstance, materialize

    from dltplus_dagster import build_definitions

    sys.path.insert(0, project_dir)
    defs = build_definitions(project_dir)
    asset = next(a for a in defs.assets or [] if getattr(a, "op", None) and a.op.name == OURS_OP)
    with DagsterInstance.ephemeral() as instance:
        result = materialize([asset], resources=dict(defs.resources or {}), instance=instance,
                             partition_key=key, raise_on_error=False)
    if not result.success:
        for event in result.all_events:
            if event.is_failure:
                print(event.message, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    if sys.argv[1] == "--one":
        run_one(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1], int(sys.argv[2]))
