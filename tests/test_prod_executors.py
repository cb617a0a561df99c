"""Executors and parallel runs: the example project's daily_refresh on Celery workers (Redis
broker, PostgreSQL run storage), and parallel runs of pipelines and profiles in separate
processes (locks, working dirs, data)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus
from helpers import REPO, copy_example, stop_group
from pg import (  # noqa: F401 - fixtures
    NUMBERS_ROWS,
    REPORT_ROWS,
    SHOP_ROWS,
    VENV_BIN,
    PgDatabase,
    PgServer,
    dagster_home,
    make_numbers_project,
    pg_db,
    pg_server,
    redis_url,
    run,
    runner_cmd,
    subprocess_env,
    wait_for,
)

RAW = ("customers", "orders", "products", "stores")
STEPS = {
    "dlt_pipeline_shop_pipeline",
    "dlt_pipeline_stores_pipeline",
    "dlt_transformation_customer_totals",
}


# --- Celery -----------------------------------------------------------------------------------


@pytest.fixture
def celery_broker(redis_url: str) -> Iterator[str]:  # noqa: F811
    """An empty Redis database for the broker and result backend; flushed afterwards."""
    import redis

    for db in random.sample(range(1, 16), 15):
        client = redis.Redis.from_url(f"{redis_url}/{db}")
        if client.dbsize() == 0:
            break
    else:
        pytest.fail(f"no empty Redis database on {redis_url} for the Celery broker")
    try:
        yield f"{redis_url}/{db}"
    finally:
        client.flushdb()
        client.close()


def _stop(proc: subprocess.Popen) -> None:
    """Stop a worker we started: its whole process group (celery forks pool processes)."""
    stop_group(proc, timeout=15)


def test_daily_refresh_on_celery_workers(
    tmp_path: Path, pg_server: PgServer, pg_db: PgDatabase, celery_broker: str  # noqa: F811
) -> None:
    """Two `dagster-celery` workers (separate processes) run the steps of daily_refresh from
    tests/celery_defs.py; the run, its events and the data are in PostgreSQL."""
    project_dir = copy_example(tmp_path / "shop")
    storage = pg_server.create_database("celery")
    home = dagster_home(tmp_path / "dagster_home", storage)
    config = tmp_path / "celery.yaml"
    # the same executor config the code location uses; acks_late + prefetch 1: a busy worker
    # reserves no second task, so parallel steps spread over the workers
    config.write_text(
        "execution:\n  config:\n"
        f"    broker: {celery_broker}\n    backend: {celery_broker}\n"
        "    config_source:\n      task_acks_late: true\n      worker_prefetch_multiplier: 1\n"
    )
    env = subprocess_env(
        DAGSTER_HOME=str(home),
        DLT_PROJECT_DIR=str(project_dir),
        WORKSPACE__PROFILE="prod",
        SHOP_PG_DSN=pg_db.dsn,
        DLTPLUS_CELERY_BROKER=celery_broker,
        DLTPLUS_CELERY_BACKEND=celery_broker,
        PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
    )
    workers: dict[str, subprocess.Popen] = {}
    logs = {name: tmp_path / f"{name}.log" for name in ("w1", "w2")}
    try:
        for name, log in logs.items():
            with open(log, "wb") as out:
                workers[name] = subprocess.Popen(
                    [os.path.join(VENV_BIN, "dagster-celery"), "worker", "start",
                     "-A", "dagster_celery.app", "-y", str(config), "-n", name,
                     "--", "--concurrency=1"],
                    env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )

        def ready() -> bool:
            for name, proc in workers.items():
                if proc.poll() is not None:
                    pytest.fail(f"celery worker {name} exited:\n{logs[name].read_text()[-4000:]}")
            return all(" ready." in log.read_text() for log in logs.values())

        wait_for(ready, 90, interval=0.3, what="both celery workers to be ready")
        run(
            [os.path.join(VENV_BIN, "dagster"), "job", "execute", "-f",
             str(REPO / "tests" / "celery_defs.py"), "-j", "daily_refresh"],
            env=env, cwd=tmp_path, timeout=240,
        )
    finally:
        for proc in workers.values():
            _stop(proc)
    worker_logs = {name: log.read_text() for name, log in logs.items()}

    assert pg_db.counts("shop_raw", RAW) == SHOP_ROWS
    assert pg_db.counts("shop_reports", ["customer_totals"]) == REPORT_ROWS

    instance = DagsterInstance.from_config(str(home))
    try:
        runs = instance.get_runs()
        assert len(runs) == 1 and runs[0].status == DagsterRunStatus.SUCCESS
        assert runs[0].job_name == "daily_refresh"
        records = instance.all_logs(runs[0].run_id)
        succeeded = {
            e.dagster_event.step_key
            for e in records
            if e.dagster_event and e.dagster_event.event_type == DagsterEventType.STEP_SUCCESS
        }
        assert succeeded == STEPS
        assert not [e for e in records if e.dagster_event and e.dagster_event.is_failure]
        # every step was executed by a celery worker; the two pipelines by different ones
        ran_on: dict[str, str] = {}
        for e in records:
            ev = e.dagster_event
            if ev and ev.event_type == DagsterEventType.ENGINE_EVENT and ev.step_key:
                meta = ev.engine_event_data.metadata if ev.engine_event_data else {}
                if "Celery worker" in meta:
                    ran_on[ev.step_key] = str(meta["Celery worker"].value)
        assert set(ran_on) == STEPS, ran_on
        assert {w.split("@")[0] for w in ran_on.values()} <= {"w1", "w2"}
        assert ran_on["dlt_pipeline_shop_pipeline"] != ran_on["dlt_pipeline_stores_pipeline"]
        materialized = instance.get_asset_keys()
        assert len(materialized) >= 5
    finally:
        instance.dispose()
    for name, text in worker_logs.items():
        assert "succeeded" in text, f"{name} ran no task:\n{text[-3000:]}"


# --- parallel runs of the runner ------------------------------------------------------------


@pytest.fixture
def numbers(tmp_path: Path, pg_db: PgDatabase) -> Path:  # noqa: F811
    return make_numbers_project(tmp_path / "numbers")


def _env(db: PgDatabase, **extra: str) -> dict[str, str]:
    env = subprocess_env(NUMBERS_PG_DSN=db.dsn, **extra)
    for knob in ("FAIL_AFTER", "TRANSIENT_FAILURES", "COUNTER_FILE", "SLEEP", "MARKER_FILE"):
        env.pop(f"SOURCES__NUMBERS__{knob}", None)
    return env


def _slow(project: Path, name: str, env: dict[str, str], marker: Path,
          profile: str = "dev", sleep: float = 0.2) -> subprocess.Popen:
    """A runner process whose source takes 10 * `sleep` s and writes `marker` when it starts."""
    return subprocess.Popen(
        runner_cmd(project, name, profile),
        env={**env, "SOURCES__NUMBERS__SLEEP": str(sleep),
             "SOURCES__NUMBERS__MARKER_FILE": str(marker)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def _loads(db: PgDatabase, schema: str) -> int:
    return db.query(f'SELECT count(*) FROM "{schema}"._dlt_loads WHERE status = 0')[0][0]


def _counts(db: PgDatabase, schema: str) -> dict[str, int]:
    return {t: db.query(f'SELECT count(*), count(DISTINCT id) FROM "{schema}"."{t}"')[0][0]
            for t in ("rows", "events")}


def test_same_pipeline_twice_at_once_is_refused(
    numbers: Path, pg_db: PgDatabase, tmp_path: Path  # noqa: F811
) -> None:
    env = _env(pg_db)
    marker = tmp_path / "first_started"
    first = _slow(numbers, "numbers_pipeline", env, marker, sleep=1.0)
    try:
        wait_for(marker.exists, 60, what="the first run to start extracting")
        # the runner in a second process, and the CLI in a third, both at once
        second = subprocess.Popen(runner_cmd(numbers, "numbers_pipeline"), env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        cli = subprocess.Popen(
            [os.path.join(VENV_BIN, "dltplus"), "--project", str(numbers), "pipeline",
             "numbers_pipeline", "run"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        second_code, _, second_err = _finish(second)
        cli_code, _, cli_err = _finish(cli)
        assert first.poll() is None, "the first run ended before the others tried"
    finally:
        code, out, err = _finish(first)
    assert second_code != 0
    assert "PipelineLocked" in second_err
    assert "pipeline 'numbers_pipeline' (profile dev) is already running" in second_err
    assert "lock_timeout" in second_err  # says how to wait instead
    # the CLI says the same in one line, no traceback
    assert cli_code == 1
    assert "is already running in another process" in cli_err
    assert "Traceback" not in cli_err
    assert code == 0, err[-3000:]
    assert "RESULT numbers_pipeline: loaded" in out
    assert _counts(pg_db, "numbers_data") == {"rows": NUMBERS_ROWS, "events": NUMBERS_ROWS}
    assert _loads(pg_db, "numbers_data") == 1  # the refused run loaded nothing


def test_same_pipeline_twice_with_lock_timeout_waits(
    numbers: Path, pg_db: PgDatabase, tmp_path: Path  # noqa: F811
) -> None:
    """Profile `patient` sets run_config.lock_timeout: the second run waits, then runs."""
    env = _env(pg_db)
    marker = tmp_path / "first_started"
    lock = numbers / "_data" / "patient" / "locks" / "numbers_pipeline.lock"
    first = _slow(numbers, "numbers_pipeline", env, marker, profile="patient", sleep=0.6)
    try:
        wait_for(marker.exists, 60, what="the first run to start extracting")
        second_log = tmp_path / "second.err"
        with open(second_log, "w") as err_file:
            second = subprocess.Popen(runner_cmd(numbers, "numbers_pipeline", "patient"),
                                      env={**env, "SOURCES__NUMBERS__TAG": "v2"},
                                      stdout=subprocess.PIPE, stderr=err_file, text=True)

        def second_waits_for_lock() -> bool:
            if first.poll() is not None:
                pytest.fail("the first run ended before the second reached the lock")
            return "waiting up to" in second_log.read_text()

        # the second run says it waits for the first run's lock while the first runs
        wait_for(second_waits_for_lock, 60, interval=0.05, what="the second run at the lock")
        assert lock.exists()
        assert second.poll() is None and first.poll() is None
        out2 = second.communicate(timeout=300)[0]
        code2, err2 = second.returncode, second_log.read_text()
    finally:
        code1, out1, err1 = _finish(first)
    assert code1 == 0, err1[-3000:]
    assert code2 == 0, err2[-3000:]
    assert "RESULT" in out1 and "RESULT" in out2
    assert _loads(pg_db, "numbers_data") == 2
    assert _counts(pg_db, "numbers_data") == {"rows": NUMBERS_ROWS, "events": NUMBERS_ROWS}
    # the waiting run went second: its rows replaced the first run's
    assert pg_db.query("SELECT DISTINCT tag FROM numbers_data.rows") == [("v2",)]


def _overlap(procs: list[subprocess.Popen], markers: list[Path]) -> None:
    """Wait until every process has started extracting while all of them still run."""
    def all_started() -> bool:
        done = [p for p in procs if p.poll() is not None]
        if done and not all(m.exists() for m in markers):
            pytest.fail("a run finished before the others started: they did not overlap")
        return all(m.exists() for m in markers)

    wait_for(all_started, 60, interval=0.05, what="all runs to be extracting at once")
    assert all(p.poll() is None for p in procs), "the runs did not overlap"


def _overlapping(procs: list[subprocess.Popen], markers: list[Path]) -> list[tuple[int, str, str]]:
    """`_overlap`, then (always) each process' exit code, stdout and stderr."""
    try:
        _overlap(procs, markers)
    finally:
        results = [_finish(p) for p in procs]
    return results


def test_two_pipelines_in_parallel_processes(
    numbers: Path, pg_db: PgDatabase, tmp_path: Path  # noqa: F811
) -> None:
    env = _env(pg_db)
    markers = [tmp_path / "a", tmp_path / "b"]
    procs = [_slow(numbers, "numbers_pipeline", env, markers[0], sleep=0.4),
             _slow(numbers, "copy_pipeline", env, markers[1], sleep=0.4)]
    results = _overlapping(procs, markers)
    for code, out, err in results:
        assert code == 0, err[-3000:]
    pipelines = numbers / "_data" / "dev" / "pipelines"
    assert sorted(p.name for p in pipelines.iterdir()) == ["copy_pipeline", "numbers_pipeline"]
    assert _counts(pg_db, "numbers_data") == {"rows": NUMBERS_ROWS, "events": NUMBERS_ROWS}
    assert _counts(pg_db, "numbers_copy") == {"rows": NUMBERS_ROWS, "events": NUMBERS_ROWS}


def test_two_profiles_in_parallel_never_share_data_dirs(
    numbers: Path, pg_db: PgDatabase, tmp_path: Path  # noqa: F811
) -> None:
    """The same pipeline under profiles dev and other at once: separate data dirs, separate
    locks (neither blocks the other), each loads its own dataset."""
    env = _env(pg_db)
    markers = [tmp_path / "dev", tmp_path / "other"]
    procs = [_slow(numbers, "numbers_pipeline", env, markers[0], profile="dev", sleep=0.4),
             _slow(numbers, "numbers_pipeline", env, markers[1], profile="other", sleep=0.4)]
    results = _overlapping(procs, markers)
    for code, out, err in results:
        assert code == 0, err[-3000:]
    data = numbers / "_data"
    assert sorted(p.name for p in data.iterdir()) == ["dev", "other"]
    for profile, dataset in (("dev", "numbers_data"), ("other", "numbers_other")):
        work = data / profile / "pipelines" / "numbers_pipeline"
        state = json.loads((work / "state.json").read_text())
        assert state["dataset_name"] == dataset
        assert (data / profile / "locks" / "numbers_pipeline.lock").exists()
        assert _counts(pg_db, dataset) == {"rows": NUMBERS_ROWS, "events": NUMBERS_ROWS}
        assert _loads(pg_db, dataset) == 1
    # each profile's working dir holds only its own load packages
    loaded = {
        profile: {p.name for p in (data / profile / "pipelines" / "numbers_pipeline" / "load"
                                   / "loaded").iterdir()}
        for profile in ("dev", "other")
    }
    assert len(loaded["dev"]) == len(loaded["other"]) == 1
    assert loaded["dev"].isdisjoint(loaded["other"])
    for profile, dataset in (("dev", "numbers_data"), ("other", "numbers_other")):
        ids = {r[0] for r in pg_db.query(f'SELECT load_id FROM "{dataset}"._dlt_loads')}
        assert ids == loaded[profile]


def test_dagster_run_of_a_running_pipeline_fails_clearly(
    numbers: Path, pg_db: PgDatabase, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """While another process runs a pipeline (its lock is held), a Dagster run of the same
    pipeline and profile fails at once with PipelineLocked in its event log; the data stay."""
    from dltplus_dagster import build_definitions
    from dltplus_dagster.project.project import load_project
    from dltplus_dagster.project.run_policies import pipeline_lock

    monkeypatch.setenv("NUMBERS_PG_DSN", pg_db.dsn)
    defs = build_definitions(str(numbers), profile="dev")
    job = defs.resolve_implicit_global_asset_job_def()
    keys = [AssetKey(["numbers_data", "rows"]), AssetKey(["numbers_data", "events"])]
    project = load_project(str(numbers), "dev")
    # flock locks belong to an open file: a second open in this process conflicts like
    # another process would
    with pipeline_lock(project, "numbers_pipeline"), DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, asset_selection=keys,
                                        raise_on_error=False)
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    chain = []
    while error is not None:
        chain.append((error.cls_name, error.message))
        error = error.cause or error.context
    assert ("PipelineLocked" in [c for c, _ in chain]), chain
    assert any("pipeline 'numbers_pipeline' (profile dev) is already running" in m
               for _, m in chain)
    assert "numbers_data" not in {r[0] for r in pg_db.query(
        "SELECT schema_name FROM information_schema.schemata")}

    with DagsterInstance.ephemeral() as instance:  # the lock is free again
        assert job.execute_in_process(instance=instance, asset_selection=keys).success
    assert _counts(pg_db, "numbers_data") == {"rows": NUMBERS_ROWS, "events": NUMBERS_ROWS}


def test_two_pipelines_into_one_fresh_dataset_at_once(
    numbers: Path, pg_db: PgDatabase  # noqa: F811
) -> None:
    """numbers_pipeline and twin_pipeline load into the same new dataset at the same moment
    (as shop_pipeline and stores_pipeline do in daily_refresh): both create the dataset and
    dlt's tables. The loser of that race retries its schema update (dlt: safe to retry)
    instead of failing the run."""
    env = _env(pg_db)
    start_at = str(time.time() + 6)  # after both processes have imported dlt
    procs = [
        subprocess.Popen(runner_cmd(numbers, name)[:-1] + [start_at], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("numbers_pipeline", "twin_pipeline")
    ]
    results = [_finish(p) for p in procs]
    for code, out, err in results:
        assert code == 0, err[-3000:]
    assert _counts(pg_db, "numbers_data") == {"rows": NUMBERS_ROWS, "events": NUMBERS_ROWS}
    assert pg_db.counts("numbers_data", ["twin_rows", "twin_events", "twin_audit", "audit"]) == {
        "twin_rows": NUMBERS_ROWS, "twin_events": NUMBERS_ROWS, "twin_audit": NUMBERS_ROWS,
        "audit": NUMBERS_ROWS,
    }
    assert _loads(pg_db, "numbers_data") == 2
