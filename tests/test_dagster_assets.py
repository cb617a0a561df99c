"""The Dagster integration on a copy of the example project: real Dagster runs, real DuckDB."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from dagster import (
    AssetIn,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    DagsterInstance,
    Definitions,
    TableSchema,
    asset,
    materialize,
)
from dagster_support import (
    CUSTOMER_TOTALS,
    CUSTOMERS,
    EXAMPLE_KEYS,
    ORDERS,
    PRODUCTS,
    PROFILE,
    SECRET,
    STORES,
    duckdb_query,
    duckdb_tables,
    materializations,
    md_value,
    run_assets,
)

from dltplus_dagster import (
    DltProjectResource,
    DltProjectTranslator,
    DltTableMetadataSet,
    build_definitions,
    current,
)
from dltplus_dagster.dagster.translator import TableAssetData, identity_metadata
from dltplus_dagster.project.errors import ProjectNotFound

K = AssetKey
LEGACY = K(["shop_raw", "legacy_accounts"])
SHOP_PIPELINE_KEYS = {ORDERS, CUSTOMERS, PRODUCTS}


def edit_manifest(project_dir: Path, edit: Any) -> None:
    """Load dlt.yml, let `edit(doc)` change it, write it back."""
    path = project_dir / "dlt.yml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def profile_run_config(profile: str) -> dict[str, Any]:
    """Run config that points the `dlt_project` resource at `profile` alone, as in the
    Launchpad (`project_dir` keeps the code location's default)."""
    return {"resources": {"dlt_project": {"config": {"profile": profile}}}}


def check_results(result: Any) -> dict[tuple[AssetKey, str], Any]:
    return {(e.asset_key, e.check_name): e for e in result.get_asset_check_evaluations()}


def all_event_text(inst: DagsterInstance, run_id: str) -> str:
    return "\n".join(str(record) for record in inst.all_logs(run_id))


def count_rows(project_dir: Path, dataset: str, table: str) -> int:
    return duckdb_query(project_dir, f'SELECT COUNT(*) FROM "{dataset}"."{table}"')[0][0]


# --- definitions -------------------------------------------------------------------------


def test_definitions_keys_groups_kinds_and_lineage(shop_project: Path) -> None:
    dev = build_definitions(str(shop_project), "dev")
    tests = build_definitions(str(shop_project), PROFILE)
    assert isinstance(dev, Definitions) and isinstance(tests, Definitions)

    dev_graph, tests_graph = dev.resolve_asset_graph(), tests.resolve_asset_graph()
    keys = set(tests_graph.get_all_asset_keys())
    assert keys == EXAMPLE_KEYS
    # keys are <dataset>/<table> whatever the profile
    assert set(dev_graph.get_all_asset_keys()) == keys
    for key in keys:
        assert len(key.path) == 2
        assert not {"dev", "tests"} & set(key.path)

    groups = {key: tests_graph.get(key).group_name for key in keys}
    assert groups == {
        ORDERS: "shop_pipeline",
        CUSTOMERS: "shop_pipeline",
        PRODUCTS: "shop_pipeline",
        STORES: "stores_pipeline",
        CUSTOMER_TOTALS: "customer_totals",
    }
    for key in keys:
        assert tests_graph.get(key).kinds == {"dlt", "duckdb"}

    # one subsettable multi-asset per pipeline
    by_key = {k: a for a in tests.assets if isinstance(a, AssetsDefinition) for k in a.keys}
    assert set(by_key[ORDERS].keys) == SHOP_PIPELINE_KEYS
    assert by_key[ORDERS].can_subset
    assert by_key[STORES].can_subset

    # the transformation depends on the tables it reads
    assert set(tests_graph.get(CUSTOMER_TOTALS).parent_keys) == {CUSTOMERS, ORDERS}
    # checks from the manifest are attached to the pipeline tables
    check_keys = {(c.asset_key, c.name) for c in tests_graph.asset_check_keys}
    assert check_keys == {
        (ORDERS, "not_empty"), (ORDERS, "unique"),
        (CUSTOMERS, "not_empty"), (CUSTOMERS, "unique"),
        # every pipeline table: see tests/test_schema_change_check.py
        *((k, "dlt_schema_change") for k in (ORDERS, CUSTOMERS, PRODUCTS, STORES)),
    }
    # loading the definitions extracted nothing
    assert not duckdb_tables(shop_project)
    assert not duckdb_tables(shop_project, "dev")


def test_jobs_and_schedules_per_profile(shop_project: Path) -> None:
    dev = build_definitions(str(shop_project), "dev")
    schedules = {s.name: s for s in dev.schedules}
    assert set(schedules) == {"shop_pipeline_schedule", "nightly_refresh"}

    pipeline_schedule = schedules["shop_pipeline_schedule"]
    assert pipeline_schedule.cron_schedule == "0 6 * * *"
    job = dev.resolve_job_def(pipeline_schedule.job_name)
    assert set(job.asset_layer.selected_asset_keys) == SHOP_PIPELINE_KEYS

    nightly = schedules["nightly_refresh"]
    assert nightly.cron_schedule == "0 2 * * *"
    assert nightly.job_name == "daily_refresh"
    daily = dev.resolve_job_def("daily_refresh")
    assert set(daily.asset_layer.selected_asset_keys) == EXAMPLE_KEYS

    # the tests profile sets `schedule: null` on the pipeline
    tests = build_definitions(str(shop_project), PROFILE)
    assert {s.name for s in tests.schedules} == {"nightly_refresh"}
    assert {j.name for j in tests.resolve_all_job_defs()} >= {"daily_refresh"}
    assert "shop_pipeline_job" not in {j.name for j in tests.resolve_all_job_defs()}


# --- materializing -----------------------------------------------------------------------


def test_materialize_all_metadata_twice_no_secret(
    shop_project: Path, instance: DagsterInstance
) -> None:
    defs = build_definitions(str(shop_project), PROFILE)
    data_dir = shop_project / "_data" / PROFILE

    versions: list[dict[AssetKey, Any]] = []
    for attempt in (1, 2):  # the second run in the same process must work as well
        result = run_assets(defs, instance)
        assert result.success, attempt
        mats = materializations(result)
        assert set(mats) == EXAMPLE_KEYS
        versions.append(
            {k: (md_value(md, "dlt/schema_version"), md_value(md, "dlt/schema_hash"))
             for k, md in mats.items()}
        )
        for key, md in mats.items():
            dataset, table = key.path
            assert md_value(md, "dagster/row_count") == count_rows(shop_project, dataset, table)
            assert md_value(md, "dagster/row_count") > 0
            assert md_value(md, "dagster/table_name") == f"warehouse.{dataset}.{table}"
            schema = md_value(md, "dagster/column_schema")
            assert isinstance(schema, TableSchema) and schema.columns
            assert md_value(md, "dlt/load_id")
            assert md_value(md, "dlt/destination") == "warehouse"
            assert md_value(md, "dlt/dataset") == dataset
            assert md_value(md, "dlt/schema_version") >= 1
            assert md_value(md, "dlt/profile") == PROFILE
        orders_cols = {c.name for c in md_value(mats[ORDERS], "dagster/column_schema").columns}
        assert {"order_id", "customer_id", "amount", "ordered_on"} <= orders_cols
        assert md_value(mats[ORDERS], "dagster/row_count") == 40  # tests profile: n_orders 40
        assert md_value(mats[CUSTOMERS], "dagster/row_count") == 10

        checks = check_results(result)
        assert len(checks) == 8  # 4 declared, 4 schema-change checks
        assert all(c.passed for c in checks.values()), checks

        # no credential anywhere in what the run recorded
        assert SECRET not in all_event_text(instance, result.run_id)
        assert SECRET not in str(result.all_events)

        # per-run working dirs: <data_dir>/runs/<run_id>/<pipeline>, deleted on success
        run_dir = data_dir / "runs" / result.run_id
        assert not run_dir.exists()  # the run's folder goes too once every pipeline is done
        assert not (run_dir / "shop_pipeline").exists()
        assert not (run_dir / "stores_pipeline").exists()
        pipelines_dir = data_dir / "pipelines"
        assert not (pipelines_dir / "shop_pipeline").exists()
        assert not (pipelines_dir / "stores_pipeline").exists()

    # reading metadata changed no schema: the same data left the same schema versions
    assert versions[0] == versions[1]
    # merge on primary keys: the second run did not duplicate rows
    assert count_rows(shop_project, "shop_raw", "orders") == 40


def test_subset_runs_only_the_selected_resource(
    shop_project: Path, instance: DagsterInstance
) -> None:
    defs = build_definitions(str(shop_project), PROFILE)
    result = run_assets(defs, instance, [ORDERS])
    assert result.success
    assert set(materializations(result)) == {ORDERS}
    assert {k for k, _ in check_results(result)} == {ORDERS}
    tables = duckdb_tables(shop_project)
    assert "shop_raw.orders" in tables
    assert "shop_raw.customers" not in tables  # the customers resource did not run
    assert "shop_raw.products" not in tables
    assert count_rows(shop_project, "shop_raw", "orders") == 40


# --- external tables and checks ----------------------------------------------------------


def test_external_table_is_observable_and_reports_row_count(
    shop_project: Path, instance: DagsterInstance
) -> None:
    edit_manifest(
        shop_project,
        lambda doc: doc["datasets"]["shop_raw"]["tables"].update(
            {"legacy_accounts": {"description": "Accounts from the old system"}}
        ),
    )
    defs = build_definitions(str(shop_project), PROFILE)
    graph = defs.resolve_asset_graph()
    node = graph.get(LEGACY)
    assert node.is_observable and not node.is_materializable
    assert node.kinds == {"dlt", "duckdb"}
    assert set(graph.materializable_asset_keys) == EXAMPLE_KEYS  # pipelines still own the rest

    # a table some other tool wrote: no dlt schema knows it
    import duckdb

    db = shop_project / "_data" / PROFILE / "local" / "warehouse.duckdb"
    db.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA shop_raw")
    con.execute("CREATE TABLE shop_raw.legacy_accounts AS SELECT range AS id FROM range(3)")
    con.close()

    result = run_assets(defs, instance, [LEGACY])
    assert result.success
    observations = [
        e.event_specific_data.asset_observation
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]
    assert [o.asset_key for o in observations] == [LEGACY]
    md = observations[0].metadata
    assert md_value(md, "dagster/row_count") == 3
    assert md_value(md, "dagster/table_name") == "warehouse.shop_raw.legacy_accounts"
    assert not materializations(result)
    assert instance.get_latest_data_version_record(LEGACY) is not None


def test_checks_fail_on_bad_data(shop_project: Path, instance: DagsterInstance) -> None:
    def edit(doc: dict[str, Any]) -> None:
        # customers' cities repeat (10 customers over 5 cities); no orders at all
        doc["datasets"]["shop_raw"]["tables"]["customers"]["checks"] = {
            "not_empty": True, "unique": ["city"],
        }
        doc["profiles"]["tests"]["sources"]["shop"]["n_orders"] = 0

    edit_manifest(shop_project, edit)
    defs = build_definitions(str(shop_project), PROFILE)
    result = run_assets(defs, instance, [CUSTOMERS, ORDERS])
    assert result.success  # failed checks are reported, the step does not crash
    checks = check_results(result)
    assert checks[(CUSTOMERS, "not_empty")].passed
    unique = checks[(CUSTOMERS, "unique")]
    assert not unique.passed
    assert md_value(unique.metadata, "duplicate_keys") == 5
    not_empty = checks[(ORDERS, "not_empty")]
    assert not not_empty.passed
    assert md_value(not_empty.metadata, "row_count") == 0
    assert checks[(ORDERS, "unique")].passed  # no rows: no duplicates


# --- `current` inside a run --------------------------------------------------------------


def test_current_in_a_step_is_the_runs_project_and_profile(
    shop_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instance: DagsterInstance
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no dlt.yml here or above
    seen: list[dict[str, str]] = []

    @asset
    def probe(dlt_project: DltProjectResource) -> None:
        project = current.project()
        seen.append(
            {
                "profile": project.current_profile,
                "dir": project.project_dir,
                "catalog": current.catalog().project.current_profile,
                "runner": current.runner().project.current_profile,
                "resource": dlt_project.project().current_profile,
            }
        )

    defs = Definitions.merge(build_definitions(str(shop_project), "dev"), Definitions([probe]))
    assert defs.resolve_asset_graph().get(K("probe")) is not None

    # the code location's resource: dev
    assert run_assets(defs, instance, [K("probe")]).success
    # the profile changed for one run (as in the Launchpad)
    result = run_assets(
        defs,
        instance,
        [K("probe")],
        run_config=profile_run_config(PROFILE),
    )
    assert result.success
    # the same asset with the resource replaced
    result = materialize(
        [probe],
        resources={"dlt_project": DltProjectResource(project_dir=str(shop_project),
                                                     profile=PROFILE)},
        instance=instance,
    )
    assert result.success

    assert [s["profile"] for s in seen] == ["dev", PROFILE, PROFILE]
    for s in seen:
        assert s["catalog"] == s["runner"] == s["resource"] == s["profile"]
        assert os.path.samefile(s["dir"], shop_project)
    # outside of a run nothing leaked: there is no project in the working dir
    with pytest.raises(ProjectNotFound):
        current.project()


# --- a custom translator -----------------------------------------------------------------


class FlatKeys(DltProjectTranslator):
    """One-part keys, one group per dataset, a tag: all in one place."""

    def get_asset_key(self, data: TableAssetData) -> AssetKey:
        return AssetKey([f"{data.dataset}__{data.table}"])

    def get_group_name(self, data: TableAssetData) -> str | None:
        return f"ds_{data.dataset}"

    def get_tags(self, data: TableAssetData) -> dict[str, str]:
        return {"layer": data.kind}


def test_custom_translator_keys_groups_lineage_and_inputs(
    shop_project: Path, instance: DagsterInstance
) -> None:
    seen: dict[str, Any] = {}

    @asset(ins={"orders": AssetIn(key=K("shop_raw__orders"))})
    def order_count(orders: pd.DataFrame) -> None:
        seen["orders"] = orders

    defs = Definitions.merge(
        build_definitions(str(shop_project), PROFILE, FlatKeys()), Definitions([order_count])
    )
    graph = defs.resolve_asset_graph()
    flat = {K(f"{k.path[0]}__{k.path[1]}") for k in EXAMPLE_KEYS}
    assert set(graph.get_all_asset_keys()) == flat | {K("order_count")}
    assert set(graph.materializable_asset_keys) == flat | {K("order_count")}  # no stubs
    assert graph.get(K("shop_raw__orders")).group_name == "ds_shop_raw"
    assert graph.get(K("shop_reports__customer_totals")).group_name == "ds_shop_reports"
    assert graph.get(K("shop_raw__orders")).tags["layer"] == "pipeline"
    # lineage follows the translator's keys
    assert set(graph.get(K("shop_reports__customer_totals")).parent_keys) == {
        K("shop_raw__customers"), K("shop_raw__orders")
    }
    daily = defs.resolve_job_def("daily_refresh")
    assert set(daily.asset_layer.selected_asset_keys) == flat

    # a pipeline table under a translated key still loads through dlt_dataset_io
    result = run_assets(defs, instance, [K("shop_raw__orders"), K("order_count")])
    assert result.success
    assert len(seen["orders"]) == 40
    md = materializations(result)[K("shop_raw__orders")]
    assert md_value(md, "dagster/table_name") == "warehouse.shop_raw.orders"


class LakeSpecs(DltProjectTranslator):
    """Overrides `get_asset_spec` only (no `get_asset_key`): every key gets a `lake` prefix."""

    def get_asset_spec(self, data: TableAssetData) -> AssetSpec:
        spec = super().get_asset_spec(data)
        return spec.replace_attributes(key=spec.key.with_prefix("lake"))


def lake(key: AssetKey) -> AssetKey:
    return key.with_prefix("lake")


def test_a_translator_overriding_only_get_asset_spec_keys_everything(
    shop_project: Path, instance: DagsterInstance
) -> None:
    """Lineage (a transformation's inputs, also a declared table nothing writes), checks, jobs,
    schedules and IO manager reads all follow the keys of `get_asset_spec`."""

    def edit(doc: dict[str, Any]) -> None:
        doc["datasets"]["shop_raw"]["tables"]["legacy_accounts"] = {}
        doc["transformations"]["customer_totals"]["depends_on"].append("shop_raw/legacy_accounts")

    edit_manifest(shop_project, edit)
    seen: dict[str, Any] = {}

    @asset(ins={"orders": AssetIn(key=lake(ORDERS))})
    def order_count(orders: pd.DataFrame) -> None:
        seen["orders"] = orders

    defs = Definitions.merge(
        build_definitions(str(shop_project), PROFILE, LakeSpecs()), Definitions([order_count])
    )
    graph = defs.resolve_asset_graph()
    ours = {lake(k) for k in EXAMPLE_KEYS | {LEGACY}}
    assert set(graph.get_all_asset_keys()) == ours | {K("order_count")}  # no unprefixed stubs
    assert set(graph.get(lake(CUSTOMER_TOTALS)).parent_keys) == {
        lake(CUSTOMERS), lake(ORDERS), lake(LEGACY)
    }
    assert graph.get(lake(LEGACY)).is_observable
    assert {(c.asset_key, c.name) for c in graph.asset_check_keys} == {
        (lake(k), c) for k in (ORDERS, CUSTOMERS) for c in ("not_empty", "unique")
    } | {(lake(k), "dlt_schema_change") for k in (ORDERS, CUSTOMERS, PRODUCTS, STORES)}
    daily = defs.resolve_job_def("daily_refresh")
    assert set(daily.asset_layer.selected_asset_keys) == {lake(k) for k in EXAMPLE_KEYS}
    nightly = next(s for s in defs.schedules if s.name == "nightly_refresh")
    assert nightly.job_name == "daily_refresh"

    result = run_assets(defs, instance, [lake(ORDERS), lake(CUSTOMERS), K("order_count")])
    assert result.success
    assert len(seen["orders"]) == 40  # the IO manager read the table behind the prefixed key
    assert {(k, n) for (k, n), e in check_results(result).items() if e.passed} == {
        (lake(k), c) for k in (ORDERS, CUSTOMERS)
        for c in ("not_empty", "unique", "dlt_schema_change")
    }
    md = materializations(result)[lake(ORDERS)]
    ids = DltTableMetadataSet.extract(md)
    assert (ids.dataset, ids.table, ids.pipeline) == ("shop_raw", "orders", "shop_pipeline")


class BareSpecs(DltProjectTranslator):
    """Builds its own spec from scratch: no metadata, no group, only a key and the deps."""

    def get_asset_spec(self, data: TableAssetData) -> AssetSpec:
        return AssetSpec(key=AssetKey(["bare", data.dataset, data.table]), deps=data.deps)


def test_a_spec_without_dlt_metadata_still_joins_up(shop_project: Path) -> None:
    defs = build_definitions(str(shop_project), PROFILE, BareSpecs())
    graph = defs.resolve_asset_graph()
    bare = {k.with_prefix("bare") for k in EXAMPLE_KEYS}
    assert set(graph.get_all_asset_keys()) == bare
    assert set(graph.get(CUSTOMER_TOTALS.with_prefix("bare")).parent_keys) == {
        CUSTOMERS.with_prefix("bare"), ORDERS.with_prefix("bare")
    }
    specs = {k: s for a in defs.assets for k, s in a.specs_by_key.items()}
    ids = DltTableMetadataSet.extract(specs[ORDERS.with_prefix("bare")].metadata)
    assert (ids.dataset, ids.table, ids.pipeline, ids.destination) == (
        "shop_raw", "orders", "shop_pipeline", "warehouse")


@pytest.mark.parametrize("kind", ["pipeline", "transformation", "external"])
def test_spec_identity_is_the_typed_metadata_set(kind: Any) -> None:
    """The translator writes the `dlt/*` identity as a plain dict (fast at 500 pipelines):
    it is exactly what `DltTableMetadataSet` splats, and reads back typed."""
    data = TableAssetData(kind=kind, entity="Wéird name", dataset="d-1", table="t.2",
                          destination="warehouse", destination_type="duckdb")
    assert identity_metadata(data) == dict(DltTableMetadataSet(
        dataset="d-1", table="t.2", destination="warehouse", **{kind: "Wéird name"}))
    typed = DltTableMetadataSet.extract(DltProjectTranslator().get_asset_spec(data).metadata)
    assert getattr(typed, kind) == "Wéird name"
    assert (typed.dataset, typed.table, typed.destination) == ("d-1", "t.2", "warehouse")


# --- failures and profiles per run -------------------------------------------------------


def test_failed_run_keeps_its_working_dir_and_no_secret(
    shop_project: Path, instance: DagsterInstance
) -> None:
    source = shop_project / "sources" / "shop.py"
    code = source.read_text(encoding="utf-8")
    marker = '        """Orders with their amounts."""\n'
    assert marker in code
    source.write_text(
        code.replace(marker, marker + '        raise RuntimeError("orders API is down")\n'),
        encoding="utf-8",
    )
    defs = build_definitions(str(shop_project), PROFILE)
    result = run_assets(defs, instance, [ORDERS], raise_on_error=False)
    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures
    messages = []
    error = failures[0].event_specific_data.error
    while error is not None:
        messages.append(error.message + "".join(error.stack))
        error = error.cause
    assert "orders API is down" in "\n".join(messages)
    assert SECRET not in "\n".join(messages)
    assert SECRET not in all_event_text(instance, result.run_id)
    # kept for inspection
    assert (shop_project / "_data" / PROFILE / "runs" / result.run_id / "shop_pipeline").is_dir()
    assert not (shop_project / "_data" / PROFILE / "pipelines" / "shop_pipeline").exists()


def test_the_runs_profile_decides_where_data_goes(
    shop_project: Path, instance: DagsterInstance
) -> None:
    defs = build_definitions(str(shop_project), "dev")  # the code location's profile
    result = run_assets(
        defs,
        instance,
        [ORDERS],
        run_config=profile_run_config(PROFILE),
    )
    assert result.success
    md = materializations(result)[ORDERS]
    assert md_value(md, "dlt/profile") == PROFILE
    assert md_value(md, "dagster/row_count") == 40  # the tests profile's n_orders
    assert "shop_raw.orders" in duckdb_tables(shop_project, PROFILE)
    assert not (shop_project / "_data" / "dev" / "local" / "warehouse.duckdb").exists()


def test_definitions_load_from_cached_table_lists(shop_project: Path) -> None:
    first = build_definitions(str(shop_project), PROFILE)
    assert (shop_project / ".dlt" / ".dltplus_state.json").is_file()
    # without the secret the source function would raise: a cached load never calls it
    (shop_project / ".dlt" / "secrets.toml").unlink()
    second = build_definitions(str(shop_project), PROFILE)
    assert set(second.resolve_asset_graph().get_all_asset_keys()) == set(
        first.resolve_asset_graph().get_all_asset_keys()
    )
    assert not duckdb_tables(shop_project)
