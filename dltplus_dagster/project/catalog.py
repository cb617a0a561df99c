"""Catalog and Dataset: read the project's datasets through dlt and write frames back with save().

Reads go through dlt's own `dlt.Dataset` (all schemas stored in the dataset, so tables written
by pipelines and by `save()` are all visible). `save()` runs an ad-hoc dlt pipeline in a
throw-away working dir, so parallel saves in several processes never share local state.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
)

from dltplus_dagster.project.dlt_config import set_run_context
from dltplus_dagster.project.duckdb_direct import as_arrow, plan_direct_write, run_direct_write
from dltplus_dagster.project.errors import EntityNotFound, ProjectError, TableNotFound
from dltplus_dagster.project.local_files import local_file_config
from dltplus_dagster.project.model import ContractSpec, DatasetEntity
from dltplus_dagster.project.project import Project
from dltplus_dagster.project.save_guard import (
    restore,
    staging_config,
    take_snapshot,
    transactional,
)
from dltplus_dagster.project.table_names import (
    ORIGINAL_NAME_HINT,
    check_column_names,
    check_table_name,
    dlt_columns,
    originals_of,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from dlt.common.pipeline import LoadInfo

    from dltplus_dagster.project.entities import EntityFactory

WRITE_DISPOSITIONS = ("append", "replace", "merge", "skip")


class SaveNotUndone(ProjectError):
    """A failed save() whose writes could not all be undone; says which tables it left."""


class RowCounts(dict[str, int]):
    """Table name -> row count; `.df()` gives the same as a DataFrame."""

    def df(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame({"table_name": list(self), "row_count": list(self.values())})


class Dataset:
    """A dataset of the catalog on one destination: dlt's data access plus `save()`."""

    def __init__(
        self,
        project: Project,
        entities: EntityFactory,
        entity: DatasetEntity,
        destination_name: str,
    ) -> None:
        self.project = project
        self.entities = entities
        self.entity = entity
        self.destination_name = destination_name
        self._dlt: Any = None

    @property
    def name(self) -> str:
        return self.entity.name

    @property
    def dataset_name(self) -> str:
        return self.entity.name

    @property
    def contract(self) -> Any:
        c = self.entity.contract
        if isinstance(c, ContractSpec):
            return {k: v for k, v in vars(c).items() if v is not None}
        return c

    # --- reading ---
    @property
    def dlt_dataset(self) -> Any:
        """The underlying `dlt.Dataset` (schemas are read from the destination on first use)."""
        if self._dlt is None:
            import dlt

            set_run_context(self.project)
            destination = self.entities.get_destination(self.destination_name)
            if _missing_local_database(destination, self.name):
                # nothing stored yet, and reading must not create an empty database file
                schemas = [dlt.Schema(self.name)]
            else:
                schemas = _stored_schemas(destination, self.name)
            self._dlt = dlt.dataset(destination, self.name, schema=schemas or None)
        return self._dlt

    def refresh(self) -> None:
        """Forget cached schemas, e.g. after another process loaded new tables."""
        self._dlt = None

    @property
    def tables(self) -> list[str]:
        """Data tables of every schema stored in this dataset (no `_dlt_*` tables)."""
        try:
            schemas = self.dlt_dataset.schemas
        except Exception as e:
            raise ProjectError(f"dataset '{self.name}' cannot be read: {e}") from e
        names: list[str] = []
        for schema in schemas:
            for t in schema.data_table_names(seen_data_only=True):
                if t not in names:
                    names.append(t)
        return names

    def table(self, table_name: str) -> Any:
        """A `dlt.Relation` over one table."""
        tables = self.tables
        if table_name not in tables:
            raise TableNotFound(self.name, table_name, tables)
        return self.dlt_dataset.table(table_name)

    def __getitem__(self, table_name: str) -> Any:
        return self.table(table_name)

    def __getattr__(self, name: str) -> Any:
        # a property of this class that raised AttributeError is no table name (no recursion)
        if name.startswith("_") or hasattr(type(self), name):
            raise AttributeError(name)
        try:
            return self.table(name)
        except TableNotFound as e:
            raise AttributeError(str(e)) from e

    def __contains__(self, table_name: object) -> bool:
        return table_name in self.tables

    def query(self, sql: str) -> Any:
        """A `dlt.Relation` over a SQL query in this dataset."""
        return self.dlt_dataset.query(sql)

    def df(self, table_name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        return self._relation(table_name, columns).df()

    def arrow(self, table_name: str, columns: Sequence[str] | None = None) -> pa.Table:
        return self._relation(table_name, columns).arrow()

    def iter_df(
        self, table_name: str, chunk_size: int = 10_000, columns: Sequence[str] | None = None
    ) -> Iterator[pd.DataFrame]:
        """Frames of exactly `chunk_size` rows (the last may be shorter)."""
        for table in self.iter_arrow(table_name, chunk_size, columns):
            yield table.to_pandas()

    def iter_arrow(
        self, table_name: str, chunk_size: int = 10_000, columns: Sequence[str] | None = None
    ) -> Iterator[pa.Table]:
        """Arrow tables of exactly `chunk_size` rows (dlt's DuckDB reader returns whole vectors)."""
        import pyarrow as pa

        buffer: list[pa.Table] = []
        buffered = 0
        for chunk in self._relation(table_name, columns).iter_arrow(chunk_size=chunk_size):
            buffer.append(chunk)
            buffered += chunk.num_rows
            while buffered >= chunk_size:
                combined = pa.concat_tables(buffer)
                yield combined.slice(0, chunk_size)
                rest = combined.slice(chunk_size)
                buffer, buffered = ([rest], rest.num_rows) if rest.num_rows else ([], 0)
        if buffered:
            yield pa.concat_tables(buffer)

    def _relation(self, table_name: str, columns: Sequence[str] | None) -> Any:
        rel = self.table(table_name)
        if columns:
            rel = rel.select(*columns)
        return rel

    def row_counts(
        self, dlt_tables: bool = False, table_names: Sequence[str] | None = None
    ) -> RowCounts:
        """Rows per table (an empty mapping for a dataset without data tables)."""
        names = list(table_names) if table_names else self.tables
        if dlt_tables:
            for schema in self.dlt_dataset.schemas:
                names.extend(t for t in schema.dlt_table_names() if t not in names)
        if not names:
            return RowCounts()
        rows = self.dlt_dataset.row_counts(table_names=names).fetchall()
        counts = {str(r[0]): int(r[1]) for r in rows}
        return RowCounts((n, counts.get(n, 0)) for n in names)

    def __str__(self) -> str:
        try:
            tables = "\n".join(f"  {t}" for t in self.tables) or "  (no tables)"
        except ProjectError as e:
            tables = f"  (not readable: {e})"
        return f"Dataset {self.name}@{self.destination_name}:\n{tables}"

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, destination={self.destination_name!r})"

    # --- writing ---
    def save(
        self,
        data: Any,
        table_name: str,
        write_disposition: str = "append",
        primary_key: str | Sequence[str] | None = None,
        columns: Any = None,
        *,
        replace_rows: tuple[str, Sequence[str]] | None = None,
    ) -> LoadInfo:
        """Write `data` into `table_name` of this dataset and return dlt's `LoadInfo`.

        `data`: a pandas DataFrame, a pyarrow Table, a list of dicts, a dlt resource, an iterator
        of those, or a callable returning such an iterator (streamed chunk by chunk). The given
        `write_disposition` is always honoured, also for an existing table. The dataset's
        `contract` applies; a violation raises dlt's `DataValidationError` inside
        `PipelineStepFailed`. One DataFrame or Arrow table saved into DuckDB is inserted straight
        from memory (same schema and load bookkeeping as dlt's pipeline, no load files).

        Refused before anything is written (`ProjectError`): a `table_name` in dlt's namespace
        (`_dlt*`) or one that normalizes to a table of the dataset saved under another name;
        empty, repeated or colliding column names. dlt's own columns in the data (`_dlt_id`,
        `_dlt_load_id` of a table it was read from) are left out: dlt stamps this write's. A
        write that fails leaves tables, columns and stored schemas as they were (`save_guard`).

        `replace_rows=(column, values)` with `append` replaces the table's rows whose `column`
        holds one of `values` (partitions) with `data`, in one transaction: the direct DuckDB
        insert deletes them first; elsewhere dlt merges with `column` as merge key.
        """
        import dlt

        if write_disposition not in WRITE_DISPOSITIONS:
            raise ProjectError(
                f"save(): write_disposition '{write_disposition}' is not one of "
                f"{', '.join(WRITE_DISPOSITIONS)}"
            )
        if not isinstance(table_name, str) or not table_name.strip():
            raise ProjectError(f"save(): table_name must be a non-empty string, got {table_name!r}")
        set_run_context(self.project)
        normalized, naming = self._checked_table_name(table_name)
        schema = self._schema_for_write(normalized)
        data = _checked_data(data, normalized, naming, normalized in schema.tables)
        # a new table remembers the name it was saved under when that is not its identifier
        new_name = None if normalized in schema.tables or table_name == normalized else table_name
        pipeline_name = f"save_{normalized}_pipeline"
        destination = transactional(self.entities.get_destination(self.destination_name))
        replace = (replace_rows[0], list(replace_rows[1])) if replace_rows else None
        if replace is not None and write_disposition != "append":
            raise ProjectError("save(): replace_rows goes with write_disposition 'append'")
        if primary_key is None and columns is None:
            direct = self._save_direct(
                data, normalized, write_disposition, schema, destination, pipeline_name, new_name,
                replace,
            )
            if direct is not None:
                return direct
        if replace is not None:
            data, write_disposition, columns = self._replace_rows_by_merge(
                data, normalized, schema, replace, columns
            )
        if columns is None and not _is_frame(data):
            columns = _nullable_dlt_columns(schema, normalized)
        resource = _as_resource(data, normalized)
        hints: dict[str, Any] = {"table_name": normalized, "write_disposition": write_disposition}
        if primary_key is not None:
            hints["primary_key"] = primary_key
        if columns is not None:
            hints["columns"] = columns
        if new_name is not None:  # remembered so another name for this table is refused later
            hints["additional_table_hints"] = {ORIGINAL_NAME_HINT: new_name}
        resource.apply_hints(**hints)

        work_dir = os.path.join(self.project.data_dir, "tmp", f"save-{uuid.uuid4().hex}")
        os.makedirs(work_dir, exist_ok=True)
        try:
            pipeline = dlt.pipeline(
                pipeline_name=pipeline_name,
                destination=destination,
                dataset_name=self.name,
                pipelines_dir=work_dir,
            )
            pipeline.config.restore_from_destination = False  # the schema is passed below
            config = {
                **_frame_dlt_columns(pipeline.pipeline_name, schema, normalized),
                **local_file_config(self.entities.destination_type(self.destination_name),
                                    pipeline_name),
                **staging_config(pipeline_name, destination),
            }
            with dlt.config.values(config):
                info = self._run_guarded(pipeline, resource, schema, destination, normalized)
            self._remember_schema(pipeline.default_schema)
        except BaseException:
            self._dlt = None  # the stored schemas may have changed anyway: re-read them
            raise
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
        return info

    def _run_guarded(self, pipeline: Any, resource: Any, schema: Any, destination: Any,
                     table_name: str) -> LoadInfo:
        """`pipeline.run`; a load that fails is undone (see `save_guard`)."""
        from dlt.dataset.utils import get_destination_clients
        from dlt.pipeline.exceptions import PipelineStepFailed

        client = get_destination_clients(schema.clone(), destination, self.name)[0]
        before = take_snapshot(client)
        try:
            return pipeline.run(resource, schema=schema, schema_contract=self.contract)
        except PipelineStepFailed as failed:
            if before is None or failed.step != "load":
                raise
            try:
                kept = restore(client, before, failed)
            except Exception as undo:  # noqa: BLE001 - reported along with the load error
                raise SaveNotUndone(
                    f"save(): writing table '{table_name}' of dataset '{self.name}' failed and "
                    f"undoing it failed too ({type(undo).__name__}: {undo}); the load error: "
                    f"{failed.exception}"
                ) from failed
            if kept:
                raise SaveNotUndone(
                    f"save(): writing table '{table_name}' of dataset '{self.name}' failed after "
                    f"rows went into {', '.join(kept)}, which have no `_dlt_load_id` to remove "
                    f"them by; the load error: {failed.exception}"
                ) from failed
            raise

    def _save_direct(self, data: Any, table_name: str, write_disposition: str, schema: Any,
                     destination: Any, pipeline_name: str, original_name: str | None,
                     replace_rows: tuple[str, list[str]] | None) -> LoadInfo | None:
        """One frame into DuckDB without load files (see `duckdb_direct`); None: not eligible."""
        plan = plan_direct_write(
            data, table_name, write_disposition, schema.clone(), destination, self.contract,
            original_name=original_name, replace_rows=replace_rows,
        )
        if plan is None:
            return None
        try:
            info = run_direct_write(plan, destination, self.name, pipeline_name)
        except BaseException:
            self._dlt = None  # the stored schemas may have changed anyway: re-read them
            raise
        self._remember_schema(plan.schema)
        return info

    def _replace_rows_by_merge(self, data: Any, table_name: str, schema: Any,
                               replace: tuple[str, list[str]], columns: Any) -> tuple[Any, str, Any]:
        """dlt's way to replace rows atomically: `merge` with `column` as merge key deletes the
        rows of every value the data holds and inserts the data, in one transaction.
        Values the data does not hold have nothing to insert: their rows are deleted here."""
        column, values = replace
        frame = as_arrow(data)
        if frame is not None and column in frame.column_names:
            held = frame.column(column).to_pylist()
        elif isinstance(data, list) and all(isinstance(r, dict) and column in r for r in data):
            held = [r[column] for r in data]
        else:
            raise ProjectError(
                f"save(): replace_rows needs a frame or a list of dicts with a '{column}' column"
            )
        present = {str(v) for v in held}
        absent = [v for v in values if v not in present]
        if absent and table_name in schema.tables:
            self._delete_rows(table_name, column, absent)
        if not held:
            return data, "append", columns
        hints = dict(columns or {})
        hints[column] = {**hints.get(column, {}), "name": column, "merge_key": True}
        return data, "merge", hints

    def _delete_rows(self, table_name: str, column: str, values: list[str]) -> None:
        client = self.dlt_dataset.sql_client
        qualified = client.make_qualified_table_name(table_name)
        marks = ", ".join(["%s"] * len(values))
        with client:
            client.execute_sql(
                f"DELETE FROM {qualified} WHERE {client.escape_column_name(column)} IN ({marks})",
                *values,
            )

    def _remember_schema(self, written: Any) -> None:
        """After a save, cache the schema just stored instead of reading all schemas again."""
        if self._dlt is None:
            return  # nothing cached: the next access reads every stored schema
        others = [s for s in self._dlt.schemas if s.name != written.name]
        self.assume_schemas([written, *others])

    def assume_schemas(self, schemas: Sequence[Any]) -> None:
        """Read through `schemas` (cloned) instead of the stored ones, e.g. right after a run
        stored them: saves the round trip to the destination. `refresh()` undoes it."""
        import dlt

        set_run_context(self.project)
        self._dlt = dlt.dataset(
            self.entities.get_destination(self.destination_name),
            self.name,
            schema=[s.clone() for s in schemas],
        )

    def _checked_table_name(self, table_name: str) -> tuple[str, Any]:
        """`table_name` normalized by the dataset's naming convention (and that convention);
        refuses dlt's tables and a second name for a table the dataset has (see `table_names`)."""
        import dlt

        try:
            schemas = list(self.dlt_dataset.schemas)
        except Exception:  # noqa: BLE001 - no dataset yet: nothing to collide with
            schemas = []
        naming = schemas[0].naming if schemas else dlt.Schema(self.name).naming
        existing = originals_of(schemas)
        return check_table_name(table_name, naming, existing, dataset=self.name), naming

    def _schema_for_write(self, table_name: str) -> Any:
        """The stored schema that holds the table, else the dataset's own schema (or a new one)."""
        import dlt

        try:
            schemas = list(self.dlt_dataset.schemas)
        except Exception:  # noqa: BLE001 - no dataset yet: write with a new schema
            schemas = []
        for schema in schemas:
            if table_name in schema.tables:
                return schema.clone()
        for schema in schemas:
            if schema.name == self.name and schema.tables:
                return schema.clone()
        return dlt.Schema(self.name)


def _checked_data(data: Any, table_name: str, naming: Any, exists: bool) -> Any:
    """`data` without dlt's own columns (`_dlt_id`, `_dlt_load_id`... of a table it was read
    from: dlt stamps this write's own); refuses column names dlt would drop or merge (frames,
    lists of dicts) and a frame without columns for a table that does not exist."""
    if _is_frame(data):
        names = getattr(data, "column_names", None)
        columns = list(names) if names is not None else list(getattr(data, "columns", []))
        if not columns and not exists:
            raise ProjectError(
                f"save(): the data for new table '{table_name}' has no columns; a table needs "
                "at least one"
            )
        check_column_names(columns, naming, table=table_name)
        own = dlt_columns(columns, naming)
        if not own:
            return data
        if names is not None:  # pyarrow Table or RecordBatch
            return data.select([c for c in columns if c not in own])
        return data.drop(columns=own)
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        columns = list(dict.fromkeys(k for row in data for k in row))
        check_column_names(columns, naming, table=table_name)
        own = set(dlt_columns(columns, naming))
        return [{k: v for k, v in r.items() if k not in own} for r in data] if own else data
    return data  # iterators and resources are checked by dlt as they stream


def _frame_dlt_columns(pipeline_name: str, schema: Any, table_name: str) -> dict[str, bool]:
    """Config so DataFrames/arrow get the dlt columns an existing table has (NOT NULL there).

    dlt adds `_dlt_load_id`/`_dlt_id` to rows from Python objects but not to arrow data, so a
    frame appended to a table loaded from objects would fail on those columns.
    """
    columns = schema.tables.get(table_name, {}).get("columns", {})
    prefix = f"{pipeline_name}.normalize.parquet_normalizer"
    return {
        f"{prefix}.{option}": True
        for column, option in (("_dlt_load_id", "add_dlt_load_id"), ("_dlt_id", "add_dlt_id"))
        if column in columns
    }


def _nullable_dlt_columns(schema: Any, table_name: str) -> dict[str, Any] | None:
    """Hints so rows from Python objects can go into a table first written from frames.

    dlt gives such rows `_dlt_id`/`_dlt_load_id` columns declared NOT NULL, and a database
    cannot add a NOT NULL column to a table that holds rows; declared nullable, they are added
    and stay empty for the earlier rows.
    """
    from dlt.common.schema.utils import has_table_seen_data

    table = schema.tables.get(table_name)
    if not table or not has_table_seen_data(table):
        return None
    columns = table.get("columns", {})
    missing = [c for c in ("_dlt_id", "_dlt_load_id") if c not in columns]
    return {c: {"name": c, "nullable": True} for c in missing} or None


def _missing_local_database(destination: Any, dataset_name: str) -> bool:
    """True for a DuckDB destination whose database file does not exist yet."""
    if not str(destination.destination_type).endswith(".duckdb"):
        return False
    from dlt.dataset.utils import get_destination_client_initial_config

    try:
        config = destination.configuration(
            get_destination_client_initial_config(destination, dataset_name)
        )
    except Exception:  # noqa: BLE001 - unresolvable here: let the normal read report it
        return False
    database = getattr(config.credentials, "database", None)
    return isinstance(database, str) and database.endswith(".duckdb") and not os.path.exists(
        database
    )


def _stored_schemas(destination: Any, dataset_name: str) -> list[Any]:
    """Newest version of every schema stored in the dataset, newest schema first.

    dlt's own lookup returns only the newest schema when no pipeline is named; a dataset
    written by several pipelines and by `save()` holds several.
    """
    import json

    import dlt
    from dlt.common.destination.exceptions import DestinationUndefinedEntity
    from dlt.dataset.utils import get_destination_clients

    with get_destination_clients(
        schema=dlt.Schema(dataset_name),
        destination=destination,
        destination_dataset_name=dataset_name,
    )[0] as client:
        if not hasattr(client, "get_stored_schema") or not hasattr(client, "sql_client"):
            return []
        sql = client.sql_client
        table = sql.make_qualified_table_name(client.schema.version_table_name)
        # SQL job clients open their connection; filesystem's SQL client opens on demand
        opened = sql if sql.native_connection is None else contextlib.nullcontext()
        try:
            with opened:
                rows = sql.execute_sql(
                    f"SELECT schema_name, MAX(inserted_at) AS last_at FROM {table} "
                    "GROUP BY schema_name ORDER BY last_at DESC"
                )
        except DestinationUndefinedEntity:
            return []
        except Exception as e:  # a missing dataset shows up differently per destination
            if "does not exist" in str(e) or "not found" in str(e).lower():
                return []
            raise
        schemas = []
        for name, _ in rows or []:
            stored = client.get_stored_schema(name)
            if stored:
                schemas.append(dlt.Schema.from_dict(json.loads(stored.schema), validate_schema=False))
        return schemas


def saved_row_counts(info: LoadInfo) -> dict[str, int]:
    """Rows written per data table by one `save()`, from its `LoadInfo`."""
    direct = getattr(info.pipeline, "row_counts", None)
    if isinstance(direct, dict):  # a direct DuckDB write (`duckdb_direct.DirectSaveRef`)
        return dict(direct)
    trace = getattr(info.pipeline, "last_trace", None)
    if trace is None or trace.last_normalize_info is None:
        return {}
    return {
        t: n for t, n in trace.last_normalize_info.row_counts.items() if not t.startswith("_dlt")
    }


def normalize_table_name(name: str) -> str:
    """The table name dlt will use (snake_case; quotes and SQL are never passed through)."""
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    normalized = NamingConvention().normalize_tables_path(name)
    if not normalized.strip("_"):
        raise ProjectError(f"table name {name!r} has no usable characters")
    return normalized


def _as_resource(data: Any, table_name: str) -> Any:
    import dlt
    from dlt.extract.resource import DltResource

    if isinstance(data, DltResource):
        return data
    if callable(data) and not _is_frame(data):
        data = data()
    if _is_frame(data) or isinstance(data, (list, tuple)):
        return dlt.resource(data, name=table_name)
    if isinstance(data, dict):
        return dlt.resource([data], name=table_name)
    if hasattr(data, "__iter__") or hasattr(data, "__next__"):
        return dlt.resource(data, name=table_name)
    raise ProjectError(
        f"save(): unsupported data of type {type(data).__name__}; expected a DataFrame, a pyarrow "
        "Table, a list of dicts, a dlt resource, an iterator of those or a callable returning one"
    )


def _is_frame(data: Any) -> bool:
    mod = type(data).__module__
    return mod.startswith(("pandas", "pyarrow"))


class Catalog:
    """The datasets of a project for its active profile."""

    def __init__(self, project: Project, entities: EntityFactory) -> None:
        self.project = project
        self.entities = entities

    @property
    def datasets(self) -> dict[str, DatasetEntity]:
        """Declared datasets."""
        return dict(self.project.datasets)

    def dataset(self, name: str, destination_name: str | None = None) -> Dataset:
        from dltplus_dagster.project.validate import dataset_scope, ensure_valid

        # the one gate, as the runner and `validate`: a dataset validate refuses is not read
        ensure_valid(self.project, tables=False, scope=dataset_scope(self.project, name))
        return self.entities.get_dataset(name, destination_name)

    def __getitem__(self, name: str) -> Dataset:
        return self.dataset(name)

    def __getattr__(self, name: str) -> Dataset:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.dataset(name)
        except EntityNotFound as e:
            raise AttributeError(str(e)) from e

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.entities.list_datasets()

    def __iter__(self) -> Iterator[str]:
        return iter(self.entities.list_datasets())

    def __len__(self) -> int:
        return len(self.entities.list_datasets())

    def __str__(self) -> str:
        names = self.entities.list_datasets()
        header = f"Datasets in project {self.project.name} for profile {self.project.current_profile}:"
        if not names:
            return f"{header}\nNo datasets found"
        lines = []
        for n in names:
            dests = self.entities.dataset_destinations(n)
            lines.append(f"  {n}@{dests[0] if dests else '(no destination)'}")
        return "\n".join([header, *lines])


def make_temp_dir(project: Project, prefix: str) -> str:
    base = os.path.join(project.data_dir, "tmp")
    os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix=prefix, dir=base)
