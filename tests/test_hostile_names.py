"""Names and the one validation gate.

- Names dlt's naming convention maps to one identifier (datasets, declared tables, tables two
  writers produce, transformation outputs) and entities with one Dagster name are refused by
  `validate_project`, `build_definitions`, the runner, the catalog and the CLI alike.
- Names Dagster rejects are mapped in one way (the translator, `names.dagster_name`): a real
  `materialize` of a pipeline with a spaced group, key prefix and table name, and a unicode
  pipeline name; a pipeline name dlt cannot use is refused everywhere.
- Source values dlt cannot coerce, `resources:` a source does not have: refused with the key.
- The gate as a property over the whole bad-manifest corpus (other engineers' files too):
  either validate reports problems and every consumer refuses with the same first problem, or
  `build_definitions` loads and the runner, the catalog and the CLI accept the project.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, Definitions
from dagster_support import materializations, md_value, run_assets
from helpers import (
    ITEMS_SOURCE,
    MANIFESTS,
    bad_project,
    clean_env,
    make_project,
    manifest_env,
    manifest_headers,
)

from dltplus_dagster import build_definitions, current
from dltplus_dagster.cli import main as cli_main
from dltplus_dagster.project.errors import ManifestError, ProjectError, ProjectInvalid
from dltplus_dagster.project.project import load_project
from dltplus_dagster.project.validate import ensure_valid, pipeline_scope, validate_project

DLTPLUS = Path(sys.executable).parent / "dltplus"


def problems_of(root: Path, profile: str | None = None) -> list[str]:
    return validate_project(load_project(str(root), profile))


def refused_everywhere(
    root: Path, expected: str, pipeline: str, dataset: str | None = None
) -> str:
    """validate, build_definitions, running `pipeline` and reading `dataset` (when the problem
    is the dataset's) refuse `root` with validate's message holding `expected`; returns it."""
    problems = problems_of(root)
    matching = [p for p in problems if expected in p]
    assert matching, problems
    with pytest.raises(ProjectInvalid) as defs_err:
        build_definitions(str(root))
    with pytest.raises(ProjectInvalid) as runner_err:
        current.runner(str(root)).run_pipeline(pipeline)
    errors = [defs_err, runner_err]
    if dataset is not None:
        with pytest.raises(ProjectInvalid) as catalog_err:
            current.catalog(str(root)).dataset(dataset)
        errors.append(catalog_err)
    for err in errors:
        assert matching[0] in str(err.value)
    return matching[0]


ITEMS_YML = """
project: {name: names_demo}
sources:
  items: {n_items: 3, api_key: k}
destinations:
  wh: {type: duckdb}
"""


def items_project(tmp_path: Path, rest: str) -> Path:
    return make_project(tmp_path, ITEMS_YML + rest, {"sources/items.py": ITEMS_SOURCE})


# --- dlt's naming convention -------------------------------------------------------------------


def test_dataset_names_differing_in_case_are_refused(tmp_path: Path) -> None:
    root = items_project(tmp_path, """
pipelines:
  p1: {source: items, destination: wh, dataset_name: Shop}
  p2: {source: items, destination: wh, dataset_name: shop}
""")
    first = refused_everywhere(
        root, "datasets 'Shop' and 'shop' are one dataset 'shop'", "p2", "shop"
    )
    assert first.startswith("dlt.yml:9: pipelines.p2.dataset_name: ")
    assert not (root / "_data" / "dev" / "local" / "wh.duckdb").exists()


def test_non_ascii_declared_tables_that_all_become_x_are_refused(tmp_path: Path) -> None:
    root = items_project(tmp_path, """
datasets:
  shop:
    destination: [wh]
    tables: {"é": {}, "ü": {}, "数据": {}}
pipelines:
  p: {source: items, destination: wh, dataset_name: shop}
""")
    problems = problems_of(root)
    assert len(problems) == 2, problems
    assert "table 'ü' of dataset 'shop'" in problems[0] and "'é'" in problems[0]
    assert "both are table 'x'" in problems[0]
    refused_everywhere(root, "table '数据' of dataset 'shop'", "p", "shop")


def test_two_pipelines_tables_differing_in_case_are_refused(tmp_path: Path) -> None:
    root = items_project(tmp_path, """
pipelines:
  upper:
    source: items
    destination: wh
    dataset_name: shop
    resources: [item_rows]
    table_names: {item_rows: Orders}
  lower:
    source: items
    destination: wh
    dataset_name: shop
    resources: [events]
    table_names: {events: orders}
""")
    problems = problems_of(root)
    assert len(problems) == 1, problems
    assert "pipelines.lower: pipeline 'lower' names table 'orders'" in problems[0]
    assert "pipeline 'upper' names 'Orders'" in problems[0]
    assert "both are table 'orders' (asset key shop/orders)" in problems[0]
    with pytest.raises(ProjectInvalid) as exc:  # not Dagster's bare duplicate key error
        build_definitions(str(root))
    assert problems[0] in str(exc.value)


def test_pipeline_and_transformation_writing_one_asset_key_are_refused(tmp_path: Path) -> None:
    root = items_project(tmp_path, """
dagster:
  asset_key_prefix: [team]
pipelines:
  p:
    source: items
    destination: wh
    dataset_name: shop
    resources: [item_rows]
transformations:
  t:
    inputs: [shop]
    output: shop
    sql: {item_rows: "select 1 as id"}
""")
    problems = problems_of(root)
    assert problems == [
        ("dlt.yml:19: transformations.t.sql.item_rows: pipeline 'p' and transformation 't' both "
        "write table 'item_rows' of dataset 'shop': one asset key team/shop/item_rows cannot "
        "have two writers")
    ]
    with pytest.raises(ProjectInvalid) as exc:
        build_definitions(str(root))
    assert problems[0] in str(exc.value)


def test_translator_keys_two_pipelines_alike_named_error(tmp_path: Path) -> None:
    """A custom translator that gives two pipelines one key: a located error naming both."""
    from dltplus_dagster import DltProjectTranslator
    from dltplus_dagster.dagster.translator import TableAssetData

    class ByTable(DltProjectTranslator):
        def get_asset_key(self, data: TableAssetData) -> AssetKey:
            return AssetKey([data.table])

    root = items_project(tmp_path, """
pipelines:
  one: {source: items, destination: wh, dataset_name: a, resources: [events]}
  two: {source: items, destination: wh, dataset_name: b, resources: [events]}
""")
    assert problems_of(root) == []
    with pytest.raises(ProjectInvalid) as exc:
        build_definitions(str(root), translator=ByTable())
    assert "dlt.yml:9: pipelines.two: pipeline 'two' and pipeline 'one' both produce asset key " \
           "events" in str(exc.value)


# --- Dagster names: mapped, or refused ---------------------------------------------------------


def test_names_dagster_rejects_are_mapped_and_materialize(tmp_path: Path, instance) -> None:
    root = items_project(tmp_path, """
dagster:
  asset_key_prefix: ["my team"]
pipelines:
  orders-é:
    source: items
    destination: wh
    dataset_name: shop
    group: Sales Team
    resources: [item_rows]
    table_names: {item_rows: "Order Items"}
""")
    assert problems_of(root) == []
    defs = build_definitions(str(root))
    key = AssetKey(["my_team", "shop", "order_items"])  # the stored table name, mapped parts
    spec = {s.key: s for s in defs.resolve_all_asset_specs()}[key]
    assert spec.group_name == "Sales_Team"
    job = defs.resolve_implicit_global_asset_job_def()
    assert "dlt_pipeline_orders__" in {n.name for n in job.graph.node_defs}
    result = run_assets(defs, instance, [key])
    assert result.success
    md = materializations(result)[key]
    assert md_value(md, "dagster/row_count") == 3
    assert md_value(md, "dlt/rows_loaded") == 3
    assert str(md_value(md, "dagster/table_name")).endswith("shop.order_items")
    assert current.catalog(str(root)).dataset("shop").row_counts()["order_items"] == 3


def test_pipeline_names_mapping_to_one_op_are_refused(tmp_path: Path) -> None:
    root = items_project(tmp_path, """
pipelines:
  a-b: {source: items, destination: wh, dataset_name: one}
  a_b: {source: items, destination: wh, dataset_name: two}
""")
    first = refused_everywhere(
        root, "pipelines 'a-b' and 'a_b' map to one Dagster name 'dlt_pipeline_a_b'", "a_b"
    )
    assert "dlt.yml:9: pipelines.a_b:" in first


def test_pipeline_name_dlt_cannot_use_is_refused_before_anything_runs(tmp_path: Path) -> None:
    root = items_project(tmp_path, """
pipelines:
  v1.shop: {source: items, destination: wh, dataset_name: shop}
""")
    refused_everywhere(root, "'v1.shop' is no valid dlt pipeline name", "v1.shop")
    proc = subprocess.run(
        [str(DLTPLUS), "pipeline", "--project", str(root), "v1.shop", "run"],
        capture_output=True, text=True, env=clean_env(), timeout=120, check=False,
    )
    assert proc.returncode == 1
    assert "dlt.yml:8: pipelines.v1.shop: 'v1.shop' is no valid dlt pipeline name" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (root / "_data" / "dev" / "local" / "wh.duckdb").exists()


def test_dataset_name_the_catalog_cannot_read_back_is_refused(tmp_path: Path) -> None:
    root = items_project(tmp_path, """
pipelines:
  p: {source: items, destination: wh, dataset_name: shop-data}
""")
    first = refused_everywhere(
        root, "dataset name 'shop-data' cannot be read back through the catalog", "p",
        "shop-data",
    )
    assert "(e.g. 'shop_data')" in first and "pipelines.p.dataset_name" in first


# --- source arguments and resources ------------------------------------------------------------


def test_values_dlt_cannot_coerce_are_refused_with_the_key(tmp_path: Path) -> None:
    root = make_project(tmp_path, """
sources:
  items:
    n_items: .inf
    api_key: k
    with_args: {n_items: abc}
destinations:
  wh: {type: duckdb}
pipelines:
  p: {source: items, destination: wh, dataset_name: shop}
""", {"sources/items.py": ITEMS_SOURCE})
    problems = problems_of(root)
    assert problems == [
        ("dlt.yml:5: sources.items.with_args.n_items: the value cannot be coerced to int, the "
        "type of argument 'n_items' of the source"),
        ("dlt.yml:3: sources.items.n_items: the value cannot be coerced to int, the type of "
        "argument 'n_items' of the source"),
    ]
    with pytest.raises(ProjectInvalid) as exc:
        current.runner(str(root)).run_pipeline("p")
    assert str(exc.value).splitlines()[1:] == [f"  - {p}" for p in problems]


def test_with_args_are_coerced_like_dlt_config(tmp_path: Path) -> None:
    """A quoted "4" for an int argument is 4, as dlt coerces config values."""
    root = make_project(tmp_path, """
sources:
  items:
    api_key: k
    with_args: {n_items: "4"}
destinations:
  wh: {type: duckdb}
pipelines:
  p: {source: items, destination: wh, dataset_name: shop, resources: [item_rows]}
""", {"sources/items.py": ITEMS_SOURCE})
    assert problems_of(root) == []
    result = current.runner(str(root)).run_pipeline("p")
    assert result.row_counts == {"item_rows": 4}


def test_resource_the_source_does_not_have_is_refused(tmp_path: Path) -> None:
    root = items_project(tmp_path, """
pipelines:
  p:
    source: items
    destination: wh
    dataset_name: shop
    resources: [item_rows, evnts]
""")
    problems = problems_of(root)
    assert problems == [
        ("dlt.yml:12: pipelines.p.resources.1: source 'items' has no resource 'evnts'; its "
        "resources: item_rows, events")
    ]
    with pytest.raises(ProjectInvalid) as exc:
        build_definitions(str(root))
    assert problems[0] in str(exc.value)
    assert not (root / ".dlt" / ".dltplus_state.json").exists()  # nothing written


# --- one rule, one code path -----------------------------------------------------------------


def test_undeclared_dataset_strict_same_error_everywhere(tmp_path: Path) -> None:
    root = make_project(tmp_path, """
project: {name: names_demo, allow_undefined_entities: false}
sources:
  items: {n_items: 3, api_key: k}
destinations:
  wh: {type: duckdb}
datasets:
  declared: {destination: [wh]}
pipelines:
  p: {source: items, destination: wh, dataset_name: undeclared}
""", {"sources/items.py": ITEMS_SOURCE})
    expected = (
        "dlt.yml:9: pipelines.p.dataset_name: dataset 'undeclared' is not declared and "
        "implicit entities are disabled. Declared datasets: declared"
    )
    assert problems_of(root) == [expected]
    for refused in (
        lambda: build_definitions(str(root)),
        lambda: current.runner(str(root)).run_pipeline("p"),
        lambda: current.catalog(str(root)).dataset("undeclared"),
    ):
        with pytest.raises(ProjectInvalid) as exc:
            refused()
        assert str(exc.value) == expected
    env = clean_env()
    run = subprocess.run(
        [str(DLTPLUS), "pipeline", "--project", str(root), "p", "run"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    validate = subprocess.run(
        [str(DLTPLUS), "project", "--project", str(root), "validate"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert (run.returncode, validate.returncode) == (1, 1)
    assert f"Error: {expected}" in run.stderr and "Traceback" not in run.stderr
    assert f"  - {expected}" in validate.stderr
    assert not (root / "_data" / "dev" / "local" / "wh.duckdb").exists()


@pytest.mark.parametrize("manifest", MANIFESTS, ids=[p.stem for p in MANIFESTS])
def test_the_gate_is_one_rule(
    manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Either validate reports problems and all consumers refuse, or all accept."""
    headers = manifest_headers(manifest)
    root = bad_project(tmp_path / "project", manifest)
    unset, set_env = manifest_env(manifest, headers)
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    for name, value in set_env.items():
        monkeypatch.setenv(name, value)
    one_rule(root, headers.get("profile"), capsys)


GOOD = {
    # names Dagster rejects, mapped: validate accepts, so every consumer must
    "mapped_names": """
dagster: {asset_key_prefix: ["my team"]}
sources:
  files: {type: filesystem.readers, bucket_url: /nonexistent, file_glob: "*.csv"}
destinations:
  wh: {type: duckdb}
datasets:
  données: {destination: [wh], group: Équipe, tables: {"Order Items": {}}}
pipelines:
  orders-é:
    source: files
    destination: wh
    dataset_name: shop
    group: Sales Team
    resources: [read_csv]
    table_names: {read_csv: "Read CSV"}
""",
    "strict_declared": """
project: {allow_undefined_entities: false}
sources:
  files: {type: filesystem.readers, bucket_url: /nonexistent}
destinations:
  wh: {type: duckdb}
datasets:
  Shop: {destination: [wh], tables: {Orders: {}}}
pipelines:
  Load Shop-Daily:
    source: files
    destination: wh
    dataset_name: Shop
    resources: [read_csv]
""",
}


@pytest.mark.parametrize("name", list(GOOD))
def test_the_gate_is_one_rule_for_unusual_names(name: str, tmp_path: Path, capsys) -> None:
    root = make_project(tmp_path, GOOD[name])
    one_rule(root, None, capsys)


def one_rule(root: Path, profile: str | None, capsys) -> None:
    """validate refuses (and so do the CLI and build_definitions, with its first problem), or
    build_definitions loads and the CLI, the runner's and the catalog's gates accept."""
    cli_args = ["project", "--project", str(root), *(["--profile", profile] if profile else [])]

    try:
        project = load_project(str(root), profile)
    except ProjectError as e:  # the load itself fails: every consumer loads the same way
        for consumer in (build_definitions, current.runner, current.catalog):
            with pytest.raises(ProjectError) as exc:
                consumer(str(root), profile)
            assert str(exc.value) == str(e)
        assert cli_main([*cli_args, "validate"]) == 1
        return
    problems = validate_project(project)
    code = cli_main([*cli_args, "validate"])
    capsys.readouterr()
    if problems:
        assert code == 1
        with pytest.raises(ProjectInvalid) as exc:
            build_definitions(str(root), profile)
        assert problems[0] in str(exc.value)
        return
    # accepted: definitions load, every pipeline passes the runner's gate, every dataset the
    # catalog's (running the corpus' sources would need their data)
    assert code == 0
    defs = build_definitions(str(root), profile)
    assert isinstance(defs, Definitions)
    defs.resolve_asset_graph()
    for name in project.pipelines:
        ensure_valid(project, tables=False, scope=pipeline_scope(project, name))
    catalog = current.catalog(str(root), profile)
    for name in catalog:
        catalog.dataset(name)


@pytest.mark.parametrize(
    ("rest", "expected"),
    [
        (("pipelines:\n  p: {source: items, destination: wh, dataset_name: shop, "
         "table_names: {item_rows: ''}}\n"),
         "dlt.yml:7: pipelines.p: pipeline 'p' names an empty table name"),
        ("pipelines:\n  p: {source: items, destination: wh, dataset_name: " + "d" * 70 + "}\n",
         "dlt needs a Python identifier of at most 64 characters (e.g. '" + "d" * 64 + "')"),
    ],
    ids=["empty_table_name", "dataset_name_too_long"],
)
def test_more_names_refused_with_the_key(rest: str, expected: str, tmp_path: Path) -> None:
    root = items_project(tmp_path, rest)
    problems = problems_of(root)
    assert any(expected in p for p in problems), problems
    with pytest.raises(ProjectInvalid) as exc:
        build_definitions(str(root))
    assert expected in str(exc.value)


def test_empty_pipeline_name_is_refused_when_the_manifest_loads(tmp_path: Path) -> None:
    """The loader refuses an empty key before validate sees it (names are never empty)."""
    root = items_project(
        tmp_path, "pipelines:\n  '': {source: items, destination: wh, dataset_name: shop}\n"
    )
    with pytest.raises(ManifestError, match="dlt.yml:7: pipelines: an empty mapping key"):
        problems_of(root)
    with pytest.raises(ManifestError, match="an empty mapping key"):
        build_definitions(str(root))


def test_sql_and_quotes_in_a_table_name_are_one_safe_key(tmp_path: Path, instance) -> None:
    root = items_project(tmp_path, """
pipelines:
  p:
    source: items
    destination: wh
    dataset_name: shop
    resources: [item_rows]
    table_names: {item_rows: "x'; DROP TABLE y; --"}
""")
    defs = build_definitions(str(root))
    key = AssetKey(["shop", "x_drop_table_yxxx"])  # dlt's snake_case name of it
    assert run_assets(defs, instance, [key]).success
    assert current.catalog(str(root)).dataset("shop").row_counts()["x_drop_table_yxxx"] == 3


def test_checks_of_a_declared_table_follow_its_stored_name(tmp_path: Path, instance) -> None:
    """Declared as `Order Items`, stored and keyed as `order_items`: its checks still run."""
    root = items_project(tmp_path, """
datasets:
  shop:
    destination: [wh]
    tables: {"Order Items": {checks: {not_empty: true, unique: [id]}}}
pipelines:
  p:
    source: items
    destination: wh
    dataset_name: shop
    resources: [item_rows]
    table_names: {item_rows: "Order Items"}
""")
    defs = build_definitions(str(root))
    key = AssetKey(["shop", "order_items"])
    result = run_assets(defs, instance, [key])
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks and all(checks.values()) and len(checks) == 3, checks  # + dlt_schema_change
