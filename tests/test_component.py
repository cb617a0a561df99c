"""`DltProjectComponent` loaded in process (Dagster's defs-folder sandbox): materializations equal
`build_definitions()`'s, `translation`, `select` and the `get_asset_spec` / `execute` override
points, the defs state, installed project packages, and `build_definitions`' narrower API."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster import AssetKey, DagsterInstance
from dagster.components.testing import create_defs_folder_sandbox
from dagster_support import (
    CUSTOMER_TOTALS,
    EXAMPLE_KEYS,
    ORDERS,
    PROFILE,
    duckdb_query,
    materializations,
    md_value,
    run_assets,
)
from helpers import EXAMPLE, copy_example

import dltplus_dagster
from dltplus_dagster import DltProjectComponent, DltProjectResource, build_definitions
from dltplus_dagster.project.errors import ProjectInvalid

TYPE = "dltplus_dagster.DltProjectComponent"


def component_defs(attributes: dict[str, Any], refresh: bool = False,
                   component_type: str = TYPE) -> tuple[Any, dg.Definitions]:
    """The component of a `defs.yaml` with `attributes`, and its definitions (after a defs
    state refresh, as `dg utils refresh-defs-state` does, with `refresh`)."""
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.defs_folder_path / "ingest"
        path.mkdir()
        (path / "defs.yaml").write_text(yaml.safe_dump({"type": component_type,
                                                         "attributes": attributes}))
        with sandbox.build_component_tree() as tree:
            component = tree.load_component(path)
            if refresh:
                asyncio.run(component.refresh_state(sandbox.project_root))
            return component, tree.build_defs(path)


def state_attributes() -> dict[str, Any]:
    return {"defs_state": {"management_type": "LOCAL_FILESYSTEM", "refresh_if_dev": False}}


def test_materialization_equals_build_definitions(
    tmp_path: Path, instance: DagsterInstance
) -> None:
    via_component = copy_example(tmp_path / "a" / "shop_project")
    via_python = copy_example(tmp_path / "b" / "shop_project")
    _, c_defs = component_defs({"project_dir": str(via_component), "profile": PROFILE,
                                **state_attributes()}, refresh=True)
    p_defs = build_definitions(str(via_python), PROFILE)
    keys = [ORDERS, CUSTOMER_TOTALS, AssetKey(["shop_raw", "customers"])]
    c_run = run_assets(c_defs, instance, keys)
    p_run = run_assets(p_defs, instance, keys)
    assert c_run.success and p_run.success
    c_mats, p_mats = materializations(c_run), materializations(p_run)
    assert set(c_mats) == set(p_mats) == set(keys)
    for key in keys:
        for md in ("dagster/row_count", "dlt/dataset", "dlt/profile", "dagster/table_name"):
            assert md_value(c_mats[key], md) == md_value(p_mats[key], md), (key, md)
    sql = "SELECT customer_id, revenue FROM shop_reports.customer_totals ORDER BY 1"
    assert duckdb_query(via_component, sql) == duckdb_query(via_python, sql)
    assert duckdb_query(via_component, "SELECT COUNT(*) FROM shop_raw.orders") == [(40,)]
    # the same checks ran, with the same outcome
    c_checks = {(e.asset_key, e.check_name, e.passed) for e in c_run.get_asset_check_evaluations()}
    p_checks = {(e.asset_key, e.check_name, e.passed) for e in p_run.get_asset_check_evaluations()}
    assert c_checks == p_checks and c_checks


class TaggedComponent(DltProjectComponent):
    """A subclass: a tag on every table, and a step that records what it ran."""

    calls: list[str] = []  # noqa: RUF012 - shared on purpose: the test reads it

    def get_asset_spec(self, data: Any) -> dg.AssetSpec:
        spec = super().get_asset_spec(data)
        return spec.merge_attributes(tags={"team": f"{data.kind}-team"})

    def execute(self, context: dg.AssetExecutionContext, dlt_project: DltProjectResource
                ) -> Iterator[Any]:
        TaggedComponent.calls.append(context.op_def.name)
        yield from super().execute(context, dlt_project)


@pytest.fixture()
def tagged_component_type(monkeypatch: pytest.MonkeyPatch) -> str:
    """`TaggedComponent` under an importable module name for `defs.yaml`'s `type:`."""
    module = sys.modules[__name__]
    monkeypatch.setitem(sys.modules, "dltplus_component_test_types", module)
    TaggedComponent.calls.clear()
    return "dltplus_component_test_types.TaggedComponent"


def test_translation_select_and_overrides(
    shop_project: Path, instance: DagsterInstance, tagged_component_type: str
) -> None:
    _, defs = component_defs({
        "project_dir": str(shop_project), "profile": PROFILE,
        "select": ["shop_raw/orders", "shop_raw/customers", "shop_reports/*"],
        "translation": {"group_name": "ingest",
                        "key": "warehouse/{{ data.dataset }}/{{ data.table }}"},
        **state_attributes(),
    }, refresh=True, component_type=tagged_component_type)
    graph = defs.resolve_asset_graph()
    orders = AssetKey(["warehouse", "shop_raw", "orders"])
    totals = AssetKey(["warehouse", "shop_reports", "customer_totals"])
    assert set(graph.get_all_asset_keys()) == {
        orders, AssetKey(["warehouse", "shop_raw", "customers"]), totals
    }  # products and stores were not selected
    assert graph.get(orders).group_name == "ingest"
    assert graph.get(orders).tags["team"] == "pipeline-team"
    assert graph.get(totals).tags["team"] == "transformation-team"
    # the transformation's deps follow the translated keys
    assert set(graph.get(totals).parent_keys) == {
        orders, AssetKey(["warehouse", "shop_raw", "customers"])
    }
    assert {j.name for j in defs.jobs or []} == {"daily_refresh"}
    result = run_assets(defs, instance, [orders])
    assert result.success
    assert TaggedComponent.calls == ["dlt_pipeline_shop_pipeline"]
    mats = materializations(result)
    assert set(mats) == {orders}  # the subset ran the orders resource only
    assert md_value(mats[orders], "dagster/row_count") == 40
    raw_tables = {r[0] for r in duckdb_query(
        shop_project,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'shop_raw'",
    )}
    assert "orders" in raw_tables and "customers" not in raw_tables


def test_state_is_read_without_calling_a_source(shop_project: Path) -> None:
    """Once refreshed, loading reads the state: a source that no longer builds changes
    nothing (a stale list is kept until the next refresh)."""
    attributes = {"project_dir": str(shop_project), "profile": PROFILE, **state_attributes()}
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.defs_folder_path / "ingest"
        path.mkdir()
        (path / "defs.yaml").write_text(yaml.safe_dump({"type": TYPE, "attributes": attributes}))
        with sandbox.build_component_tree() as tree:
            component = tree.load_component(path)
            asyncio.run(component.refresh_state(sandbox.project_root))
            before = set(tree.build_defs(path).resolve_asset_graph().get_all_asset_keys())
        # the shop source now fails whenever it is built
        source = shop_project / "sources" / "shop.py"
        source.write_text(source.read_text() + "\nraise RuntimeError('source called')\n")
        with sandbox.build_component_tree() as tree:
            after = set(tree.build_defs(path).resolve_asset_graph().get_all_asset_keys())
    assert before == after
    assert EXAMPLE_KEYS <= after


def test_installed_project_package_and_its_access_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`project: <package>` (and `build_definitions("<package>")`) find an installed project
    package by its `dlt_package` entry point; its `access` profile applies unless given."""
    site = tmp_path / "site"
    package = Path(shutil.copytree(EXAMPLE, site / "shop_pkg_c0mp",
                                   ignore=shutil.ignore_patterns("_data", "__pycache__")))
    (package / "__init__.py").write_text(
        "from dltplus_dagster.project.packaging import bind_package\n"
        "project, entities, catalog, runner, access_profile = bind_package(__file__)\n"
    )
    dist = site / "shop_pkg_c0mp-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: shop-pkg-c0mp\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[dlt_package]\ndlt-project = shop_pkg_c0mp\n")
    monkeypatch.syspath_prepend(str(site))

    defs = build_definitions("shop_pkg_c0mp")
    resource = defs.resources["dlt_project"]
    assert resource.profile == "access"
    assert Path(resource.project_dir) == package
    assert EXAMPLE_KEYS <= set(defs.resolve_asset_graph().get_all_asset_keys())

    component, c_defs = component_defs({"project": "shop-pkg-c0mp", "profile": PROFILE})
    assert c_defs.resources["dlt_project"].profile == PROFILE
    assert Path(c_defs.resources["dlt_project"].project_dir) == package
    assert "shop-pkg-c0mp" in component.defs_state_config.key


def test_build_definitions_returns_the_project_only_and_points_to_merge(
    shop_project: Path,
) -> None:
    defs = build_definitions(str(shop_project), PROFILE)
    assert set(defs.resources) == {"dlt_project", "dlt_dataset_io"}
    with pytest.raises(TypeError, match=r"no longer takes assets, resources.*Definitions\.merge"):
        build_definitions(str(shop_project), PROFILE, assets=[], resources={})
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        build_definitions(str(shop_project), PROFILE, asets=[])


def test_component_is_a_listed_attribute_of_the_package() -> None:
    assert "DltProjectComponent" in dir(dltplus_dagster)
    assert dltplus_dagster.DltProjectComponent is DltProjectComponent
    assert issubclass(DltProjectComponent, dg.components.StateBackedComponent)


def test_refresh_refuses_what_validate_refuses(shop_project: Path) -> None:
    """The refresh runs `validate`'s table checks on the lists it stores (loading from the
    state skips them): two pipelines writing the same tables are refused, located."""
    manifest = shop_project / "dlt.yml"
    manifest.write_text(manifest.read_text().replace(
        "pipelines:\n",
        "pipelines:\n  shop_again:\n    source: shop\n    destination: warehouse\n"
        "    dataset_name: shop_raw\n", 1,
    ))
    attributes = {"project_dir": str(shop_project), "profile": PROFILE, **state_attributes()}
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.defs_folder_path / "ingest"
        path.mkdir()
        (path / "defs.yaml").write_text(yaml.safe_dump({"type": TYPE, "attributes": attributes}))
        with sandbox.build_component_tree() as tree:
            component = tree.load_component(path)
            with pytest.raises(ProjectInvalid, match=r"dlt\.yml:\d+: .*shop_again") as info:
                asyncio.run(component.refresh_state(sandbox.project_root))
    assert "shop_pipeline" in str(info.value)
