"""What a partitioned run of a pipeline passes to its source: `partitions.source_args` and the
source's own arguments and config that hold `{partition_*}` placeholders, filled for the run's
partition (or range) and coerced to the source's typed arguments as dlt would."""

from __future__ import annotations

from typing import Any

from dltplus_dagster.project.entities import (
    EntityFactory,
    ResolvedPipeline,
    _source_fields,
    coerce_source_args,
)
from dltplus_dagster.project.partitions import (
    PartitionError,
    PartitionWindow,
    first_window,
    placeholders_in,
    window_for,
)


def run_window(
    entities: EntityFactory,
    resolved: ResolvedPipeline,
    partition: str | None,
    partition_range: tuple[str, str] | None,
) -> PartitionWindow | None:
    """The window a run covers (None for an unpartitioned run). Refused: a partition of a
    pipeline without `partitions:`, both a key and a range, and no partition when the source's
    own arguments or config hold `{partition_*}` placeholders (they would stay unfilled)."""
    spec = resolved.entity.partitions
    owner = f"pipeline '{resolved.name}'"
    if partition is None and partition_range is None:
        source = entities.get_source_entity(resolved.source or "")
        if spec is not None and any(placeholders_in({**source.config, **source.with_args})):
            raise PartitionError(
                f"{owner}: source '{source.name}' takes {{partition_*}} values: run a partition "
                "(--partition KEY or --partition-range FIRST...LAST; `partition=` in Python)"
            )
        return None
    if spec is None:
        raise PartitionError(f"{owner} is not partitioned: declare `partitions:` to run a partition")
    if partition is not None and partition_range is not None:
        raise PartitionError(f"{owner}: give a partition or a range, not both")
    first, last = partition_range if partition_range is not None else (partition or "", None)
    return window_for(spec, first, last, owner)


def partition_source_args(
    entities: EntityFactory, resolved: ResolvedPipeline, window: PartitionWindow
) -> dict[str, Any]:
    """Source arguments of the run of `window`: the source's placeholder values (arguments,
    config keys that are arguments of the source) filled, then `partitions.source_args`."""
    source_name = resolved.source or ""
    entity = entities.get_source_entity(source_name)
    factory = entities.get_source_factory(source_name)
    arguments = _source_fields(factory)  # config keys that are no argument stay dlt's
    config = {k: v for k, v in entity.config.items() if k in arguments}
    templated = {k: v for k, v in {**config, **entity.with_args}.items()
                 if any(placeholders_in(v))}
    spec_args = resolved.entity.partitions.source_args if resolved.entity.partitions else {}
    filled = window.substitute({**templated, **spec_args})
    return coerce_source_args(factory, filled)


def sample_source_args(entities: EntityFactory, resolved: ResolvedPipeline) -> dict[str, Any]:
    """Source arguments of the first partition of a partitioned pipeline ({} otherwise): the
    table list is read from a source built so, without extracting."""
    if resolved.entity.partitions is None:
        return {}
    return partition_source_args(entities, resolved, first_window(resolved.entity.partitions))
