"""The flow of `Dataset.save()`: check, then write one frame straight into DuckDB or run an
ad-hoc dlt pipeline, and undo a load that fails.

The pipeline runs in a throw-away working dir, so parallel saves in several processes never
share local state. What data is accepted is `save_data`'s; undoing a failed load is
`save_guard`'s; the direct DuckDB insert is `duckdb_direct`'s.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from dltplus_dagster.project.dlt_config import set_run_context
from dltplus_dagster.project.duckdb_direct import as_arrow, plan_direct_write, run_direct_write
from dltplus_dagster.project.errors import ProjectError
from dltplus_dagster.project.local_files import local_file_config
from dltplus_dagster.project.save_data import (
    as_resource,
    checked_data,
    frame_dlt_columns,
    is_frame,
    nullable_dlt_columns,
)
from dltplus_dagster.project.save_guard import (
    restore,
    staging_config,
    take_snapshot,
    transactional,
)
from dltplus_dagster.project.table_names import ORIGINAL_NAME_HINT, check_table_name, originals_of

if TYPE_CHECKING:
    from dlt.common.destination import AnyDestination
    from dlt.common.normalizers.naming import NamingConvention
    from dlt.common.pipeline import LoadInfo
    from dlt.common.schema import Schema
    from dlt.common.schema.typing import TSchemaContract
    from dlt.extract.resource import DltResource
    from dlt.pipeline.pipeline import Pipeline

    from dltplus_dagster.project.dataset import Dataset

WRITE_DISPOSITIONS = ("append", "replace", "merge", "skip")


class SaveNotUndone(ProjectError):
    """A failed save() whose writes could not all be undone; says which tables it left."""


@dataclass(frozen=True)
class SaveTarget:
    """The table one save writes, resolved against the dataset's stored schemas."""

    table_name: str
    """The identifier the table is stored under."""
    new_name: str | None
    """The name a new table is saved under when that is not its identifier (remembered as the
    `ORIGINAL_NAME_HINT`, so another name for the table is refused later)."""
    naming: NamingConvention
    schema: Schema
    """A clone of the stored schema that holds the table, else of the dataset's own, or new."""

    @property
    def exists(self) -> bool:
        return self.table_name in self.schema.tables

    @property
    def pipeline_name(self) -> str:
        return f"save_{self.table_name}_pipeline"


def save(
    dataset: Dataset,
    data: Any,
    table_name: str,
    write_disposition: str = "append",
    primary_key: str | Sequence[str] | None = None,
    columns: Any = None,
    *,
    replace_rows: tuple[str, Sequence[str]] | None = None,
) -> LoadInfo:
    """`dataset.save(...)`: see `Dataset.save` for what it does and refuses."""
    if write_disposition not in WRITE_DISPOSITIONS:
        raise ProjectError(
            f"save(): write_disposition '{write_disposition}' is not one of "
            f"{', '.join(WRITE_DISPOSITIONS)}"
        )
    if not isinstance(table_name, str) or not table_name.strip():
        raise ProjectError(f"save(): table_name must be a non-empty string, got {table_name!r}")
    set_run_context(dataset.project)
    target = resolve_target(dataset, table_name)
    data = checked_data(data, target.table_name, target.naming, target.exists)
    destination = transactional(dataset.destination())
    replace = (replace_rows[0], list(replace_rows[1])) if replace_rows else None
    if replace is not None and write_disposition != "append":
        raise ProjectError("save(): replace_rows goes with write_disposition 'append'")
    if primary_key is None and columns is None:
        direct = _save_direct(dataset, data, target, write_disposition, destination, replace)
        if direct is not None:
            return direct
    if replace is not None:
        data, write_disposition, columns = _replace_rows_by_merge(
            dataset, data, target, replace, columns
        )
    if columns is None and not is_frame(data):
        columns = nullable_dlt_columns(target.schema, target.table_name)
    resource = _hinted_resource(data, target, write_disposition, primary_key, columns)
    return _save_with_pipeline(dataset, resource, target, destination)


def resolve_target(dataset: Dataset, table_name: str) -> SaveTarget:
    """`table_name` normalized by the dataset's naming convention and the schema to write it
    with; refuses dlt's tables and a second name for a table the dataset has (`table_names`)."""
    import dlt

    try:
        schemas = list(dataset.dlt_dataset.schemas)
    except Exception:  # noqa: BLE001 - no dataset yet: nothing to collide with, a new schema
        schemas = []
    naming = schemas[0].naming if schemas else dlt.Schema(dataset.name).naming
    normalized = check_table_name(table_name, naming, originals_of(schemas), dataset=dataset.name)
    schema = _schema_for_write(schemas, dataset.name, normalized)
    new_name = None if normalized in schema.tables or table_name == normalized else table_name
    return SaveTarget(normalized, new_name, naming, schema)


def _schema_for_write(schemas: Sequence[Schema], dataset_name: str, table_name: str) -> Schema:
    """The stored schema that holds the table, else the dataset's own schema (or a new one)."""
    import dlt

    for schema in schemas:
        if table_name in schema.tables:
            return schema.clone()
    for schema in schemas:
        if schema.name == dataset_name and schema.tables:
            return schema.clone()
    return dlt.Schema(dataset_name)


def _hinted_resource(data: Any, target: SaveTarget, write_disposition: str,
                     primary_key: str | Sequence[str] | None, columns: Any) -> DltResource:
    resource = as_resource(data, target.table_name)
    hints: dict[str, Any] = {"table_name": target.table_name,
                             "write_disposition": write_disposition}
    if primary_key is not None:
        hints["primary_key"] = primary_key
    if columns is not None:
        hints["columns"] = columns
    if target.new_name is not None:
        hints["additional_table_hints"] = {ORIGINAL_NAME_HINT: target.new_name}
    resource.apply_hints(**hints)
    return resource


def _save_with_pipeline(dataset: Dataset, resource: DltResource, target: SaveTarget,
                        destination: AnyDestination) -> LoadInfo:
    """Run an ad-hoc dlt pipeline in a throw-away working dir under the project's data dir."""
    import dlt

    work_dir = os.path.join(dataset.project.data_dir, "tmp", f"save-{uuid.uuid4().hex}")
    os.makedirs(work_dir, exist_ok=True)
    try:
        pipeline = dlt.pipeline(
            pipeline_name=target.pipeline_name,
            destination=destination,
            dataset_name=dataset.name,
            pipelines_dir=work_dir,
        )
        pipeline.config.restore_from_destination = False  # the schema is passed below
        destination_type = dataset.entities.destination_type(dataset.destination_name)
        config = {
            **frame_dlt_columns(pipeline.pipeline_name, target.schema, target.table_name),
            **local_file_config(destination_type, target.pipeline_name),
            **staging_config(target.pipeline_name, destination),
        }
        with dlt.config.values(config):
            info = _run_guarded(dataset, pipeline, resource, target, destination)
        dataset.remember_schema(pipeline.default_schema)
    except BaseException:
        dataset.refresh()  # the stored schemas may have changed anyway: re-read them
        raise
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return info


def _run_guarded(dataset: Dataset, pipeline: Pipeline, resource: DltResource,
                 target: SaveTarget, destination: AnyDestination) -> LoadInfo:
    """`pipeline.run`; a load that fails is undone (see `save_guard`)."""
    from dlt.dataset.utils import get_destination_clients
    from dlt.pipeline.exceptions import PipelineStepFailed

    client = get_destination_clients(target.schema.clone(), destination, dataset.name)[0]
    before = take_snapshot(client)
    try:
        # dlt defaults `schema_contract` to None but types it without Optional
        contract = cast("TSchemaContract", dataset.contract)
        return pipeline.run(resource, schema=target.schema, schema_contract=contract)
    except PipelineStepFailed as failed:
        if before is None or failed.step != "load":
            raise
        where = f"save(): writing table '{target.table_name}' of dataset '{dataset.name}' failed"
        try:
            kept = restore(client, before, failed)
        except Exception as undo:  # noqa: BLE001 - reported along with the load error
            raise SaveNotUndone(
                f"{where} and undoing it failed too ({type(undo).__name__}: {undo}); the load "
                f"error: {failed.exception}"
            ) from failed
        if kept:
            raise SaveNotUndone(
                f"{where} after rows went into {', '.join(kept)}, which have no `_dlt_load_id` "
                f"to remove them by; the load error: {failed.exception}"
            ) from failed
        raise


def _save_direct(dataset: Dataset, data: Any, target: SaveTarget, write_disposition: str,
                 destination: AnyDestination,
                 replace_rows: tuple[str, list[str]] | None) -> LoadInfo | None:
    """One frame into DuckDB without load files (see `duckdb_direct`); None: not eligible."""
    plan = plan_direct_write(
        data, target.table_name, write_disposition, target.schema.clone(), destination,
        dataset.contract, original_name=target.new_name, replace_rows=replace_rows,
    )
    if plan is None:
        return None
    try:
        info = run_direct_write(plan, destination, dataset.name, target.pipeline_name)
    except BaseException:
        dataset.refresh()  # the stored schemas may have changed anyway: re-read them
        raise
    dataset.remember_schema(plan.schema)
    return info


def _replace_rows_by_merge(dataset: Dataset, data: Any, target: SaveTarget,
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
    if absent and target.exists:
        _delete_rows(dataset, target.table_name, column, absent)
    if not held:
        return data, "append", columns
    hints = dict(columns or {})
    hints[column] = {**hints.get(column, {}), "name": column, "merge_key": True}
    return data, "merge", hints


def _delete_rows(dataset: Dataset, table_name: str, column: str, values: list[str]) -> None:
    client = dataset.dlt_dataset.sql_client
    qualified = client.make_qualified_table_name(table_name)
    marks = ", ".join(["%s"] * len(values))
    with client:
        client.execute_sql(
            f"DELETE FROM {qualified} WHERE {client.escape_column_name(column)} IN ({marks})",
            *values,
        )


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
