"""What `Dataset.save()` accepts as data, and the dlt hints that let it into an existing table.

Frames (pandas, pyarrow), lists of dicts, dlt resources, iterators and callables returning
them. Names dlt would drop or merge are refused before anything is written; dlt's own columns
in the data (read from another table) are left out because dlt stamps this write's own.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any, cast

from dltplus_dagster.project.errors import ProjectError
from dltplus_dagster.project.table_names import check_column_names, dlt_columns

if TYPE_CHECKING:
    from dlt.common.normalizers.naming import NamingConvention
    from dlt.common.schema import Schema
    from dlt.extract.resource import DltResource


def is_frame(data: object) -> bool:
    """True for a pandas or pyarrow object (a DataFrame, Table or RecordBatch)."""
    return type(data).__module__.startswith(("pandas", "pyarrow"))


def checked_data(data: Any, table_name: str, naming: NamingConvention, exists: bool) -> Any:
    """`data` without dlt's own columns (`_dlt_id`, `_dlt_load_id`... of a table it was read
    from: dlt stamps this write's own); refuses column names dlt would drop or merge (frames,
    lists of dicts) and a frame without columns for a table that does not exist."""
    if is_frame(data):
        names = getattr(data, "column_names", None)
        columns = list(names) if names is not None else list(getattr(data, "columns", []))
        if not columns and not exists:
            raise ProjectError(
                f"save(): the data for new table '{table_name}' has no columns; a table needs "
                "at least one"
            )
        check_column_names(columns, naming, table=table_name)
        own: Collection[str] = dlt_columns(columns, naming)
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


def as_resource(data: Any, table_name: str) -> DltResource:
    """`data` as a dlt resource named `table_name` (a resource is taken as it is)."""
    import dlt
    from dlt.extract.resource import DltResource

    if isinstance(data, DltResource):
        return data
    if callable(data) and not is_frame(data):
        data = data()
    if is_frame(data) or isinstance(data, (list, tuple)):
        return cast("DltResource", dlt.resource(data, name=table_name))
    if isinstance(data, dict):
        return dlt.resource([data], name=table_name)
    if hasattr(data, "__iter__") or hasattr(data, "__next__"):
        return cast("DltResource", dlt.resource(data, name=table_name))
    raise ProjectError(
        f"save(): unsupported data of type {type(data).__name__}; expected a DataFrame, a pyarrow "
        "Table, a list of dicts, a dlt resource, an iterator of those or a callable returning one"
    )


def frame_dlt_columns(pipeline_name: str, schema: Schema, table_name: str) -> dict[str, bool]:
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


def nullable_dlt_columns(schema: Schema, table_name: str) -> dict[str, Any] | None:
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
