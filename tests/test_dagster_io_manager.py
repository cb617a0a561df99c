"""DltDatasetIOManager wired by build_definitions: frames into catalog datasets and back."""

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    Config,
    DagsterInstance,
    Definitions,
    StaticPartitionsDefinition,
    asset,
)
from dagster_support import (
    ORDERS,
    PROFILE,
    duckdb_query,
    duckdb_tables,
    materializations,
    md_value,
    run_assets,
)

from dltplus_dagster import DltDatasetIOManager, build_definitions, current

K = AssetKey


def reports_defs(project: Path, assets: list[AssetsDefinition]) -> Definitions:
    """The example project plus `assets`; `reports_io` gets the project's resource."""
    project_defs = build_definitions(str(project), PROFILE)
    return Definitions.merge(project_defs, Definitions(
        assets=assets,
        resources={"reports_io": DltDatasetIOManager(
            dataset="shop_reports", dlt_project=project_defs.resources["dlt_project"]
        )},
    ))


def rows(project: Path, sql: str) -> list[tuple[Any, ...]]:
    return duckdb_query(project, sql)


def failure_text(result: Any) -> str:
    """Messages of every step failure, with their causes."""
    parts = []
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        error = event.event_specific_data.error
        while error is not None:
            parts.append(error.message)
            error = error.cause
    return "\n".join(parts)


# --- write and read back -----------------------------------------------------------------


def test_frame_written_then_read_as_pandas_arrow_and_selected_columns(
    shop_project: Path, instance: DagsterInstance
) -> None:
    seen: dict[str, Any] = {}
    stats_key = K(["shop_reports", "city_stats"])

    @asset(key=stats_key, io_manager_key="reports_io")
    def city_stats() -> pd.DataFrame:
        return pd.DataFrame({"city": ["Berlin", "Lisbon", "Oslo"], "customers": [4, 3, 3]})

    @asset(ins={"stats": AssetIn(key=stats_key)})
    def stats_as_pandas(stats: pd.DataFrame) -> None:
        seen["pandas"] = stats

    @asset(ins={"stats": AssetIn(key=stats_key)})
    def stats_as_arrow(stats: pa.Table) -> None:
        seen["arrow"] = stats

    @asset(ins={"stats": AssetIn(key=stats_key, metadata={"columns": ["city"]})})
    def only_cities(stats: pd.DataFrame) -> None:
        seen["cities"] = stats

    defs = reports_defs(shop_project, [city_stats, stats_as_pandas, stats_as_arrow, only_cities])
    graph = defs.resolve_asset_graph()
    assert set(graph.get(K("stats_as_arrow")).parent_keys) == {stats_key}

    result = run_assets(
        defs,
        instance,
        [stats_key, K("stats_as_pandas"), K("stats_as_arrow"), K("only_cities")],
    )
    assert result.success

    sql = "SELECT city, customers FROM shop_reports.city_stats ORDER BY city"
    assert rows(shop_project, sql) == [
        ("Berlin", 4), ("Lisbon", 3), ("Oslo", 3)
    ]
    md = materializations(result)[stats_key]
    assert md_value(md, "dagster/row_count") == 3
    assert md_value(md, "dagster/table_name") == "warehouse.shop_reports.city_stats"
    assert md_value(md, "dlt/load_id")

    frame = seen["pandas"]
    assert isinstance(frame, pd.DataFrame)
    assert sorted(frame["city"]) == ["Berlin", "Lisbon", "Oslo"]
    assert dict(zip(frame["city"], frame["customers"])) == {"Berlin": 4, "Lisbon": 3, "Oslo": 3}

    table = seen["arrow"]
    assert isinstance(table, pa.Table)
    assert table.num_rows == 3 and {"city", "customers"} <= set(table.column_names)

    cities = seen["cities"]
    assert isinstance(cities, pd.DataFrame)
    assert list(cities.columns) == ["city"]
    assert sorted(cities["city"]) == ["Berlin", "Lisbon", "Oslo"]

    # the catalog sees the same table
    assert current.catalog(str(shop_project), PROFILE).dataset("shop_reports").df(
        "city_stats"
    ).shape[0] == 3


def test_pipeline_table_as_input_lineage(shop_project: Path, instance: DagsterInstance) -> None:
    summary_key = K(["shop_reports", "order_summary"])

    @asset(key=summary_key, ins={"orders": AssetIn(key=ORDERS)}, io_manager_key="reports_io")
    def order_summary(orders: pd.DataFrame) -> pd.DataFrame:
        return (
            orders.groupby("customer_id", as_index=False)
            .agg(orders=("order_id", "count"), revenue=("amount", "sum"))
            .sort_values("customer_id")
        )

    defs = reports_defs(shop_project, [order_summary])
    graph = defs.resolve_asset_graph()
    assert set(graph.get(summary_key).parent_keys) == {ORDERS}
    assert summary_key in graph.get(ORDERS).child_keys

    # the pipeline asset and the user's asset in one run: orders load through dlt_dataset_io
    result = run_assets(defs, instance, [ORDERS, summary_key])
    assert result.success, failure_text(result)
    assert set(materializations(result)) == {ORDERS, summary_key}
    # tests profile: 40 orders over 10 customers, 4 each
    assert rows(
        shop_project,
        "SELECT COUNT(*), SUM(orders), MIN(orders), MAX(orders) FROM shop_reports.order_summary",
    ) == [(10, 40, 4, 4)]
    total = rows(shop_project, "SELECT SUM(amount) FROM shop_raw.orders")[0][0]
    summed = rows(shop_project, "SELECT SUM(revenue) FROM shop_reports.order_summary")[0][0]
    assert summed == pytest.approx(total)

    # later run of the summary alone reads what the pipeline stored
    again = run_assets(defs, instance, [summary_key])
    assert again.success, failure_text(again)
    assert rows(shop_project, "SELECT COUNT(*) FROM shop_reports.order_summary") == [(10,)]


# --- partitions --------------------------------------------------------------------------


def test_partitions_replace_only_their_rows(shop_project: Path, instance: DagsterInstance) -> None:
    parts = StaticPartitionsDefinition(["a", "b"])
    sales_key = K(["shop_reports", "sales"])
    version = {"n": 0}
    seen: dict[str, pd.DataFrame] = {}

    @asset(key=sales_key, partitions_def=parts, io_manager_key="reports_io")
    def sales(context: AssetExecutionContext) -> pd.DataFrame:
        version["n"] += 1
        key = context.partition_key
        return pd.DataFrame(
            {"store": [f"{key}1", f"{key}2"], "amount": [1.0 * version["n"], 2.0 * version["n"]]}
        )

    @asset(partitions_def=parts, ins={"sales": AssetIn(key=sales_key)})
    def sales_reader(context: AssetExecutionContext, sales: pd.DataFrame) -> None:
        seen[context.partition_key] = sales

    defs = reports_defs(shop_project, [sales, sales_reader])
    for key in ("a", "b", "a"):
        result = run_assets(defs, instance, [sales_key], partition_key=key)
        assert result.success, failure_text(result)

    got = rows(
        shop_project,
        "SELECT _partition_key, store, amount FROM shop_reports.sales ORDER BY store",
    )
    # partition a written twice: only its latest rows (run 3); b's rows (run 2) untouched
    assert got == [("a", "a1", 3.0), ("a", "a2", 6.0), ("b", "b1", 2.0), ("b", "b2", 4.0)]

    result = run_assets(defs, instance, [K("sales_reader")], partition_key="b")
    assert result.success, failure_text(result)
    frame = seen["b"]
    assert sorted(frame["store"]) == ["b1", "b2"]
    assert set(frame["_partition_key"]) == {"b"}


# --- edge cases --------------------------------------------------------------------------


def test_unsupported_output_type_fails_clearly(
    shop_project: Path, instance: DagsterInstance
) -> None:
    bad_key = K(["shop_reports", "not_a_frame"])

    @asset(key=bad_key, io_manager_key="reports_io")
    def not_a_frame() -> str:
        return "hello"

    defs = reports_defs(shop_project, [not_a_frame])
    result = run_assets(defs, instance, [bad_key], raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    assert "shop_reports/not_a_frame returned str" in text
    assert "expected a pandas DataFrame, a pyarrow Table or a list of dicts" in text
    assert "shop_reports.not_a_frame" not in duckdb_tables(shop_project)


class RowsConfig(Config):
    n: int = 3


def test_empty_frame_leaves_table_untouched(shop_project: Path, instance: DagsterInstance) -> None:
    """Appending nothing leaves the table; replacing with nothing empties it (test_hostile_save)."""
    key = K(["shop_reports", "maybe_empty"])

    @asset(key=key, io_manager_key="reports_io", metadata={"write_disposition": "append"})
    def maybe_empty(config: RowsConfig) -> pd.DataFrame:
        return pd.DataFrame({"x": pd.Series(range(config.n), dtype="int64")})

    defs = reports_defs(shop_project, [maybe_empty])
    assert run_assets(defs, instance, [key]).success
    assert rows(shop_project, "SELECT COUNT(*) FROM shop_reports.maybe_empty") == [(3,)]

    empty_run = {"ops": {"shop_reports__maybe_empty": {"config": {"n": 0}}}}
    result = run_assets(defs, instance, [key], run_config=empty_run)
    assert result.success, failure_text(result)
    assert rows(shop_project, "SELECT x FROM shop_reports.maybe_empty ORDER BY x") == [
        (0,), (1,), (2,)
    ]
    md = materializations(result)[key]
    assert md_value(md, "dagster/row_count") == 3  # the table's rows, not the empty output's


def test_table_name_with_sql_is_normalized(shop_project: Path, instance: DagsterInstance) -> None:
    catalog = current.catalog(str(shop_project), PROFILE)
    catalog.dataset("shop_raw").save([{"customer_id": 1}], "customers")
    catalog.dataset("shop_reports").save([{"customer_id": 1}], "customers")
    key = K(["shop_reports", "injected"])
    seen: dict[str, pd.DataFrame] = {}

    @asset(
        key=key, io_manager_key="reports_io", metadata={"table_name": "x; drop table customers"}
    )
    def injected() -> pd.DataFrame:
        return pd.DataFrame({"v": [1, 2]})

    @asset(ins={"injected": AssetIn(key=key)})
    def read_injected(injected: pd.DataFrame) -> None:
        seen["frame"] = injected

    defs = reports_defs(shop_project, [injected, read_injected])
    result = run_assets(defs, instance, [key, K("read_injected")])
    assert result.success, failure_text(result)

    tables = duckdb_tables(shop_project)
    assert "shop_raw.customers" in tables
    assert "shop_reports.customers" in tables
    assert "shop_reports.x_drop_table_customers" in tables
    assert rows(shop_project, "SELECT COUNT(*) FROM shop_reports.x_drop_table_customers") == [(2,)]
    assert rows(shop_project, "SELECT COUNT(*) FROM shop_reports.customers") == [(1,)]
    assert sorted(seen["frame"]["v"]) == [1, 2]
    md = materializations(result)[key]
    assert md_value(md, "dagster/table_name") == "warehouse.shop_reports.x_drop_table_customers"


def test_append_disposition_and_list_of_dicts(
    shop_project: Path, instance: DagsterInstance
) -> None:
    key = K(["shop_reports", "events"])

    @asset(key=key, io_manager_key="events_io")
    def events() -> list:
        return [{"id": 1, "kind": "a"}, {"id": 2, "kind": "b"}]

    project_defs = build_definitions(str(shop_project), PROFILE)
    defs = Definitions.merge(project_defs, Definitions(
        assets=[events],
        resources={"events_io": DltDatasetIOManager(
            dataset="shop_reports", write_disposition="append",
            dlt_project=project_defs.resources["dlt_project"],
        )},
    ))
    for _ in range(2):
        result = run_assets(defs, instance, [key])
        assert result.success, failure_text(result)
        assert md_value(materializations(result)[key], "dlt/write_disposition") == "append"
    sql = "SELECT id, COUNT(*) FROM shop_reports.events GROUP BY id ORDER BY id"
    assert rows(shop_project, sql) == [
        (1, 2), (2, 2)
    ]
