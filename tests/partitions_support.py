"""A small partitioned project for the partition tests: source `events` yields `per_day` rows
for each day of its `[start_date, end_date)` window, replaced per day on a re-run
(delete-insert on `merge_key: day`), and records which run made them (`run_tag`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers import make_project

EVENTS_SOURCE = '''
import datetime as dt
import os

import dlt


@dlt.source
def events(start_date: str = dlt.config.value, end_date: str = dlt.config.value,
           per_day: int = 2):
    """`per_day` rows per day of the window; the end is exclusive."""

    @dlt.resource(
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        merge_key="day",
    )
    def daily_events():
        start, end = dt.datetime.fromisoformat(start_date), dt.datetime.fromisoformat(end_date)
        day = start
        while day < end:
            for n in range(per_day):
                yield {"day": day.date().isoformat(), "n": n,
                       "run_tag": os.environ.get("EVENTS_RUN_TAG", "")}
            day += dt.timedelta(days=1)

    return daily_events


@dlt.source
def regions(region: str = dlt.config.value):
    """One row for the region the run was asked for."""

    @dlt.resource(write_disposition={"disposition": "merge", "strategy": "delete-insert"},
                  merge_key="region")
    def region_rows():
        yield {"region": region, "value": len(region)}

    return region_rows


@dlt.source
def cursor_events(up_to: str = dlt.config.value):
    """Days up to `up_to` with an incremental cursor on `day` (its state is the pipeline's)."""

    @dlt.resource(write_disposition="append")
    def cursor_days(day=dlt.sources.incremental("day", initial_value="2024-01-01")):
        current = dt.date(2024, 3, 1)
        while current.isoformat() <= up_to:
            yield {"day": current.isoformat()}
            current += dt.timedelta(days=1)

    return cursor_days
'''

BASE_YML = """
sources:
  events:
    type: sources.events.events
  regions:
    type: sources.events.regions
    region: "{partition_key}"
destinations:
  warehouse:
    type: duckdb
pipelines:
  events:
    source: events
    destination: warehouse
    dataset_name: raw
    partitions:
      type: daily
      start: "2024-03-01"
      end: "2024-04-01"
      source_args:
        start_date: "{partition_start}"
        end_date: "{partition_end}"
  regions:
    source: regions
    destination: warehouse
    dataset_name: geo
    partitions:
      type: static
      values: [eu, us, apac]
"""


def events_project(tmp_path: Path, yml: str = BASE_YML, extra: dict[str, str] | None = None) -> Path:
    """The project: `sources/events.py` and `dlt.yml` (default `BASE_YML`)."""
    return make_project(tmp_path, yml, {"sources/events.py": EVENTS_SOURCE, **(extra or {})})


def duckdb_rows(project_dir: Path, sql: str, profile: str = "dev") -> list[tuple[Any, ...]]:
    """Rows of `sql` on the project's `warehouse` DuckDB file (read-only)."""
    import duckdb

    path = project_dir / "_data" / profile / "local" / "warehouse.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()
