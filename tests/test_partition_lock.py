"""A partition's Dagster asset reads the local DuckDB file for its materialization (row counts,
schemas, checks) in its turn: under the destination lock the runs take. Read outside it, they
collided with the next partition's load (`python -m bench partition` showed it: one of 4
partitions started together failed with "DuckDB file ... is locked by another process")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance, materialize
from filelock import FileLock, Timeout
from partitions_support import duckdb_rows, events_project

import dltplus_dagster.dagster.assets as assets_module
from dltplus_dagster import build_definitions

EVENTS = AssetKey(["raw", "daily_events"])


def lock_is_held(path: Path) -> bool:
    """Whether someone holds the file lock (a lock object of its own: a holder in this process
    blocks it too)."""
    probe = FileLock(str(path), is_singleton=False)
    try:
        probe.acquire(timeout=0)
    except Timeout:
        return True
    probe.release()
    return False


def materialize_reading(root: Path, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> list[bool]:
    """Materialize the events asset; whether the destination lock was held when the asset
    read the file to build its materialization."""
    lock = root / "_data" / "dev" / "locks" / "destination__warehouse.lock"
    seen: list[bool] = []
    original = assets_module._pipeline_results

    def reading(*args: Any, **kw: Any) -> Any:
        seen.append(lock_is_held(lock))
        yield from original(*args, **kw)

    monkeypatch.setattr(assets_module, "_pipeline_results", reading)
    defs = build_definitions(str(root), "dev")
    with DagsterInstance.ephemeral() as inst:
        result = materialize(list(defs.assets or []), resources=defs.resources, instance=inst,
                             selection=[EVENTS], **kwargs)
    assert result.success
    assert not lock_is_held(lock)  # released after the reads
    return seen


def test_partition_reads_its_materialization_under_the_destination_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = events_project(tmp_path)
    assert materialize_reading(root, monkeypatch, partition_key="2024-03-05") == [True]
    days = duckdb_rows(root, "SELECT day, COUNT(*) FROM raw.daily_events GROUP BY 1 ORDER BY 1")
    assert days == [("2024-03-05", 2)]


def test_backfill_range_reads_under_the_lock_too(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root = events_project(tmp_path)
    tags = {"dagster/asset_partition_range_start": "2024-03-05",
            "dagster/asset_partition_range_end": "2024-03-07"}
    assert materialize_reading(root, monkeypatch, tags=tags) == [True]
    assert duckdb_rows(root, "SELECT COUNT(*) FROM raw.daily_events") == [(6,)]
