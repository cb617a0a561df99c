"""The code location: the example project (or the project in DLT_PROJECT_DIR) plus one asset of
your own, `big_orders`, joined to the pipeline tables through the project's IO manager.

    dagster dev -w workspace.yaml
    dagster asset materialize -f definitions.py --select '*'     # what `make demo` runs
"""

import os

import pandas as pd
from dagster import AssetIn, Definitions, asset

from dltplus_dagster import build_definitions

EXAMPLE_PROJECT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "examples", "shop_project", "shop_project"
)


@asset(key=["shop_reports", "big_orders"], io_manager_key="dlt_dataset_io",
       ins={"orders": AssetIn(key=["shop_raw", "orders"])},   # lineage joins the pipeline asset
       op_tags={"dltplus/local_file": "duckdb:warehouse"})    # one DuckDB writer at a time
def big_orders(orders: pd.DataFrame) -> pd.DataFrame:   # loads shop_raw.orders from DuckDB
    """Orders over 50; written to shop_reports.big_orders (the dataset the key names)."""
    return orders[orders.amount > 50]


defs = Definitions.merge(
    build_definitions(os.environ.get("DLT_PROJECT_DIR") or EXAMPLE_PROJECT),
    Definitions(assets=[big_orders]),
)
