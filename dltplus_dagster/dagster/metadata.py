"""Metadata of dataset tables: Dagster's standard `dagster/*` entries (`TableMetadataSet`: row
count, qualified name, column schema) and dlt's `dlt/*` entries (`DltTableMetadataSet`).

Both are Dagster `NamespacedMetadataSet`s: written by splatting them into a metadata dict and
read back typed with `DltTableMetadataSet.extract(metadata)`, never by key strings. Reads dlt
schemas through deep copies only and never includes credentials. (dagster-dlt's
`_extract_table_schema_metadata` pops keys from the live pipeline schema's column dicts, so a
second materialization in the same process fails in extract with `KeyError: 'name'`.)
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any, cast

from dagster import TableColumn, TableColumnConstraints, TableSchema
from dagster._core.definitions.metadata import NamespacedMetadataSet, TableMetadataSet

from dltplus_dagster.project.dataset import Dataset


class DltTableMetadataSet(NamespacedMetadataSet):
    """The `dlt/*` metadata of a table asset: which table it is (`dataset`, `table`,
    `destination`), who writes it (`pipeline`, `transformation`, or `external` for a dataset
    table nothing in the project writes) and what the last write did.

    On asset specs it identifies the table, so lineage and the IO manager find it whatever key
    a translator gave it; on materializations it adds the load. Read it back typed:
    `DltTableMetadataSet.extract(materialization.metadata).rows_loaded`.
    """

    dataset: str | None = None
    table: str | None = None
    destination: str | None = None
    pipeline: str | None = None
    transformation: str | None = None
    external: str | None = None
    """The dataset of a table the project only observes."""
    profile: str | None = None
    """The profile the run used."""
    load_id: str | None = None
    """dlt load id(s) of the write, comma-separated."""
    rows_loaded: int | None = None
    """Rows a pipeline run loaded into the table (`dagster/row_count` is the table's total)."""
    rows_written: int | None = None
    """Rows a transformation wrote."""
    write_disposition: str | None = None
    """How the IO manager wrote an output (append, replace, merge)."""
    schema_name: str | None = None
    """The dlt schema that holds the table (`schema` is pydantic's own name)."""
    schema_version: int | None = None
    schema_hash: str | None = None

    @classmethod
    def namespace(cls) -> str:
        return "dlt"


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
    """`DltTableMetadataSet` fields of the stored dlt schema that holds `table`: its name,
    version and hash (empty if none)."""
    for schema in dataset.dlt_dataset.schemas:
        if table in schema.tables:
            return {
                "schema_name": schema.name,
                "schema_version": schema.version,
                "schema_hash": schema.version_hash,
            }
    return {}


def table_metadata(
    dataset: Dataset,
    table: str,
    row_count: int | None,
    database: str | None,
    table_schema: Mapping[str, Any] | None = None,
    dlt_metadata: DltTableMetadataSet | None = None,
) -> dict[str, Any]:
    """Standard Dagster table metadata plus dlt's (`dlt_metadata`, with the table's dataset,
    name and destination filled in) for one table."""
    standard = TableMetadataSet(
        table_name=qualified_table_name(dataset, table, database),
        row_count=int(row_count) if row_count is not None else None,
        column_schema=column_schema(table_schema),
    )
    identity = DltTableMetadataSet(
        dataset=dataset.name, table=table, destination=dataset.destination_name
    )
    return {**standard, **identity, **(dlt_metadata or {})}
