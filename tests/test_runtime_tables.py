"""Tables a source decides at run time: one resource writing a table per row kind
(`table_name=lambda row: row["kind"]`) and nested child tables (`orders__items`). Each becomes
its own asset `<dataset>/<table>` once known (from the schema a run stored, from `dltplus
project prepare`, or declared in `datasets.<ds>.tables`); a run reports rows per table."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetKey, AssetSpec, DagsterInstance, Definitions, asset
from dagster._core.definitions.metadata import TableMetadataSet
from dagster_support import materializations, md_value, run_assets
from helpers import make_project
from sources_support import cli, forget_local_data, table_counts

from dltplus_dagster import DltProjectTranslator, DltTableMetadataSet, build_definitions, current
from dltplus_dagster.dagster.translator import TableAssetData

EVENTS = '''
import dlt


@dlt.source
def activity(n_events: int = dlt.config.value):
    @dlt.resource(table_name=lambda row: row["kind"], write_disposition="replace")
    def events():
        """Events, one table per kind."""
        for i in range(n_events):
            yield {"id": i, "kind": ["click", "view", "buy"][i % 3]}

    @dlt.resource(primary_key="order_id", write_disposition="replace")
    def orders():
        """Orders with their items."""
        for i in range(4):
            yield {"order_id": i, "items": [{"sku": f"s{j}", "qty": j} for j in range(i % 3 + 1)]}

    return events, orders
'''

YML = """
project:
  name: activity_project
sources:
  activity:
    type: activity.activity
    n_events: 7
destinations:
  warehouse:
    type: duckdb
pipelines:
  activity_pipeline:
    source: activity
    destination: warehouse
    dataset_name: activity_data
"""

ROWS = {"click": 3, "view": 2, "buy": 2, "orders": 4, "orders__items": 7}
DS = "activity_data"


def key(table: str) -> AssetKey:
    return AssetKey([DS, table])


def _project(tmp_path: Path, yml: str = YML) -> Path:
    return make_project(tmp_path, yml, {"sources/activity.py": EVENTS})


def _load_ids(root: Path, table: str) -> set[str]:
    import duckdb
    from sources_support import duckdb_path

    con = duckdb.connect(str(duckdb_path(root)), read_only=True)
    try:
        return {r[0] for r in con.execute(f'SELECT DISTINCT _dlt_load_id FROM {DS}."{table}"')
                .fetchall()}
    finally:
        con.close()


def test_tables_found_by_a_run_become_assets_after_a_reload(
    tmp_path: Path, instance: DagsterInstance
) -> None:
    root = _project(tmp_path)
    first = build_definitions(str(root))
    before = set(first.resolve_asset_graph().get_all_asset_keys())
    assert key("orders") in before and key("click") not in before

    run = run_assets(first, instance)
    assert run.success
    assert table_counts(root, DS) == ROWS
    logs = "\n".join(str(e.message) for e in instance.all_logs(run.run_id))
    assert "not assets yet" in logs
    for table in ("click", "view", "buy", "orders__items"):
        assert table in logs

    second = build_definitions(str(root))
    graph = second.resolve_asset_graph()
    keys = set(graph.get_all_asset_keys())
    assert keys == {key(t) for t in ROWS}  # the per-row resource's placeholder is gone
    assert graph.get(key("orders__items")).parent_keys == {key("orders")}

    run = run_assets(second, instance)
    assert run.success
    mats = materializations(run)
    for table, rows in ROWS.items():
        assert md_value(mats[key(table)], "dagster/row_count") == rows, table
        assert md_value(mats[key(table)], "dlt/rows_loaded") == rows, table
        assert md_value(mats[key(table)], "dagster/table_name") == f"warehouse.{DS}.{table}"
    logs = "\n".join(str(e.message) for e in instance.all_logs(run.run_id))
    assert "not assets yet" not in logs

    # a child table alone runs its root's resource: the per-kind tables are not loaded again
    clicks, orders = _load_ids(root, "click"), _load_ids(root, "orders")
    run = run_assets(second, instance, [key("orders__items")])
    assert run.success
    assert set(materializations(run)) == {key("orders__items")}
    assert _load_ids(root, "click") == clicks
    assert _load_ids(root, "orders") != orders  # items live with their orders (dlt's nesting)


def test_declared_tables_are_the_pipelines_assets_before_any_run(
    tmp_path: Path, instance: DagsterInstance
) -> None:
    root = _project(tmp_path, YML + """
datasets:
  activity_data:
    destination: [warehouse]
    tables:
      click: {checks: {not_empty: true}}
      view: {}
      buy: {}
      orders__items: {description: Items of each order}
""")
    defs = build_definitions(str(root))
    graph = defs.resolve_asset_graph()
    assert set(graph.get_all_asset_keys()) == {key(t) for t in ROWS}
    for table in ROWS:
        assert graph.get(key(table)).is_materializable, table  # not external observables
    assert graph.get(key("orders__items")).parent_keys == {key("orders")}

    run = run_assets(defs, instance, [key("click")])
    assert run.success
    mats = materializations(run)
    assert md_value(mats[key("click")], "dagster/row_count") == 3
    checks = {e.check_name: e.passed for e in run.get_asset_check_evaluations()}
    assert checks == {"not_empty": True, "dlt_schema_change": True}


def test_runner_cli_row_counts_and_prepare_report_every_table(tmp_path: Path) -> None:
    root = _project(tmp_path)
    result = current.runner(str(root)).run_pipeline("activity_pipeline")
    assert result.row_counts == ROWS
    assert set(result.new_tables) == {"click", "view", "buy", "orders__items"}
    assert "new table(s)" in str(result)

    again = current.runner(str(root)).run_pipeline("activity_pipeline")
    assert again.new_tables == []  # known now

    proc = cli(root, "dataset", DS, "row-counts")
    assert proc.returncode == 0, proc.stderr
    lines = {tuple(line.split()) for line in proc.stdout.splitlines()}
    for table, rows in ROWS.items():
        assert (table, str(rows)) in lines, proc.stdout

    # a fresh checkout (no table cache) learns them from the schema stored in the destination
    (root / ".dlt" / ".dltplus_state.json").unlink()
    proc = cli(root, "project", "prepare")
    assert proc.returncode == 0, proc.stderr
    listed = proc.stdout.split("activity_pipeline:")[1].splitlines()[0]
    assert {t.strip() for t in listed.split("(")[0].split(",")} == set(ROWS)
    forget_local_data(root)  # the stored schema alone decides the assets, not local state
    keys = set(build_definitions(str(root)).resolve_asset_graph().get_all_asset_keys())
    assert keys == {key(t) for t in ROWS}


def test_a_hand_edited_table_cache_is_ignored_not_fatal(tmp_path: Path) -> None:
    """Entries of `.dlt/.dltplus_state.json` that do not fit count as not cached."""
    import json

    root = _project(tmp_path)
    state = root / ".dlt" / ".dltplus_state.json"
    for doc in (
        {"version": 1, "pipelines": {"activity_pipeline": ["not", "a", "mapping"]}},
        {"version": 1, "pipelines": {"activity_pipeline": {
            "seen": {"dataset": DS, "destination": "warehouse",
                     "tables": [{"bogus": 1}, "x", {"resource": "orders", "table": None}]},
            "tables": "nope", "dynamic": "events", "fingerprint": 3}}},
        {"version": 1, "pipelines": [1, 2]},
    ):
        state.parent.mkdir(exist_ok=True)
        state.write_text(json.dumps(doc), encoding="utf-8")
        keys = set(build_definitions(str(root)).resolve_asset_graph().get_all_asset_keys())
        assert keys == {key("events"), key("orders")}


def test_per_row_tables_stand_alone_and_a_dbt_source_links_up(
    tmp_path: Path, instance: DagsterInstance
) -> None:
    """Tables of a per-row resource have no dependency (the resource is no table of its own);
    a nested table depends on its parent, also under a translator that overrides only
    `get_asset_spec`. A downstream asset keyed the way dagster-dbt keys a dbt source named
    like the dataset (`AssetKey([source_name, table])`) links to the pipeline's table without
    extra code: a plain `@asset(deps=...)` stands in for dagster-dbt here (not installed)."""
    root = _project(tmp_path)
    current.runner(str(root)).run_pipeline("activity_pipeline")  # the tables become known

    @asset(deps=[AssetKey([DS, "orders"]), AssetKey([DS, "click"])])
    def stg_orders() -> None:
        """What dagster-dbt's default translator makes of `source('activity_data', ...)`."""

    defs = Definitions.merge(build_definitions(str(root)), Definitions([stg_orders]))
    graph = defs.resolve_asset_graph()
    for table in ("click", "view", "buy"):
        assert graph.get(key(table)).parent_keys == set(), table
    assert graph.get(key("orders__items")).parent_keys == {key("orders")}
    assert graph.get(AssetKey("stg_orders")).parent_keys == {key("orders"), key("click")}
    assert set(graph.get_all_asset_keys()) == {key(t) for t in ROWS} | {AssetKey("stg_orders")}
    assert all(graph.get(key(t)).is_materializable for t in ROWS)  # no stubs in between

    class Lake(DltProjectTranslator):
        def get_asset_spec(self, data: TableAssetData) -> AssetSpec:
            spec = super().get_asset_spec(data)
            return spec.replace_attributes(key=spec.key.with_prefix("lake"))

    lake = build_definitions(str(root), translator=Lake())
    graph = lake.resolve_asset_graph()
    items, orders = key("orders__items").with_prefix("lake"), key("orders").with_prefix("lake")
    assert graph.get(items).parent_keys == {orders}
    assert set(graph.get_all_asset_keys()) == {key(t).with_prefix("lake") for t in ROWS}

    run = run_assets(lake, instance, [items])
    assert run.success
    ids = DltTableMetadataSet.extract(materializations(run)[items])
    assert (ids.dataset, ids.table, ids.pipeline, ids.rows_loaded) == (
        DS, "orders__items", "activity_pipeline", ROWS["orders__items"])
    assert TableMetadataSet.extract(materializations(run)[items]).row_count == 7
