"""Transformations: Python functions or SQL over input datasets, written to an output dataset."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

from dltplus_dagster.project.catalog import get_dataset
from dltplus_dagster.project.dataset_save import saved_row_counts
from dltplus_dagster.project.errors import ProjectError
from dltplus_dagster.project.partitions import PartitionError, PartitionWindow, window_for
from dltplus_dagster.project.project import Project

if TYPE_CHECKING:
    import pyarrow as pa

    from dltplus_dagster.project.dataset import Dataset
    from dltplus_dagster.project.entities import EntityFactory
    from dltplus_dagster.project.model import TransformationEntity

SQL_CHUNK_ROWS = 100_000


class RowsWritten(dict[str, int]):
    """Rows written per output table; `load_ids` holds the dlt load id of each table's save."""

    def __init__(self) -> None:
        super().__init__()
        self.load_ids: dict[str, str] = {}


def run_transformation(
    project: Project,
    entities: EntityFactory,
    name: str,
    partition: str | None = None,
    partition_range: tuple[str, str] | None = None,
) -> RowsWritten:
    """Run a transformation and save its outputs; returns rows written per output table.

    A Python transformation receives one `Dataset` per input (in `inputs` order) and returns a
    mapping `{table_name: data}` or yields `(table_name, data)` pairs; `data` is anything
    `Dataset.save()` takes. A SQL transformation maps output tables to queries over its input.
    A run of a partition (or range) of a transformation with `partitions:` fills the SQL's
    `{partition_*}` placeholders, and passes a function that takes a `partition` argument the
    `PartitionWindow` (`.start`, `.end`, `.key`).
    """
    entity = entities.get_transformation(name)
    window = _window(entity, name, partition, partition_range)
    if not entity.output:
        raise project.error_at(("transformations", name), "`output` dataset is not set")
    if not entity.inputs:
        raise project.error_at(("transformations", name), "`inputs` (datasets) is empty")
    inputs = [get_dataset(entities, ds) for ds in entity.inputs]
    output = get_dataset(entities, entity.output)

    if entity.sql:
        outputs: Iterable[tuple[str, Any]] = (
            (table, _sql_chunks(inputs[0], window.substitute(sql) if window else sql))
            for table, sql in entity.sql.items()
        )
    else:
        fn = entities.get_transformation_function(name)
        takes_window = window is not None and "partition" in inspect.signature(fn).parameters
        produced = fn(*inputs, partition=window) if takes_window else fn(*inputs)
        outputs = _pairs(produced, name)

    written = RowsWritten()
    for table, data in outputs:
        info = output.save(data, table_name=table, write_disposition=entity.write_disposition)
        rows = saved_row_counts(info)
        written[table] = rows.get(table, sum(rows.values()))
        written.load_ids[table] = ", ".join(info.loads_ids)
    return written


def _window(
    entity: TransformationEntity,
    name: str,
    partition: str | None,
    partition_range: tuple[str, str] | None,
) -> PartitionWindow | None:
    if partition is None and partition_range is None:
        return None
    owner = f"transformation '{name}'"
    if entity.partitions is None:
        raise PartitionError(f"{owner} is not partitioned: declare `partitions:` to run a partition")
    first, last = partition_range if partition_range is not None else (partition or "", None)
    return window_for(entity.partitions, first, last, owner)


def _sql_chunks(dataset: Dataset, sql: str) -> Callable[[], Iterator[pa.Table]]:
    """The query's rows as a callable `save()` streams, chunk by chunk (not all in memory)."""

    def chunks() -> Iterator[pa.Table]:
        yield from dataset.query(sql).iter_arrow(chunk_size=SQL_CHUNK_ROWS)

    return chunks


def _pairs(produced: Any, name: str) -> Iterable[tuple[str, Any]]:
    if isinstance(produced, dict):
        return produced.items()
    if inspect.isgenerator(produced) or isinstance(produced, (list, tuple)):
        return cast("Iterable[tuple[str, Any]]", produced)  # pairs, as the docs ask
    raise ProjectError(
        f"transformation '{name}' must return a mapping {{table: data}} or yield "
        f"(table, data) pairs, got {type(produced).__name__}"
    )
