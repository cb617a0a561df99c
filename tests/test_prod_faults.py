"""Faults in production: a source that breaks mid-way, transient and terminal errors under a
retry policy, an unreachable destination, and a run killed with SIGKILL during extract and load.

The `numbers` project (tests/pg.py) loads into a PostgreSQL database of its own per test; its
source's failure knobs are dlt config values set through env vars (SOURCES__NUMBERS__...).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.pipeline.exceptions import PipelineStepFailed
from pg import (  # noqa: F401 - fixtures
    NUMBERS_ROWS,
    VENV_BIN,
    PgDatabase,
    make_numbers_project,
    pg_db,
    pg_server,
    run,
    runner_cmd,
    subprocess_env,
    wait_for,
)

from dltplus_dagster.project.entities import EntityFactory
from dltplus_dagster.project.project import load_project
from dltplus_dagster.project.runner import Runner

ROWS = AssetKey(["numbers_data", "rows"])
EVENTS = AssetKey(["numbers_data", "events"])


@pytest.fixture
def numbers(tmp_path: Path, pg_db: PgDatabase, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    """The numbers project, its warehouse the test database; no failure knobs set."""
    monkeypatch.setenv("NUMBERS_PG_DSN", pg_db.dsn)
    for knob in ("FAIL_AFTER", "TRANSIENT_FAILURES", "COUNTER_FILE", "SLEEP", "MARKER_FILE", "TAG"):
        monkeypatch.delenv(f"SOURCES__NUMBERS__{knob}", raising=False)
    return make_numbers_project(tmp_path / "numbers")


def runner(project_dir: Path, profile: str = "dev") -> Runner:
    project = load_project(str(project_dir), profile)
    return Runner(project, EntityFactory(project))


def tags(db: PgDatabase, table: str, schema: str = "numbers_data") -> dict[str, int]:
    return dict(db.query(f'SELECT tag, count(*) FROM "{schema}"."{table}" GROUP BY tag'))


def distinct_ids(db: PgDatabase, table: str, schema: str = "numbers_data") -> int:
    return db.query(f'SELECT count(DISTINCT id) FROM "{schema}"."{table}"')[0][0]


def error_text(error: Any) -> str:
    """A Dagster SerializableErrorInfo with its causes and contexts, as one string."""
    parts = []
    while error is not None:
        parts.append(f"{error.cls_name}: {error.message}")
        error = error.cause or error.context
    return "\n".join(parts)


def definitions(project_dir: Path, profile: str = "dev") -> Any:
    from dltplus_dagster import build_definitions

    return build_definitions(str(project_dir), profile=profile)


def materialize(project_dir: Path | Any, *keys: AssetKey, profile: str = "dev") -> Any:
    """Materialize `keys` in process; `project_dir` may be prebuilt Definitions."""
    defs = definitions(project_dir, profile) if isinstance(project_dir, Path) else project_dir
    job = defs.resolve_implicit_global_asset_job_def()
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance, asset_selection=list(keys), raise_on_error=False
        )
        # the run's event log: Dagster events and what the step logged
        result.log_messages = [r.user_message for r in instance.all_logs(result.run_id)]
        return result


def step_errors(result: Any) -> str:
    return "\n".join(error_text(e.step_failure_data.error)
                     for e in result.get_step_failure_events())


# --- a source that fails mid-way ------------------------------------------------------------


def test_source_error_fails_asset_and_keeps_previous_table(
    numbers: Path, pg_db: PgDatabase, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    ok = materialize(numbers, ROWS, EVENTS)
    assert ok.success
    assert tags(pg_db, "rows") == {"v1": NUMBERS_ROWS}

    # the next run breaks after yielding half of its (new) rows
    monkeypatch.setenv("SOURCES__NUMBERS__TAG", "v2")
    monkeypatch.setenv("SOURCES__NUMBERS__FAIL_AFTER", "50")
    failed = materialize(numbers, ROWS, EVENTS)
    assert not failed.success
    errors = step_errors(failed)
    assert "numbers source: upstream API broke after 50 rows" in errors
    assert "step=extract" in errors
    # the failure is in the run's event log too, attributed to the pipeline step
    failures = [e for e in failed.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    assert [e.step_key for e in failures] == ["dlt_pipeline_numbers_pipeline"]
    assert not failed.get_asset_materialization_events()
    # the destination keeps the previous complete contents (replace: nothing half-written)
    assert tags(pg_db, "rows") == {"v1": NUMBERS_ROWS}
    assert tags(pg_db, "events") == {"v1": NUMBERS_ROWS}

    # a rerun without the fault: exactly the expected rows, no duplicates
    monkeypatch.delenv("SOURCES__NUMBERS__FAIL_AFTER")
    rerun = materialize(numbers, ROWS, EVENTS)
    assert rerun.success
    counts = {e.materialization.asset_key: e.materialization.metadata["dagster/row_count"].value
              for e in rerun.get_asset_materialization_events()}
    assert counts == {ROWS: NUMBERS_ROWS, EVENTS: NUMBERS_ROWS}
    assert tags(pg_db, "rows") == {"v2": NUMBERS_ROWS}
    assert tags(pg_db, "events") == {"v2": NUMBERS_ROWS}
    assert distinct_ids(pg_db, "rows") == NUMBERS_ROWS


def test_source_error_with_fixed_working_dir_leaves_no_partial_data(
    numbers: Path, pg_db: PgDatabase, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """The runner's shared working dir: a broken extract leaves nothing that a later run
    would load on top (the runner loads pending packages first)."""
    runner(numbers).run_pipeline("numbers_pipeline")
    monkeypatch.setenv("SOURCES__NUMBERS__TAG", "v2")
    monkeypatch.setenv("SOURCES__NUMBERS__FAIL_AFTER", "50")
    with pytest.raises(PipelineStepFailed, match="upstream API broke after 50 rows"):
        runner(numbers).run_pipeline("numbers_pipeline")
    assert tags(pg_db, "rows") == {"v1": NUMBERS_ROWS}
    monkeypatch.setenv("SOURCES__NUMBERS__TAG", "v3")
    monkeypatch.delenv("SOURCES__NUMBERS__FAIL_AFTER")
    result = runner(numbers).run_pipeline("numbers_pipeline")
    assert result.row_counts == {"rows": NUMBERS_ROWS, "events": NUMBERS_ROWS,
                                 "audit": NUMBERS_ROWS}
    assert tags(pg_db, "rows") == {"v3": NUMBERS_ROWS}
    # the append table got the first run's rows and this run's, none of the broken run's
    assert tags(pg_db, "audit") == {"v1": NUMBERS_ROWS, "v3": NUMBERS_ROWS}
    assert tags(pg_db, "events") == {"v3": NUMBERS_ROWS}
    assert not _pipeline(numbers).has_pending_data


# --- retries ----------------------------------------------------------------------------------


def test_transient_failures_are_retried(
    numbers: Path, pg_db: PgDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """retry_policy {type: fixed, max_attempts: 3}, retry_pipeline_steps [extract]: two
    connection errors, then success, in Dagster; a third error exhausts the attempts."""
    counter = tmp_path / "attempts"
    defs = definitions(numbers)  # may call the source function to list its resources
    monkeypatch.setenv("SOURCES__NUMBERS__COUNTER_FILE", str(counter))
    monkeypatch.setenv("SOURCES__NUMBERS__TRANSIENT_FAILURES", "2")
    result = materialize(defs, ROWS, EVENTS)
    assert result.success, step_errors(result)
    assert counter.read_text() == "3"
    assert any("(3 attempt(s))" in m for m in result.log_messages), result.log_messages
    assert tags(pg_db, "rows") == {"v1": NUMBERS_ROWS}
    assert distinct_ids(pg_db, "events") == NUMBERS_ROWS == pg_db.count("numbers_data", "events")

    counter.unlink()
    monkeypatch.setenv("SOURCES__NUMBERS__TRANSIENT_FAILURES", "3")
    with pytest.raises(PipelineStepFailed, match=r"connection reset \(attempt 3\)"):
        runner(numbers).run_pipeline("numbers_pipeline")
    assert counter.read_text() == "3"  # max_attempts, no more


def test_runner_reports_attempts(
    numbers: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = tmp_path / "attempts"
    monkeypatch.setenv("SOURCES__NUMBERS__COUNTER_FILE", str(counter))
    monkeypatch.setenv("SOURCES__NUMBERS__TRANSIENT_FAILURES", "2")
    result = runner(numbers).run_pipeline("numbers_pipeline")
    assert result.attempts == 3
    assert "(3 attempt(s))" in str(result)


def test_retried_load_does_not_extract_again(
    numbers: Path, pg_db: PgDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """copy_pipeline retries `load`: when the connection drops as the load starts, the retry
    loads the package this run already extracted. The source runs once and the append table
    gets every row once (extracting again would load the data twice)."""
    from dlt.pipeline.pipeline import Pipeline

    real_load = Pipeline.load
    loads = []

    def load_dropping_first_connection(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        loads.append(self.pipeline_name)
        if len(loads) == 1:
            raise PipelineStepFailed(
                self, "load", None,
                ConnectionResetError("server closed the connection unexpectedly"), None,
            )
        return real_load(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "load", load_dropping_first_connection)
    counter = tmp_path / "extractions"
    monkeypatch.setenv("SOURCES__NUMBERS__COUNTER_FILE", str(counter))
    result = runner(numbers).run_pipeline("copy_pipeline")
    assert result.attempts == 2
    assert len(loads) == 2
    assert counter.read_text() == "1"  # the source ran once
    assert pg_db.count("numbers_copy", "audit") == NUMBERS_ROWS
    assert distinct_ids(pg_db, "audit", "numbers_copy") == NUMBERS_ROWS
    assert tags(pg_db, "rows", "numbers_copy") == {"v1": NUMBERS_ROWS}
    assert pg_db.query("SELECT count(*) FROM numbers_copy._dlt_loads")[0][0] == 1
    # the result still says what the run loaded
    assert result.row_counts == {"rows": NUMBERS_ROWS, "events": NUMBERS_ROWS,
                                 "audit": NUMBERS_ROWS}
    assert not _pipeline(numbers, "copy_pipeline").has_pending_data


def test_missing_secret_is_terminal_and_not_retried(
    numbers: Path, pg_db: PgDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """A secret nobody configured: ConfigFieldMissingException is terminal, one attempt only,
    although the pipeline retries extract and load three times."""
    counter = tmp_path / "secured_attempts"
    monkeypatch.setenv("SOURCES__SECURED__COUNTER_FILE", str(counter))
    monkeypatch.delenv("SOURCES__SECURED__TOKEN", raising=False)
    started = time.monotonic()
    with pytest.raises(PipelineStepFailed) as info:
        runner(numbers).run_pipeline("secured_pipeline")
    assert isinstance(info.value.exception, ConfigFieldMissingException)
    assert "token" in str(info.value)
    assert counter.read_text() == "1"
    assert time.monotonic() - started < 30

    defs = definitions(numbers)
    counter.unlink()
    result = materialize(defs, AssetKey(["secured_data", "private_rows"]))
    assert not result.success
    errors = step_errors(result)
    assert "ConfigFieldMissingException" in errors and "token" in errors
    assert counter.read_text() == "1"
    assert "private_rows" not in pg_db.tables("secured_data")


# --- unreachable destination ----------------------------------------------------------------


def test_unreachable_destination_fails_fast_with_a_clear_message(numbers: Path) -> None:
    started = time.monotonic()
    with pytest.raises(PipelineStepFailed) as info:
        runner(numbers).run_pipeline("unreachable_pipeline")
    elapsed = time.monotonic() - started
    assert elapsed < 30
    message = str(info.value)
    assert "step=sync" in message  # fails before extracting anything
    assert "127.0.0.1" in message and "port 1" in message
    assert "Connection refused" in message
    assert "s3cr3t-pw" not in message  # the password of the DSN

    result = materialize(numbers, AssetKey(["unreachable_data", "rows"]),
                         AssetKey(["unreachable_data", "events"]))
    assert not result.success
    errors = step_errors(result)
    assert "Connection refused" in errors and "s3cr3t-pw" not in errors


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A TCP port that accepts connections and then never says a word (a hung server)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def test_silent_destination_times_out(
    numbers: Path, black_hole: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that accepts TCP but never answers: `connect_timeout` in the credentials' query
    bounds the wait (dlt's postgres default is 15 s; libpq alone would wait forever)."""
    from dlt.destinations.impl.postgres.configuration import PostgresCredentials

    assert PostgresCredentials().connect_timeout == 15
    monkeypatch.setenv(
        "DESTINATION__UNREACHABLE__CREDENTIALS",
        f"postgresql://loader:s3cr3t-pw@127.0.0.1:{black_hole}/nowhere?connect_timeout=2",
    )
    started = time.monotonic()
    with pytest.raises(PipelineStepFailed) as info:
        runner(numbers).run_pipeline("unreachable_pipeline")
    elapsed = time.monotonic() - started
    assert elapsed < 30
    assert "timeout" in str(info.value).lower()
    assert "s3cr3t-pw" not in str(info.value)


# --- SIGKILL --------------------------------------------------------------------------------


def _pipeline(project_dir: Path, name: str = "numbers_pipeline") -> dlt.Pipeline:
    project = load_project(str(project_dir), "dev")
    return EntityFactory(project).get_pipeline(name)


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_during_extract_and_load_recovers(
    numbers: Path, pg_db: PgDatabase, tmp_path: Path  # noqa: F811
) -> None:
    """kill -9 a runner process while it extracts (a slow source), then while it loads (the
    target table is locked): the next run finishes or discards what the killed ones left and
    the tables hold exactly the expected rows."""
    env = subprocess_env(NUMBERS_PG_DSN=pg_db.dsn)
    cmd = runner_cmd(numbers, "numbers_pipeline")
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=120)
    assert tags(pg_db, "rows") == {"v1": NUMBERS_ROWS}

    # 1. killed while extracting: the source sleeps between batches
    marker = tmp_path / "extracting"
    slow = subprocess.Popen(cmd, env={**env, "SOURCES__NUMBERS__SLEEP": "0.5",
                                      "SOURCES__NUMBERS__MARKER_FILE": str(marker),
                                      "SOURCES__NUMBERS__TAG": "v2"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(marker.exists, 60, what="the source to start extracting")
        time.sleep(1.2)  # a few batches in
    finally:
        _kill(slow)
    assert tags(pg_db, "rows") == {"v1": NUMBERS_ROWS}

    # 2. killed while loading: hold a lock on the target table until the loader waits on it
    with pg_db.locked("numbers_data.rows"):
        loading = subprocess.Popen(cmd, env={**env, "SOURCES__NUMBERS__TAG": "v3"},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(pg_db.lock_waiters, 90, what="the load to wait on the table lock")
        finally:
            _kill(loading)
    pending = _pipeline(numbers).list_normalized_load_packages()
    assert len(pending) == 1  # the killed load's package, normalized and half-loaded
    # insert-from-staging: readers see the old table or the new one, never a part or nothing
    # (the killed client's server backend may still finish the statement it was waiting on)
    time.sleep(0.5)
    assert tags(pg_db, "rows") in ({"v1": NUMBERS_ROWS}, {"v3": NUMBERS_ROWS})
    assert "rows" in pg_db.tables("numbers_data_staging")  # the strategy is in effect

    # 3. the next run: completes the pending package first, then loads its own data; the
    # killed runs' pipeline lock went with their processes
    proc = subprocess.run(cmd, env={**env, "SOURCES__NUMBERS__TAG": "v4"}, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "RESULT numbers_pipeline: loaded" in proc.stdout
    assert tags(pg_db, "rows") == {"v4": NUMBERS_ROWS}
    assert tags(pg_db, "events") == {"v4": NUMBERS_ROWS}
    assert distinct_ids(pg_db, "rows") == distinct_ids(pg_db, "events") == NUMBERS_ROWS
    loads = dict(pg_db.query("SELECT load_id, status FROM numbers_data._dlt_loads"))
    assert loads[pending[0]] == 0  # the pending package was completed, not lost
    assert set(loads.values()) == {0}
    after = _pipeline(numbers)
    assert not after.has_pending_data
    assert after.list_extracted_load_packages() == []


def test_sigkill_of_a_dagster_run_during_load_recovers(
    numbers: Path, pg_db: PgDatabase, tmp_path: Path  # noqa: F811
) -> None:
    """A Dagster run (orchestrator and step process) killed with SIGKILL while its step loads,
    as a pod eviction would: the next run starts in a fresh working dir, the pipeline lock is
    free, and the tables are exact. The killed run's package is discarded: replace and merge
    tables never show it; an append table keeps the rows of jobs committed before the kill,
    without a completed load in `_dlt_loads`."""
    defs_file = tmp_path / "defs.py"
    defs_file.write_text(
        "from dltplus_dagster import build_definitions\n"
        f"defs = build_definitions({str(numbers)!r}, profile='dev')\n"
    )
    select = "numbers_data/rows,numbers_data/events,numbers_data/audit"
    cmd = [os.path.join(VENV_BIN, "dagster"), "asset", "materialize", "-f", str(defs_file),
           "--select", select]
    env = subprocess_env(NUMBERS_PG_DSN=pg_db.dsn, DAGSTER_HOME=str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    run(cmd, env=env, cwd=tmp_path, timeout=180)
    assert tags(pg_db, "rows") == {"v1": NUMBERS_ROWS}

    with pg_db.locked("numbers_data.rows"):
        killed = subprocess.Popen(cmd, env={**env, "SOURCES__NUMBERS__TAG": "v2"}, cwd=tmp_path,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        try:
            wait_for(pg_db.lock_waiters, 120, what="the step's load to wait on the table lock")
        finally:
            os.killpg(killed.pid, signal.SIGKILL)  # the run's whole process group
            killed.wait(timeout=30)
    time.sleep(0.5)
    assert tags(pg_db, "rows") in ({"v1": NUMBERS_ROWS}, {"v2": NUMBERS_ROWS})

    run(cmd, env={**env, "SOURCES__NUMBERS__TAG": "v3"}, cwd=tmp_path, timeout=180)
    assert tags(pg_db, "rows") == {"v3": NUMBERS_ROWS}
    assert tags(pg_db, "events") == {"v3": NUMBERS_ROWS}
    assert distinct_ids(pg_db, "rows") == distinct_ids(pg_db, "events") == NUMBERS_ROWS
    completed = pg_db.query(
        "SELECT a.tag, count(*) FROM numbers_data.audit a JOIN numbers_data._dlt_loads l "
        "ON l.load_id = a._dlt_load_id AND l.status = 0 GROUP BY a.tag"
    )
    assert dict(completed) == {"v1": NUMBERS_ROWS, "v3": NUMBERS_ROWS}
    # the killed run's working dir is left behind (with its package), nothing else
    left = list((numbers / "_data" / "dev" / "runs").glob("*/*"))
    assert [p.name for p in left] == ["numbers_pipeline"]
