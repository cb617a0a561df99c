"""Writes that must never damage data: save(), the IO manager and transformations.

Every refused or failed write is checked against a full picture of the dataset taken before
it: the DuckDB (or PostgreSQL) columns with types and nullability, every stored dlt schema
version (`_dlt_version`, the schema JSON included), the `_dlt_loads` rows and every row of
every table. Both write paths run: the direct DuckDB insert and dlt's pipeline
(`DLTPLUS_DUCKDB_DIRECT_WRITE=false`, and merge, which never goes direct).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from dagster import AssetKey, DagsterInstance, StaticPartitionsDefinition, asset, materialize
from dlt.pipeline.exceptions import PipelineStepFailed
from helpers import make_project
from pg import PgDatabase, pg_db, pg_server  # noqa: F401

from dltplus_dagster import DltDatasetIOManager, current
from dltplus_dagster.dagster.resources import DltProjectResource
from dltplus_dagster.project.dataset import Dataset
from dltplus_dagster.project.duckdb_direct import DIRECT_WRITE_ENV
from dltplus_dagster.project.errors import ProjectError
from dltplus_dagster.project.names import find_collisions
from dltplus_dagster.project.table_names import (
    ReservedTableName,
    TableNameCollision,
    check_table_name,
)

YML = """
project:
  name: save_guard
destinations:
  wh: {type: duckdb}
  keyed: {type: duckdb, create_indexes: true}   # enforces unique and primary keys
datasets:
  keyed_ds:
    destination: [keyed]
  scratch:
    destination: [wh]
  frozen:
    destination: [wh]
    contract: freeze
  discarding:
    destination: [wh]
    contract: {columns: discard_row}
  reports:
    destination: [wh]
transformations:
  bad_output:
    function: reports.bad_output
    inputs: [scratch]
    output: reports
"""

REPORTS = '''
import pandas as pd


def bad_output(scratch):
    return {"_DLT_version": pd.DataFrame({"x": [1]})}
'''


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_project(tmp_path, YML, {"transformations/reports.py": REPORTS})
    monkeypatch.chdir(root)
    return root


@pytest.fixture(params=["direct", "pipeline"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once with the direct DuckDB write on and once through dlt's pipeline."""
    monkeypatch.setenv(DIRECT_WRITE_ENV, "true" if request.param == "direct" else "false")
    return str(request.param)


def _db(destination: str = "wh") -> str:
    return str(Path(current.project().local_dir) / f"{destination}.duckdb")


def picture(dataset: str, destination: str = "wh") -> dict[str, Any]:
    """Everything a write could change in `dataset` of the DuckDB database."""
    with duckdb.connect(_db(destination), read_only=True) as con:
        columns = con.execute(
            "SELECT table_name, column_name, data_type, is_nullable FROM "
            "information_schema.columns WHERE table_schema = ? "
            "ORDER BY table_name, ordinal_position",
            [dataset],
        ).fetchall()
        tables = sorted({c[0] for c in columns})
        rows = {
            t: sorted(map(repr, con.execute(f'SELECT * FROM "{dataset}"."{t}"').fetchall()))
            for t in tables
        }
    assert rows.get("_dlt_version"), "the picture needs a stored schema to compare"
    return {"columns": columns, "rows": rows}


def _ds(name: str = "scratch") -> Dataset:
    return current.catalog().dataset(name)


def _nonnull_table(ds: Dataset) -> None:
    """Table `t` from frames (no dlt row columns): `id` NOT NULL, `v` text, two rows."""
    ds.save(pd.DataFrame({"id": [1, 2], "v": ["a", "b"]}), "t",
            columns={"id": {"name": "id", "data_type": "bigint", "nullable": False}})


# --- dlt's own tables ------------------------------------------------------------------------


@pytest.mark.parametrize(
    # dlt names tables with `normalize_tables_path`: `__dlt_x` becomes `dlt_x`, no dlt table
    "name", ["_dlt_loads", "_dlt_version", "_dlt_pipeline_state", "_DLT_loads", "_Dlt_Custom"]
)
def test_save_refuses_dlt_tables(root: Path, name: str) -> None:
    ds = _ds()
    ds.save([{"id": 1}], "t")
    before = picture("scratch")
    for data in ([{"load_id": "x", "status": 0}], pd.DataFrame({"load_id": ["x"]})):
        with pytest.raises(ReservedTableName) as exc:
            ds.save(data, name)
        assert f"table_name {name!r}" in str(exc.value) and "_dlt" in str(exc.value)
    assert picture("scratch") == before


def test_transformation_cannot_write_dlt_tables(root: Path) -> None:
    _ds().save([{"id": 1}], "t")
    _ds("reports").save([{"id": 1}], "kept")
    before = picture("reports")
    with pytest.raises(ReservedTableName, match="'_DLT_version'"):
        current.runner().run_transformation("bad_output")
    assert picture("reports") == before


def test_io_manager_cannot_write_dlt_tables(root: Path, instance: DagsterInstance) -> None:
    _ds().save([{"id": 1}], "t")
    before = picture("scratch")

    @asset(key=AssetKey(["scratch", "_dlt_loads"]), io_manager_key="io")
    def sneaky() -> pd.DataFrame:
        return pd.DataFrame({"load_id": ["forged"], "status": [0]})

    io = DltDatasetIOManager(dataset="scratch", dlt_project=DltProjectResource(
        project_dir=str(root), profile="dev"))
    result = materialize([sneaky], resources={"io": io}, instance=instance,
                         raise_on_error=False)
    assert not result.success
    assert "_dlt_loads" in _failure_text(result) and "dlt's own tables" in _failure_text(result)
    assert picture("scratch") == before


# --- two names, one table --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "normalized"),
    [("orders", "Orders", "orders"), ("ö", "ü", "x"), ("a-b", "a_b", "a_b"),
     ("My Table", "my_table", "my_table")],
)
def test_save_refuses_a_second_name_for_one_table(
    root: Path, path: str, first: str, second: str, normalized: str
) -> None:
    ds = _ds()
    ds.save(pd.DataFrame({"id": [1]}), first)
    ds.save(pd.DataFrame({"id": [2]}), first)  # the same name again is the same table
    before = picture("scratch")
    for catalog_ds in (ds, _fresh_catalog_ds()):  # remembered in the stored schema
        with pytest.raises(TableNameCollision) as exc:
            catalog_ds.save(pd.DataFrame({"id": [3]}), second)
        message = str(exc.value)
        assert repr(first) in message and repr(second) in message
        assert repr(normalized) in message
        assert exc.value.originals == sorted({first, second})
    assert picture("scratch") == before
    assert sorted(ds.df(normalized)["id"]) == [1, 2]


def _fresh_catalog_ds() -> Dataset:
    from dltplus_dagster.project import run_context

    run_context.reset()
    return _ds()


def test_collision_check_is_reusable() -> None:
    import dlt

    naming = dlt.Schema("x").naming
    clashes = find_collisions(["Orders", "a-b", "ok"], naming.normalize_table_identifier,
                              {"orders": "orders", "a_b": "a_b"})
    assert clashes == {"orders": ["orders", "Orders"], "a_b": ["a_b", "a-b"]}
    assert check_table_name("orders", naming, {"orders": "orders"}) == "orders"
    with pytest.raises(TableNameCollision, match="'Orders' and the existing table 'orders'"):
        check_table_name("Orders", naming, {"orders": "orders"})


# --- failed writes leave everything as it was ------------------------------------------------


def test_not_null_violation_with_new_column_changes_nothing(root: Path, path: str) -> None:
    ds = _ds()
    _nonnull_table(ds)
    before = picture("scratch")
    bad = pd.DataFrame({"id": pd.array([None, 3], dtype="Int64"), "extra": [1, 2]})
    with pytest.raises(Exception, match="NOT NULL"):
        ds.save(bad, "t")
    assert picture("scratch") == before
    ds.save(pd.DataFrame({"id": [3], "v": ["c"]}), "t")  # the table still takes good rows
    assert sorted(ds.df("t")["id"]) == [1, 2, 3]


def test_replace_that_fails_keeps_the_rows(root: Path, path: str) -> None:
    ds = _ds()
    _nonnull_table(ds)
    before = picture("scratch")
    bad = pd.DataFrame({"id": pd.array([None], dtype="Int64"), "v": ["x"]})
    with pytest.raises(Exception, match="NOT NULL"):
        ds.save(bad, "t", write_disposition="replace")
    assert picture("scratch") == before


def test_value_the_column_cannot_take_changes_nothing(root: Path, path: str) -> None:
    ds = _ds()
    _nonnull_table(ds)
    before = picture("scratch")
    with pytest.raises(PipelineStepFailed, match="abc"):
        ds.save(pd.DataFrame({"id": ["abc"], "new_col": [1.5]}), "t")
    assert picture("scratch") == before


def test_objects_into_a_new_and_an_existing_table_fail_cleanly(root: Path) -> None:
    """Objects go through dlt's pipeline; a new table and a nested table are dropped again."""
    ds = _ds()
    ds.save([{"id": 1, "v": "a"}], "objs",
            columns={"id": {"name": "id", "data_type": "bigint", "nullable": False}})
    before = picture("scratch")
    rows = [{"id": 2, "v": "b", "tags": [{"k": 1}]}, {"id": None, "v": "c", "tags": [{"k": 2}]}]
    with pytest.raises(PipelineStepFailed):
        ds.save(rows, "objs", write_disposition="append")
    assert picture("scratch") == before
    with pytest.raises(PipelineStepFailed):
        ds.save(rows, "objs", write_disposition="merge", primary_key="id")
    assert picture("scratch") == before


def test_key_violation_with_nested_rows_changes_nothing(root: Path) -> None:
    """The nested table's job may commit before the root's fails: its rows are removed."""
    ds = current.catalog().dataset("keyed_ds")
    key = {"id": {"name": "id", "data_type": "bigint", "unique": True, "nullable": False}}
    ds.save([{"id": 1, "tags": [{"k": 1}, {"k": 2}]}], "k", columns=key)
    before = picture("keyed_ds", "keyed")
    assert "k__tags" in before["rows"]
    dup = [{"id": 2, "tags": [{"k": 3}]}, {"id": 1, "tags": [{"k": 4}], "new": "x"}]
    with pytest.raises(PipelineStepFailed, match="(?i)duplicate|constraint"):
        ds.save(dup, "k")
    assert picture("keyed_ds", "keyed") == before


def test_generator_that_raises_halfway_changes_nothing(root: Path, path: str) -> None:
    ds = _ds()
    _nonnull_table(ds)
    before = picture("scratch")

    def frames() -> Iterator[pd.DataFrame]:
        yield pd.DataFrame({"id": [10], "v": ["x"], "more": [1]})
        raise RuntimeError("source broke halfway")

    with pytest.raises(PipelineStepFailed, match="source broke halfway"):
        ds.save(frames, "t", write_disposition="replace")
    assert picture("scratch") == before


def test_contract_freeze_and_discard(root: Path, path: str) -> None:
    current.project()  # a frozen dataset takes no new table: load one with plain dlt
    dlt.pipeline("plain_frozen", destination="wh", dataset_name="frozen").run(
        [{"id": 1}], table_name="facts")
    frozen = _ds("frozen")
    before = picture("frozen")
    with pytest.raises(PipelineStepFailed):
        frozen.save(pd.DataFrame({"id": [2], "extra": ["x"]}), "facts")
    with pytest.raises(PipelineStepFailed):
        frozen.save(pd.DataFrame({"id": [2]}), "other")
    assert picture("frozen") == before

    discarding = _ds("discarding")
    discarding.save([{"id": 1}], "facts")
    before = picture("discarding")
    discarding.save([{"id": 2, "extra": "dropped"}, {"id": 3}], "facts")
    after = picture("discarding")
    assert after["columns"] == before["columns"]  # the row with a new column is discarded
    assert sorted(discarding.df("facts")["id"]) == [1, 3]


# --- hostile data and names ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (None, ProjectError, "unsupported data of type NoneType"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), ProjectError, "repeated column names: 'a'"),
        (pa.table([pa.array([1]), pa.array([2])], names=["a", "a"]), ProjectError,
         "repeated column names: 'a'"),
        (pd.DataFrame({"A": [1], "a": [2]}), TableNameCollision, "'A', 'a'.*normalize to 'a'"),
        (pd.DataFrame({"": [1]}), ProjectError, "empty column names"),
        ([{"Name": 1}, {"name": 2}], TableNameCollision, "normalize to 'name'"),
    ],
    ids=["none", "dup-pandas", "dup-arrow", "case-clash", "empty", "dict-clash"],
)
def test_hostile_data_is_refused(root: Path, path: str, data: Any, error: type, match: str
                                 ) -> None:
    ds = _ds()
    ds.save(pd.DataFrame({"a": [0]}), "t")
    before = picture("scratch")
    with pytest.raises(error, match=match):
        ds.save(data, "t")
    assert picture("scratch") == before


@pytest.mark.parametrize("kind", ["pandas", "arrow", "dicts"])
def test_dlt_columns_in_the_data_are_stamped_by_dlt(root: Path, path: str, kind: str) -> None:
    """Rows read from one table carry its `_dlt_id`/`_dlt_load_id`: written elsewhere, they get
    this write's load id (listed in `_dlt_loads`), never the forged or copied values."""
    ds = _ds()
    ds.save([{"id": 0}], "objs")  # a table with dlt's row columns, from objects
    ds.save(pd.DataFrame({"id": [0]}), "frames")  # one without them
    rows = {"id": [1], "_dlt_id": ["forged-id"], "_dlt_load_id": ["forged-load"],
            "_DLT_x": ["own"]}
    data = {"pandas": pd.DataFrame(rows), "arrow": pa.table(rows),
            "dicts": pd.DataFrame(rows).to_dict("records")}[kind]
    ds.save(data, "objs")
    ds.save(data, "frames")
    ds.refresh()
    loads = {r[0] for r in ds.query("SELECT load_id FROM _dlt_loads").fetchall()}
    for table in ("objs", "frames"):
        frame = ds.df(table).set_index("id")
        assert "_dlt_x" not in frame.columns
        if "_dlt_load_id" in frame.columns:  # objects always get dlt's row columns
            assert frame.loc[1, "_dlt_load_id"] in loads
            assert frame.loc[1, "_dlt_id"] not in (None, "forged-id")
    if kind != "dicts":
        assert list(ds.df("frames").columns) == ["id"]


def test_frame_without_columns(root: Path, path: str) -> None:
    ds = _ds()
    ds.save(pd.DataFrame({"x": [1, 2]}), "t")
    before = picture("scratch")
    with pytest.raises(ProjectError, match="new table 'new' has no columns"):
        ds.save(pd.DataFrame(), "new")
    assert picture("scratch") == before
    ds.save(pd.DataFrame(), "t", write_disposition="replace")  # replace with nothing: empty
    assert len(ds.df("t")) == 0


def test_sql_injection_and_unicode_names_are_plain_tables(root: Path, path: str) -> None:
    ds = _ds()
    ds.save(pd.DataFrame({"id": [1]}), "y")
    ds.save(pd.DataFrame({"id": [7]}), 'x"; DROP TABLE y; --')
    ds.save(pd.DataFrame({"id": [8]}), "Ünïcode")
    ds.refresh()
    assert set(ds.tables) == {"y", "x_drop_table_yxxx", "_n_code"}
    assert [sorted(ds.df(t)["id"]) for t in ("y", "x_drop_table_yxxx", "_n_code")] == [
        [1], [7], [8]]


# --- the IO manager ---------------------------------------------------------------------------


def test_io_manager_replace_with_empty_frame_empties_the_table(
    root: Path, instance: DagsterInstance
) -> None:
    frames = {"rows": pd.DataFrame({"x": [1, 2, 3]})}

    @asset(key=AssetKey(["scratch", "daily"]), io_manager_key="io")
    def daily() -> pd.DataFrame:
        return frames["rows"]

    io = DltDatasetIOManager(dataset="scratch", write_disposition="replace",
                             dlt_project=DltProjectResource(project_dir=str(root), profile="dev"))
    assert materialize([daily], resources={"io": io}, instance=instance).success
    assert len(_ds().df("daily")) == 3

    frames["rows"] = pd.DataFrame({"x": pd.Series([], dtype="int64")})
    result = materialize([daily], resources={"io": io}, instance=instance)
    assert result.success
    _ds().refresh()
    assert len(_ds().df("daily")) == 0
    event = instance.get_latest_materialization_event(AssetKey(["scratch", "daily"]))
    metadata = event.asset_materialization.metadata
    assert metadata["dagster/row_count"].value == 0


def test_io_manager_partition_rewrite_that_fails_keeps_its_old_rows(
    root: Path, instance: DagsterInstance
) -> None:
    """The partition's old rows are deleted in the insert's transaction, not before it."""
    amount = {"amount": {"name": "amount", "data_type": "bigint", "nullable": False}}
    _ds().save(pd.DataFrame({"_partition_key": ["a", "b"], "amount": [1, 2]}), "sales",
               columns=amount)
    before = picture("scratch")

    @asset(key=AssetKey(["scratch", "sales"]), io_manager_key="io",
           partitions_def=StaticPartitionsDefinition(["a", "b"]))
    def sales() -> pd.DataFrame:
        return pd.DataFrame({"amount": pd.array([None], dtype="Int64")})

    io = DltDatasetIOManager(dataset="scratch",
                             dlt_project=DltProjectResource(project_dir=str(root), profile="dev"))
    result = materialize([sales], partition_key="a", resources={"io": io}, instance=instance,
                         raise_on_error=False)
    assert not result.success and "NOT NULL" in _failure_text(result)
    assert picture("scratch") == before


def _failure_text(result: Any) -> str:
    parts = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.event_specific_data.error
            while error is not None:
                parts.append(error.message)
                error = error.cause
    return "\n".join(parts)


# --- PostgreSQL -------------------------------------------------------------------------------

PG_YML = """
project:
  name: save_guard_pg
destinations:
  warehouse:
    type: postgres
    credentials: "{env.SAVE_GUARD_PG_DSN}"
datasets:
  scratch:
    destination: [warehouse]
"""


def pg_picture(db: PgDatabase, dataset: str) -> dict[str, Any]:
    columns = db.query(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = %s ORDER BY table_name, ordinal_position", (dataset,))
    tables = sorted({c[0] for c in columns})
    rows = {t: sorted(map(repr, db.query(f'SELECT * FROM "{dataset}"."{t}"'))) for t in tables}
    assert rows.get("_dlt_version")
    return {"columns": columns, "rows": rows}


def test_postgres_failed_saves_change_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_db: PgDatabase  # noqa: F811
) -> None:
    root = make_project(tmp_path, PG_YML)
    monkeypatch.chdir(root)
    monkeypatch.setenv("SAVE_GUARD_PG_DSN", pg_db.dsn)
    ds = _ds()
    ds.save([{"id": 1, "v": "a"}, {"id": 2, "v": "b"}], "t",
            columns={"id": {"name": "id", "data_type": "bigint", "nullable": False}})
    ds.save(pd.DataFrame({"id": [1]}), "Orders")
    before = pg_picture(pg_db, "scratch")

    with pytest.raises(PipelineStepFailed):
        ds.save(pd.DataFrame({"id": pd.array([None], dtype="Int64"), "extra": [1]}), "t")
    with pytest.raises(PipelineStepFailed):
        ds.save([{"id": None, "v": "x"}], "t", write_disposition="replace")
    with pytest.raises(PipelineStepFailed):
        ds.save([{"id": 3, "v": "c", "new": 1}, {"id": None, "v": "d"}], "t")
    with pytest.raises(TableNameCollision, match="'orders'"):
        ds.save(pd.DataFrame({"id": [2]}), "orders")
    with pytest.raises(ReservedTableName):
        ds.save([{"x": 1}], "_dlt_version")
    assert pg_picture(pg_db, "scratch") == before
