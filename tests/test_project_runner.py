"""Runner: run_pipeline options, RunResult, retry policies, locks and transformations."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.pipeline.exceptions import PipelineStepFailed
from helpers import ITEMS_SOURCE, make_project

from dltplus_dagster import current
from dltplus_dagster.project.errors import (
    EntityNotFound,
    PipelineLocked,
    ProjectError,
)
from dltplus_dagster.project.run_policies import pipeline_lock
from dltplus_dagster.project.runner import RunResult

FLAKY_SOURCE = '''
import os

import dlt


def _bump(path):
    n = int(open(path).read()) if os.path.exists(path) else 0
    with open(path, "w") as f:
        f.write(str(n + 1))
    return n


@dlt.source
def flaky(counter_file: str = dlt.config.value, fail_times: int = 0):
    """Fails `fail_times` times in extract (counted in `counter_file`), then yields 2 rows."""

    @dlt.resource(write_disposition="append")
    def rows():
        n = _bump(counter_file)
        if n < fail_times:
            raise RuntimeError(f"transient failure {n + 1}")
        yield [{"id": 1}, {"id": 2}]

    return rows


@dlt.source
def needs_secret(counter_file: str = dlt.config.value):
    """Counts calls; its resource needs a secret that is never set (a terminal error)."""
    _bump(counter_file)

    @dlt.resource
    def guarded(token: str = dlt.secrets.value):
        yield {"token_len": len(token)}

    return guarded


@dlt.source
def lazy_secret(counter_file: str = dlt.config.value):
    """The secret is looked up inside extract: dlt wraps the terminal error in the step failure."""

    @dlt.resource
    def lazily():
        _bump(counter_file)
        yield {"token": dlt.secrets["sources.lazy_secret.never_set_token"]}

    return lazily


@dlt.source
def broken_call(counter_file: str = dlt.config.value):
    """Fails while the source is created (before any pipeline step)."""
    _bump(counter_file)
    raise ValueError("cannot build the source")
'''

RUNNER_YML = """
project:
  name: runner_demo
sources:
  items: {n_items: 10, api_key: k}
  flaky_extract:
    type: flaky.flaky
    counter_file: "{project_dir}/counter_extract.txt"
    fail_times: 2
  missing_secret:
    type: flaky.needs_secret
    counter_file: "{project_dir}/counter_secret.txt"
  lazy_secret:
    type: flaky.lazy_secret
    counter_file: "{project_dir}/counter_lazy.txt"
  broken_call:
    type: flaky.broken_call
    counter_file: "{project_dir}/counter_broken.txt"
  no_counter:
    type: flaky.needs_secret      # counter_file is not configured anywhere
destinations:
  wh: {type: duckdb}
datasets:
  raw: {destination: [wh]}
pipelines:
  items_pipe:
    source: items
    destination: wh
    dataset_name: raw
  selected:
    source: items
    destination: wh
    dataset_name: selected_ds
    resources: [events]
    table_names: {events: renamed_events}
    write_disposition: replace
  implicit_source:
    source: items.items
    destination: duckdb
    dataset_name: implicit_ds
  no_source:
    destination: wh
    dataset_name: raw
  retry_extract:
    source: flaky_extract
    destination: wh
    dataset_name: flaky_ds
    run_config:
      retry_policy: {type: fixed, max_attempts: 3}
      retry_pipeline_steps: [extract]
  retry_default_steps:
    source: flaky_extract
    destination: wh
    dataset_name: flaky_ds
    run_config:
      retry_policy: {type: fixed, max_attempts: 3}
  retry_none:
    source: flaky_extract
    destination: wh
    dataset_name: flaky_ds
    run_config:
      retry_policy: {type: none, max_attempts: 5}
      retry_pipeline_steps: [extract]
  retry_too_few:
    source: flaky_extract
    destination: wh
    dataset_name: flaky_ds
    run_config:
      retry_policy: {type: fixed, max_attempts: 2}
      retry_pipeline_steps: [extract]
  retry_backoff:
    source: flaky_extract
    destination: wh
    dataset_name: flaky_ds
    run_config:
      retry_policy: {type: backoff, max_attempts: 4, multiplier: 0.01, min: 0, max: 0.05}
      retry_pipeline_steps: [extract, normalize, load]
  terminal_config:
    source: missing_secret
    destination: wh
    dataset_name: flaky_ds
    run_config:
      retry_policy: {type: fixed, max_attempts: 3}
      retry_pipeline_steps: [extract, normalize, load]
  terminal_in_extract:
    source: lazy_secret
    destination: wh
    dataset_name: flaky_ds
    run_config:
      retry_policy: {type: fixed, max_attempts: 3}
      retry_pipeline_steps: [extract, normalize, load]
  terminal_source_config:
    source: no_counter
    destination: wh
    dataset_name: flaky_ds
    run_config:
      retry_policy: {type: fixed, max_attempts: 3}
      retry_pipeline_steps: [sync, extract, normalize, load]
  source_call_fails:
    source: broken_call
    destination: wh
    dataset_name: flaky_ds
    run_config:
      retry_policy: {type: fixed, max_attempts: 3}
  clean_folder:
    source: items
    destination: wh
    dataset_name: clean_ds
    run_config:
      run_from_clean_folder: true
transformations:
  py_totals:
    function: reports.totals
    inputs: [raw]
    output: reports
  py_pairs:
    function: reports.pairs
    inputs: [raw, selected_ds]
    output: reports
  sql_summary:
    sql:
      item_summary: "SELECT count(*) AS n_items, max(id) AS max_id FROM item_rows"
      event_kinds: "SELECT kind, count(*) AS n FROM events GROUP BY kind"
    inputs: [raw]
    output: reports
    write_disposition: append
  bad_return:
    function: reports.bad
    inputs: [raw]
    output: reports
  no_output:
    function: reports.totals
    inputs: [raw]
"""

REPORTS = '''
import pandas as pd


def totals(raw):
    """One input dataset in, {table: data} out."""
    df = raw.item_rows.df()
    return {
        "item_totals": pd.DataFrame({"n": [len(df)], "id_sum": [int(df["id"].sum())]}),
        "copied_ids": [{"id": int(i)} for i in df["id"]],
    }


def pairs(raw, selected):
    """Two inputs, in `inputs` order; yields (table, data) pairs."""
    yield "from_raw", [{"n": len(raw.item_rows.df())}]
    yield "from_selected", raw.arrow("events").slice(0, 1)
    yield "selected_tables", [{"name": t} for t in selected.tables]


def bad(raw):
    return 42
'''


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_project(
        tmp_path,
        RUNNER_YML,
        {
            "sources/items.py": ITEMS_SOURCE,
            "sources/flaky.py": FLAKY_SOURCE,
            "transformations/reports.py": REPORTS,
        },
    )
    monkeypatch.chdir(root)
    return root


def _counter(root: Path, name: str) -> int:
    path = root / f"counter_{name}.txt"
    return int(path.read_text()) if path.exists() else 0


# --- run_pipeline ---------------------------------------------------------------------------


def test_run_pipeline_result(root: Path) -> None:
    result = current.runner().run_pipeline("items_pipe")
    assert isinstance(result, RunResult)
    assert result.pipeline_name == "items_pipe"
    assert result.dataset_name == "raw"
    assert result.destination_name == "wh" and result.destination_type == "duckdb"
    assert result.row_counts == {"item_rows": 10, "events": 10}
    assert result.elapsed > 0
    assert result.attempts == 1
    assert result.load_info is not None and not result.load_info.has_failed_jobs
    assert len(result.load_ids) == 1
    assert result.schema_name == "items"
    assert set(result.tables) == {"item_rows", "events"}
    assert "id" in result.tables["item_rows"]["columns"]
    text = str(result)
    assert text.startswith("items_pipe: loaded ") and " into raw@wh in " in text
    assert "item_rows=10" in text and "events=10" in text and "(1 attempt(s))" in text
    assert current.catalog().dataset("raw").row_counts() == {"item_rows": 10, "events": 10}


def test_run_pipeline_limit(root: Path) -> None:
    result = current.runner().run_pipeline("items_pipe", limit=3)
    # events yields one item per call, item_rows one page of 10
    assert result.row_counts == {"item_rows": 10, "events": 3}


def test_run_pipeline_resources(root: Path) -> None:
    result = current.runner().run_pipeline("items_pipe", resources=["events"])
    assert result.row_counts == {"events": 10}
    assert current.catalog().dataset("raw").tables == ["events"]
    with pytest.raises(ProjectError) as exc:
        current.runner().run_pipeline("items_pipe", resources=["nope"])
    assert "nope" in str(exc.value) and "item_rows" in str(exc.value)


def test_run_pipeline_write_disposition_and_refresh(root: Path) -> None:
    runner = current.runner()
    runner.run_pipeline("items_pipe")
    runner.run_pipeline("items_pipe", write_disposition="append")
    ds = current.catalog().dataset("raw")
    assert ds.row_counts() == {"item_rows": 20, "events": 20}
    runner.run_pipeline("items_pipe")  # the resources' own dispositions again
    ds.refresh()
    assert ds.row_counts() == {"item_rows": 10, "events": 30}
    runner.run_pipeline("items_pipe", refresh="drop_sources")
    ds.refresh()
    assert ds.row_counts() == {"item_rows": 10, "events": 10}


def test_manifest_resources_table_names_and_disposition(root: Path) -> None:
    runner = current.runner()
    result = runner.run_pipeline("selected")
    assert result.row_counts == {"renamed_events": 10}
    runner.run_pipeline("selected")  # write_disposition: replace from the manifest
    assert current.catalog().dataset("selected_ds").row_counts() == {"renamed_events": 10}


def test_implicit_dotted_source_runs(root: Path) -> None:
    result = current.runner().run_pipeline("implicit_source")
    assert result.row_counts == {"item_rows": 10, "events": 10}
    assert current.catalog().dataset("implicit_ds").row_counts()["item_rows"] == 10


def test_source_args(root: Path) -> None:
    result = current.runner().run_pipeline("items_pipe", source_args={"n_items": 2})
    assert result.row_counts == {"item_rows": 2, "events": 2}


def test_pipeline_errors(root: Path) -> None:
    runner = current.runner()
    # the gate's error: the same words `dltplus project validate` prints
    with pytest.raises(ProjectError, match="pipelines.no_source: source is not set"):
        runner.run_pipeline("no_source")
    with pytest.raises(EntityNotFound, match="pipeline 'ghost'"):
        runner.run_pipeline("ghost")


def test_pipelines_dir_override(root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run_1"
    current.runner().run_pipeline("items_pipe", pipelines_dir=str(run_dir))
    assert (run_dir / "items_pipe").is_dir()
    assert not (root / "_data" / "dev" / "pipelines" / "items_pipe").exists()


def test_run_from_clean_folder(root: Path) -> None:
    runner = current.runner()
    runner.run_pipeline("clean_folder")
    working_dir = root / "_data" / "dev" / "pipelines" / "clean_folder"
    marker = working_dir / "marker.txt"
    marker.write_text("left behind")
    result = runner.run_pipeline("clean_folder")
    assert not marker.exists()
    assert result.row_counts == {"item_rows": 10, "events": 10}
    assert current.catalog().dataset("clean_ds").row_counts() == {"item_rows": 10, "events": 20}

    runner.run_pipeline("items_pipe")
    keep = root / "_data" / "dev" / "pipelines" / "items_pipe" / "marker.txt"
    keep.write_text("kept")
    runner.run_pipeline("items_pipe")
    assert keep.exists()


def test_pipeline_lock(root: Path) -> None:
    project = current.project()
    with pipeline_lock(project, "items_pipe"), pytest.raises(PipelineLocked) as exc:
        current.runner().run_pipeline("items_pipe")
    assert "already running" in str(exc.value) and "lock_timeout" in str(exc.value)
    assert current.runner().run_pipeline("items_pipe").row_counts["item_rows"] == 10


# --- retries --------------------------------------------------------------------------------


def test_transient_extract_failure_retried(root: Path) -> None:
    result = current.runner().run_pipeline("retry_extract")
    assert result.attempts == 3
    assert _counter(root, "extract") == 3
    assert result.row_counts == {"rows": 2}
    assert current.catalog().dataset("flaky_ds").row_counts() == {"rows": 2}


def test_extract_failure_not_retried_by_default(root: Path) -> None:
    with pytest.raises(PipelineStepFailed) as exc:
        current.runner().run_pipeline("retry_default_steps")  # retry_pipeline_steps: [load]
    assert exc.value.step == "extract"
    assert "transient failure 1" in str(exc.value)
    assert _counter(root, "extract") == 1


def test_retry_policy_none(root: Path) -> None:
    with pytest.raises(PipelineStepFailed):
        current.runner().run_pipeline("retry_none")
    assert _counter(root, "extract") == 1


def test_retry_gives_up_after_max_attempts(root: Path) -> None:
    with pytest.raises(PipelineStepFailed) as exc:
        current.runner().run_pipeline("retry_too_few")
    assert "transient failure 2" in str(exc.value)
    assert _counter(root, "extract") == 2
    # the next run picks up where it is: the third attempt succeeds
    assert current.runner().run_pipeline("retry_too_few").row_counts == {"rows": 2}


def test_backoff_policy(root: Path) -> None:
    result = current.runner().run_pipeline("retry_backoff")
    assert result.attempts == 3 and _counter(root, "extract") == 3


def test_missing_config_is_terminal(root: Path) -> None:
    # the resource's secret is injected in extract: dlt wraps the error in the step failure
    with pytest.raises(PipelineStepFailed) as exc:
        current.runner().run_pipeline("terminal_config")
    assert exc.value.step == "extract"
    assert "token" in str(exc.value)
    assert _counter(root, "secret") == 1  # the source was built once: no retry


def test_missing_source_config_is_terminal(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ConfigFieldMissingException) as exc:
        current.runner().run_pipeline("terminal_source_config")
    assert "counter_file" in str(exc.value)
    assert "retrying" not in caplog.text


def test_missing_config_inside_extract_is_terminal(root: Path) -> None:
    with pytest.raises(PipelineStepFailed) as exc:
        current.runner().run_pipeline("terminal_in_extract")
    assert "never_set_token" in str(exc.value)
    assert _counter(root, "lazy") == 1


def test_source_creation_error_not_retried_outside_the_steps(root: Path) -> None:
    with pytest.raises(ValueError, match="cannot build the source"):
        current.runner().run_pipeline("source_call_fails")  # steps: [load]
    assert _counter(root, "broken") == 1


# --- transformations ------------------------------------------------------------------------


def test_python_transformation(root: Path) -> None:
    runner = current.runner()
    runner.run_pipeline("items_pipe")
    written = runner.run_transformation("py_totals")
    assert dict(written) == {"item_totals": 1, "copied_ids": 10}
    reports = current.catalog().dataset("reports")
    assert reports.item_totals.df()[["n", "id_sum"]].to_dict("records") == [
        {"n": 10, "id_sum": 45}
    ]
    # write_disposition defaults to replace: running again does not duplicate
    runner.run_transformation("py_totals")
    reports.refresh()
    assert reports.row_counts() == {"item_totals": 1, "copied_ids": 10}


def test_python_transformation_two_inputs_yielding_pairs(root: Path) -> None:
    runner = current.runner()
    runner.run_pipeline("items_pipe")
    runner.run_pipeline("selected")
    written = runner.run_transformation("py_pairs")
    assert dict(written) == {"from_raw": 1, "from_selected": 1, "selected_tables": 1}
    reports = current.catalog().dataset("reports")
    assert reports.df("selected_tables")["name"].tolist() == ["renamed_events"]


def test_sql_transformation(root: Path) -> None:
    runner = current.runner()
    runner.run_pipeline("items_pipe")
    written = runner.run_transformation("sql_summary")
    assert dict(written) == {"item_summary": 1, "event_kinds": 1}
    reports = current.catalog().dataset("reports")
    assert reports.df("item_summary")[["n_items", "max_id"]].to_dict("records") == [
        {"n_items": 10, "max_id": 9}
    ]
    assert reports.df("event_kinds")[["kind", "n"]].to_dict("records") == [{"kind": "e", "n": 10}]
    runner.run_transformation("sql_summary")  # write_disposition: append
    reports.refresh()
    assert reports.row_counts() == {"item_summary": 2, "event_kinds": 2}


def test_transformation_errors(root: Path) -> None:
    runner = current.runner()
    runner.run_pipeline("items_pipe")
    with pytest.raises(ProjectError, match="must return a mapping"):
        runner.run_transformation("bad_return")
    with pytest.raises(ProjectError, match="transformations.no_output.output: output dataset is not set"):
        runner.run_transformation("no_output")
    with pytest.raises(EntityNotFound, match="transformation 'ghost'"):
        runner.run_transformation("ghost")


def test_transformation_writes_into_profile_data(root: Path) -> None:
    runner = current.runner()
    runner.run_pipeline("items_pipe")
    runner.run_transformation("py_totals")
    assert os.path.isfile(root / "_data" / "dev" / "local" / "wh.duckdb")
    tests_catalog = current.catalog(str(root), "tests")
    assert tests_catalog.dataset("reports").row_counts() == {}


# --- dlt settings the project sets -------------------------------------------------------------


def _extracted_files(pipeline_name: str) -> list[Path]:
    pipeline = current.entities().get_pipeline(pipeline_name)
    pipeline.extract(current.entities().get_source("items"))
    (load_id,) = pipeline.list_extracted_load_packages()
    package = pipeline.get_load_package_info(load_id)
    files = [Path(job.file_path) for jobs in package.jobs.values() for job in jobs]
    assert files
    return files


def test_extract_files_are_not_gzipped_unless_configured(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Extract's files are read back by normalize in the same run: the project writes them
    uncompressed; `sources.data_writer.disable_compression=false` brings dlt's gzip back."""
    gzip_magic = b"\x1f\x8b"
    assert all(not p.read_bytes().startswith(gzip_magic) for p in _extracted_files("items_pipe"))
    monkeypatch.setenv("SOURCES__DATA_WRITER__DISABLE_COMPRESSION", "false")
    assert all(p.read_bytes().startswith(gzip_magic) for p in _extracted_files("selected"))


def _loaded_files(pipeline_name: str) -> list[Path]:
    pipeline = current.entities().get_pipeline(pipeline_name)
    (load_id,) = pipeline.list_completed_load_packages()
    package = pipeline.get_load_package_info(load_id)
    files = [Path(job.file_path) for job in package.jobs["completed_jobs"]]
    assert files
    return files


def test_local_duckdb_load_files_are_not_compressed_unless_configured(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the local DuckDB reads a run's load files, once: they are written uncompressed;
    a user's own setting (here the env var) wins, and other destinations keep dlt's default."""
    from dltplus_dagster.project.local_files import local_file_config

    gzip_magic = b"\x1f\x8b"
    current.runner().run_pipeline("items_pipe")
    assert all(not p.read_bytes().startswith(gzip_magic) for p in _loaded_files("items_pipe"))
    assert local_file_config("duckdb", "items_pipe") == {
        "items_pipe.data_writer.compression": "none",
        "items_pipe.normalize.data_writer.disable_compression": True,
    }
    assert local_file_config("postgres", "items_pipe") == {}

    monkeypatch.setenv("NORMALIZE__DATA_WRITER__DISABLE_COMPRESSION", "false")
    monkeypatch.setenv("ITEMS_PIPE__DATA_WRITER__COMPRESSION", "zstd")
    assert local_file_config("duckdb", "items_pipe") == {}
    current.runner().run_pipeline("selected")
    assert all(p.read_bytes().startswith(gzip_magic) for p in _loaded_files("selected"))
