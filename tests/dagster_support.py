"""Shared helpers for the Dagster integration tests: reads of the example project's DuckDB.

The `shop_project` (a fresh copy of the example) and `instance` (an ephemeral Dagster instance)
fixtures live in `conftest.py`; `copy_example` in `helpers.py`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
from dagster import AssetKey, DagsterInstance, Definitions

SECRET = "shop-demo-key-7f3a9c"  # planted in the example's .dlt/secrets.toml
PROFILE = "tests"

# the example project's assets
ORDERS = AssetKey(["shop_raw", "orders"])
CUSTOMERS = AssetKey(["shop_raw", "customers"])
PRODUCTS = AssetKey(["shop_raw", "products"])
STORES = AssetKey(["shop_raw", "stores"])
CUSTOMER_TOTALS = AssetKey(["shop_reports", "customer_totals"])
EXAMPLE_KEYS = {ORDERS, CUSTOMERS, PRODUCTS, STORES, CUSTOMER_TOTALS}


def duckdb_file(project_dir: Path, profile: str = PROFILE) -> Path:
    """The example's `warehouse` DuckDB file for `profile`."""
    return Path(project_dir) / "_data" / profile / "local" / "warehouse.duckdb"


def duckdb_tables(project_dir: Path, profile: str = PROFILE) -> set[str]:
    """`schema.table` of every table in the profile's DuckDB file (opened read-only)."""
    path = duckdb_file(project_dir, profile)
    if not path.exists():
        return set()
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
        ).fetchall()
    finally:
        con.close()
    return {f"{s}.{t}" for s, t in rows}


def duckdb_query(project_dir: Path, sql: str, profile: str = PROFILE) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(duckdb_file(project_dir, profile)), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def md_value(metadata: dict[str, Any], key: str) -> Any:
    """The raw value of a metadata entry (MetadataValue wrappers unwrapped)."""
    value = metadata[key]
    return getattr(value, "value", value)


def run_assets(
    defs: Definitions,
    inst: DagsterInstance,
    selection: list[AssetKey] | None = None,
    **kwargs: Any,
) -> Any:
    """Execute the code location's global asset job in process (all assets, or `selection`)."""
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(instance=inst, asset_selection=selection, **kwargs)


def materializations(result: Any) -> dict[AssetKey, dict[str, Any]]:
    """The metadata of every asset a run materialized, by asset key."""
    out = {}
    for event in result.get_asset_materialization_events():
        m = event.step_materialization_data.materialization
        out[m.asset_key] = dict(m.metadata)
    return out
