"""save() of one frame into DuckDB without load files: the same result as dlt's pipeline.

Every scenario runs twice on the same data, once on the direct path and once with it switched
off (`DLTPLUS_DUCKDB_DIRECT_WRITE=false`, dlt's extract/normalize/load), into two datasets of
one DuckDB database; the stored dlt schemas, the DuckDB column types, the rows and the load
bookkeeping must agree.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed
from helpers import make_project

from dltplus_dagster import current
from dltplus_dagster.project.dataset import Dataset
from dltplus_dagster.project.dataset_save import resolve_target, saved_row_counts
from dltplus_dagster.project.duckdb_direct import DIRECT_WRITE_ENV, plan_direct_write

YML = """
project:
  name: direct_demo
destinations:
  wh: {type: duckdb}
datasets:
  direct:
    destination: [wh]
  piped:
    destination: [wh]
  frozen_direct:
    destination: [wh]
    contract: freeze
  frozen_piped:
    destination: [wh]
    contract: freeze
"""


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_project(tmp_path, YML)
    monkeypatch.chdir(root)
    return root


def _zoo(n: int, offset: int = 0) -> pd.DataFrame:
    """Mixed pandas dtypes, a column name dlt normalizes and nulls."""
    ids = np.arange(offset, offset + n)
    return pd.DataFrame(
        {
            "id": ids,
            "Order Amount": ids * 1.5,
            "label": [f"l{i}" for i in ids],
            "flag": ids % 2 == 0,
            "created_naive": pd.Timestamp("2026-01-01") + pd.to_timedelta(ids, unit="s"),
            "created_utc": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(ids, unit="h"),
            "created_berlin": pd.Timestamp("2026-03-29", tz="Europe/Berlin")
            + pd.to_timedelta(ids, unit="h"),
            "day": [datetime.date(2026, 1, 1 + int(i) % 28) for i in ids],
            "price": [decimal.Decimal(f"{i % 10}.25") for i in ids],
            "category": pd.Categorical([("a", "b", "c")[i % 3] for i in ids]),
            "maybe": pd.array([None if i % 3 == 0 else int(i) for i in ids], dtype="Int64"),
            "blob": [bytes([int(i) % 256]) for i in ids],
            "qty": (ids % 7).astype(np.int32),
        }
    )


def _with_env(direct: bool, monkeypatch: pytest.MonkeyPatch, fn: Callable[[], Any]) -> Any:
    monkeypatch.setenv(DIRECT_WRITE_ENV, "true" if direct else "false")
    try:
        return fn()
    finally:
        monkeypatch.delenv(DIRECT_WRITE_ENV)


def _stored_table(dataset: str, table: str) -> dict:
    ds = current.catalog().dataset(dataset)
    (schema,) = [s for s in ds.dlt_dataset.schemas if s.name == dataset]
    return schema.tables[table]


def _database() -> str:
    return str(Path(current.project().local_dir) / "wh.duckdb")


def _db_columns(dataset: str, table: str) -> list[tuple]:
    with duckdb.connect(_database(), read_only=True) as con:
        rows = con.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [dataset, table],
        ).fetchall()
    assert rows
    return [tuple(r) for r in rows]


def _rows(dataset: str, table: str) -> pd.DataFrame:
    df = current.catalog().dataset(dataset).df(table)
    return df.sort_values(list(df.columns[:1])).reset_index(drop=True)


def _loads(dataset: str) -> tuple[int, int]:
    counts = current.catalog().dataset(dataset).row_counts(dlt_tables=True)
    return counts["_dlt_loads"], counts["_dlt_version"]


def _assert_same(table: str, direct: str = "direct", piped: str = "piped") -> None:
    assert _stored_table(direct, table) == _stored_table(piped, table)
    assert _db_columns(direct, table) == _db_columns(piped, table)
    pd.testing.assert_frame_equal(_rows(direct, table), _rows(piped, table))
    assert _loads(direct) == _loads(piped)


def _both(monkeypatch: pytest.MonkeyPatch, fn: Callable[[Dataset], Any],
          names: tuple[str, str] = ("direct", "piped")) -> None:
    catalog = current.catalog()
    infos = [
        _with_env(direct, monkeypatch, lambda n=name: fn(catalog.dataset(n)))
        for direct, name in zip((True, False), names)
    ]
    for info in infos:
        assert len(info.loads_ids) == 1 and not info.has_failed_jobs
        assert "1 load package(s) were loaded to destination" in str(info)
    assert saved_row_counts(infos[0]) == saved_row_counts(infos[1])
    # the direct write leaves no load package behind; dlt's pipeline always has one
    assert [bool(i.load_packages[0].package_path) for i in infos] == [False, True]


def test_new_table_from_mixed_dtypes(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _both(monkeypatch, lambda ds: ds.save(_zoo(50), table_name="zoo", write_disposition="replace"))
    _assert_same("zoo")
    assert "order_amount" in _rows("direct", "zoo").columns


def test_append_new_column_then_replace(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _both(monkeypatch, lambda ds: ds.save(_zoo(20), table_name="zoo"))
    _both(monkeypatch, lambda ds: ds.save(_zoo(10, 20).assign(extra=1.0), table_name="zoo"))
    _assert_same("zoo")
    assert len(_rows("direct", "zoo")) == 30
    _both(monkeypatch, lambda ds: ds.save(_zoo(5, 100), table_name="zoo",
                                          write_disposition="replace"))
    _assert_same("zoo")
    assert _rows("direct", "zoo")["id"].tolist() == list(range(100, 105))


def test_arrow_table_and_record_batch(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = pa.table({"id": pa.array([1, 2, 3], pa.int64()),
                      "at": pa.array([1_000, 2_000, 3_000], pa.timestamp("ns")),
                      "score": pa.array([0.5, None, 1.5])})
    _both(monkeypatch, lambda ds: ds.save(table, table_name="arrow_t"))
    _both(monkeypatch, lambda ds: ds.save(table.to_batches()[0], table_name="arrow_t"))
    _assert_same("arrow_t")


def test_frozen_dataset_same_columns_direct_new_column_rejected(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ("frozen_direct", "frozen_piped")
    # a new table is frozen out either way (the pipeline reports it)
    for name in names:
        with pytest.raises(PipelineStepFailed, match="frozen"):
            current.catalog().dataset(name).save(_zoo(3), table_name="zoo")
    # unfreeze by writing the table through the schema of an open dataset
    for name in names:
        ds = current.catalog().dataset(name)
        _with_env(False, monkeypatch, lambda ds=ds: _unfrozen_first_save(ds))
    _both(monkeypatch, lambda ds: ds.save(_zoo(4, 10), table_name="zoo"), names)
    _assert_same("zoo", *names)
    for name in names:
        with pytest.raises(PipelineStepFailed, match="frozen"):
            current.catalog().dataset(name).save(_zoo(2).assign(extra=1), table_name="zoo")


def _unfrozen_first_save(ds: Dataset) -> None:
    """The table's first rows, written while the dataset's contract is lifted."""
    entity = ds.entity
    contract, entity.contract = entity.contract, None
    try:
        ds.save(_zoo(3), table_name="zoo")
    finally:
        entity.contract = contract


def test_failed_replace_keeps_old_rows(root: Path) -> None:
    ds = current.catalog().dataset("direct")
    ds.save(pd.DataFrame({"id": [1, 2], "value": ["a", "b"]}), table_name="keep",
            write_disposition="replace")
    with duckdb.connect(_database()) as con:  # a constraint the frame below breaks on insert
        con.execute('ALTER TABLE direct."keep" ALTER COLUMN "value" SET NOT NULL')
    bad = pd.DataFrame({"id": [3], "value": [None]}).astype({"value": "string"})
    with pytest.raises(Exception, match="NOT NULL"):
        ds.save(bad, table_name="keep", write_disposition="replace")
    assert sorted(ds.df("keep")["id"]) == [1, 2]


@pytest.mark.parametrize(
    ("case", "data", "kwargs"),
    [
        ("merge", pd.DataFrame({"id": [1]}), {"write_disposition": "merge"}),
        ("list of dicts", [{"id": 1}], {}),
        ("generator", (pd.DataFrame({"id": [i]}) for i in range(2)), {}),
        ("empty frame", pd.DataFrame({"id": pd.Series([], dtype="int64")}), {}),
        ("nested", pd.DataFrame({"id": [1], "tags": [["a", "b"]]}), {}),
    ],
)
def test_not_eligible_goes_through_dlt(root: Path, case: str, data: Any, kwargs: dict) -> None:
    ds = current.catalog().dataset("direct")
    destination = ds.entities.get_destination("wh")
    schema = resolve_target(ds, "t").schema
    plan = plan_direct_write(data, "t", kwargs.get("write_disposition", "append"), schema,
                             destination, None)
    assert plan is None, case


def test_type_change_and_dlt_columns_go_through_dlt(root: Path) -> None:
    ds = current.catalog().dataset("direct")
    destination = ds.entities.get_destination("wh")
    ds.save(pd.DataFrame({"id": [1, 2]}), table_name="typed")
    ds.save([{"id": 1}], table_name="objects")  # rows from objects carry _dlt_id
    frame = pd.DataFrame({"id": [1]})
    assert plan_direct_write(frame, "typed", "append", resolve_target(ds, "typed").schema,
                             destination, None) is not None
    as_text = pd.DataFrame({"id": ["x"]})
    assert plan_direct_write(as_text, "typed", "append", resolve_target(ds, "typed").schema,
                             destination, None) is None
    assert plan_direct_write(frame, "objects", "append", resolve_target(ds, "objects").schema,
                             destination, None) is None


def test_switched_off_by_env(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = current.catalog().dataset("direct")
    destination = ds.entities.get_destination("wh")
    frame = pd.DataFrame({"id": [1]})
    monkeypatch.setenv(DIRECT_WRITE_ENV, "false")
    assert plan_direct_write(frame, "t", "append", resolve_target(ds, "t").schema, destination,
                             None) is None
