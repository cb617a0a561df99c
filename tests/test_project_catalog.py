"""Catalog and Dataset: reading tables and writing data back with save()."""

from __future__ import annotations

from pathlib import Path

import dlt
import pandas as pd
import pyarrow as pa
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed
from helpers import ITEMS_SOURCE, make_project

from dltplus_dagster import current
from dltplus_dagster.project.catalog import Catalog
from dltplus_dagster.project.dataset import Dataset
from dltplus_dagster.project.errors import EntityNotFound, ProjectError, TableNotFound

YML = """
project:
  name: catalog_demo
sources:
  items: {n_items: 10, api_key: k}
destinations:
  wh: {type: duckdb}
  other: {type: duckdb}
datasets:
  raw:
    destination: [wh]
  scratch:
    destination: [wh, other]
  frozen:
    destination: [wh]
    contract: freeze
  frozen_tables:
    destination: [wh]
    contract: {tables: freeze}
pipelines:
  items_pipe:
    source: items
    destination: wh
    dataset_name: raw
  implicit_pipe:
    source: items
    destination: duckdb
    dataset_name: implicit_ds
"""


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_project(tmp_path, YML, {"sources/items.py": ITEMS_SOURCE})
    monkeypatch.chdir(root)
    return root


@pytest.fixture()
def loaded(root: Path) -> Catalog:
    """The catalog after one run of `items_pipe` (10 item_rows, 10 events in `raw`)."""
    current.runner().run_pipeline("items_pipe")
    return current.catalog()


def _frame(ids: list[int], **extra: list) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "value": [f"v{i}" for i in ids], **extra})


def _ids(ds: Dataset, table: str) -> list[int]:
    return sorted(int(i) for i in ds.df(table)["id"])


# --- the catalog ----------------------------------------------------------------------------


def test_catalog_lists_and_finds_datasets(root: Path) -> None:
    catalog = current.catalog()
    assert list(catalog) == ["raw", "scratch", "frozen", "frozen_tables", "implicit_ds"]
    assert len(catalog) == 5
    assert "raw" in catalog and "implicit_ds" in catalog
    assert "nope" not in catalog and 5 not in catalog
    assert isinstance(catalog["raw"], Dataset)
    assert catalog["raw"].name == "raw"
    assert catalog.raw.name == "raw"  # attribute access
    assert catalog.dataset("scratch", "other").destination_name == "other"
    assert set(catalog.datasets) == {"raw", "scratch", "frozen", "frozen_tables"}
    with pytest.raises(AttributeError, match="dataset 'nope'"):
        _ = catalog.nope
    with pytest.raises(EntityNotFound, match="dataset 'nope'"):
        catalog["nope"]
    text = str(catalog)
    assert "raw@wh" in text and "implicit_ds@duckdb" in text and "profile dev" in text


def test_empty_dataset_reads(root: Path) -> None:
    ds = current.catalog().dataset("raw")
    assert ds.tables == []
    assert ds.row_counts() == {}
    assert "item_rows" not in ds
    with pytest.raises(TableNotFound, match="nothing was loaded yet"):
        ds.df("item_rows")
    assert "(no tables)" in str(ds)


def test_empty_dataset_on_existing_database(loaded: Catalog) -> None:
    ds = loaded.dataset("scratch")  # the wh file exists, this dataset does not
    assert ds.tables == []
    assert ds.row_counts() == {}


# --- reading --------------------------------------------------------------------------------


def test_tables_by_attribute_and_item(loaded: Catalog) -> None:
    ds = loaded.dataset("raw")
    assert ds.tables == ["item_rows", "events"]
    assert "item_rows" in ds
    by_attr = ds.item_rows.df()
    by_item = ds["item_rows"].df()
    assert len(by_attr) == len(by_item) == 10
    assert sorted(by_attr["id"]) == list(range(10))
    with pytest.raises(TableNotFound) as exc:
        ds["nope"]
    assert "Dataset 'raw' has no table 'nope'" in str(exc.value)
    assert "events, item_rows" in str(exc.value)
    assert isinstance(exc.value, KeyError)
    with pytest.raises(AttributeError):
        _ = ds.nope


def test_df_arrow_and_columns(loaded: Catalog) -> None:
    ds = loaded.dataset("raw")
    df = ds.df("item_rows")
    assert {"id", "value", "_dlt_load_id", "_dlt_id"} <= set(df.columns)
    table = ds.arrow("item_rows")
    assert isinstance(table, pa.Table) and table.num_rows == 10
    only = ds.df("item_rows", columns=["id"])
    assert list(only.columns) == ["id"]


@pytest.mark.parametrize("chunk_size, expected", [(3, [3, 3, 3, 1]), (5, [5, 5]), (20, [10])])
def test_iter_df_exact_chunks(loaded: Catalog, chunk_size: int, expected: list[int]) -> None:
    ds = loaded.dataset("raw")
    chunks = list(ds.iter_df("item_rows", chunk_size=chunk_size))
    assert [len(c) for c in chunks] == expected
    assert all(isinstance(c, pd.DataFrame) for c in chunks)
    assert sorted(pd.concat(chunks)["id"]) == list(range(10))


def test_iter_df_exact_chunks_across_vectors(root: Path) -> None:
    ds = current.catalog().dataset("scratch")
    ds.save(pd.DataFrame({"n": range(5000)}), table_name="big")
    sizes = [len(c) for c in ds.iter_df("big", chunk_size=1000)]
    assert sizes == [1000] * 5
    sizes = [len(c) for c in ds.iter_df("big", chunk_size=3000)]
    assert sizes == [3000, 2000]
    assert [t.num_rows for t in ds.iter_arrow("big", chunk_size=2048)] == [2048, 2048, 904]


def test_row_counts_and_query(loaded: Catalog) -> None:
    ds = loaded.dataset("raw")
    counts = ds.row_counts()
    assert counts == {"item_rows": 10, "events": 10}
    assert list(counts.df()["row_count"]) == [10, 10]
    with_dlt = ds.row_counts(dlt_tables=True)
    assert with_dlt["_dlt_loads"] == 1
    assert ds.row_counts(table_names=["events"]) == {"events": 10}
    rows = ds.query("SELECT count(*) AS n, max(id) AS m FROM item_rows").fetchall()
    assert rows == [(10, 9)]
    df = ds.query("SELECT kind, count(*) AS n FROM events GROUP BY kind").df()
    assert df.to_dict("records") == [{"kind": "e", "n": 10}]


def test_implicit_dataset_readable(root: Path) -> None:
    current.runner().run_pipeline("implicit_pipe")
    ds = current.catalog().dataset("implicit_ds")
    assert ds.row_counts() == {"item_rows": 10, "events": 10}


# --- save: data shapes ----------------------------------------------------------------------


def test_save_pandas(root: Path) -> None:
    ds = current.catalog().dataset("scratch")
    info = ds.save(_frame([1, 2, 3]), table_name="frames")
    assert not info.has_failed_jobs
    assert _ids(ds, "frames") == [1, 2, 3]
    assert ds.df("frames").set_index("id").loc[2, "value"] == "v2"


def test_save_arrow(root: Path) -> None:
    ds = current.catalog().dataset("scratch")
    ds.save(pa.table({"id": [1, 2], "score": [0.5, 1.5]}), table_name="arrow_t")
    df = ds.df("arrow_t")
    assert sorted(df["score"]) == [0.5, 1.5]


def test_save_list_of_dicts_and_dict(root: Path) -> None:
    ds = current.catalog().dataset("scratch")
    ds.save([{"id": 1, "nested": {"a": 1}}, {"id": 2, "nested": {"a": 2}}], table_name="dicts")
    assert _ids(ds, "dicts") == [1, 2]
    assert "nested__a" in ds.df("dicts").columns
    ds.save({"id": 3, "nested": {"a": 3}}, table_name="dicts")
    assert _ids(ds, "dicts") == [1, 2, 3]


def test_save_dlt_resource(root: Path) -> None:
    @dlt.resource(name="ignored_name")
    def rows():
        yield [{"id": 1}, {"id": 2}]

    ds = current.catalog().dataset("scratch")
    ds.save(rows(), table_name="from_resource")
    assert _ids(ds, "from_resource") == [1, 2]
    assert "ignored_name" not in ds.tables


def test_save_generator_of_frames(root: Path) -> None:
    ds = current.catalog().dataset("scratch")
    frames = (_frame([i * 10 + j for j in range(3)]) for i in range(4))
    ds.save(frames, table_name="gen")
    assert len(ds.df("gen")) == 12


def test_save_callable_returning_iterator(root: Path) -> None:
    calls = []

    def chunks():
        calls.append(1)
        yield pa.table({"id": [1, 2]})
        yield pa.table({"id": [3]})

    ds = current.catalog().dataset("scratch")
    ds.save(chunks, table_name="called")
    assert calls == [1]
    assert _ids(ds, "called") == [1, 2, 3]
    ds.save(lambda: iter([pd.DataFrame({"id": [4]})]), table_name="called")
    assert _ids(ds, "called") == [1, 2, 3, 4]


def test_save_frames_into_a_table_loaded_from_objects(root: Path) -> None:
    ds = current.catalog().dataset("scratch")
    ds.save([{"id": 1, "value": "a"}], table_name="mixed")
    ds.save(_frame([2]), table_name="mixed")
    ds.save(pa.table({"id": [3], "value": ["c"]}), table_name="mixed")
    assert _ids(ds, "mixed") == [1, 2, 3]
    assert ds.df("mixed")["_dlt_load_id"].notna().all()


def test_save_objects_into_a_table_loaded_from_frames(root: Path) -> None:
    ds = current.catalog().dataset("scratch")
    ds.save(_frame([1]), table_name="mixed_back")
    ds.save([{"id": 2, "value": "b"}], table_name="mixed_back")
    ds.save(iter([{"id": 3, "value": "c"}]), table_name="mixed_back")
    ds.save(_frame([4]), table_name="mixed_back")
    assert _ids(ds, "mixed_back") == [1, 2, 3, 4]
    frame = ds.df("mixed_back").set_index("id")
    # only the rows written before the table had dlt's row ids lack them
    assert frame["_dlt_id"].notna().tolist() == [False, True, True, True]


def test_save_normalizes_table_name_and_checks_arguments(root: Path) -> None:
    ds = current.catalog().dataset("scratch")
    ds.save([{"id": 1}], table_name="My Table")
    assert "my_table" in ds.tables
    with pytest.raises(ProjectError, match="write_disposition 'upsert'"):
        ds.save([{"id": 1}], table_name="t", write_disposition="upsert")
    with pytest.raises(ProjectError, match="table_name"):
        ds.save([{"id": 1}], table_name="  ")
    with pytest.raises(ProjectError, match="unsupported data"):
        ds.save(42, table_name="t")


def test_save_to_second_destination(root: Path) -> None:
    cat = current.catalog()
    cat.dataset("scratch", "other").save([{"id": 1}], table_name="only_other")
    assert cat.dataset("scratch", "other").row_counts() == {"only_other": 1}
    assert cat.dataset("scratch").row_counts() == {}
    assert (root / "_data" / "dev" / "local" / "other.duckdb").is_file()


# --- save: dispositions ---------------------------------------------------------------------


def test_append_then_replace_replaces(root: Path) -> None:
    ds = current.catalog().dataset("scratch")
    ds.save(_frame([1, 2]), table_name="t", write_disposition="append")
    ds.save(_frame([3]), table_name="t", write_disposition="append")
    assert _ids(ds, "t") == [1, 2, 3]
    ds.save(_frame([9]), table_name="t", write_disposition="replace")
    assert _ids(ds, "t") == [9]
    ds.save(_frame([10]), table_name="t")  # default: append
    assert _ids(ds, "t") == [9, 10]


def test_merge_with_primary_key(root: Path) -> None:
    ds = current.catalog().dataset("scratch")
    ds.save(_frame([1, 2]), table_name="m", write_disposition="merge", primary_key="id")
    changed = pd.DataFrame({"id": [2, 3], "value": ["changed", "new"]})
    ds.save(changed, table_name="m", write_disposition="merge", primary_key="id")
    df = ds.df("m").set_index("id")
    assert sorted(df.index) == [1, 2, 3]
    assert df.loc[2, "value"] == "changed" and df.loc[1, "value"] == "v1"


def test_disposition_honoured_for_pipeline_tables(loaded: Catalog) -> None:
    ds = loaded.dataset("raw")
    # item_rows was written with `replace` by the source: appending still appends
    ds.save(_frame([100]), table_name="item_rows", write_disposition="append")
    assert len(ds.df("item_rows")) == 11
    # events was written with `append`: replace still replaces
    ds.save([{"event_id": 0, "kind": "only"}], table_name="events", write_disposition="replace")
    assert ds.df("events")["kind"].tolist() == ["only"]
    # the pipeline's own tables are still there and the dataset still reads as one
    assert ds.row_counts() == {"item_rows": 11, "events": 1}


def test_pipeline_run_after_save_keeps_both(loaded: Catalog) -> None:
    ds = loaded.dataset("raw")
    ds.save([{"note": "hello"}], table_name="notes")
    current.runner().run_pipeline("items_pipe")
    ds.refresh()
    counts = ds.row_counts()
    assert counts["notes"] == 1
    assert counts["item_rows"] == 10  # replace
    assert counts["events"] == 20  # append


# --- contracts ------------------------------------------------------------------------------


def _load_plain(dataset: str, table: str, rows: list[dict]) -> None:
    """Load rows with plain dlt (bypassing the dataset contract), as a pipeline would have."""
    current.project()  # activate the project: plain dlt then sees destination `wh`
    pipeline = dlt.pipeline(f"plain_{dataset}", destination="wh", dataset_name=dataset)
    pipeline.run(rows, table_name=table)


def test_frozen_dataset_rejects_new_table_and_column(root: Path) -> None:
    _load_plain("frozen", "facts", [{"id": 1, "value": "a"}, {"id": 2, "value": "b"}])
    ds = current.catalog().dataset("frozen")
    assert ds.contract == "freeze"
    assert ds.row_counts() == {"facts": 2}

    with pytest.raises(PipelineStepFailed) as exc:
        ds.save([{"id": 1}], table_name="new_table")
    assert "DataValidationError" in repr(exc.value.exception) or "frozen" in str(exc.value)
    assert "new_table" in str(exc.value)

    with pytest.raises(PipelineStepFailed) as exc:
        ds.save([{"id": 3, "value": "c", "extra": 1}], table_name="facts")
    assert "extra" in str(exc.value)

    ds.refresh()
    assert ds.tables == ["facts"]
    assert ds.row_counts() == {"facts": 2}  # nothing lost, nothing half-written
    assert "extra" not in ds.df("facts").columns

    # rows that fit the frozen schema are still accepted
    ds.save([{"id": 3, "value": "c"}], table_name="facts")
    assert sorted(ds.df("facts")["id"]) == [1, 2, 3]


def test_contract_spec_freezes_only_tables(root: Path) -> None:
    _load_plain("frozen_tables", "facts", [{"id": 1}])
    ds = current.catalog().dataset("frozen_tables")
    assert ds.contract == {"tables": "freeze"}
    with pytest.raises(PipelineStepFailed):
        ds.save([{"id": 1}], table_name="other")
    ds.save([{"id": 2, "new_col": "ok"}], table_name="facts")  # columns may evolve
    assert "new_col" in ds.df("facts").columns
    assert ds.tables == ["facts"]


def test_frozen_dataset_blocks_pipeline_runs_too(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        """
        sources:
          items: {n_items: 2, api_key: k}
        datasets:
          ro: {destination: [duckdb], contract: freeze}
        pipelines:
          p: {source: items, destination: duckdb, dataset_name: ro}
        """,
        {"sources/items.py": ITEMS_SOURCE},
    )
    with pytest.raises(PipelineStepFailed) as exc:
        current.runner(str(root)).run_pipeline("p")
    assert "frozen" in str(exc.value).lower() or "DataValidationError" in str(exc.value)
    assert current.catalog(str(root)).dataset("ro").row_counts() == {}
