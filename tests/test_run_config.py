"""Per-run settings of a pipeline asset from the Launchpad (`ops.<op>.config`): `limit`,
`refresh`, `source_args` and `progress` reach the same runner arguments as the CLI's
`pipeline NAME run --limit/--refresh/--source-arg/--progress`. Real Dagster runs on DuckDB."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, RunConfig
from dagster_support import materializations, md_value, run_assets
from helpers import make_project
from sources_support import cli, duckdb_path, table_counts

from dltplus_dagster import PipelineRunConfig, build_definitions
from dltplus_dagster.dagster.run_config import ProgressCollector, RefreshMode
from dltplus_dagster.project.progress import PROGRESS_PACKAGES
from dltplus_dagster.project.run_options import REFRESH_MODES

COUNTER = '''
import dlt


@dlt.source
def counter(n: int = dlt.config.value, offset: int = 0):
    @dlt.resource(write_disposition="append")
    def numbers(id=dlt.sources.incremental("id")):
        """One row per yield, each id once (an incremental cursor in the resource's state)."""
        for i in range(offset, offset + n):
            yield {"id": i}

    @dlt.resource(write_disposition="append")
    def letters():
        """`run` counts the runs in the source's state."""
        state = dlt.current.source_state()
        state["runs"] = state.get("runs", 0) + 1
        for i in range(n):
            yield {"ch": chr(97 + i % 26), "run": state["runs"]}

    return numbers, letters
'''

YML = """
project:
  name: counter_project
sources:
  counter:
    type: counter.counter
    n: 3
destinations:
  warehouse:
    type: duckdb
pipelines:
  counter_pipeline:
    source: counter
    destination: warehouse
    dataset_name: counted
"""

OP = "dlt_pipeline_counter_pipeline"
NUMBERS, LETTERS = AssetKey(["counted", "numbers"]), AssetKey(["counted", "letters"])


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    return make_project(tmp_path, YML, {"sources/counter.py": COUNTER})


def _query(root: Path, sql: str) -> list[int]:
    import duckdb

    con = duckdb.connect(str(duckdb_path(root)), read_only=True)
    try:
        return [r[0] for r in con.execute(sql).fetchall()]
    finally:
        con.close()


def _ids(root: Path) -> list[int]:
    return _query(root, "SELECT id FROM counted.numbers ORDER BY id")


def _runs(root: Path) -> list[int]:
    """The run counter of the source's state, as the rows of `letters` recorded it."""
    return _query(root, "SELECT DISTINCT run FROM counted.letters ORDER BY run")


def _run(defs, instance: DagsterInstance, config: dict | PipelineRunConfig | None = None):
    ops = {OP: {"config": config} if isinstance(config, dict) else config} if config else {}
    run_config = RunConfig(ops=ops) if isinstance(config, PipelineRunConfig) else {"ops": ops}
    return run_assets(defs, instance, run_config=run_config, raise_on_error=False)


def _failure(run) -> str:
    """The messages of the step failure's error chain."""
    failure = next(e for e in run.all_events if e.event_type_value == "STEP_FAILURE")
    error, messages = failure.step_failure_data.error, []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)


def test_launchpad_schema_lists_the_run_options(root: Path) -> None:
    defs = build_definitions(str(root))
    job = defs.resolve_implicit_global_asset_job_def()
    config_field = job.run_config_schema.config_type.fields["ops"].config_type.fields[OP]
    fields = config_field.config_type.fields["config"].config_type.fields
    assert set(fields) == {"limit", "refresh", "source_args", "progress"}
    assert all(not f.is_required for f in fields.values())
    assert not any(f.default_provided and f.default_value for f in fields.values())  # no secret
    assert "--limit" in (fields["limit"].description or "")
    # the enums are dlt's modes and collectors, nothing more or less
    assert tuple(m.value for m in RefreshMode) == REFRESH_MODES
    assert {m.value for m in ProgressCollector} == set(PROGRESS_PACKAGES)


def test_limit_and_source_args_reach_the_source(root: Path, instance: DagsterInstance) -> None:
    defs = build_definitions(str(root))
    run = _run(defs, instance, {"limit": 2, "source_args": {"n": 5, "offset": 100}})
    assert run.success
    assert table_counts(root, "counted") == {"numbers": 2, "letters": 2}  # 2 of 5 per resource
    assert _ids(root) == [100, 101]  # the offset reached the source
    mats = materializations(run)
    assert md_value(mats[NUMBERS], "dagster/row_count") == 2
    assert md_value(mats[LETTERS], "dlt/rows_loaded") == 2

    # typed config object, a Launchpad string coerced to the argument's type
    run = _run(defs, instance, PipelineRunConfig(source_args={"n": "5", "offset": "200"}))
    assert run.success
    assert table_counts(root, "counted") == {"numbers": 7, "letters": 7}
    assert _ids(root)[-5:] == [200, 201, 202, 203, 204]


def test_refresh_drops_data_or_sources(root: Path, instance: DagsterInstance) -> None:
    defs = build_definitions(str(root))
    assert _run(defs, instance).success
    assert _run(defs, instance).success  # incremental: nothing new, letters appended again
    assert table_counts(root, "counted") == {"numbers": 3, "letters": 6}
    assert _runs(root) == [1, 2]

    # drop_data: tables truncated and the incremental reset; the source's own state is kept
    assert _run(defs, instance, {"refresh": "drop_data"}).success
    assert table_counts(root, "counted") == {"numbers": 3, "letters": 3}
    assert _ids(root) == [0, 1, 2] and _runs(root) == [3]

    # drop_sources: tables and the source's whole state dropped
    assert _run(defs, instance, PipelineRunConfig(refresh=RefreshMode.drop_sources)).success
    assert table_counts(root, "counted") == {"numbers": 3, "letters": 3}
    assert _ids(root) == [0, 1, 2] and _runs(root) == [1]


def test_a_bad_source_arg_fails_the_run_naming_pipeline_and_arg(
    root: Path, instance: DagsterInstance
) -> None:
    defs = build_definitions(str(root))
    run = _run(defs, instance, {"source_args": {"rows": 5}})
    assert not run.success
    message = _failure(run)
    assert "pipeline 'counter_pipeline': source_args" in message
    assert "'rows'" in message and "its arguments: n, offset" in message
    assert not duckdb_path(root).exists()  # refused before anything ran

    run = _run(defs, instance, {"source_args": {"n": "many"}})
    assert not run.success
    assert "pipeline 'counter_pipeline': source_args: argument 'n'" in _failure(run)
    assert "many" not in _failure(run)  # a value is never shown (it may be a secret)

    run = _run(defs, instance, {"limit": 0})  # pydantic's gt=0, before the runner
    assert not run.success


def test_progress_reaches_dlt(
    root: Path, instance: DagsterInstance, capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    defs = build_definitions(str(root))
    assert _run(defs, instance).success
    out, err = capfd.readouterr()
    assert "Extract counter" not in out + err + caplog.text  # no collector unless asked

    run = _run(defs, instance, {"progress": "log"})
    assert run.success
    out, err = capfd.readouterr()
    assert re.search(r"-+ Extract counter -+", out + err + caplog.text)  # dlt's log collector


def test_cli_takes_the_same_options(root: Path) -> None:
    proc = cli(root, "pipeline", "counter_pipeline", "run", "--limit", "1",
               "--source-arg", "offset=50", "--source-arg", "n=4")
    assert proc.returncode == 0, proc.stderr
    assert table_counts(root, "counted", "dev") == {"numbers": 1, "letters": 1}
    assert _ids(root) == [50]

    proc = cli(root, "pipeline", "counter_pipeline", "run", "--refresh", "drop_sources")
    assert proc.returncode == 0, proc.stderr
    assert _ids(root) == [0, 1, 2] and _runs(root) == [1]

    proc = cli(root, "pipeline", "counter_pipeline", "run", "--source-arg", "rows=5")
    assert proc.returncode == 1
    assert "pipeline 'counter_pipeline': source_args: source 'counter' has no argument" in (
        proc.stderr)
    proc = cli(root, "pipeline", "counter_pipeline", "run", "--refresh", "drop_all")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
