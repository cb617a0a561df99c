"""A `save()` through dlt's pipeline that fails leaves the dataset as it was.

dlt's load step changes the destination before its jobs run: it adds the new tables and
columns and stores the new schema version (`_dlt_version`), truncates tables replaced with the
default `truncate-and-insert` strategy, and each job then commits on its own. A job that fails
(NOT NULL, a value the column cannot take, a key constraint) would leave new columns, a schema
version nobody loaded, an emptied table or part of the rows. So on SQL destinations:

- `replace` loads into dlt's staging dataset and swaps in one transaction
  (`insert-from-staging`, `staging_config`), as `merge` always does: the table keeps its rows
  until everything loaded; `transactional` makes dlt run that swap in a transaction;
- `DatasetSnapshot` records the dataset's tables, columns and stored schema versions before the
  load; after a failed load `restore` drops what the load added (tables, columns, versions) and
  the rows of appended jobs that committed (by `_dlt_load_id`; nested rows whose parent row is
  gone). Appended rows that carry no load id (frames) cannot be told apart: the error then names
  those tables instead of hiding it.

Other destinations (files, buckets) keep dlt's own behaviour.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

STAGED_REPLACE = "insert-from-staging"


@dataclass
class DatasetSnapshot:
    """What a dataset held before a load: its tables with their columns, its schema versions."""

    existed: bool
    columns: dict[str, list[str]]
    versions: set[tuple[str, str]]


def transactional(destination: Any) -> Any:
    """`destination`, with dlt's SQL jobs (the staging swap of `replace`, `merge`) run in a
    transaction where the database has them.

    dlt 1.31 leaves `supports_transactions` unset for DuckDB and PostgreSQL, so the swap runs
    `DELETE` and `INSERT` in autocommit: an `INSERT` that fails leaves the table emptied.
    """
    caps = destination.capabilities()
    if caps.supports_transactions or not caps.supports_ddl_transactions:
        return destination
    copied = copy.copy(destination)
    copied.caps_params = {**destination.caps_params, "supports_transactions": True}
    return copied


def staging_config(pipeline_name: str, destination: Any) -> dict[str, str]:
    """Config so `replace` goes through the staging dataset on destinations that support it."""
    caps = destination.capabilities()
    if STAGED_REPLACE not in (caps.supported_replace_strategies or ()):
        return {}
    name = destination.destination_name
    # the pipeline-scoped key wins over the project's own choice, for this save only
    return {f"{pipeline_name}.destination.{name}.replace_strategy": STAGED_REPLACE}


def sql_client_of(client: Any) -> Any:
    """The job client's SQL client, or None for destinations without one."""
    return getattr(client, "sql_client", None) if hasattr(client, "get_storage_tables") else None


def take_snapshot(client: Any) -> DatasetSnapshot | None:
    """The dataset's tables, columns and stored schema versions (None: not a SQL destination)."""
    sql = sql_client_of(client)
    if sql is None:
        return None
    with client:
        if not sql.has_dataset():
            return DatasetSnapshot(False, {}, set())
        columns = _columns(sql)
        versions: set[tuple[str, str]] = set()
        if client.schema.version_table_name in columns:
            table = sql.make_qualified_table_name(client.schema.version_table_name)
            rows = sql.execute_sql(f"SELECT schema_name, version_hash FROM {table}")
            versions = {(str(r[0]), str(r[1])) for r in rows or []}
        return DatasetSnapshot(True, columns, versions)


def restore(client: Any, before: DatasetSnapshot, failure: Any) -> list[str]:
    """Undo what the failed load `failure` (dlt's `PipelineStepFailed`) wrote; returns the
    tables that may still hold part of its rows (appended without a load id)."""
    package = _package(failure)
    if package is None:
        return []
    schema = package.schema
    ours = set(schema.tables)  # the only tables this load could have touched
    sql = client.sql_client
    with client:
        if not sql.has_dataset():
            return []
        now = _columns(sql)
        kept = _undo_rows(sql, schema, package, before, now, failure.load_id)
        with client.maybe_ddl_transaction():
            added = [t for t in now if t in ours and t not in before.columns]
            if added:
                sql.drop_tables(*added)
            for table, columns in now.items():
                if table in before.columns and table in ours:
                    for column in columns:
                        if column not in before.columns[table]:
                            sql.execute_sql(
                                f"ALTER TABLE {sql.make_qualified_table_name(table)} "
                                f"DROP COLUMN {sql.escape_column_name(column)}"
                            )
            _drop_new_versions(client, schema.name, before, now)
        if not before.existed and not set(now) - ours - set(schema.dlt_table_names()):
            sql.drop_dataset()  # the load created the dataset: it leaves nothing behind
        return kept


def _package(failure: Any) -> Any:
    info = getattr(failure, "step_info", None)
    if getattr(failure, "step", None) != "load" or info is None:
        return None  # extract and normalize never touch the destination
    return next((p for p in getattr(info, "load_packages", []) if p.load_id == failure.load_id),
                None)


def _columns(sql: Any) -> dict[str, list[str]]:
    """Table -> column names of every table in the dataset (information schema)."""
    catalog, schema_name, _ = sql._get_information_schema_components()  # dlt's own helper
    table = sql._qualify_info_schema_table_name("COLUMNS")
    query = f"SELECT table_name, column_name FROM {table} WHERE table_schema = %s"
    params = [schema_name]
    if catalog is not None:
        query += " AND table_catalog = %s"
        params.append(catalog)
    columns: dict[str, list[str]] = {}
    for name, column in sql.execute_sql(query + " ORDER BY ordinal_position", *params) or []:
        columns.setdefault(str(name), []).append(str(column))
    return columns


def _undo_rows(sql: Any, schema: Any, package: Any, before: DatasetSnapshot,
               now: dict[str, list[str]], load_id: str) -> list[str]:
    """Delete the rows that committed jobs appended to tables that existed before."""
    from dlt.common.schema.utils import get_root_table

    completed = {j.job_file_info.table_name for j in package.jobs.get("completed_jobs", [])}
    kept: list[str] = []
    roots: list[str] = []
    nested: list[tuple[str, str]] = []
    for table in completed:
        if table not in before.columns or table not in schema.tables:
            continue  # a new table: dropped with the schema changes
        root = get_root_table(schema.tables, table)
        if root.get("write_disposition") in ("merge", "replace"):
            continue  # loaded into the staging dataset: the table itself was not written
        parent = schema.tables[table].get("parent")
        if parent:
            nested.append((table, parent))
        elif "_dlt_load_id" in now.get(table, []):
            roots.append(table)
        else:
            kept.append(table)
    if not roots and not nested:
        return kept
    with sql.begin_transaction():
        for table in roots:
            sql.execute_sql(
                f"DELETE FROM {sql.make_qualified_table_name(table)} WHERE "
                f"{sql.escape_column_name('_dlt_load_id')} = %s", load_id
            )
        # parents before children: a nested row whose parent row is gone was this load's
        for table, parent in sorted(nested, key=lambda tp: _depth(schema, tp[0])):
            sql.execute_sql(
                f"DELETE FROM {sql.make_qualified_table_name(table)} WHERE "
                f"{sql.escape_column_name('_dlt_parent_id')} NOT IN (SELECT "
                f"{sql.escape_column_name('_dlt_id')} FROM {sql.make_qualified_table_name(parent)})"
            )
    return kept


def _depth(schema: Any, table: str) -> int:
    depth = 0
    while parent := schema.tables[table].get("parent"):
        table, depth = parent, depth + 1
    return depth


def _drop_new_versions(client: Any, schema_name: str, before: DatasetSnapshot,
                       now: dict[str, list[str]]) -> None:
    sql = client.sql_client
    version_table = client.schema.version_table_name
    if version_table not in now:
        return
    table = sql.make_qualified_table_name(version_table)
    rows = sql.execute_sql(
        f"SELECT version_hash FROM {table} WHERE schema_name = %s", schema_name
    ) or []
    for (version_hash,) in rows:
        if (schema_name, str(version_hash)) not in before.versions:
            sql.execute_sql(
                f"DELETE FROM {table} WHERE schema_name = %s AND version_hash = %s",
                schema_name, version_hash,
            )
