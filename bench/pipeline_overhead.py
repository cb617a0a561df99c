"""Benchmark 1: one pipeline run as a Dagster asset vs plain dlt vs dagster-dlt.

Worker: `python -m bench.pipeline_overhead WORK_DIR ROWS:KIND...` prints the timings as JSON.
All three variants load the same source (`sources/arrow_src.py` of a generated project) into
a fresh DuckDB file with a fresh pipeline dir per repetition (write disposition replace). The
time is measured in-process around the materialization call only (`dagster.materialize` of the
already built assets on an ephemeral instance created beforehand, as a deployment's instance
exists before a run; for plain dlt `dlt.pipeline(...)` + `.run(source)`). The data is built
once, before the warm-up. The cases run one after the other in the same process: the first
gets the warm-up round, later ones start with warm imports and caches (no second warm-up).
"""

import os
import shutil
import sys
import uuid

from dagster_dlt import DagsterDltResource, dlt_assets

from bench.common import WARMUP, alternate, dlt_defaults, emit, quiet_logs, timed
from bench.data import SOURCE_MODULE, write_project

MANIFEST = """\
project:
  name: bench_pipeline
destinations:
  warehouse:
    type: duckdb
sources:
  arrow_src:
    type: arrow_src.arrow_source
    with_args: {{rows: {arrow_rows}, kind: arrow}}
  dicts_src:
    type: arrow_src.arrow_source
    with_args: {{rows: {dicts_rows}, kind: dicts}}
pipelines:
  pipe_arrow:
    source: arrow_src
    destination: warehouse
    dataset_name: bench_arrow
  pipe_dicts:
    source: dicts_src
    destination: warehouse
    dataset_name: bench_dicts
"""


def main(work: str, cases: list[tuple[int, str]]) -> None:
    quiet_logs()
    sizes = {kind: rows for rows, kind in cases}
    project_dir = write_project(
        os.path.join(work, "project_pipeline"),
        MANIFEST.format(arrow_rows=sizes.get("arrow", 1000), dicts_rows=sizes.get("dicts", 1000)),
        {"arrow_src": SOURCE_MODULE},
    )
    sys.path.insert(0, project_dir)
    results = {}
    for i, (rows, kind) in enumerate(cases):
        results[f"{rows}:{kind}"] = measure(work, project_dir, rows, kind,
                                            warmup=WARMUP if i == 0 else 0)
    emit(results)


def measure(work: str, project_dir: str, rows: int, kind: str, warmup: int) -> dict:
    """Alternating timings of the three variants for one data shape."""
    import dlt
    from dagster import DagsterInstance, materialize

    from dltplus_dagster import build_definitions, current

    defs = build_definitions(project_dir)
    instance = DagsterInstance.ephemeral()  # as in a deployment, the instance exists already
    ours_assets = [a for a in defs.assets or [] if a.op.name == f"dlt_pipeline_pipe_{kind}"]
    assert len(ours_assets) == 1
    ours_resources = dict(defs.resources or {})
    duckdb_file = os.path.join(current.project(project_dir).local_dir, "warehouse.duckdb")

    from sources.arrow_src import arrow_source, warm  # the project's own module

    warm(rows, kind)
    scratch = os.path.join(work, f"scratch_{kind}")

    def fresh(path: str) -> str:
        if os.path.exists(path):
            os.remove(path)
        return path

    def ours() -> float:
        fresh(duckdb_file)
        result: list = []
        t = timed(lambda: result.append(
            materialize(ours_assets, resources=ours_resources, instance=instance)))
        assert result[0].success
        return t

    def plain() -> float:
        pdir = os.path.join(scratch, uuid.uuid4().hex)
        db = fresh(os.path.join(scratch, "plain.duckdb"))

        def run() -> None:
            p = dlt.pipeline(pipeline_name="bench_plain", destination=dlt.destinations.duckdb(db),
                             dataset_name=f"bench_{kind}", pipelines_dir=pdir)
            p.run(arrow_source(rows=rows, kind=kind))

        with dlt_defaults(scratch):
            t = timed(run)
        shutil.rmtree(pdir, ignore_errors=True)
        return t

    def dagster_dlt() -> float:
        with dlt_defaults(scratch):
            return _dagster_dlt()

    def _dagster_dlt() -> float:
        pdir = os.path.join(scratch, uuid.uuid4().hex)
        db = fresh(os.path.join(scratch, "dagster_dlt.duckdb"))
        pipeline = dlt.pipeline(pipeline_name="bench_dagster_dlt",
                                destination=dlt.destinations.duckdb(db),
                                dataset_name=f"bench_{kind}", pipelines_dir=pdir)

        @dlt_assets(dlt_source=arrow_source(rows=rows, kind=kind), dlt_pipeline=pipeline,
                    name="bench_dagster_dlt")
        def assets(context, dlt: DagsterDltResource):
            yield from dlt.run(context=context)

        result: list = []
        t = timed(lambda: result.append(
            materialize([assets], resources={"dlt": DagsterDltResource()}, instance=instance)))
        assert result[0].success
        shutil.rmtree(pdir, ignore_errors=True)
        return t

    os.makedirs(scratch, exist_ok=True)
    return alternate({"ours": ours, "plain_dlt": plain, "dagster_dlt": dagster_dlt}, warmup=warmup)


if __name__ == "__main__":
    main(sys.argv[1], [(int(c.split(":")[0]), c.split(":")[1]) for c in sys.argv[2:]])
