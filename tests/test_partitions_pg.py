"""Partitioned pipelines into PostgreSQL: real Dagster materializations, partitions started
together (no local file lock: they load in parallel), a re-run replaces its partition's rows
and a single-run backfill is one load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, materialize
from helpers import clean_env
from partitions_support import BASE_YML, events_project
from pg import PgDatabase, pg_db, pg_server  # noqa: F401

from dltplus_dagster import build_definitions

EVENTS = AssetKey(["raw", "daily_events"])
PG_YML = BASE_YML.replace(
    "  warehouse:\n    type: duckdb",
    "  warehouse:\n    type: postgres\n    credentials: \"{env.PARTITIONS_PG_DSN}\"",
)
SCRIPT = """
import sys
from dagster import AssetKey, DagsterInstance, materialize
from dltplus_dagster import build_definitions

defs = build_definitions(sys.argv[1], "dev")
with DagsterInstance.ephemeral() as inst:
    result = materialize(list(defs.assets), resources=defs.resources, instance=inst,
                         selection=[AssetKey(["raw", "daily_events"])], partition_key=sys.argv[2],
                         raise_on_error=False)
sys.exit(0 if result.success else 1)
"""


@pytest.fixture
def pg_project(tmp_path: Path, pg_db: PgDatabase, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    monkeypatch.setenv("PARTITIONS_PG_DSN", pg_db.dsn)
    return events_project(tmp_path, PG_YML)


def day_counts(db: PgDatabase) -> list[tuple[str, str, int]]:
    return [(str(d), str(t), int(n)) for d, t, n in db.query(
        "SELECT day, run_tag, COUNT(*) FROM raw.daily_events GROUP BY 1, 2 ORDER BY 1, 2")]


def test_pg_partitions_replace_and_backfill(
    pg_project: Path, pg_db: PgDatabase, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    defs = build_definitions(str(pg_project), "dev")
    assets = list(defs.assets or [])
    with DagsterInstance.ephemeral() as inst:
        monkeypatch.setenv("EVENTS_RUN_TAG", "first")
        assert materialize(assets, resources=defs.resources, instance=inst, selection=[EVENTS],
                           tags={"dagster/asset_partition_range_start": "2024-03-01",
                                 "dagster/asset_partition_range_end": "2024-03-03"}).success
        assert pg_db.query("SELECT COUNT(*) FROM raw._dlt_loads") == [(1,)]
        monkeypatch.setenv("EVENTS_RUN_TAG", "again")
        assert materialize(assets, resources=defs.resources, instance=inst, selection=[EVENTS],
                           partition_key="2024-03-02").success
        assert inst.get_materialized_partitions(EVENTS) == {"2024-03-01", "2024-03-02",
                                                            "2024-03-03"}
    assert day_counts(pg_db) == [("2024-03-01", "first", 2), ("2024-03-02", "again", 2),
                                 ("2024-03-03", "first", 2)]


def test_pg_partitions_started_together(pg_project: Path, pg_db: PgDatabase, tmp_path: Path) -> None:  # noqa: F811
    build_definitions(str(pg_project), "dev")  # the table list is cached before the runs
    script = tmp_path / "run_partition.py"
    script.write_text(SCRIPT, encoding="utf-8")
    keys = ["2024-03-11", "2024-03-12", "2024-03-13", "2024-03-14"]
    env = clean_env(PARTITIONS_PG_DSN=pg_db.dsn)
    procs = [subprocess.Popen([sys.executable, str(script), str(pg_project), key], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for key in keys]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for key, proc, out in zip(keys, procs, outputs, strict=True):
        assert proc.returncode == 0, f"partition {key} failed:\n{out[-3000:]}"
    assert day_counts(pg_db) == [(k, "", 2) for k in keys]
    assert pg_db.query("SELECT COUNT(*) FROM raw._dlt_loads") == [(4,)]
    names = {r[0] for r in pg_db.query("SELECT pipeline_name FROM raw._dlt_pipeline_state")}
    assert names == {f"events__partition__{k}" for k in keys}
    # each run staged its merge in a dataset of its own (one shared `raw_staging` let a run
    # merge another's rows and lose its own) and dropped it after loading
    assert _staging_schemas(pg_db) == []


def _staging_schemas(db: PgDatabase) -> list[str]:
    return [r[0] for r in db.query(
        "SELECT schema_name FROM information_schema.schemata "
        "WHERE schema_name LIKE 'raw\\_staging%' ORDER BY 1")]


def test_a_partition_stages_in_its_own_dataset(pg_project: Path, pg_db: PgDatabase) -> None:  # noqa: F811
    """A partition run's merge goes through `raw_staging_p<hash of its dlt name>`, a dataset
    no other partition uses, dropped after the load; an unpartitioned run keeps dlt's
    `raw_staging`."""
    from dltplus_dagster.project.entities import EntityFactory
    from dltplus_dagster.project.partition_staging import staging_layout
    from dltplus_dagster.project.project import load_project
    from dltplus_dagster.project.runner import Runner

    layouts = {staging_layout(f"events__partition__{k}") for k in ("2024-03-01", "2024-03-02")}
    assert len(layouts) == 2 and all(len(x % "raw") < 63 for x in layouts)
    project = load_project(str(pg_project), "dev")
    runner = Runner(project, EntityFactory(project))
    runner.run_pipeline("events", partition="2024-03-01")
    assert day_counts(pg_db) == [("2024-03-01", "", 2)]
    assert _staging_schemas(pg_db) == []
