"""`.dlt/<profile>.config.toml` works like `<profile>.secrets.toml`: read for its profile only,
before `config.toml`, and after the manifest's values."""

from __future__ import annotations

from pathlib import Path

import dlt
import duckdb
from helpers import ITEMS_SOURCE, make_project

from dltplus_dagster import current
from dltplus_dagster.project.run_context import switch_profile

YML = """
sources:
  items: {n_items: 1, api_key: k, region: manifest}
pipelines:
  p:
    source: items
    destination: duckdb
    dataset_name: raw
"""


def _project(tmp_path: Path) -> Path:
    return make_project(
        tmp_path,
        YML,
        {
            "sources/items.py": ITEMS_SOURCE,
            ".dlt/config.toml": '[sources.items]\nn_items = 2\nmode = "shared"\n',
            ".dlt/tests.config.toml": '[sources.items]\nn_items = 4\nregion = "tests-toml"\n',
            ".dlt/prod.config.toml": "[sources.items]\nn_items = 9\n",
        },
    )


def test_profile_config_toml_is_read_for_its_profile_only(tmp_path: Path) -> None:
    root = _project(tmp_path)
    switch_profile("dev", str(root))
    assert dlt.config["sources.items.n_items"] == 2  # config.toml; no dev.config.toml
    assert dlt.config["sources.items.region"] == "manifest"
    switch_profile("tests", str(root))
    assert dlt.config["sources.items.n_items"] == 4  # the profile's file first
    assert dlt.config["sources.items.region"] == "tests-toml"  # over the manifest
    assert dlt.config["sources.items.mode"] == "shared"  # config.toml still read
    switch_profile("dev", str(root))
    assert dlt.config["sources.items.n_items"] == 2  # another profile's file is not read


def test_pipeline_run_uses_the_profile_config_toml(tmp_path: Path) -> None:
    root = _project(tmp_path)
    result = current.runner(str(root), "tests").run_pipeline("p")
    assert result.row_counts.get("item_rows") == 4
    database = root / "_data" / "tests" / "local" / "duckdb.duckdb"  # the profile's local dir
    with duckdb.connect(str(database), read_only=True) as con:
        assert con.sql("select count(*) from raw.item_rows").fetchone() == (4,)
