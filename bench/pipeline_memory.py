"""Benchmark 6: peak memory of one pipeline asset run vs the same run in plain dlt.

Worker: `python -m bench.pipeline_memory WORK_DIR ROWS:KIND VARIANT` (VARIANT `ours` or
`plain_dlt`) runs the source of benchmark 1 once into a fresh DuckDB file and prints the
process's peak RSS as JSON, measured as benchmark 4 measures `save()` streaming (a psutil
polling thread every 5 ms and `getrusage` maxrss, the larger). Each run is a fresh process.

Both variants import the same libraries (dlt, Dagster, this package) and build the data
before the meter starts, so the peak compares the runs, not the import footprints: ours is
`dagster.materialize` of the pipeline's asset from `build_definitions()` on an ephemeral
instance made beforehand; plain dlt is `dlt.pipeline(...).run(source)` under dlt's own run
context (`bench.common.dlt_defaults`).
"""

from __future__ import annotations

import os
import sys

from bench.common import dlt_defaults, emit, quiet_logs
from bench.data import SOURCE_MODULE, write_project
from bench.memory import PeakRss
from bench.pipeline_overhead import MANIFEST

VARIANTS = ("ours", "plain_dlt")


def main(work: str, rows: int, kind: str, variant: str) -> None:
    quiet_logs()
    import dagster  # noqa: F401  (both variants: the same imports before the baseline)
    import dlt

    from dltplus_dagster import build_definitions, current

    project_dir = write_project(
        os.path.join(work, f"project_memory_{kind}_{variant}"),
        MANIFEST.format(arrow_rows=rows if kind == "arrow" else 1000,
                        dicts_rows=rows if kind == "dicts" else 1000),
        {"arrow_src": SOURCE_MODULE},
    )
    sys.path.insert(0, project_dir)
    from sources.arrow_src import arrow_source, warm  # the project's own module

    warm(rows, kind)
    if variant == "ours":
        from dagster import DagsterInstance, materialize

        defs = build_definitions(project_dir)
        assets = [a for a in defs.assets or [] if a.op.name == f"dlt_pipeline_pipe_{kind}"]
        resources = dict(defs.resources or {})
        instance = DagsterInstance.ephemeral()
        db = os.path.join(current.project(project_dir).local_dir, "warehouse.duckdb")

        def run() -> None:
            assert materialize(assets, resources=resources, instance=instance).success
    else:
        scratch = os.path.join(work, f"scratch_memory_{kind}")
        os.makedirs(scratch, exist_ok=True)
        db = os.path.join(scratch, "plain.duckdb")

        def run() -> None:
            with dlt_defaults(scratch):
                p = dlt.pipeline(pipeline_name="bench_plain_memory",
                                 destination=dlt.destinations.duckdb(db),
                                 dataset_name=f"bench_{kind}",
                                 pipelines_dir=os.path.join(scratch, "pipelines"))
                p.run(arrow_source(rows=rows, kind=kind))

    if os.path.exists(db):
        os.remove(db)
    import psutil

    baseline = psutil.Process().memory_info().rss
    meter = PeakRss()
    run()
    peak = meter.stop()
    import duckdb

    with duckdb.connect(db, read_only=True) as con:
        loaded = con.execute(f"SELECT count(*) FROM bench_{kind}.rows_table").fetchone()
    assert loaded is not None and loaded[0] == rows, loaded
    emit({"variant": variant, "rows": rows, "kind": kind, "peak_rss": peak,
          "baseline_rss": baseline})


if __name__ == "__main__":
    size, kind = sys.argv[2].split(":")
    assert sys.argv[3] in VARIANTS, sys.argv[3]
    main(sys.argv[1], int(size), kind, sys.argv[3])
