"""Direct write of one in-memory frame into a DuckDB dataset, with dlt's own schema bookkeeping.

dlt loads a DataFrame by writing it to a Parquet file, moving it through a load package and
reading it back with `INSERT ... BY NAME SELECT * FROM read_parquet(...)`. For a single frame
going into a DuckDB database in this process that round trip is avoidable: the same dlt
functions compute the table schema (arrow types, naming, capabilities, contracts), dlt's job
client migrates the tables and stores the schema version, and DuckDB inserts straight from the
Arrow table (`INSERT ... BY NAME SELECT * FROM <arrow>`), data and `_dlt_loads` row in one
transaction. That makes `Dataset.save()` and the IO manager markedly faster (figures in
bench/README.md).

Only what this path reproduces exactly takes it; `plan_direct_write` returns None for the rest
and `save()` runs the normal dlt pipeline: other destinations, iterators and resources, merge,
explicit hints, empty frames, nested (json) columns, type changes of existing columns, tables
with dlt's `_dlt_id`/`_dlt_load_id` columns or nested tables, and any contract that would act
(filter or raise). `DLTPLUS_DUCKDB_DIRECT_WRITE=false` turns the path off.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from dltplus_dagster.project.table_names import ORIGINAL_NAME_HINT

if TYPE_CHECKING:
    import pyarrow as pa
    from dlt.common.destination import AnyDestination, DestinationCapabilitiesContext
    from dlt.common.pipeline import LoadInfo, SupportsPipeline
    from dlt.common.schema import Schema, TTableSchema
    from dlt.common.schema.typing import TSchemaContract, TWriteDisposition
    from dlt.destinations.job_client_impl import SqlJobClientBase

DIRECT_WRITE_ENV = "DLTPLUS_DUCKDB_DIRECT_WRITE"
DIRECT_DISPOSITIONS = ("append", "replace")
_FRAME_VIEW = "_dltplus_direct_frame"


@dataclass
class DirectWrite:
    """A frame ready to insert: the schema already holds the (migrated) table."""

    schema: Schema
    table_name: str
    write_disposition: str
    item: pa.Table
    replace_rows: tuple[str, list[str]] | None = None  # (column, values): rows to delete first


class DirectSaveRef(NamedTuple):
    """`LoadInfo.pipeline` of a write that ran without a pipeline: its name and rows written
    (what dlt's pipeline trace tells after a normal save)."""

    pipeline_name: str
    row_counts: dict[str, int]


def direct_write_enabled() -> bool:
    return os.environ.get(DIRECT_WRITE_ENV, "true").strip().lower() not in ("0", "false", "no")


def plan_direct_write(
    data: Any,
    table_name: str,
    write_disposition: str,
    schema: Schema,
    destination: AnyDestination,
    contract: TSchemaContract | None,
    original_name: str | None = None,
    replace_rows: tuple[str, list[str]] | None = None,
) -> DirectWrite | None:
    """The direct write of `data` into `table_name`, or None when dlt's pipeline must do it.

    `schema` (a clone the caller owns) is updated in place exactly as dlt's extract and
    normalize steps would update it; callers fall back with a fresh clone when None is returned.
    `original_name`, when given, is stored as the new table's `x-original-name` hint;
    `replace_rows` (column, values) deletes the rows holding those values in the same
    transaction as the insert (a partition replaced).
    """
    existing = schema.tables.get(table_name)
    item = _eligible_frame(data, write_disposition, schema, existing, destination)
    if item is None:
        return None
    from dlt.common.libs import pyarrow as dlt_arrow

    caps = destination.capabilities()
    try:
        computed = _computed_table(item, table_name, write_disposition, schema, caps, contract)
    except Exception:  # noqa: BLE001 - naming collisions, unsupported types: dlt reports them
        return None
    if any(c.get("data_type") == "json" for c in computed["columns"].values()):
        return None  # nested data: dlt's parquet and json handling decides the stored form
    if existing is not None and _changes_column_types(existing, computed):
        return None
    if contract:
        schema.set_schema_contract(contract)  # stored with the schema, as the pipeline does
    if original_name is not None:
        # as save() hints it on dlt's path (a hint TTableSchema does not declare)
        cast("dict[str, Any]", computed)[ORIGINAL_NAME_HINT] = original_name
    if not _contract_allows(schema, table_name, computed, item):
        return None
    _store_table(schema, table_name, computed)
    item = dlt_arrow.normalize_py_arrow_item(
        item, schema.get_table_columns(table_name), schema.naming, caps
    )
    return DirectWrite(schema, table_name, write_disposition, item, replace_rows)


def _eligible_frame(data: Any, write_disposition: str, schema: Schema,
                    existing: TTableSchema | None, destination: AnyDestination) -> pa.Table | None:
    """`data` as one non-empty Arrow table when the cheap checks allow a direct write."""
    if not direct_write_enabled() or write_disposition not in DIRECT_DISPOSITIONS:
        return None
    if not str(destination.destination_type).endswith(".duckdb"):
        return None
    if existing is not None and not _plain_target(schema, existing):
        return None
    if _adds_dlt_columns():
        return None
    item = as_arrow(data)  # last of the cheap checks: converting a frame is not free
    if item is None or item.num_rows == 0:
        return None
    return item


def _store_table(schema: Schema, table_name: str, computed: TTableSchema) -> None:
    """Put `computed` into `schema` as dlt's normalize step leaves a table that saw data."""
    schema.update_table(computed, normalize_identifiers=False, merge_compound_props=False)
    table = schema.tables[table_name]
    x_normalizer = cast("dict[str, Any]", table.setdefault("x-normalizer", {}))
    x_normalizer.pop("evolve-columns-once", None)
    x_normalizer["seen-data"] = True
    schema._bump_version()  # dlt's own way to seal a schema before it is stored


def run_direct_write(plan: DirectWrite, destination: AnyDestination, dataset_name: str,
                     pipeline_name: str) -> LoadInfo:
    """Migrate the tables, insert the frame and record the load; returns dlt's `LoadInfo`."""
    from dlt.common.storages.load_package import create_load_id
    from dlt.dataset.utils import get_destination_clients

    started_at = _now()
    load_id = create_load_id()
    # a duckdb destination (`_eligible_frame`): its job client is a SQL one
    clients = get_destination_clients(plan.schema, destination, dataset_name)
    client = cast("SqlJobClientBase", clients[0])
    with client:
        sql = client.sql_client
        table = sql.make_qualified_table_name(plan.table_name)
        connection = sql.native_connection
        connection.register(_FRAME_VIEW, plan.item)
        try:
            # one transaction for the dataset, the migration, the schema version, the rows and
            # the load record: a failing insert (NOT NULL, a value the column cannot take)
            # leaves tables, columns and `_dlt_version` as they were
            with sql.begin_transaction():
                applied = _migrate(client, {plan.table_name, *plan.schema.dlt_table_names()})
                if plan.write_disposition == "replace":
                    sql.execute_sql(f"DELETE FROM {table}")
                elif plan.replace_rows is not None:
                    column, values = plan.replace_rows
                    marks = ", ".join(["%s"] * len(values))
                    sql.execute_sql(
                        f"DELETE FROM {table} WHERE {sql.escape_column_name(column)} IN ({marks})",
                        *values,
                    )
                sql.execute_sql(f"INSERT INTO {table} BY NAME SELECT * FROM {_FRAME_VIEW}")
                client.complete_load(load_id)
        finally:
            connection.unregister(_FRAME_VIEW)
        return _load_info(plan, client, load_id, applied or {}, pipeline_name, started_at)


def _migrate(client: Any, tables: set[str]) -> Any:
    """dlt's `update_stored_schema` inside the caller's transaction: create the dataset, add
    the new tables and columns, store the schema version (unless that version is stored).

    dlt's own method cannot run here: it opens a transaction (DuckDB does not nest them) and
    looks the version up with a query that fails on a new dataset, and dlt's DuckDB client
    rolls the whole transaction back on any failed statement. So nothing here may fail.
    """
    sql = client.sql_client
    if not client.is_storage_initialized():
        sql.create_dataset()
    version_table = client.schema.version_table_name
    stored = dict(client.get_storage_tables([version_table])).get(version_table)
    if stored and client.get_stored_schema_by_hash(client.schema.stored_version_hash):
        return {}
    return client._execute_schema_update_sql(tables)  # private: see the docstring


def as_arrow(data: Any) -> pa.Table | None:
    """One frame as a pyarrow Table (dlt's own pandas conversion); None for anything else."""
    module = type(data).__module__
    if module.startswith("pandas") and type(data).__name__ == "DataFrame":
        from dlt.common.libs.pandas import pandas_to_arrow

        return pandas_to_arrow(data)
    if module.startswith("pyarrow"):
        import pyarrow as pa

        if isinstance(data, pa.Table):
            return data
        if isinstance(data, pa.RecordBatch):
            return pa.Table.from_batches([data])
    return None


def _adds_dlt_columns() -> bool:
    """True when config asks dlt to add `_dlt_load_id`/`_dlt_id` to arrow data."""
    from dlt.common.configuration import known_sections, resolve_configuration
    from dlt.normalize.configuration import ItemsNormalizerConfiguration

    config = resolve_configuration(
        ItemsNormalizerConfiguration(), sections=(known_sections.NORMALIZE, "parquet_normalizer")
    )
    return bool(config.add_dlt_load_id or config.add_dlt_id)


def _plain_target(schema: Schema, table: TTableSchema) -> bool:
    """An existing table this path can write: no dlt row columns, no nested tables."""
    from dlt.common.schema.utils import get_nested_tables

    columns = table.get("columns", {})
    naming = schema.naming
    if naming.normalize_identifier("_dlt_id") in columns:
        return False
    if naming.normalize_identifier("_dlt_load_id") in columns:
        return False
    # a table of a schema always has its name
    return len(get_nested_tables(schema.tables, cast("str", table["name"]))) == 1


def _computed_table(item: pa.Table, table_name: str, write_disposition: str, schema: Schema,
                    caps: DestinationCapabilitiesContext,
                    contract: TSchemaContract | None) -> TTableSchema:
    """The table schema dlt's arrow extractor computes for `item` (same functions, same order)."""
    from dlt.common.destination.capabilities import adjust_schema_to_capabilities
    from dlt.common.libs import pyarrow as dlt_arrow
    from dlt.common.schema import utils

    columns = adjust_schema_to_capabilities(
        dlt_arrow.py_arrow_to_table_schema_columns(item.schema), caps
    )
    columns = {k: v for k, v in columns.items() if utils.is_complete_column(v)}
    disposition = cast("TWriteDisposition", write_disposition)  # one of DIRECT_DISPOSITIONS
    table = utils.new_table(table_name, write_disposition=disposition, resource=table_name)
    table["columns"] = columns
    if contract:
        table["schema_contract"] = contract  # the pipeline applies it as a resource hint too
    return utils.normalize_table_identifiers(table, schema.naming)


def _changes_column_types(existing: TTableSchema, computed: TTableSchema) -> bool:
    """True when a column the table has would get another type (dlt may coerce or vary it)."""
    from dlt.common.schema.typing import TColumnType
    from dlt.common.schema.utils import is_complete_column

    type_props = TColumnType.__annotations__
    for name, column in computed["columns"].items():
        old = existing.get("columns", {}).get(name)
        if old is None or not is_complete_column(old):
            continue
        props = cast("dict[str, Any]", column)  # looked up by the names TColumnType declares
        if any(prop in props and props[prop] != old.get(prop) for prop in type_props):
            return True
    return False


def _contract_allows(schema: Schema, table_name: str, computed: TTableSchema,
                     item: pa.Table) -> bool:
    """True when the contract lets the change through untouched (no filter, no error)."""
    from dlt.common.schema.exceptions import DataValidationError

    settings = schema.resolve_contract_settings_for_table(table_name, computed)
    if settings["columns"] != "evolve" and schema.is_new_table(table_name):
        computed["x-normalizer"] = {"evolve-columns-once": True}
    try:
        allowed, filters = schema.apply_schema_contract(settings, computed, data_item=item)
    except DataValidationError:
        return False  # the pipeline raises it, wrapped the way users of save() expect
    return allowed is not None and not filters


def _load_info(plan: DirectWrite, client: Any, load_id: str, applied: Any, pipeline_name: str,
               started_at: datetime.datetime) -> LoadInfo:
    from dlt.common.destination.reference import DestinationReference
    from dlt.common.pipeline import LoadInfo
    from dlt.common.storages.load_package import LoadPackageInfo

    finished_at = _now()
    config = client.config
    package = LoadPackageInfo(
        load_id, "", "loaded", plan.schema, applied, finished_at,
        {"new_jobs": [], "started_jobs": [], "failed_jobs": [], "completed_jobs": []},
    )
    dataset_name = client.sql_client.dataset_name
    metrics: Any = {"started_at": started_at, "finished_at": finished_at, "job_metrics": {},
               "dataset_name": dataset_name, "outputs": []}
    # dlt's own LoadInfo has None for a load without staging; it types those fields str
    no_staging: Any = None
    # LoadInfo reads `pipeline_name` of its pipeline, all a write without one has
    ref = DirectSaveRef(pipeline_name, {plan.table_name: plan.item.num_rows})
    return LoadInfo(
        cast("SupportsPipeline", ref),
        {load_id: [metrics]},
        DestinationReference.normalize_type(config.destination_type),
        str(config),
        config.destination_name or "duckdb",
        config.environment,
        no_staging,
        no_staging,
        no_staging,
        config.fingerprint(),
        dataset_name,
        [load_id],
        [package],
        False,
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
