"""Materialization metadata for dataset tables: row counts, qualified names, column schemas.

Reads dlt schemas through deep copies only and never includes credentials. (dagster-dlt's
`_extract_table_schema_metadata` pops keys from the live pipeline schema's column dicts, so a
second materialization in the same process fails in extract with `KeyError: 'name'`.)
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any, cast

from dagster import MetadataValue, TableColumn, TableColumnConstraints, TableSchema

from dltplus_dagster.project.dataset import Dataset


def database_name(dataset: Dataset) -> str | None:
    """The destination's database (DuckDB: the file's stem), never the credentials."""
    try:
        creds = dataset.dlt_dataset.destination_client.config.credentials
    except Exception:  # noqa: BLE001 - a destination without a database (filesystem)
        return None
    db = getattr(creds, "database", None)
    if not isinstance(db, str) or not db:
        return None
    if db.endswith((".duckdb", ".db")) or os.sep in db:
        return os.path.splitext(os.path.basename(db))[0]
    return db


def qualified_table_name(dataset: Dataset, table: str, database: str | None) -> str:
    parts = [database] if database else []
    return ".".join([*parts, dataset.name, table])


def column_schema(table_schema: Mapping[str, Any] | None) -> TableSchema | None:
    if not table_schema:
        return None
    columns = copy.deepcopy(dict(table_schema.get("columns") or {}))
    return TableSchema(
        columns=[
            TableColumn(
                name=name,
                type=str(col.get("data_type") or "unknown"),
                description=col.get("description"),
                constraints=TableColumnConstraints(
                    nullable=bool(col.get("nullable", True)),
                    unique=bool(col.get("unique", False)),
                    other=["primary_key"] if col.get("primary_key") else [],
                ),
            )
            for name, col in columns.items()
        ]
    )


def stored_table_schema(dataset: Dataset, table: str) -> dict[str, Any] | None:
    for schema in dataset.dlt_dataset.schemas:
        if table in schema.tables:
            return cast("dict[str, Any]", copy.deepcopy(schema.tables[table]))  # a TypedDict
    return None


def stored_schema_metadata(dataset: Dataset, table: str) -> dict[str, Any]:
    """Name, version and hash of the stored dlt schema that holds `table` (empty if none)."""
    for schema in dataset.dlt_dataset.schemas:
        if table in schema.tables:
            return {
                "dlt/schema": schema.name,
                "dlt/schema_version": schema.version,
                "dlt/schema_hash": schema.version_hash,
            }
    return {}


def table_metadata(
    dataset: Dataset,
    table: str,
    row_count: int | None,
    database: str | None,
    table_schema: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Standard Dagster table metadata plus dlt's (`dlt/...`) for one table."""
    md: dict[str, Any] = {
        "dagster/table_name": qualified_table_name(dataset, table, database),
        "dlt/dataset": dataset.name,
        "dlt/destination": dataset.destination_name,
    }
    if row_count is not None:
        md["dagster/row_count"] = MetadataValue.int(int(row_count))
    schema = column_schema(table_schema)
    if schema is not None:
        md["dagster/column_schema"] = MetadataValue.table_schema(schema)
    if extra:
        md.update(extra)
    return md
