"""DltDatasetIOManager: asset outputs saved into a catalog dataset with `Dataset.save()`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from dagster import ConfigurableIOManager, InitResourceContext, InputContext, OutputContext
from dagster._core.definitions.metadata import TableMetadataSet
from pydantic import Field

from dltplus_dagster.dagster.metadata import (
    DltTableMetadataSet,
    database_name,
    stored_table_schema,
    table_metadata,
)
from dltplus_dagster.dagster.resources import DltProjectResource
from dltplus_dagster.project.catalog import Catalog
from dltplus_dagster.project.dataset import Dataset
from dltplus_dagster.project.errors import ProjectError
from dltplus_dagster.project.names import normalize_table_name

DEFAULT_PARTITION_COLUMN = "_partition_key"


class DltDatasetIOManager(ConfigurableIOManager):
    """Writes asset outputs into dataset `dataset` and reads them back as pandas or pyarrow.

    The table is the last part of the asset key (or the output's `table_name` metadata), the
    dataset `dataset` (or the output's `dataset` metadata; when neither is set, the key's
    next-to-last part: `shop_reports/big_orders` goes to `shop_reports`). Inputs
    are read from the dataset named by the upstream key (`<dataset>/<table>`), so this IO
    manager also loads tables written by project pipelines. Input metadata `columns` selects
    columns. Partitioned assets write and read only their partitions, in the column named by
    the `partition_column` metadata (default `_partition_key`).
    """

    dataset: str = Field(default="", description="Dataset outputs are written to")
    write_disposition: str = Field(default="replace", description="append, replace or merge")
    dlt_project: DltProjectResource | None = Field(
        default=None, description="Project resource; build_definitions sets the `dlt_project` one"
    )

    @contextlib.contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[DltDatasetIOManager]:
        if self.dlt_project is None:
            yield self
            return
        with self.dlt_project.bind_current():
            yield self

    def _catalog(self) -> Catalog:
        if self.dlt_project is not None:
            return self.dlt_project.catalog()
        from dltplus_dagster import current

        return current.catalog()

    def _dataset(self, name: str) -> Dataset:
        if not name:
            raise ProjectError(
                "DltDatasetIOManager: no dataset configured (DltDatasetIOManager(dataset=...))"
            )
        return self._catalog().dataset(name)

    # --- writing ---
    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:
            return  # the asset wrote nothing (e.g. returned None on purpose)
        _check_output_type(obj, context)
        md = context.definition_metadata or {}
        table = normalize_table_name(str(md.get("table_name") or context.asset_key.path[-1]))
        # no dataset configured (the project's `dlt_dataset_io`): the one the key names
        key_dataset = context.asset_key.path[-2] if len(context.asset_key.path) > 1 else ""
        ds = self._dataset(str(md.get("dataset") or self.dataset or key_dataset))
        disposition = str(md.get("write_disposition") or self.write_disposition)
        rows = _num_rows(obj)
        if rows == 0 and disposition != "replace" and not context.has_asset_partitions:
            context.log.warning(
                f"{context.asset_key.to_user_string()}: empty output; table {ds.name}.{table} "
                "left as it was"
            )
            # dagster/row_count is the table's: the rows it still holds, not the empty output's
            existing = ds.row_counts(table_names=[table]).get(table, 0) if table in ds.tables else 0
            context.add_output_metadata(dict(TableMetadataSet(row_count=existing)))
            return
        replace_rows = None
        if context.has_asset_partitions:
            column = str(md.get("partition_column") or DEFAULT_PARTITION_COLUMN)
            keys = list(context.asset_partition_keys)
            obj = _with_partition_column(obj, column, keys)
            replace_rows = (column, keys)  # the partitions' old rows go with the insert
            disposition = "append"
        info = ds.save(obj, table_name=table, write_disposition=disposition,
                       replace_rows=replace_rows)
        context.add_output_metadata(
            table_metadata(
                ds,
                table,
                rows,
                database_name(ds),
                stored_table_schema(ds, table),
                DltTableMetadataSet(
                    load_id=", ".join(info.loads_ids), write_disposition=disposition
                ),
            )
        )

    # --- reading ---
    def load_input(self, context: InputContext) -> Any:
        key = context.asset_key
        upstream_md = (context.upstream_output.definition_metadata if context.upstream_output
                       else None) or {}
        # project assets carry dlt/dataset and dlt/table: their keys may be the translator's
        ids = DltTableMetadataSet.extract(upstream_md)
        table = normalize_table_name(
            str(upstream_md.get("table_name") or ids.table or key.path[-1])
        )
        dataset = str(upstream_md.get("dataset") or ids.dataset or (
            key.path[-2] if len(key.path) > 1 else self.dataset))
        ds = self._dataset(dataset)
        columns: Sequence[str] | None = (context.definition_metadata or {}).get("columns")
        rel = ds.table(table)
        if context.has_asset_partitions:
            column = str(upstream_md.get("partition_column") or DEFAULT_PARTITION_COLUMN)
            keys = ", ".join(_sql_literal(k) for k in context.asset_partition_keys)
            quote = ds.dlt_dataset.sql_client.escape_column_name  # the destination's quoting
            cols = ", ".join(quote(c) for c in columns) if columns else "*"
            rel = ds.query(f"SELECT {cols} FROM {quote(table)} WHERE {quote(column)} IN ({keys})")
        elif columns:
            rel = rel.select(*columns)
        if _wants_arrow(context):
            return rel.arrow()
        return _to_pandas(rel)


def _to_pandas(rel: Any) -> Any:
    """The relation as a DataFrame, fetched as Arrow (faster than DuckDB's `fetch_df` for the
    same frame; figures in bench/README.md)."""
    table = rel.arrow()
    return rel.df() if table is None else table.to_pandas()


def _wants_arrow(context: InputContext) -> bool:
    typ = getattr(context.dagster_type, "typing_type", None)
    return getattr(typ, "__module__", "").startswith("pyarrow")


def _check_output_type(obj: Any, context: OutputContext) -> None:
    mod = type(obj).__module__
    if mod.startswith(("pandas", "pyarrow")) or (
        isinstance(obj, list) and all(isinstance(r, dict) for r in obj)
    ):
        return
    raise ProjectError(
        f"DltDatasetIOManager: asset {context.asset_key.to_user_string()} returned "
        f"{type(obj).__name__}; expected a pandas DataFrame, a pyarrow Table or a list of dicts"
    )


def _num_rows(obj: Any) -> int:
    if hasattr(obj, "num_rows"):
        return int(obj.num_rows)
    return len(obj)


def _with_partition_column(obj: Any, column: str, keys: list[str]) -> Any:
    if len(keys) != 1:
        # a multi-partition output must carry the column itself
        cols = obj.column_names if hasattr(obj, "column_names") else getattr(obj, "columns", [])
        if column not in list(cols):
            raise ProjectError(
                f"DltDatasetIOManager: an output for {len(keys)} partitions must have a "
                f"'{column}' column"
            )
        return obj
    key = keys[0]
    if hasattr(obj, "append_column"):  # pyarrow
        import pyarrow as pa

        if column in obj.column_names:
            obj = obj.drop_columns([column])
        return obj.append_column(column, pa.array([key] * obj.num_rows, pa.string()))
    if isinstance(obj, list):
        return [{**r, column: key} for r in obj]
    return obj.assign(**{column: key})


def _sql_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"
