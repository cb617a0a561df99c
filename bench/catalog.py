"""Benchmark 5: catalog access.

(a) `current.catalog().dataset(d).row_counts()` on a dataset of 200 tables (a fresh Catalog
    each time, so the stored schemas are read from the destination each time), vs plain dlt's
    `dlt.dataset(destination, d).row_counts()`. In-process; worker
    `python -m bench.catalog WORK_DIR`.
(b) The first `current.project()` call in a fresh process on a 500-pipeline manifest (whole
    process), alternated with loading that project's definitions (ours, cache warm).
"""

import os
import sys

from bench.common import PYTHON, alternate, dlt_defaults, emit, quiet_logs, run_process, timed
from bench.data import WIDE_MODULE, write_project

TABLES = 200

MANIFEST = """\
project:
  name: bench_catalog
destinations:
  warehouse:
    type: duckdb
sources:
  wide:
    type: wide.wide
    with_args: {{tables: {tables}}}
pipelines:
  wide_pipeline:
    source: wide
    destination: warehouse
    dataset_name: wide_data
"""


def main(work: str) -> None:
    quiet_logs()
    import dlt

    from dltplus_dagster import current

    project_dir = write_project(os.path.join(work, "project_catalog"),
                                MANIFEST.format(tables=TABLES), {"wide": WIDE_MODULE})
    db = os.path.join(current.project(project_dir).local_dir, "warehouse.duckdb")
    if not os.path.exists(db):
        current.runner(project_dir).run_pipeline("wide_pipeline")

    def ours() -> float:
        counts: list = []
        t = timed(lambda: counts.append(
            current.catalog(project_dir).dataset("wide_data").row_counts()))
        assert len(counts[0]) == TABLES, len(counts[0])
        return t

    def plain() -> float:
        counts: list = []
        with dlt_defaults(work):
            t = timed(lambda: counts.append(
                dlt.dataset(dlt.destinations.duckdb(db), "wide_data").row_counts().fetchall()))
        assert len(counts[0]) == TABLES, len(counts[0])
        return t

    emit(alternate({"ours": ours, "plain_dlt": plain}))


def project_vs_defs(work: str) -> dict:
    """(b): whole-process `current.project()` vs definitions load, same 500-pipeline project."""
    from bench.defs_load import load_time, prepare

    root = prepare(work, 500)
    project_dir = os.path.join(root, "project")
    load_time(root, "defs_ours")  # writes the table cache if needed

    def project_call() -> float:
        return run_process([PYTHON, "-c", "from dltplus_dagster import current; current.project()"],
                           cwd=root, env={"DLT_PROJECT_DIR": project_dir})

    return alternate({"project": project_call, "defs_load": lambda: load_time(root, "defs_ours")})


if __name__ == "__main__":
    main(sys.argv[1])
