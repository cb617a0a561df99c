"""The example project's `prod` profile on PostgreSQL: runner, Dagster, catalog, and a Dagster
instance whose run, event log and schedule storage are PostgreSQL (multiprocess executor)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus
from helpers import REPO, copy_example
from pg import (  # noqa: F401 - fixtures
    DSN_PASSWORD,
    REPORT_ROWS,
    SHOP_ROWS,
    VENV_BIN,
    PgDatabase,
    PgServer,
    dagster_home,
    pg_db,
    pg_server,
    run,
    subprocess_env,
)

from dltplus_dagster.project.catalog import Catalog
from dltplus_dagster.project.entities import EntityFactory
from dltplus_dagster.project.project import load_project
from dltplus_dagster.project.runner import Runner

RAW = ("customers", "orders", "products", "stores")


@pytest.fixture
def prod_project(tmp_path: Path, pg_db: PgDatabase, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    """A copy of the example project whose prod warehouse is the test database."""
    monkeypatch.setenv("SHOP_PG_DSN", pg_db.dsn)
    return copy_example(tmp_path / "shop")


def test_prod_profile_runner_loads_postgres(prod_project: Path, pg_db: PgDatabase) -> None:  # noqa: F811
    project = load_project(str(prod_project), "prod")
    assert project.current_profile == "prod"
    assert project.data_dir == str(prod_project / "_data" / "prod")
    entities = EntityFactory(project)
    assert entities.destination_type("warehouse") == "postgres"
    runner = Runner(project, entities)

    shop = runner.run_pipeline("shop_pipeline")
    stores = runner.run_pipeline("stores_pipeline")
    assert shop.destination_type == "postgres"
    assert shop.row_counts == {t: SHOP_ROWS[t] for t in ("customers", "orders", "products")}
    assert stores.row_counts == {"stores": 5}
    assert runner.run_transformation("customer_totals") == REPORT_ROWS

    # the rows are in PostgreSQL (read with psycopg2, not through dlt)
    assert pg_db.counts("shop_raw", RAW) == SHOP_ROWS
    assert pg_db.counts("shop_reports", ["customer_totals"]) == REPORT_ROWS
    revenue = pg_db.query("SELECT round(sum(amount)::numeric, 2) FROM shop_raw.orders")[0][0]
    assert pg_db.query(
        "SELECT round(sum(revenue)::numeric, 2) FROM shop_reports.customer_totals"
    )[0][0] == revenue

    # a second run merges (orders, customers) and replaces (products, stores): same counts
    runner.run_pipeline("shop_pipeline")
    runner.run_pipeline("stores_pipeline")
    assert pg_db.counts("shop_raw", RAW) == SHOP_ROWS

    # the catalog reads it back through dlt, from a fresh project object
    fresh = load_project(str(prod_project), "prod")
    catalog = Catalog.for_project(fresh)
    raw = catalog.dataset("shop_raw")
    assert set(RAW) <= set(raw.tables)
    assert raw.row_counts(table_names=list(RAW)) == SHOP_ROWS
    stores_df = raw.df("stores")
    assert sorted(stores_df["city"]) == ["Berlin", "Lisbon", "Oslo", "Porto", "Vienna"]
    assert list(raw.df("customers", columns=["customer_id"]).sort_values("customer_id")
                ["customer_id"]) == list(range(50))
    assert catalog.dataset("shop_reports").row_counts(table_names=["customer_totals"]) == REPORT_ROWS
    # no local warehouse file in prod
    assert not list(prod_project.rglob("*.duckdb"))


def test_prod_profile_dagster_materialize(prod_project: Path, pg_db: PgDatabase) -> None:  # noqa: F811
    from dltplus_dagster import build_definitions

    defs = build_definitions(str(prod_project), profile="prod")
    job = defs.resolve_job_def("daily_refresh")
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance)
        assert result.success
        mats = {
            e.materialization.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()
        }
    assert set(mats) == {f"shop_raw/{t}" for t in RAW} | {"shop_reports/customer_totals"}
    for table, n in SHOP_ROWS.items():
        assert mats[f"shop_raw/{table}"]["dagster/row_count"].value == n
        assert mats[f"shop_raw/{table}"]["dlt/profile"].value == "prod"
        # the table name is qualified with the postgres database, never the credentials
        assert mats[f"shop_raw/{table}"]["dagster/table_name"].value == f"{pg_db.name}.shop_raw.{table}"
    assert mats["shop_reports/customer_totals"]["dagster/row_count"].value == 50
    for meta in mats.values():
        assert DSN_PASSWORD not in str(dict(meta))
    assert pg_db.counts("shop_raw", RAW) == SHOP_ROWS
    assert pg_db.counts("shop_reports", ["customer_totals"]) == REPORT_ROWS
    # per-run working dirs are removed after success
    runs_dir = prod_project / "_data" / "prod" / "runs"
    assert not list(runs_dir.glob("*/*"))  # only the (empty) run dirs remain


def test_dagster_postgres_instance_multiprocess(
    tmp_path: Path, pg_server: PgServer, pg_db: PgDatabase  # noqa: F811
) -> None:
    """`dagster job execute` of daily_refresh on a PostgreSQL-backed instance: both pipelines
    run at once in their own processes; runs and event logs land in PostgreSQL."""
    project_dir = copy_example(tmp_path / "shop")
    storage = pg_server.create_database("dagster")
    home = dagster_home(tmp_path / "dagster_home", storage)
    env = subprocess_env(
        DAGSTER_HOME=str(home),
        DLT_PROJECT_DIR=str(project_dir),
        WORKSPACE__PROFILE="prod",
        SHOP_PG_DSN=pg_db.dsn,
    )
    run(
        [os.path.join(VENV_BIN, "dagster"), "job", "execute", "-f",
         str(REPO / "definitions.py"), "-j", "daily_refresh"],
        env=env, cwd=tmp_path, timeout=240,
    )
    assert pg_db.counts("shop_raw", RAW) == SHOP_ROWS
    assert pg_db.counts("shop_reports", ["customer_totals"]) == REPORT_ROWS
    # each step worked in a dir of its own (`runs/<run id>/<pipeline>`, removed on success),
    # never in the profile's shared pipelines dir
    data_dir = project_dir / "_data" / "prod"
    assert not (data_dir / "pipelines").exists()
    assert not list((data_dir / "runs").glob("*/*"))  # only the (empty) run dirs remain

    # run storage and event log storage are the PostgreSQL database
    rows = storage.query("SELECT run_id, status, pipeline_name FROM runs")
    assert len(rows) == 1 and rows[0][1] == "SUCCESS" and rows[0][2] == "daily_refresh"
    run_id = rows[0][0]
    mat_keys = {r[0] for r in storage.query(
        "SELECT asset_key FROM event_logs WHERE run_id = %s "
        "AND dagster_event_type = 'ASSET_MATERIALIZATION'", (run_id,))}
    assert len(mat_keys) == 5
    assert storage.query("SELECT count(*) FROM asset_keys")[0][0] >= 5
    tables = storage.tables("public")
    assert {"runs", "event_logs", "jobs", "job_ticks", "instigators"} <= tables  # schedules too

    # the instance reads them back
    instance = DagsterInstance.from_config(str(home))
    try:
        assert "Postgres" in type(instance.run_storage).__name__
        assert "Postgres" in type(instance.event_log_storage).__name__
        assert "Postgres" in type(instance.schedule_storage).__name__
        runs = instance.get_runs()
        assert [r.run_id for r in runs] == [run_id]
        assert runs[0].status == DagsterRunStatus.SUCCESS
        records = instance.all_logs(run_id)
        steps = {
            e.dagster_event.step_key: e.dagster_event
            for e in records
            if e.dagster_event and e.dagster_event.event_type == DagsterEventType.STEP_SUCCESS
        }
        assert set(steps) == {
            "dlt_pipeline_shop_pipeline", "dlt_pipeline_stores_pipeline",
            "dlt_transformation_customer_totals",
        }
        # multiprocess: each step in its own process, the two pipelines launched together
        pids = {key: ev.pid for key, ev in steps.items()}
        assert len(set(pids.values())) == 3, pids
        order = [
            (e.dagster_event.event_type, e.dagster_event.step_key)
            for e in records
            if e.dagster_event
            and e.dagster_event.event_type
            in (DagsterEventType.STEP_WORKER_STARTING, DagsterEventType.STEP_SUCCESS)
        ]
        first_success = next(i for i, (t, _) in enumerate(order)
                             if t == DagsterEventType.STEP_SUCCESS)
        started_before = {k for t, k in order[:first_success]
                          if t == DagsterEventType.STEP_WORKER_STARTING}
        assert {"dlt_pipeline_shop_pipeline", "dlt_pipeline_stores_pipeline"} <= started_before
    finally:
        instance.dispose()
