"""Pipeline runs into DuckDB load with `preserve_insertion_order=false` in dlt's load session
(`project/duckdb_load.py`), into the same database file as before; a project's own setting wins."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from helpers import ITEMS_SOURCE, make_project

from dltplus_dagster import current
from dltplus_dagster.project.duckdb_load import destination_with_load_settings

YML = """
project:
  name: duckdb_load
sources:
  items: {n_items: 25, api_key: k}
destinations:
  warehouse: {type: duckdb}
  filed:
    type: duckdb
    credentials: "{project_dir}/filed.duckdb"
  tuned:
    type: duckdb
    credentials:
      database: "{project_dir}/tuned.duckdb"
      local_config: {threads: 1}
  ordered:
    type: duckdb
    credentials:
      local_config: {preserve_insertion_order: true}
  ordered_globally:
    type: duckdb
    credentials:
      global_config: {preserve_insertion_order: true}
  broken:
    type: duckdb
    credentials: {read_only: maybe}
  pg:
    type: postgres
    credentials: postgresql://nobody@127.0.0.1:1/none
pipelines:
  to_default: {source: items, destination: warehouse, dataset_name: raw}
  to_file: {source: items, destination: filed, dataset_name: raw}
  to_tuned: {source: items, destination: tuned, dataset_name: raw}
  to_ordered: {source: items, destination: ordered, dataset_name: raw}
  to_ordered_globally: {source: items, destination: ordered_globally, dataset_name: raw}
  to_pg: {source: items, destination: pg, dataset_name: raw}
  to_broken: {source: items, destination: broken, dataset_name: raw}
"""


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_project(tmp_path, YML, {"sources/items.py": ITEMS_SOURCE})
    monkeypatch.chdir(root)
    return root


def _credentials(pipeline_name: str, **overrides: object) -> object:
    pipeline = current.entities().get_pipeline(pipeline_name, **overrides)
    return pipeline.destination_client().config.credentials


@pytest.mark.parametrize("pipeline_name", ["to_default", "to_file", "to_tuned"])
def test_load_destination_keeps_the_database_and_adds_the_session_setting(
    root: Path, pipeline_name: str
) -> None:
    before = _credentials(pipeline_name)
    destination = destination_with_load_settings(current.entities().get_pipeline(pipeline_name))
    assert destination is not None
    after = _credentials(pipeline_name, destination=destination)
    assert after.database == before.database
    assert after.local_config == {
        "preserve_insertion_order": False, **(before.local_config or {})
    }
    assert destination.destination_name == current.entities().get_pipeline(
        pipeline_name).destination.destination_name


def test_env_var_credentials_are_kept(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials from a higher-precedence provider (here an env var holding a path) are the
    ones the load destination carries."""
    target = root / "from_env.duckdb"
    monkeypatch.setenv("DESTINATION__WAREHOUSE__CREDENTIALS", str(target))
    destination = destination_with_load_settings(current.entities().get_pipeline("to_default"))
    assert destination is not None
    assert _credentials("to_default", destination=destination).database == str(target)


@pytest.mark.parametrize("pipeline_name", ["to_ordered", "to_ordered_globally", "to_pg"])
def test_project_setting_or_other_destination_is_left_alone(
    root: Path, pipeline_name: str
) -> None:
    assert destination_with_load_settings(current.entities().get_pipeline(pipeline_name)) is None


def test_runs_load_into_the_configured_file_with_the_setting(root: Path) -> None:
    result = current.runner().run_pipeline("to_file")
    assert result.row_counts == {"item_rows": 25, "events": 25}
    used = result.load_info.pipeline.destination_client().config.credentials
    assert used.local_config == {"preserve_insertion_order": False}
    with duckdb.connect(str(root / "filed.duckdb"), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM raw.item_rows").fetchone() == (25,)
        assert con.sql("SELECT count(*) FROM raw.events").fetchone() == (25,)
    # the catalog reads the same file
    assert current.catalog().dataset("raw", "filed").row_counts()["events"] == 25
    assert not (root / "_data" / "dev" / "local" / "filed.duckdb").exists()


def test_project_setting_is_what_the_run_uses(root: Path) -> None:
    result = current.runner().run_pipeline("to_ordered")
    used = result.load_info.pipeline.destination_client().config.credentials
    assert used.local_config == {"preserve_insertion_order": True}
    assert result.row_counts == {"item_rows": 25, "events": 25}


def test_credentials_that_do_not_resolve_fail_as_dlt_reports_them(root: Path) -> None:
    """The load destination is skipped; dlt's run raises its own step error naming the key
    (redacted by the runner: values under `credentials` count as secrets)."""
    assert destination_with_load_settings(current.entities().get_pipeline("to_broken")) is None
    with pytest.raises(Exception, match=r"step=sync[\s\S]*field `read_only`"):
        current.runner().run_pipeline("to_broken")
