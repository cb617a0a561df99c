"""Shared helpers for the Dagster integration tests: example project copies, instances, reads."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
from dagster import DagsterInstance

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "shop_project" / "shop_project"
SECRET = "shop-demo-key-7f3a9c"  # planted in the example's .dlt/secrets.toml
PROFILE = "tests"


def copy_example(dest: Path) -> Path:
    """A fresh copy of the example project: no local data, no table cache, no pin file."""
    return Path(
        shutil.copytree(
            EXAMPLE,
            dest,
            ignore=shutil.ignore_patterns(
                "_data", ".dltplus_state.json", "profile-name", "__pycache__"
            ),
        )
    )


def duckdb_file(project_dir: Path, profile: str = PROFILE) -> Path:
    """The example's `warehouse` DuckDB file for `profile`."""
    return Path(project_dir) / "_data" / profile / "local" / "warehouse.duckdb"


def duckdb_tables(project_dir: Path, profile: str = PROFILE) -> set[str]:
    """`schema.table` of every table in the profile's DuckDB file (opened read-only)."""
    path = duckdb_file(project_dir, profile)
    if not path.exists():
        return set()
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
        ).fetchall()
    finally:
        con.close()
    return {f"{s}.{t}" for s, t in rows}


def duckdb_query(project_dir: Path, sql: str, profile: str = PROFILE) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(duckdb_file(project_dir, profile)), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def md_value(metadata: dict[str, Any], key: str) -> Any:
    """The raw value of a metadata entry (MetadataValue wrappers unwrapped)."""
    value = metadata[key]
    return getattr(value, "value", value)


def fresh_copy(tmp_path: Path) -> Iterator[Path]:
    """Body of the `shop_project` fixtures: a copy, with no active project before or after."""
    from dltplus_dagster.project import run_context

    run_context.reset()
    yield copy_example(tmp_path / "shop_project")
    run_context.reset()


def ephemeral_instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as inst:
        yield inst
