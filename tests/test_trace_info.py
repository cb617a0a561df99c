"""`run_config.store_trace_info`: every attempt's dlt trace is loaded (DuckDB, PostgreSQL), is
scrubbed of secrets, is readable from the catalog and the CLI, and a trace that cannot be
loaded is kept locally with a warning while the run's own outcome stays as it is."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from helpers import BIN, clean_env, make_project
from pg import PgDatabase, pg_db, pg_server  # noqa: F401 - fixtures

from dltplus_dagster import current
from dltplus_dagster.project.entities import EntityFactory
from dltplus_dagster.project.errors import ProjectError
from dltplus_dagster.project.project import load_project
from dltplus_dagster.project.runner import Runner

SECRET = "planted-s3cret-7f3a9c"
PIPELINE = "traced_pipeline"
TRACE_DATASET = "_trace_traced_data"
TRACE_TABLE = "traced_pipeline_trace"

SOURCE = '''
import os

import dlt


@dlt.source
def traced(api_key: str = dlt.secrets.value, failures: int = 0, counter_file: str = ""):
    """Five rows; the first `failures` extract attempts fail with the api key in the message."""

    @dlt.resource(write_disposition="append")
    def rows():
        n = int(open(counter_file).read()) + 1 if os.path.exists(counter_file) else 1
        with open(counter_file, "w") as f:
            f.write(str(n))
        if n <= failures:
            raise ConnectionError(
                f"GET https://api.example.com/rows?api_key={api_key} answered 503 (attempt {n})"
            )
        yield [{"id": i} for i in range(5)]

    return rows
'''


def project_yml(destination: str, store: str, extra: str = "", attempts: int = 3) -> str:
    return f"""
project:
  name: trace_project

sources:
  traced:
    type: traced_src.traced
    counter_file: "{{project_dir}}/attempts.txt"

destinations:
{destination}

pipelines:
  {PIPELINE}:
    source: traced
    destination: warehouse
    dataset_name: traced_data
    run_config:
      store_trace_info: {store}
      retry_policy: {{type: fixed, max_attempts: {attempts}}}
      retry_pipeline_steps: [extract]
{extra}
"""


DUCKDB = "  warehouse:\n    type: duckdb\n"


def make(tmp_path: Path, yml: str) -> Path:
    return make_project(
        tmp_path, yml,
        {
            "sources/traced_src.py": SOURCE,
            ".dlt/secrets.toml": f'[sources.traced]\napi_key = "{SECRET}"\n',
            ".dlt/config.toml": '[runtime]\nlog_level = "WARNING"\n',
        },
    )


def runner(root: Path, profile: str | None = None) -> Runner:
    project = load_project(str(root), profile)
    return Runner(project, EntityFactory(project))


def duckdb_file(root: Path) -> Path:
    (found,) = list(root.rglob("warehouse.duckdb"))
    return found


def duckdb_tables(path: Path, schema: str) -> dict[str, list[tuple]]:
    """Every table of `schema` with all its rows."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [schema]
        ).fetchall()]
        return {n: con.execute(f'SELECT * FROM "{schema}"."{n}"').fetchall() for n in names}
    finally:
        con.close()


def trace_rows(root: Path) -> list[dict[str, Any]]:
    """The attempt rows, read through the catalog (the implicit `_trace_<dataset>`)."""
    dataset = current.catalog(str(root)).dataset(TRACE_DATASET)
    frame = dataset[TRACE_TABLE].df().sort_values(["started_at"])
    return frame.to_dict("records")


def test_true_stores_one_row_per_attempt_in_duckdb(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = make(tmp_path, project_yml(DUCKDB, "true"))
    monkeypatch.setenv("SOURCES__TRACED__FAILURES", "1")

    result = runner(root).run_pipeline(PIPELINE)

    assert result.attempts == 2 and result.row_counts == {"rows": 5}
    rows = trace_rows(root)
    assert [(r["attempt"], r["status"]) for r in rows] == [(1, "failed"), (2, "completed")]
    assert rows[0]["run_id"] == rows[1]["run_id"]
    assert rows[0]["pipeline_name"] == PIPELINE
    assert "step=extract" in rows[0]["error"] and "api.example.com" in rows[0]["error"]
    assert "***" in rows[0]["error"]  # the api key was in the message, masked
    # dlt's steps are nested rows; the completed attempt ran extract, normalize and load
    tables = duckdb_tables(duckdb_file(root), TRACE_DATASET)
    assert f"{TRACE_TABLE}__steps" in tables
    assert "ConnectionError" in repr(tables[f"{TRACE_TABLE}__steps"])  # exception_traces (JSON)
    assert SECRET not in repr(tables)  # not in any row of any trace table
    # the catalog lists the implicit trace dataset on the pipeline's destination
    catalog = current.catalog(str(root))
    assert TRACE_DATASET in catalog
    assert catalog.dataset(TRACE_DATASET).destination_name == "warehouse"


def test_failed_run_stores_every_attempt_and_raises_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__TRACED__FAILURES", "99")
    errors = []
    for store in ("false", "true"):
        root = make(tmp_path / store, project_yml(DUCKDB, store, attempts=2))
        with pytest.raises(Exception) as exc:
            runner(root).run_pipeline(PIPELINE)
        errors.append((type(exc.value), re.sub(r"load_id=[\d.]+", "", str(exc.value))))
    # the same error, whether traces are stored or not
    assert errors[0] == errors[1]
    assert SECRET not in errors[1][1]
    rows = trace_rows(tmp_path / "true" / "project")
    assert [(r["attempt"], r["status"]) for r in rows] == [(1, "failed"), (2, "failed")]
    tables = duckdb_tables(duckdb_file(tmp_path / "true" / "project"), TRACE_DATASET)
    assert SECRET not in repr(tables)


def test_true_stores_traces_in_postgres(tmp_path: Path, pg_db: PgDatabase,  # noqa: F811
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    destination = f'  warehouse:\n    type: postgres\n    credentials: "{pg_db.dsn}"\n'
    root = make(tmp_path, project_yml(destination, "true"))
    monkeypatch.setenv("SOURCES__TRACED__FAILURES", "1")

    result = runner(root).run_pipeline(PIPELINE)

    assert result.attempts == 2
    rows = pg_db.query(
        f'SELECT attempt, status, run_id FROM "{TRACE_DATASET}"."{TRACE_TABLE}" ORDER BY attempt'
    )
    assert [(a, s) for a, s, _ in rows] == [(1, "failed"), (2, "completed")]
    assert rows[0][2] == rows[1][2]
    for table in pg_db.tables(TRACE_DATASET):
        assert SECRET not in repr(pg_db.query(f'SELECT * FROM "{TRACE_DATASET}"."{table}"'))
    assert pg_db.count("traced_data", "rows") == 5
    assert {r["status"] for r in trace_rows(root)} == {"failed", "completed"}


TRACE_SINK = """\
  trace_sink:
    source: traced
    destination: sink
    dataset_name: run_traces
"""


def test_unloadable_trace_is_kept_locally_and_the_run_is_unaffected(
    tmp_path: Path, pg_db: PgDatabase, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A string names the trace pipeline; its destination cannot be reached: the run succeeds
    as without traces, a warning says where the trace was kept; the next run loads it."""
    destination = DUCKDB + '  sink:\n    type: postgres\n    credentials: "{env.TRACE_SINK_DSN}"\n'
    root = make(tmp_path, project_yml(destination, "trace_sink", extra=TRACE_SINK))
    monkeypatch.setenv("SOURCES__TRACED__FAILURES", "1")
    monkeypatch.setenv("TRACE_SINK_DSN", "postgresql://loader:sink-pw-1234@127.0.0.1:1/nowhere")

    with caplog.at_level(logging.WARNING, logger="dltplus_dagster"):
        result = runner(root).run_pipeline(PIPELINE)

    assert result.attempts == 2 and result.row_counts == {"rows": 5}
    kept_dir = root / "_data" / "dev" / "traces" / PIPELINE
    kept = sorted(kept_dir.glob("*_trace.json"))
    assert [p.name.split("_attempt_")[1] for p in kept] == ["1_trace.json", "2_trace.json"]
    statuses = [json.loads(p.read_text())["status"] for p in kept]
    assert statuses == ["failed", "completed"]
    assert not any(SECRET in p.read_text() or "sink-pw-1234" in p.read_text() for p in kept)
    warnings = [r.getMessage() for r in caplog.records if "storing the trace" in r.getMessage()]
    assert len(warnings) == 2 and str(kept_dir) in warnings[0]
    assert "sink-pw-1234" not in caplog.text

    # the sink is back: the next run loads the kept traces along with its own
    monkeypatch.setenv("TRACE_SINK_DSN", pg_db.dsn)
    monkeypatch.setenv("SOURCES__TRACED__FAILURES", "0")
    runner(root).run_pipeline(PIPELINE)
    rows = pg_db.query(f'SELECT status FROM run_traces."{TRACE_TABLE}" ORDER BY started_at')
    assert [r[0] for r in rows] == ["failed", "completed", "completed"]
    assert not list(kept_dir.glob("*_trace.json"))


def test_unknown_trace_pipeline_is_refused_before_the_run(tmp_path: Path) -> None:
    root = make(tmp_path, project_yml(DUCKDB, "ghost"))
    with pytest.raises(ProjectError) as exc:  # the gate: validate's located problem
        runner(root).run_pipeline(PIPELINE)
    message = str(exc.value)
    assert "pipelines.traced_pipeline.run_config.store_trace_info" in message
    assert "pipeline 'ghost' is not declared" in message and "dlt.yml:" in message
    assert not (root / "attempts.txt").exists()  # the source never ran
    assert not list(root.rglob("*.duckdb"))


def test_cli_pipeline_trace_shows_the_stored_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make(tmp_path, project_yml(DUCKDB, "true"))
    env = clean_env(SOURCES__TRACED__FAILURES="1")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "dltplus"), "--project", str(root), "pipeline", PIPELINE, *args],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )

    empty = cli("trace")
    assert empty.returncode == 0, empty.stderr
    assert "(none stored yet)" in empty.stdout
    ran = cli("run")
    assert ran.returncode == 0, ran.stderr
    shown = cli("trace")
    assert shown.returncode == 0, shown.stderr
    lines = [ln for ln in shown.stdout.splitlines() if ln.startswith("  ")]
    assert len(lines) == 2
    assert " 2  completed" in lines[0] and " 1  failed" in lines[1]  # newest first
    assert "step=extract" in lines[1] and SECRET not in shown.stdout
    assert f"{TRACE_DATASET}.{TRACE_TABLE}@warehouse" in shown.stdout


def test_cli_pipeline_trace_without_store_trace_info_says_how(tmp_path: Path) -> None:
    root = make(tmp_path, project_yml(DUCKDB, "false"))
    proc = subprocess.run(
        [sys.executable, "-m", "dltplus_dagster.cli", "--project", str(root), "pipeline",
         PIPELINE, "trace", "--stored"],
        env=clean_env(), capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "store_trace_info" in proc.stderr and "stores no traces" in proc.stderr
    assert os.path.exists(root / "dlt.yml")


def test_dagster_materialization_stores_the_traces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instance: Any
) -> None:
    """Runs from Dagster go through the same runner: the attempts are stored, and neither the
    traces nor the materialization metadata show the planted secret."""
    from dagster_support import materializations, run_assets

    from dltplus_dagster import build_definitions

    root = make(tmp_path, project_yml(DUCKDB, "true"))
    monkeypatch.setenv("SOURCES__TRACED__FAILURES", "1")
    result = run_assets(build_definitions(str(root)), instance)

    assert result.success
    assert SECRET not in repr(materializations(result))
    rows = trace_rows(root)
    assert [(r["attempt"], r["status"]) for r in rows] == [(1, "failed"), (2, "completed")]
    assert SECRET not in repr(duckdb_tables(duckdb_file(root), TRACE_DATASET))


def test_trace_that_can_be_neither_loaded_nor_kept_is_reported_and_the_run_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    destination = DUCKDB + '  sink:\n    type: postgres\n    credentials: "{env.TRACE_SINK_DSN}"\n'
    root = make(tmp_path, project_yml(destination, "trace_sink", extra=TRACE_SINK))
    monkeypatch.setenv("TRACE_SINK_DSN", "postgresql://loader:sink-pw-1234@127.0.0.1:1/nowhere")
    blocker = root / "_data" / "dev" / "traces"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a directory")  # the local fallback cannot be written either

    with caplog.at_level(logging.WARNING, logger="dltplus_dagster"):
        result = runner(root).run_pipeline(PIPELINE)

    assert result.attempts == 1 and result.row_counts == {"rows": 5}
    (warning,) = [r.getMessage() for r in caplog.records if "storing the trace" in r.getMessage()]
    assert "it is lost" in warning and "sink-pw-1234" not in warning


def test_trace_dataset_is_readable_with_implicit_entities_disabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`store_trace_info: true` declares `_trace_<dataset>` itself: the catalog reads it also
    under `allow_undefined_entities: false`, and `dltplus dataset list` shows it."""
    yml = project_yml(DUCKDB, "true") + (
        "\ndatasets:\n  traced_data:\n    destination: [warehouse]\n"
    )
    yml = yml.replace("project:\n  name: trace_project\n",
                      "project:\n  name: trace_project\n  allow_undefined_entities: false\n")
    root = make(tmp_path, yml)
    monkeypatch.setenv("SOURCES__TRACED__FAILURES", "0")
    runner(root).run_pipeline(PIPELINE)

    assert [(r["attempt"], r["status"]) for r in trace_rows(root)] == [(1, "completed")]
    listed = subprocess.run(
        [str(BIN / "dltplus"), "--project", str(root), "dataset", "list"],
        env=clean_env(), capture_output=True, text=True, timeout=300, check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert TRACE_DATASET in listed.stdout
