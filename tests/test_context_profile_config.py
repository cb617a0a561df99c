"""`.dlt/<profile>.config.toml` works like `<profile>.secrets.toml`: read for its profile only,
before `config.toml`, and after the manifest's values. A broken settings TOML is refused with
its file and line before dlt's run context changes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dlt
import duckdb
import pytest
from helpers import ITEMS_SOURCE, clean_env, make_project

from dltplus_dagster import current
from dltplus_dagster.project.errors import ManifestError
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


# --- a broken settings TOML is refused with its file and line -------------------------------

BROKEN = {
    "unterminated table": '[sources.items\napi_key = "s3cr3t-value"\n',
    "duplicate key": '[sources.items]\nn_items = 1\nn_items = 2\napi_key = "s3cr3t-value"\n',
    "bad value": '[sources.items]\napi_key = "s3cr3t-value"\nn_items = = 4\n',
}


@pytest.mark.parametrize("file_name", ["tests.config.toml", "tests.secrets.toml", "config.toml"])
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_settings_toml_is_a_located_error_and_changes_nothing(
    tmp_path: Path, file_name: str, case: str
) -> None:
    root = make_project(tmp_path, YML, {"sources/items.py": ITEMS_SOURCE})
    path = root / ".dlt" / file_name
    path.parent.mkdir(exist_ok=True)
    path.write_text(BROKEN[case], encoding="utf-8")
    before = dlt.current.run_context()
    with pytest.raises(ManifestError) as exc:
        switch_profile("tests", str(root))
    message = str(exc.value)
    assert message.startswith(f"{path}:") and exc.value.line is not None, message
    assert "not valid TOML" in message and "s3cr3t" not in message
    assert dlt.current.run_context() is before  # dlt's context was not half switched
    assert not (root / "_data").exists()  # nothing written


def test_broken_profile_toml_in_the_cli_names_file_and_line(tmp_path: Path) -> None:
    root = make_project(tmp_path, YML, {"sources/items.py": ITEMS_SOURCE})
    path = root / ".dlt" / "tests.secrets.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(BROKEN["bad value"], encoding="utf-8")
    dltplus = Path(sys.executable).with_name("dltplus")
    result = subprocess.run(
        [str(dltplus), "project", "--profile", "tests", "validate"],
        cwd=root, env=clean_env(), capture_output=True, text=True, check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"{path}:3" in output and "Traceback" not in output, output
    assert "s3cr3t" not in output


def test_unreadable_settings_toml_is_a_located_error(tmp_path: Path) -> None:
    root = make_project(tmp_path, YML, {"sources/items.py": ITEMS_SOURCE})
    settings = root / ".dlt"
    settings.mkdir(exist_ok=True)
    (settings / "tests.secrets.toml").write_bytes(b'\xff\xfe[sources.items]\napi_key = "x"\n')
    with pytest.raises(ManifestError, match=r"tests\.secrets\.toml: is not UTF-8 text"):
        switch_profile("tests", str(root))
    (settings / "tests.secrets.toml").unlink()
    (settings / "tests.config.toml").mkdir()  # a folder where a file belongs
    with pytest.raises(ManifestError, match=r"tests\.config\.toml: cannot be read"):
        switch_profile("tests", str(root))
    assert not (root / "_data").exists()
