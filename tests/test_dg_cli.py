"""The real `dg` CLI (dagster-dg-cli) on a copy of `examples/dg_project`, whose component
serves a copy of the example dlt project: the same definitions as `build_definitions()`, YAML
errors with their line, the defs state filled by `dg utils refresh-defs-state` (then loading
needs no source secret), scaffolding and component discovery.

The dg project is not pip-installed here: `PYTHONPATH=src` makes its module importable, as
`pip install -e examples/dg_project` would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster_support import PROFILE, duckdb_query
from helpers import BIN, REPO, clean_env, copy_example, no_daemon_dagster_home, write

from dltplus_dagster import build_definitions

DG = BIN / "dg"
DG_EXAMPLE = REPO / "examples" / "dg_project"
COMPONENT_YAML = Path("src/dg_shop/defs/ingest/defs.yaml")
SECRET = "secured-api-key-51c0ffee"

SECURED_SOURCE = '''
import dlt


@dlt.source
def secured(api_key: str = dlt.secrets.value):
    """Needs its api key to be built at all (as a REST source with auth)."""
    if not api_key:
        raise ValueError("no api key")

    @dlt.resource
    def tickets():
        yield [{"id": 1}, {"id": 2}]

    return tickets
'''


@pytest.fixture()
def dg_project(tmp_path: Path) -> Path:
    """`examples/dg_project` and the shop project copied side by side, as in the repo."""
    root = Path(shutil.copytree(
        DG_EXAMPLE, tmp_path / "examples" / "dg_project",
        ignore=shutil.ignore_patterns(".local_defs_state", "__pycache__", "*.egg-info"),
    ))
    copy_example(tmp_path / "examples" / "shop_project" / "shop_project")
    return root


def shop_dir(dg_project: Path) -> Path:
    return dg_project.parent / "shop_project" / "shop_project"


def set_attributes(dg_project: Path, **attributes: Any) -> None:
    """Add `attributes` to the component's defs.yaml."""
    path = dg_project / COMPONENT_YAML
    doc = yaml.safe_load(path.read_text())
    doc["attributes"].update(attributes)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def dg(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    home = no_daemon_dagster_home(project.parent / "dagster_home")
    run_env = clean_env(DAGSTER_HOME=str(home), PYTHONPATH=str(project / "src"),
                        WORKSPACE__PROFILE=PROFILE, NO_COLOR="1", COLUMNS="200")
    run_env.update(env or {})
    return subprocess.run([str(DG), *args], cwd=project, env=run_env, capture_output=True,
                          text=True, timeout=300, check=False)


def list_defs(project: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = dg(project, "list", "defs", "--json", env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    listed: dict[str, Any] = json.loads(proc.stdout)
    return listed


def summary(listed: dict[str, Any]) -> dict[str, set[str]]:
    return {
        "assets": {a["asset_key"] for a in listed["assets"]},
        "checks": {c["key"] for c in listed["asset_checks"]},
        "jobs": {j["name"] for j in listed["jobs"]},
        "schedules": {s["name"] for s in listed["schedules"]},
    }


def python_summary(project_dir: Path) -> dict[str, set[str]]:
    """The same summary of `build_definitions()` on the same project and profile."""
    defs = build_definitions(str(project_dir), PROFILE)
    graph = defs.resolve_asset_graph()
    return {
        "assets": {k.to_user_string() for k in graph.get_all_asset_keys()},
        "checks": {f"{k.asset_key.to_user_string()}:{k.name}"
                   for k in graph.asset_check_keys},
        "jobs": {j.name for j in defs.jobs or []},
        "schedules": {s.name for s in defs.schedules or []},
    }


def test_dg_list_defs_shows_what_build_definitions_builds(dg_project: Path) -> None:
    listed = summary(list_defs(dg_project))
    expected = python_summary(shop_dir(dg_project))
    assert expected["assets"] >= {"shop_raw/orders", "shop_reports/customer_totals"}
    # the project's definitions, plus the user asset of defs/reports.py
    assert listed["assets"] == expected["assets"] | {"shop_reports/big_orders"}
    assert listed["checks"] == expected["checks"] and listed["checks"]
    assert listed["jobs"] == expected["jobs"] == {"daily_refresh"}  # tests: no pipeline schedule
    assert listed["schedules"] == expected["schedules"] == {"nightly_refresh"}
    big = next(a for a in list_defs(dg_project)["assets"]
               if a["asset_key"] == "shop_reports/big_orders")
    assert big["dependency_keys"] == ["shop_raw/orders"]  # lineage joins the pipeline asset


def test_dg_check_yaml_names_a_bad_attribute_and_its_line(dg_project: Path) -> None:
    path = dg_project / COMPONENT_YAML
    path.write_text(path.read_text() + "  profle: dev\n")
    line = len(path.read_text().splitlines())
    proc = dg(dg_project, "check", "yaml")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"defs.yaml:{line}" in out and "profle" in out, out[-2000:]
    path.write_text(path.read_text().replace("  profle: dev\n", ""))
    assert dg(dg_project, "check", "yaml").returncode == 0


def test_refreshed_state_loads_without_the_sources_secret(dg_project: Path) -> None:
    """`dg utils refresh-defs-state` with the secret set; then the code location loads with it
    removed: the same assets, the secured pipeline's too, and no source call."""
    shop = shop_dir(dg_project)
    write(shop / "sources" / "secured.py", SECURED_SOURCE)
    manifest = (shop / "dlt.yml").read_text().replace(
        "pipelines:\n",
        "pipelines:\n  secured_pipeline:\n    source: secured\n    destination: warehouse\n"
        "    dataset_name: secured_raw\n",
        1,
    ).replace("sources:\n", "sources:\n  secured:\n    type: secured.secured\n", 1)
    (shop / "dlt.yml").write_text(manifest)
    # state refreshed only on purpose (not by `dg` loading in dev), as in a deployment
    set_attributes(dg_project, defs_state={"management_type": "LOCAL_FILESYSTEM",
                                           "refresh_if_dev": False})
    with_secret = {"SOURCES__SECURED__API_KEY": SECRET}

    proc = dg(dg_project, "utils", "refresh-defs-state", env=with_secret)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    states = list((dg_project / "src" / "dg_shop" / "defs" / ".local_defs_state").glob("*/state"))
    assert len(states) == 1
    state = json.loads(states[0].read_text())
    tickets = state["pipelines"]["secured_pipeline"]["tables"]
    assert [t["table"] for t in tickets] == ["tickets"]
    assert SECRET not in states[0].read_text()

    without = list_defs(dg_project)  # SOURCES__SECURED__API_KEY is not set here
    assert "SOURCES__SECURED__API_KEY" not in os.environ
    assert "secured_raw/tickets" in summary(without)["assets"]
    assert summary(without) == summary(list_defs(dg_project, env=with_secret))
    assert SECRET not in json.dumps(without)
    # the project's own cache was not filled either: nothing called the sources while loading
    assert not (shop / ".dlt" / ".dltplus_state.json").exists()


def test_without_state_the_source_is_called_once_and_it_says_so(dg_project: Path) -> None:
    set_attributes(dg_project, defs_state={"management_type": "LOCAL_FILESYSTEM",
                                           "refresh_if_dev": False})
    proc = dg(dg_project, "check", "defs")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "no defs state yet" in out and "refresh-defs-state" in out, out[-3000:]
    # the lists found were kept: the project's own table cache
    assert (shop_dir(dg_project) / ".dlt" / ".dltplus_state.json").exists()


def test_dg_scaffold_writes_defs_yaml_and_a_starter_project(dg_project: Path) -> None:
    # one dlt project per code location (one `dlt_project` resource): the starter replaces it
    shutil.rmtree(dg_project / "src" / "dg_shop" / "defs" / "ingest")
    (dg_project / "src" / "dg_shop" / "defs" / "reports.py").unlink()
    proc = dg(dg_project, "scaffold", "defs", "dltplus_dagster.DltProjectComponent", "starter",
              "--project-dir", "starter_project")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    defs_yaml = dg_project / "src" / "dg_shop" / "defs" / "starter" / "defs.yaml"
    doc = yaml.safe_load(defs_yaml.read_text())
    assert doc["type"] == "dltplus_dagster.DltProjectComponent"
    starter = dg_project / "starter_project"
    assert (defs_yaml.parent / doc["attributes"]["project_dir"]).resolve() == starter.resolve()
    assert "my_pipeline" in (starter / "dlt.yml").read_text()  # as `dltplus project init`
    # the scaffolded component loads: the starter pipeline's table is an asset
    assets = summary(list_defs(dg_project))["assets"]
    assert any(a.startswith("my_pipeline_dataset/") for a in assets), assets


def test_dg_list_components_finds_the_component(dg_project: Path) -> None:
    proc = dg(dg_project, "list", "components", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    keys = {item["key"] for item in json.loads(proc.stdout)["items"]}
    assert "dltplus_dagster.DltProjectComponent" in keys


def test_dg_example_materializes_big_orders_through_the_io_manager(dg_project: Path) -> None:
    """The README's claim for the component-based location: the user asset reads the pipeline
    table and writes its own table back, through `dlt_dataset_io`."""
    home = no_daemon_dagster_home(dg_project.parent / "dagster_home")
    env = clean_env(DAGSTER_HOME=str(home), PYTHONPATH=str(dg_project / "src"),
                    WORKSPACE__PROFILE=PROFILE)
    proc = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "dg_shop.definitions",
         "--select", "shop_raw/orders,shop_reports/big_orders"],
        cwd=dg_project, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    shop = shop_dir(dg_project)
    big = duckdb_query(shop, "SELECT COUNT(*) FROM shop_raw.orders WHERE amount > 50")
    assert big[0][0] > 0
    assert duckdb_query(shop, "SELECT COUNT(*) FROM shop_reports.big_orders") == big
