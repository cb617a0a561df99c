"""Drop a dataset on its destination: every table of every schema, dlt's own tables included.

dlt's job client does the dropping (`drop_storage`: `DROP SCHEMA ... CASCADE` on SQL
destinations, the dataset folder on filesystem). The profile's local working dirs of the
pipelines that load the dataset there are removed too: their state (incremental cursors, the
schema marked as stored) describes tables that no longer exist, and the next run must start
from scratch rather than skip data.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dltplus_dagster.project.dlt_config import set_run_context
from dltplus_dagster.project.errors import ProjectError

if TYPE_CHECKING:
    from dltplus_dagster.project.dataset import Dataset


@dataclass
class DropPlan:
    """What dropping a dataset removes."""

    dataset: str
    destination: str
    tables: list[str]
    """Data and dlt tables stored in the dataset now."""
    working_dirs: list[str] = field(default_factory=list)
    """Local pipeline working dirs (this profile) of pipelines that load the dataset there."""


def plan_drop(ds: Dataset) -> DropPlan:
    """What `drop_dataset(ds)` would remove (nothing is changed)."""
    tables = _stored_tables(ds)
    dirs = []
    for name, p in ds.project.pipelines.items():
        if p.dataset_name == ds.name and p.destination == ds.destination_name:
            path = os.path.join(ds.project.pipelines_dir, name)
            if os.path.isdir(path):
                dirs.append(path)
    return DropPlan(ds.name, ds.destination_name, tables, dirs)


def _stored_tables(ds: Dataset) -> list[str]:
    if not _storage_exists(ds):
        return []  # dlt's default schema lists its tables even where none were stored
    names = list(ds.tables)
    for schema in ds.dlt_dataset.schemas:
        names.extend(t for t in schema.dlt_table_names() if t not in names)
    return names


def _client(ds: Dataset) -> Any:
    """dlt's job client for the dataset on its destination (a context manager)."""
    import dlt
    from dlt.dataset.utils import get_destination_clients

    set_run_context(ds.project)
    destination = ds.entities.get_destination(ds.destination_name)
    return get_destination_clients(
        schema=dlt.Schema(ds.name), destination=destination, destination_dataset_name=ds.name
    )[0]


def _storage_exists(ds: Dataset) -> bool:
    from dltplus_dagster.project.stored_schemas import missing_local_database

    if missing_local_database(ds.entities.get_destination(ds.destination_name), ds.name):
        return False  # asking DuckDB would create the database file
    with _client(ds) as client:
        return bool(client.is_storage_initialized())


def drop_dataset(ds: Dataset, plan: DropPlan) -> None:
    """Drop `ds` on its destination and remove the working dirs in `plan`."""
    try:
        with _client(ds) as client:
            if client.is_storage_initialized():
                client.drop_storage()
    except Exception as e:
        raise ProjectError(
            f"dataset '{ds.name}' could not be dropped on destination '{ds.destination_name}': "
            f"{type(e).__name__}: {e}"
        ) from e
    for path in plan.working_dirs:
        shutil.rmtree(path, ignore_errors=True)
    ds.refresh()
