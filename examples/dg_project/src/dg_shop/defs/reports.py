"""Your own asset next to the project's: it reads the pipeline table `shop_raw/orders` and
writes `shop_reports/big_orders`, both through the project's dataset IO manager."""

import dagster as dg
import pandas as pd


@dg.asset(
    key=["shop_reports", "big_orders"],
    io_manager_key="dlt_dataset_io",  # registered by the component: dataset = key's first part
    ins={"orders": dg.AssetIn(key=["shop_raw", "orders"])},  # lineage joins the pipeline asset
    group_name="reports",
    # DuckDB takes one writer process per file: the executor runs steps with this tag one by one
    op_tags={"dltplus/local_file": "duckdb:warehouse"},
)
def big_orders(orders: pd.DataFrame) -> pd.DataFrame:
    """Orders over 50, read from the pipeline's table in the warehouse."""
    return orders[orders.amount > 50]
