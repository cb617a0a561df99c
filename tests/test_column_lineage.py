"""`dagster/column_lineage` of SQL transformations, on a real materialization over DuckDB."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetKey, DagsterInstance, TableColumnDep
from orch_support import ORCH_YML, orch_project, rows

from dltplus_dagster import build_definitions

ACCOUNTS = AssetKey(["crm_raw", "accounts"])
ORDERS = AssetKey(["crm_raw", "orders"])
TOTALS = AssetKey(["reports", "account_totals"])
BIG = AssetKey(["reports", "big_orders"])

LINEAGE_YML = ORCH_YML.replace(
    "    inputs: [crm_raw]\n",
    "      Big Orders: >-\n"
    "        WITH o AS (SELECT order_id, account_id, amount * 2 AS Doubled FROM orders)\n"
    "        SELECT o.*, 'x' AS Label FROM o WHERE o.Doubled > 10\n"
    "    inputs: [crm_raw]\n",
)


def dep(key: AssetKey, column: str) -> TableColumnDep:
    return TableColumnDep(asset_key=key, column_name=column)


def test_materialization_holds_the_column_lineage(
    tmp_path: Path, instance: DagsterInstance
) -> None:
    assert LINEAGE_YML != ORCH_YML
    root = orch_project(tmp_path, LINEAGE_YML)
    defs = build_definitions(str(root), "dev")
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance, asset_selection=[ACCOUNTS, ORDERS, TOTALS, BIG]
    )
    assert result.success
    assert rows(root, "SELECT COUNT(*) FROM reports.big_orders") == [(2,)]

    totals = instance.get_latest_materialization_event(TOTALS)
    assert totals is not None and totals.asset_materialization is not None
    lineage = totals.asset_materialization.metadata["dagster/column_lineage"].value
    assert dict(lineage.deps_by_column) == {
        "account_id": [dep(ACCOUNTS, "id")],
        "account_name": [dep(ACCOUNTS, "name")],
        "total": [dep(ORDERS, "amount")],
    }

    # through a CTE and a star; output names as stored (dlt's naming); a constant has no input
    big = instance.get_latest_materialization_event(BIG)
    assert big is not None and big.asset_materialization is not None
    lineage = big.asset_materialization.metadata["dagster/column_lineage"].value
    assert dict(lineage.deps_by_column) == {
        "order_id": [dep(ORDERS, "order_id")],
        "account_id": [dep(ORDERS, "account_id")],
        "doubled": [dep(ORDERS, "amount")],
        "label": [],
    }
    assert {"order_id", "account_id", "doubled", "label"} <= {
        c for (c,) in rows(root, "SELECT column_name FROM information_schema.columns "
                                 "WHERE table_schema = 'reports' AND table_name = 'big_orders'")
    }
