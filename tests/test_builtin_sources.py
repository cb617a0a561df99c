"""Sources whose arguments come from config (dlt.yml, .dlt TOML, env), written the way the
dltHub docs write them: `sql_database.sql_table` against PostgreSQL, `filesystem.readers` over
local files, `rest_api` against a local paginated API, and project sources and resources with
required `dlt.config.value` arguments. Each runs through the CLI, `current.runner()` and a
Dagster materialization; a source that cannot be built fails with an error naming the file,
line, pipeline, source and missing key."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance
from dagster_support import run_assets
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from helpers import make_project, write
from pg import PgDatabase, pg_db, pg_server  # noqa: F401 - fixtures
from sources_support import (
    ORDERS_PER_USER,
    USERS_PAGES,
    USERS_PER_PAGE,
    cli,
    duckdb_path,
    json_api,
    run_three_ways,
    table_counts,
)

from dltplus_dagster import build_definitions, current
from dltplus_dagster.project.errors import SourceBuildError
from dltplus_dagster.project.project import load_project
from dltplus_dagster.project.validate import validate_project

FAMILY_ROWS = 7
SCHEMA = "rfam"


def _family_table(db: PgDatabase) -> None:
    db.query(
        f"CREATE SCHEMA {SCHEMA}; CREATE TABLE {SCHEMA}.family (rfam_id int PRIMARY KEY, "
        "name text, updated timestamptz NOT NULL DEFAULT now()); "
        f"INSERT INTO {SCHEMA}.family (rfam_id, name) "
        f"SELECT g, 'family ' || g FROM generate_series(1, {FAMILY_ROWS}) g"
    )


def _sqlalchemy_dsn(db: PgDatabase) -> str:
    # SQLAlchemy 2.1 maps plain `postgresql://` to psycopg 3; the installed driver is psycopg2
    return db.dsn.replace("postgresql://", "postgresql+psycopg2://", 1)


SQL_YML = """
project:
  name: sql_project
sources:
  sql_family:                     # as in the dltHub docs' source configuration page
    type: sql_database.sql_table
    table: family
    schema: rfam
    primary_key: rfam_id
    incremental:
      cursor_path: updated
      initial_value: 2000-01-01T00:00:00Z
destinations:
  warehouse:
    type: duckdb
pipelines:
  family_pipeline:
    source: sql_family
    destination: warehouse
    dataset_name: rfam_data
    write_disposition: replace
"""


def test_sql_table_arguments_from_manifest_and_secrets_toml(
    tmp_path: Path, pg_db: PgDatabase, instance: DagsterInstance  # noqa: F811
) -> None:
    _family_table(pg_db)
    root = make_project(tmp_path, SQL_YML, {
        ".dlt/secrets.toml": f'[sources.sql_family]\ncredentials = "{_sqlalchemy_dsn(pg_db)}"\n',
    })
    # the resource's name (and table) is computed from its `table` argument
    source = current.entities(str(root)).get_source("sql_family")
    assert list(source.resources) == ["family"]
    assert source.name == "sql_family"

    mats = run_three_ways(root, "family_pipeline", "rfam_data", {"family": FAMILY_ROWS}, instance)
    assert set(mats) == {AssetKey(["rfam_data", "family"])}


def test_sql_table_credentials_inline_in_the_manifest(
    tmp_path: Path, pg_db: PgDatabase  # noqa: F811
) -> None:
    _family_table(pg_db)
    yml = SQL_YML.replace(
        "    type: sql_database.sql_table\n",
        f'    type: sql_database.sql_table\n    credentials: "{_sqlalchemy_dsn(pg_db)}"\n',
    )
    root = make_project(tmp_path, yml)
    result = current.runner(str(root)).run_pipeline("family_pipeline")
    assert result.row_counts == {"family": FAMILY_ROWS}
    assert table_counts(root, "rfam_data") == {"family": FAMILY_ROWS}


def test_missing_source_config_is_a_located_error_and_writes_nothing(tmp_path: Path) -> None:
    root = make_project(tmp_path, SQL_YML)  # no credentials anywhere
    proc = cli(root, "pipeline", "family_pipeline", "run")
    assert proc.returncode == 1
    err = proc.stderr.strip()
    assert "Traceback" not in err and "KeyError" not in err
    assert err.startswith("Error: dlt.yml:4: sources.sql_family: "), err
    assert "pipeline 'family_pipeline'" in err
    assert "credentials" in err and "SOURCES__SQL_FAMILY__CREDENTIALS" in err

    with pytest.raises(SourceBuildError) as exc:
        current.runner(str(root)).run_pipeline("family_pipeline")
    assert isinstance(exc.value, ConfigFieldMissingException)  # dlt's type too, for callers
    assert exc.value.pipeline == "family_pipeline"
    assert exc.value.source == "sql_family"
    assert exc.value.missing == ["credentials"]
    assert (exc.value.file, exc.value.line) == ("dlt.yml", 4)
    assert not duckdb_path(root).exists()  # refused before anything was loaded

    proc = cli(root, "project", "prepare")
    assert proc.returncode == 1
    assert "family_pipeline" in proc.stderr and "credentials" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_one_unbuildable_source_leaves_the_other_pipelines_loading(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`validate` accepts a project whose source lacks a config value (it may be set only in
    the run's environment), so `build_definitions` loads too: the other pipelines are assets,
    the broken one is left out with a warning naming the pipeline, source and key."""
    yml = SQL_YML + """
  letters_pipeline:
    source: letters
    destination: warehouse
    dataset_name: letters_data
"""
    root = make_project(tmp_path, yml.replace("sources:\n", "sources:\n  letters:\n    count: 3\n"),
                        {"sources/letters.py": LETTERS})
    assert validate_project(load_project(str(root))) == []
    with caplog.at_level(logging.WARNING):
        defs = build_definitions(str(root))
    keys = set(defs.resolve_asset_graph().get_all_asset_keys())
    assert keys == {AssetKey(["letters_data", "letters"])}
    warned = "\n".join(r.getMessage() for r in caplog.records)
    assert "pipeline 'family_pipeline'" in warned and "sources.sql_family" in warned
    assert "credentials" in warned


LETTERS = '''
import dlt


@dlt.resource(write_disposition="replace")
def letters(count: int = dlt.config.value):
    yield [{"letter": chr(97 + i)} for i in range(count)]
'''


def test_filesystem_readers_jsonl_and_parquet(tmp_path: Path, instance: DagsterInstance) -> None:
    root = make_project(tmp_path, """
        project:
          name: files_project
        sources:
          event_files:
            type: filesystem.readers
            bucket_url: "{project_dir}/files/events"
            file_glob: "*.jsonl"
          metric_files:
            type: filesystem.readers
            bucket_url: "{project_dir}/files/metrics"
            file_glob: "*.parquet"
        destinations:
          warehouse:
            type: duckdb
        pipelines:
          events_pipeline:
            source: event_files
            destination: warehouse
            dataset_name: files_data
            resources: [read_jsonl]
            table_names: {read_jsonl: events}
            write_disposition: replace
          metrics_pipeline:
            source: metric_files
            destination: warehouse
            dataset_name: metrics_data
            resources: [read_parquet]
            table_names: {read_parquet: metrics}
            write_disposition: replace
    """)
    for day in (1, 2):
        write(root / "files" / "events" / f"day{day}.jsonl", "".join(
            json.dumps({"id": day * 100 + i, "kind": "click"}) + "\n" for i in range(4)))
    (root / "files" / "metrics").mkdir(parents=True)
    pq.write_table(pa.table({"metric": ["a", "b", "c"], "value": [1.0, 2.0, 3.0]}),
                   root / "files" / "metrics" / "m.parquet")

    run_three_ways(root, "events_pipeline", "files_data", {"events": 8}, instance)
    run_three_ways(root, "metrics_pipeline", "metrics_data", {"metrics": 3}, instance)


def test_rest_api_client_and_resources_from_the_manifest(
    tmp_path: Path, instance: DagsterInstance
) -> None:
    users = USERS_PAGES * USERS_PER_PAGE
    with json_api() as base_url:
        root = make_project(tmp_path, f"""
            project:
              name: api_project
            sources:
              shop_api:
                type: rest_api
                client:
                  base_url: "{base_url}"
                  paginator:
                    type: page_number
                    base_page: 1
                    total_path: total_pages
                resource_defaults:
                  primary_key: id
                  write_disposition: replace
                resources:
                  - name: users
                    endpoint:
                      path: users
                      data_selector: items
                  - pets
            destinations:
              warehouse:
                type: duckdb
            pipelines:
              api_pipeline:
                source: shop_api
                destination: warehouse
                dataset_name: api_data
        """)
        expected = {"users": users, "users__orders": users * ORDERS_PER_USER, "pets": 2}
        mats = run_three_ways(root, "api_pipeline", "api_data", expected, instance)
    assert set(mats) == {AssetKey(["api_data", t]) for t in expected}


WEATHER = '''
import dlt


@dlt.source
def weather(city: str = dlt.config.value, days: int = dlt.config.value):
    @dlt.resource(write_disposition="replace")
    def forecast():
        yield [{"city": city, "day": d} for d in range(days)]

    return forecast


@dlt.resource(write_disposition="replace")
def readings(station: str = dlt.config.value, count: int = dlt.config.value):
    """Readings of one station."""
    yield [{"station": station, "n": n} for n in range(count)]
'''


def test_project_source_and_resource_with_required_config(
    tmp_path: Path, instance: DagsterInstance
) -> None:
    """A project source's and a project resource's required args resolve from
    `sources.<entity>` (manifest, config.toml, env), whatever the module is called; the
    resource's table is the entity's name, as dlt names a standalone resource cloned by name."""
    root = make_project(tmp_path, """
        project:
          name: weather_project
        sources:
          berlin:
            type: weather.weather
            city: Berlin
          station_7:
            type: weather.readings
        destinations:
          warehouse:
            type: duckdb
        pipelines:
          berlin_pipeline:
            source: berlin
            destination: warehouse
            dataset_name: weather_data
          station_pipeline:
            source: station_7
            destination: warehouse
            dataset_name: station_data
    """, {
        "sources/weather.py": WEATHER,
        ".dlt/config.toml": "[sources.berlin]\ndays = 3\n\n[sources.station_7]\ncount = 2\n",
    })

    def berlin_rows() -> None:
        con_rows = table_counts(root, "weather_data")
        assert con_rows == {"forecast": 3}

    run_three_ways(root, "berlin_pipeline", "weather_data", {"forecast": 3}, instance,
                   check=berlin_rows)
    # the station comes from the env var dlt reads for `sources.station_7.station`
    proc = cli(root, "pipeline", "station_pipeline", "run", env={
        "SOURCES__STATION_7__STATION": "st-7"})
    assert proc.returncode == 0, proc.stderr
    assert table_counts(root, "station_data") == {"station_7": 2}

    # a resource's arguments resolve when it is extracted: dlt's step error names the
    # pipeline, the key and where it was looked up
    proc = cli(root, "pipeline", "station_pipeline", "run")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "pipeline 'station_pipeline' failed at step extract" in proc.stderr
    assert "`station`" in proc.stderr and "SOURCES__STATION_7__STATION" in proc.stderr


def test_materialize_without_the_secret_fails_the_step_with_the_located_error(
    tmp_path: Path, pg_db: PgDatabase, instance: DagsterInstance,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Definitions loaded with the secret (an env var; the table list is cached); the run
    lacks it."""
    _family_table(pg_db)
    root = make_project(tmp_path, SQL_YML)
    monkeypatch.setenv("SOURCES__SQL_FAMILY__CREDENTIALS", _sqlalchemy_dsn(pg_db))
    defs = build_definitions(str(root))
    assert set(defs.resolve_asset_graph().get_all_asset_keys()) == {
        AssetKey(["rfam_data", "family"])}
    monkeypatch.delenv("SOURCES__SQL_FAMILY__CREDENTIALS")
    run = run_assets(defs, instance, raise_on_error=False)
    assert not run.success
    failure = next(e for e in run.all_events if e.is_step_failure)
    text = str(failure.step_failure_data.error)
    assert "sources.sql_family" in text and "pipeline 'family_pipeline'" in text
    assert "credentials" in text
    assert "KeyError" not in text.split("\n")[0]


def test_config_value_of_the_wrong_type_is_located_and_not_shown(tmp_path: Path) -> None:
    """`write_disposition: replace` under an `sql_table` source: dlt cannot coerce it into
    the argument's type; the error names the key, never the value."""
    yml = SQL_YML.replace("    primary_key: rfam_id\n",
                          "    primary_key: rfam_id\n    write_disposition: replace\n")
    root = make_project(tmp_path, yml, {
        ".dlt/secrets.toml": '[sources.sql_family]\ncredentials = "postgresql+psycopg2://'
                             'u:pw-never-shown@127.0.0.1:1/nowhere"\n'})
    proc = cli(root, "pipeline", "family_pipeline", "run")
    assert proc.returncode == 1
    err = proc.stderr.strip()
    # the one gate refuses it before the run, naming the key and the type
    assert err.startswith("Error: dlt.yml:9: sources.sql_family.write_disposition: "), err
    assert "cannot be coerced to" in err
    assert "replace" not in err and "pw-never-shown" not in err and "Traceback" not in err
    assert not duckdb_path(root).exists()


def test_filesystem_bucket_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    """dlt finds no files in a missing local folder and loads nothing: a typo in `bucket_url`
    would pass unnoticed, so the run is refused naming the key."""
    root = make_project(tmp_path, """
        project:
          name: typo_project
        sources:
          event_files:
            type: filesystem.readers
            bucket_url: "{project_dir}/files/evnets"
            file_glob: "*.jsonl"
        destinations:
          warehouse:
            type: duckdb
        pipelines:
          events_pipeline:
            source: event_files
            destination: warehouse
            dataset_name: files_data
            resources: [read_jsonl]
    """)
    proc = cli(root, "pipeline", "events_pipeline", "run")
    assert proc.returncode == 1
    assert proc.stderr.startswith(
        "Error: dlt.yml:6: sources.event_files.bucket_url: pipeline 'events_pipeline': "), proc.stderr
    assert "files/evnets" in proc.stderr and "does not exist" in proc.stderr
    assert not duckdb_path(root).exists()
    (root / "files" / "evnets").mkdir(parents=True)  # an empty folder is a valid bucket
    assert current.runner(str(root)).run_pipeline("events_pipeline").row_counts == {}


def test_a_source_failing_at_definitions_load_is_located_and_keeps_its_type_in_runs(
    tmp_path: Path, pg_db: PgDatabase, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    """`sql_table` reflects its table when built: a table that does not exist fails the
    source's own code. Definitions load the other pipelines and warn (located); a run raises
    the source's error as it is."""
    from sqlalchemy.exc import NoSuchTableError

    _family_table(pg_db)
    yml = SQL_YML.replace("    table: family\n", "    table: no_such_table\n") + """
  letters_pipeline:
    source: letters
    destination: warehouse
    dataset_name: letters_data
"""
    root = make_project(
        tmp_path, yml.replace("sources:\n", "sources:\n  letters:\n    count: 3\n"),
        {"sources/letters.py": LETTERS,
         ".dlt/secrets.toml": f'[sources.sql_family]\ncredentials = "{_sqlalchemy_dsn(pg_db)}"\n'},
    )
    with caplog.at_level(logging.WARNING):
        defs = build_definitions(str(root))
    assert set(defs.resolve_asset_graph().get_all_asset_keys()) == {
        AssetKey(["letters_data", "letters"])}
    warned = "\n".join(r.getMessage() for r in caplog.records)
    assert "sources.sql_family: pipeline 'family_pipeline'" in warned
    assert "NoSuchTableError: no_such_table" in warned
    assert "dltplus-test-pw" not in warned

    with pytest.raises(NoSuchTableError):
        current.runner(str(root)).run_pipeline("family_pipeline")
