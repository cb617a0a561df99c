"""Partitioned pipelines and transformations: real Dagster materializations into DuckDB, the
runner and the CLI. The windows are Dagster's; a partition reaches the source; a re-run replaces
its partition's rows; a single-run backfill is one run and one load; partitions started together
all succeed; their dlt state stays apart from the unpartitioned pipeline's."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    DailyPartitionsDefinition,
    HourlyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    WeeklyPartitionsDefinition,
    materialize,
)
from helpers import clean_env
from partitions_support import BASE_YML, duckdb_rows, events_project

from dltplus_dagster import build_definitions
from dltplus_dagster.cli import main as cli_main
from dltplus_dagster.dagster.partitions import partitions_def
from dltplus_dagster.project.entities import EntityFactory
from dltplus_dagster.project.model import PartitionsSpec
from dltplus_dagster.project.partitions import PartitionError, first_window, window_for
from dltplus_dagster.project.project import load_project
from dltplus_dagster.project.runner import Runner

EVENTS = AssetKey(["raw", "daily_events"])
REGIONS = AssetKey(["geo", "region_rows"])
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def runner_for(project_dir: Path) -> Runner:
    project = load_project(str(project_dir), "dev")
    return Runner(project, EntityFactory(project))


def run_assets(project_dir: Path, inst: DagsterInstance, keys: list[AssetKey], **kwargs: Any) -> Any:
    defs = build_definitions(str(project_dir), "dev")
    return materialize(list(defs.assets or []), resources=defs.resources, instance=inst,
                       selection=keys, **kwargs)


def rows_by_day(project_dir: Path) -> dict[str, list[str]]:
    """day -> run tags of its rows."""
    out: dict[str, list[str]] = {}
    for day, tag in duckdb_rows(project_dir, "SELECT day, run_tag FROM raw.daily_events "
                                             "ORDER BY day, n"):
        out.setdefault(day, []).append(tag)
    return out


# --- windows ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "dagster_def", "keys"), [
    (PartitionsSpec(type="daily", start="2024-03-01"),
     DailyPartitionsDefinition(start_date="2024-03-01"), ["2024-03-01", "2024-03-31"]),
    (PartitionsSpec(type="hourly", start="2024-03-01", timezone="Europe/Berlin"),
     HourlyPartitionsDefinition(start_date="2024-03-01-00:00", timezone="Europe/Berlin"),
     ["2024-03-01-00:00", "2024-03-31-01:00", "2024-03-31-03:00"]),  # the DST switch
    (PartitionsSpec(type="weekly", start="2024-01-01"),
     WeeklyPartitionsDefinition(start_date="2024-01-01"), ["2024-01-07", "2024-02-25"]),
    (PartitionsSpec(type="monthly", start="2024-01-01", timezone="America/New_York"),
     MonthlyPartitionsDefinition(start_date="2024-01-01", timezone="America/New_York"),
     ["2024-01-01", "2024-11-01"]),
    (PartitionsSpec(type="daily", start="2024-03-01", fmt="%Y%m%d"),
     DailyPartitionsDefinition(start_date="20240301", fmt="%Y%m%d"), ["20240301", "20240302"]),
])
def test_windows_are_dagsters(spec: PartitionsSpec, dagster_def: Any, keys: list[str]) -> None:
    """The project layer computes the windows without Dagster: they are Dagster's, and so is
    the partitions definition built from the manifest block."""
    for key in keys:
        ours = window_for(spec, key)
        theirs = dagster_def.time_window_for_partition_key(key)
        assert (ours.start, ours.end) == (theirs.start, theirs.end), key
    built = partitions_def(spec, "p")
    assert built is not None
    assert built.get_first_partition_key() == dagster_def.get_first_partition_key()
    assert first_window(spec).key == dagster_def.get_first_partition_key()
    assert built.time_window_for_partition_key(keys[-1]) == dagster_def.time_window_for_partition_key(keys[-1])  # type: ignore[attr-defined]
    # a range runs from the start of its first window to the end of its last
    both = window_for(spec, keys[0], keys[-1])
    assert both.start == window_for(spec, keys[0]).start
    assert both.end == window_for(spec, keys[-1]).end


@pytest.mark.parametrize(("key", "message"), [
    ("2024-02-29", "is before the first one"),
    ("2024-04-01", "is past the end"),
    ("2024-3-5x", "is not a daily partition key"),
])
def test_keys_outside_the_partitions_are_refused(key: str, message: str) -> None:
    spec = PartitionsSpec(type="daily", start="2024-03-01", end="2024-04-01")
    with pytest.raises(PartitionError, match=message):
        window_for(spec, key)


def test_static_keys_and_placeholders() -> None:
    spec = PartitionsSpec(type="static", values=["eu", "us"])
    window = window_for(spec, "eu")
    assert window.values() == {"partition_key": "eu"}
    assert window.substitute({"a": ["x-{partition_key}", 1]}) == {"a": ["x-eu", 1]}
    with pytest.raises(PartitionError, match="'apac' is not one of the partitions: eu, us"):
        window_for(spec, "apac")
    with pytest.raises(PartitionError, match="one key at a time"):
        window_for(spec, "eu", "us")
    with pytest.raises(PartitionError, match="has no value for partition eu"):
        window.substitute("{partition_start}")


# --- Dagster ------------------------------------------------------------------------------------


def test_every_asset_gets_the_partitions_and_backfill_policy(tmp_path: Path) -> None:
    yml = BASE_YML.replace("      values: [eu, us, apac]",
                           "      values: [eu, us, apac]\n      backfill: per_partition")
    root = events_project(tmp_path, yml)
    defs = build_definitions(str(root), "dev")
    graph = defs.resolve_asset_graph()
    events = graph.get(EVENTS)
    assert isinstance(events.partitions_def, DailyPartitionsDefinition)
    assert events.partitions_def.get_first_partition_key() == "2024-03-01"
    assert events.partitions_def.get_last_partition_key() == "2024-03-31"
    assert events.backfill_policy is not None
    assert events.backfill_policy.max_partitions_per_run is None  # single run
    regions = graph.get(REGIONS)
    assert regions.partitions_def is not None
    assert regions.partitions_def.get_partition_keys() == ["eu", "us", "apac"]
    assert regions.backfill_policy is not None
    assert regions.backfill_policy.max_partitions_per_run == 1


def test_materialize_partition_passes_window_and_replaces_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window reaches the source; materializing a partition again replaces its rows
    (delete-insert on the merge key), other partitions keep theirs."""
    root = events_project(tmp_path)
    with DagsterInstance.ephemeral() as inst:
        monkeypatch.setenv("EVENTS_RUN_TAG", "first")
        for key in ("2024-03-02", "2024-03-03"):
            assert run_assets(root, inst, [EVENTS], partition_key=key).success
        monkeypatch.setenv("EVENTS_RUN_TAG", "again")
        result = run_assets(root, inst, [EVENTS], partition_key="2024-03-02")
        assert result.success
        assert rows_by_day(root) == {"2024-03-02": ["again", "again"],
                                     "2024-03-03": ["first", "first"]}
        mats = result.get_asset_materialization_events()
        assert [m.materialization.partition for m in mats] == ["2024-03-02"]
        assert inst.get_materialized_partitions(EVENTS) == {"2024-03-02", "2024-03-03"}
    # each partition's runs keep dlt state of their own, apart from the pipeline's
    names = {r[0] for r in duckdb_rows(root, "SELECT pipeline_name FROM raw._dlt_pipeline_state")}
    assert names == {"events__partition__2024-03-02", "events__partition__2024-03-03"}


def test_single_run_backfill_is_one_run_and_one_load(tmp_path: Path) -> None:
    root = events_project(tmp_path)
    with DagsterInstance.ephemeral() as inst:
        result = run_assets(root, inst, [EVENTS],
                            tags={RANGE_START: "2024-03-10", RANGE_END: "2024-03-16"})
        assert result.success
        assert len(inst.get_runs()) == 1
        assert inst.get_materialized_partitions(EVENTS) == {
            f"2024-03-{d}" for d in range(10, 17)}
    assert duckdb_rows(root, "SELECT COUNT(*) FROM raw._dlt_loads") == [(1,)]
    days = duckdb_rows(root, "SELECT day, COUNT(*) FROM raw.daily_events GROUP BY 1 ORDER BY 1")
    assert days == [(f"2024-03-{d}", 2) for d in range(10, 17)]


def test_static_and_dynamic_partitions_reach_source_config(tmp_path: Path) -> None:
    """`{partition_key}` in the source's own config; dynamic keys added at run time."""
    yml = BASE_YML + textwrap.dedent("""
      regions_live:
        source: regions
        destination: warehouse
        dataset_name: geo_live
        partitions:
          type: dynamic
    """).replace("\n", "\n  ")
    root = events_project(tmp_path, yml)
    live = AssetKey(["geo_live", "region_rows"])
    with DagsterInstance.ephemeral() as inst:
        for key in ("eu", "apac", "eu"):
            assert run_assets(root, inst, [REGIONS], partition_key=key).success
        inst.add_dynamic_partitions("regions_live", ["latam"])
        assert run_assets(root, inst, [live], partition_key="latam").success
    assert duckdb_rows(root, "SELECT region, value FROM geo.region_rows ORDER BY 1") == [
        ("apac", 4), ("eu", 2)]
    assert duckdb_rows(root, "SELECT region FROM geo_live.region_rows") == [("latam",)]


CONCURRENT_SCRIPT = """
import sys
from dagster import AssetKey, DagsterInstance, materialize
from dltplus_dagster import build_definitions

defs = build_definitions(sys.argv[1], "dev")
with DagsterInstance.ephemeral() as inst:
    result = materialize(list(defs.assets), resources=defs.resources, instance=inst,
                         selection=[AssetKey(["raw", "daily_events"])], partition_key=sys.argv[2],
                         raise_on_error=False)
print("SUCCESS" if result.success else "FAILED")
sys.exit(0 if result.success else 1)
"""


def test_partitions_started_together_all_succeed(tmp_path: Path) -> None:
    """Four partitions of one pipeline in four processes at once, into one DuckDB file: none
    fails on the pipeline lock (lock_timeout is 0) or the file; each loads its rows once."""
    root = events_project(tmp_path)
    build_definitions(str(root), "dev")  # the table list is cached before the runs start
    script = tmp_path / "run_partition.py"
    script.write_text(CONCURRENT_SCRIPT, encoding="utf-8")
    keys = ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07"]
    procs = [subprocess.Popen([sys.executable, str(script), str(root), key], env=clean_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for key in keys]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for key, proc, out in zip(keys, procs, outputs, strict=True):
        assert proc.returncode == 0, f"partition {key} failed:\n{out[-3000:]}"
    days = duckdb_rows(root, "SELECT day, COUNT(*) FROM raw.daily_events GROUP BY 1 ORDER BY 1")
    assert days == [(k, 2) for k in keys]
    assert duckdb_rows(root, "SELECT COUNT(*) FROM raw._dlt_loads") == [(4,)]
    assert not any(Path(root, "_data", "dev", "runs").glob("*/*"))  # run dirs cleaned up
    # the runs took turns on the file, so they merged through dlt's one staging dataset (a
    # server destination's partition stages in its own: tests/test_partitions_pg.py)
    schemas = {r[0] for r in duckdb_rows(root, "SELECT schema_name FROM "
                                               "information_schema.schemata")}
    assert "raw_staging" in schemas
    assert not [s for s in schemas if s.startswith("raw_staging_p")]


# --- runner and CLI -------------------------------------------------------------------------------


CURSOR_YML = """
sources:
  cursor_events:
    type: sources.events.cursor_events
    up_to: "2024-03-05"
destinations:
  warehouse:
    type: duckdb
pipelines:
  cursor:
    source: cursor_events
    destination: warehouse
    dataset_name: cursor_raw
    partitions:
      type: daily
      start: "2024-03-01"
      source_args:
        up_to: "{partition_key}"
"""


def test_partition_incremental_state_stays_apart(tmp_path: Path) -> None:
    """A partition run starts from its own incremental state, and leaves the unpartitioned
    pipeline's cursor where it was (locally and in the destination)."""
    root = events_project(tmp_path, CURSOR_YML)
    runner = runner_for(root)
    assert runner.run_pipeline("cursor").row_counts == {"cursor_days": 5}  # up to 03-05
    part = runner.run_pipeline("cursor", partition="2024-03-02")
    assert part.row_counts == {"cursor_days": 2}  # its own cursor: from the initial value
    assert part.pipeline_name == "cursor__partition__2024-03-02"
    # a fresh working dir restores the pipeline's state from the destination: its cursor
    fresh = runner.run_pipeline("cursor", pipelines_dir=str(tmp_path / "fresh"))
    assert fresh.row_counts == {}
    state = fresh.load_info.pipeline.state if fresh.load_info else {}  # type: ignore[union-attr]
    cursor = state["sources"]["cursor_events"]["resources"]["cursor_days"]["incremental"]["day"]
    assert cursor["last_value"] == "2024-03-05"


def test_runner_refuses_partitions_of_an_unpartitioned_pipeline(tmp_path: Path) -> None:
    root = events_project(tmp_path, BASE_YML.replace(
        "  regions:\n    source: regions", "  plain:\n    source: events\n    destination: "
        "warehouse\n    dataset_name: plain\n  regions:\n    source: regions"))
    with pytest.raises(PartitionError, match="pipeline 'plain' is not partitioned"):
        runner_for(root).run_pipeline("plain", partition="2024-03-01")


def test_a_source_with_partition_values_needs_a_partition(tmp_path: Path) -> None:
    """`{partition_key}` in the source's own config is never passed unfilled."""
    root = events_project(tmp_path)
    with pytest.raises(PartitionError, match="source 'regions' takes {partition_.*}.*--partition"):
        runner_for(root).run_pipeline("regions")
    assert runner_for(root).run_pipeline("regions", partition="us").row_counts == {
        "region_rows": 1}


def test_cli_partition_and_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = events_project(tmp_path)
    base = ["--project", str(root), "pipeline", "events", "run"]
    assert cli_main([*base, "--partition", "2024-03-01"]) == 0
    assert cli_main([*base, "--partition-range", "2024-03-05...2024-03-07"]) == 0
    out = capsys.readouterr().out
    assert "events__partition__2024-03-05__2024-03-07: loaded daily_events=6" in out
    days = duckdb_rows(root, "SELECT day, COUNT(*) FROM raw.daily_events GROUP BY 1 ORDER BY 1")
    assert days == [("2024-03-01", 2), ("2024-03-05", 2), ("2024-03-06", 2), ("2024-03-07", 2)]
    assert duckdb_rows(root, "SELECT COUNT(*) FROM raw._dlt_loads") == [(2,)]
    assert cli_main([*base, "--partition", "2024-04-02"]) != 0
    assert "partition '2024-04-02' is past the end (2024-04-01)" in capsys.readouterr().err
    assert cli_main([*base, "--partition-range", "2024-03-01"]) != 0
    out, err = capsys.readouterr()
    assert "'2024-03-01' is not a partition range: write FIRST...LAST" in err
    assert "Running" not in out
    assert duckdb_rows(root, "SELECT COUNT(*) FROM raw._dlt_loads") == [(2,)]  # nothing ran


def test_cli_subprocess_partition(tmp_path: Path) -> None:
    """The console script, as a user types it."""
    root = events_project(tmp_path)
    dltplus = Path(sys.executable).parent / "dltplus"
    proc = subprocess.run(
        [str(dltplus), "pipeline", "events", "run", "--partition", "2024-03-09"],
        cwd=root, env=clean_env(), capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert duckdb_rows(root, "SELECT DISTINCT day FROM raw.daily_events") == [("2024-03-09",)]


# --- transformations ------------------------------------------------------------------------------


TRANSFORM_YML = BASE_YML + """
transformations:
  daily_counts:
    inputs: [raw]
    output: reports
    write_disposition: append
    depends_on: [raw/daily_events]
    sql:
      day_counts: >
        SELECT day, COUNT(*) AS n, '{partition_key}' AS part FROM daily_events
        WHERE day >= substr('{partition_start}', 1, 10) AND day < substr('{partition_end}', 1, 10)
        GROUP BY day
    partitions:
      type: daily
      start: "2024-03-01"
      end: "2024-04-01"
  daily_py:
    inputs: [raw]
    output: reports
    write_disposition: append
    function: windows.window_rows
    tables: [windows]
    partitions:
      type: daily
      start: "2024-03-01"
      end: "2024-04-01"
"""

WINDOWS_PY = '''
def window_rows(raw, partition):
    """One row naming the window it was given."""
    yield "windows", [{"key": partition.key, "start": partition.start.isoformat(),
                       "end": partition.end.isoformat()}]
'''


def test_partitioned_transformation_gets_the_window(tmp_path: Path) -> None:
    root = events_project(tmp_path, TRANSFORM_YML, {"transformations/windows.py": WINDOWS_PY})
    counts, windows = AssetKey(["reports", "day_counts"]), AssetKey(["reports", "windows"])
    with DagsterInstance.ephemeral() as inst:
        assert run_assets(root, inst, [EVENTS], tags={RANGE_START: "2024-03-01",
                                                      RANGE_END: "2024-03-03"}).success
        result = run_assets(root, inst, [counts, windows], partition_key="2024-03-02")
        assert result.success
        assert inst.get_materialized_partitions(counts) == {"2024-03-02"}
    assert duckdb_rows(root, "SELECT day, n, part FROM reports.day_counts") == [
        ("2024-03-02", 2, "2024-03-02")]
    # dlt stores the ISO texts as timestamps
    assert duckdb_rows(root, 'SELECT key, epoch(start), epoch("end") FROM reports.windows') == [
        ("2024-03-02", 1709337600.0, 1709424000.0)]
    graph = build_definitions(str(root), "dev").resolve_asset_graph()
    assert isinstance(graph.get(counts).partitions_def, DailyPartitionsDefinition)
    assert graph.get(counts).parent_keys == {EVENTS}  # partition to partition
    assert graph.get_parent_partition_keys_for_child(
        "2024-03-02", EVENTS, counts).partitions_subset.get_partition_keys() == ["2024-03-02"]


def test_transformation_cli_partition(tmp_path: Path) -> None:
    root = events_project(tmp_path, TRANSFORM_YML, {"transformations/windows.py": WINDOWS_PY})
    assert cli_main(["--project", str(root), "pipeline", "events", "run",
                     "--partition-range", "2024-03-01...2024-03-04"]) == 0
    assert cli_main(["--project", str(root), "transformation", "daily_counts", "run",
                     "--partition-range", "2024-03-02...2024-03-03"]) == 0
    assert duckdb_rows(root, "SELECT day, n FROM reports.day_counts ORDER BY day") == [
        ("2024-03-02", 2), ("2024-03-03", 2)]


def test_validate_accepts_the_partitioned_project(tmp_path: Path) -> None:
    root = events_project(tmp_path, TRANSFORM_YML, {"transformations/windows.py": WINDOWS_PY})
    env = clean_env()
    dltplus = Path(sys.executable).parent / "dltplus"
    proc = subprocess.run([str(dltplus), "project", "--project", str(root), "validate"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert os.path.exists(root / ".dlt" / ".dltplus_state.json")  # tables listed, nothing run
    assert not (root / "_data" / "dev" / "local" / "warehouse.duckdb").exists()


def test_schedule_of_a_partitioned_pipeline_runs_the_latest_window(
    tmp_path: Path, instance: DagsterInstance
) -> None:
    import datetime as dt

    from dagster import build_schedule_context

    yml = BASE_YML.replace("    dataset_name: raw\n",
                           "    dataset_name: raw\n    schedule: \"0 6 * * *\"\n", 1)
    defs = build_definitions(str(events_project(tmp_path, yml)), "dev")
    schedule = defs.resolve_schedule_def("events_schedule")
    assert schedule.cron_schedule == "0 6 * * *"
    tick = dt.datetime(2024, 3, 10, 6, tzinfo=dt.UTC)
    with build_schedule_context(instance=instance, scheduled_execution_time=tick,
                                repository_def=defs.get_repository_def()) as context:
        result = schedule.evaluate_tick(context)
    assert [r.partition_key for r in result.run_requests or []] == ["2024-03-09"]


def test_a_project_job_of_a_partitioned_pipeline_is_scheduled_by_window(
    tmp_path: Path, instance: DagsterInstance
) -> None:
    """A `dagster.jobs` entry over a partitioned pipeline is a partitioned job, and a
    `dagster.schedules` entry on it runs the latest complete window (a plain cron schedule
    would start the job with no partition and fail every tick)."""
    import datetime as dt

    from dagster import build_schedule_context

    yml = BASE_YML + (
        "dagster:\n  jobs:\n    daily_events: {pipelines: [events]}\n"
        "  schedules:\n    morning: {job: daily_events, cron: \"0 6 * * *\"}\n"
    )
    defs = build_definitions(str(events_project(tmp_path, yml)), "dev")
    job = defs.resolve_job_def("daily_events")
    assert job.partitions_def is not None
    schedule = defs.resolve_schedule_def("morning")
    tick = dt.datetime(2024, 3, 10, 6, tzinfo=dt.UTC)
    with build_schedule_context(instance=instance, scheduled_execution_time=tick,
                                repository_def=defs.get_repository_def()) as context:
        result = schedule.evaluate_tick(context)
    assert [r.partition_key for r in result.run_requests or []] == ["2024-03-09"]


def test_static_keys_nobody_would_choose(tmp_path: Path) -> None:
    """Keys with a slash, unicode and a space, and two that a slug maps alike (`eu/west`,
    `eu_west`): each loads its own row under a dlt pipeline name of its own."""
    keys = ["eu/west", "eu_west", "ünï code"]
    yml = BASE_YML.replace("values: [eu, us, apac]", f"values: {keys!r}")
    project = events_project(tmp_path, yml)
    defs = build_definitions(str(project), "dev")
    with DagsterInstance.ephemeral() as inst:
        for key in keys:
            assert materialize(list(defs.assets or []), resources=defs.resources, instance=inst,
                               selection=[AssetKey(["geo", "region_rows"])],
                               partition_key=key).success
    assert duckdb_rows(project, "SELECT region, value FROM geo.region_rows ORDER BY 1") == [
        (k, len(k)) for k in sorted(keys)
    ]
    names = duckdb_rows(project, "SELECT pipeline_name FROM geo._dlt_pipeline_state")
    assert len({n for (n,) in names}) == 3
