"""The partition benchmark's data (bench/partitions.py): its windows cut the rows by day exactly,
and its generated source loads a window's rows, counted per day the way the benchmark checks
them, through a real dlt pipeline into DuckDB."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path

import dlt
import pyarrow as pa
import pytest

from bench.data import write_project
from bench.partitions import (
    DAYS,
    END,
    SOURCE_MODULE,
    START,
    daily_table,
    loaded,
    rows_per_day,
    window_batches,
)

ROWS = 10_000


def day(n: int) -> str:
    return (START + dt.timedelta(days=n)).isoformat()


def test_daily_windows_partition_the_rows_exactly() -> None:
    table, _ = daily_table(ROWS)
    per_day = [pa.Table.from_batches(window_batches(ROWS, day(n), day(n + 1), 1000),
                                     schema=table.schema) for n in range(DAYS)]
    assert [t.num_rows for t in per_day] == rows_per_day(ROWS)
    assert sum(rows_per_day(ROWS)) == ROWS and min(rows_per_day(ROWS)) == ROWS // DAYS
    assert pa.concat_tables(per_day).equals(table)  # no row lost, none twice, order kept
    whole = window_batches(ROWS, START.isoformat(), END.isoformat(), 4000)
    assert [b.num_rows for b in whole] == [4000, 4000, 2000]
    assert window_batches(ROWS, END.isoformat(), day(DAYS + 1), 1000) == []


def test_source_loads_the_window_counted_per_day(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_project(str(tmp_path / "project"), "project:\n  name: p\n",
                         {"daily_src": SOURCE_MODULE})
    spec = importlib.util.spec_from_file_location("bench_daily_src",
                                                  Path(root, "sources", "daily_src.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dlt looks the source's module up
    spec.loader.exec_module(module)
    db = str(tmp_path / "w.duckdb")
    pipeline = dlt.pipeline(pipeline_name="bench_src_check", pipelines_dir=str(tmp_path / "p"),
                            destination=dlt.destinations.duckdb(db), dataset_name="ds")
    pipeline.run(module.daily_source(start_date=day(4), end_date=day(6), rows=ROWS))
    days, loads = loaded(db, "ds")
    expected = rows_per_day(ROWS)
    assert days == {4: expected[4], 5: expected[5]} and loads == 1
