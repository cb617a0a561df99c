"""Dataset: one catalog dataset on one destination, read through dlt's own `dlt.Dataset`.

Reads see every schema stored in the dataset (`stored_schemas`), so tables written by
pipelines and by `save()` are all visible; the schemas are cached until `refresh()`.
Writing is `save()`, whose flow lives in `dataset_save`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from dltplus_dagster.project.dataset_save import save
from dltplus_dagster.project.dlt_config import set_run_context
from dltplus_dagster.project.errors import ProjectError, TableNotFound
from dltplus_dagster.project.model import ContractSpec, DatasetEntity
from dltplus_dagster.project.project import Project
from dltplus_dagster.project.stored_schemas import missing_local_database, stored_schemas

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from dlt.common.destination import AnyDestination
    from dlt.common.pipeline import LoadInfo
    from dlt.common.schema import Schema
    from dlt.common.schema.typing import TSchemaContract, TSchemaContractDict
    from dlt.dataset.dataset import Dataset as DltDataset
    from dlt.dataset.relation import Relation

    from dltplus_dagster.project.entities import EntityFactory


class RowCounts(dict[str, int]):
    """Table name -> row count; `.df()` gives the same as a DataFrame."""

    def df(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame({"table_name": list(self), "row_count": list(self.values())})


class Dataset:
    """A dataset of the catalog on one destination: dlt's data access plus `save()`."""

    def __init__(
        self,
        project: Project,
        entities: EntityFactory,
        entity: DatasetEntity,
        destination_name: str,
    ) -> None:
        self.project = project
        self.entities = entities
        self.entity = entity
        self.destination_name = destination_name
        self._dlt: DltDataset | None = None

    @property
    def name(self) -> str:
        return self.entity.name

    @property
    def dataset_name(self) -> str:
        return self.entity.name

    @property
    def contract(self) -> TSchemaContract | None:
        """The dataset's dlt schema contract, in the form `pipeline.run(schema_contract=)` takes."""
        c = self.entity.contract
        if isinstance(c, ContractSpec):
            return cast("TSchemaContractDict", {k: v for k, v in vars(c).items() if v is not None})
        return c

    def destination(self) -> AnyDestination:
        """The dlt destination this dataset lives on, with the project's config active."""
        set_run_context(self.project)
        return self.entities.get_destination(self.destination_name)

    # --- schemas ---
    @property
    def dlt_dataset(self) -> DltDataset:
        """The underlying `dlt.Dataset` (schemas are read from the destination on first use)."""
        if self._dlt is None:
            import dlt

            destination = self.destination()
            if missing_local_database(destination, self.name):
                # nothing stored yet, and reading must not create an empty database file
                schemas = [dlt.Schema(self.name)]
            else:
                schemas = stored_schemas(destination, self.name)
            self._dlt = dlt.dataset(destination, self.name, schema=schemas or None)
        return self._dlt

    def refresh(self) -> None:
        """Forget cached schemas, e.g. after another process loaded new tables."""
        self._dlt = None

    def assume_schemas(self, schemas: Sequence[Schema]) -> None:
        """Read through `schemas` (cloned) instead of the stored ones, e.g. right after a run
        stored them: saves the round trip to the destination. `refresh()` undoes it."""
        import dlt

        self._dlt = dlt.dataset(self.destination(), self.name, schema=[s.clone() for s in schemas])

    def remember_schema(self, written: Schema) -> None:
        """After a write stored `written`, cache it instead of reading all schemas again."""
        if self._dlt is None:
            return  # nothing cached: the next access reads every stored schema
        others = [s for s in self._dlt.schemas if s.name != written.name]
        self.assume_schemas([written, *others])

    # --- reading ---
    @property
    def tables(self) -> list[str]:
        """Data tables of every schema stored in this dataset (no `_dlt_*` tables)."""
        try:
            schemas = self.dlt_dataset.schemas
        except Exception as e:
            raise ProjectError(f"dataset '{self.name}' cannot be read: {e}") from e
        names: list[str] = []
        for schema in schemas:
            for t in schema.data_table_names(seen_data_only=True):
                if t not in names:
                    names.append(t)
        return names

    def table(self, table_name: str) -> Relation:
        """A `dlt.Relation` over one table."""
        tables = self.tables
        if table_name not in tables:
            raise TableNotFound(self.name, table_name, tables)
        return self.dlt_dataset.table(table_name)

    def __getitem__(self, table_name: str) -> Relation:
        return self.table(table_name)

    def __getattr__(self, name: str) -> Relation:
        # a property of this class that raised AttributeError is no table name (no recursion)
        if name.startswith("_") or hasattr(type(self), name):
            raise AttributeError(name)
        try:
            return self.table(name)
        except TableNotFound as e:
            raise AttributeError(str(e)) from e

    def __contains__(self, table_name: object) -> bool:
        return table_name in self.tables

    def query(self, sql: str) -> Relation:
        """A `dlt.Relation` over a SQL query in this dataset."""
        return self.dlt_dataset.query(sql)

    def df(self, table_name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        # dlt types df() Optional (an empty chunk iterator); a full fetch yields one frame
        return cast("pd.DataFrame", self._relation(table_name, columns).df())

    def arrow(self, table_name: str, columns: Sequence[str] | None = None) -> pa.Table:
        return self._relation(table_name, columns).arrow()

    def iter_df(
        self, table_name: str, chunk_size: int = 10_000, columns: Sequence[str] | None = None
    ) -> Iterator[pd.DataFrame]:
        """Frames of exactly `chunk_size` rows (the last may be shorter)."""
        for table in self.iter_arrow(table_name, chunk_size, columns):
            yield table.to_pandas()

    def iter_arrow(
        self, table_name: str, chunk_size: int = 10_000, columns: Sequence[str] | None = None
    ) -> Iterator[pa.Table]:
        """Arrow tables of exactly `chunk_size` rows (dlt's DuckDB reader returns whole vectors)."""
        import pyarrow as pa

        buffer: list[pa.Table] = []
        buffered = 0
        for chunk in self._relation(table_name, columns).iter_arrow(chunk_size=chunk_size):
            buffer.append(chunk)
            buffered += chunk.num_rows
            while buffered >= chunk_size:
                combined = pa.concat_tables(buffer)
                yield combined.slice(0, chunk_size)
                rest = combined.slice(chunk_size)
                buffer, buffered = ([rest], rest.num_rows) if rest.num_rows else ([], 0)
        if buffered:
            yield pa.concat_tables(buffer)

    def _relation(self, table_name: str, columns: Sequence[str] | None) -> Relation:
        rel = self.table(table_name)
        if columns:
            rel = rel.select(*columns)
        return rel

    def row_counts(
        self, dlt_tables: bool = False, table_names: Sequence[str] | None = None
    ) -> RowCounts:
        """Rows per table (an empty mapping for a dataset without data tables)."""
        names = list(table_names) if table_names else self.tables
        if dlt_tables:
            for schema in self.dlt_dataset.schemas:
                names.extend(t for t in schema.dlt_table_names() if t not in names)
        if not names:
            return RowCounts()
        rows = self.dlt_dataset.row_counts(table_names=names).fetchall()
        counts = {str(r[0]): int(r[1]) for r in rows}
        return RowCounts((n, counts.get(n, 0)) for n in names)

    def __str__(self) -> str:
        try:
            tables = "\n".join(f"  {t}" for t in self.tables) or "  (no tables)"
        except ProjectError as e:
            tables = f"  (not readable: {e})"
        return f"Dataset {self.name}@{self.destination_name}:\n{tables}"

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, destination={self.destination_name!r})"

    # --- writing ---
    def save(
        self,
        data: Any,
        table_name: str,
        write_disposition: str = "append",
        primary_key: str | Sequence[str] | None = None,
        columns: Any = None,
        *,
        replace_rows: tuple[str, Sequence[str]] | None = None,
    ) -> LoadInfo:
        """Write `data` into `table_name` of this dataset and return dlt's `LoadInfo`.

        `data`: a pandas DataFrame, a pyarrow Table, a list of dicts, a dlt resource, an iterator
        of those, or a callable returning such an iterator (streamed chunk by chunk). The given
        `write_disposition` is always honoured, also for an existing table. The dataset's
        `contract` applies; a violation raises dlt's `DataValidationError` inside
        `PipelineStepFailed`. One DataFrame or Arrow table saved into DuckDB is inserted straight
        from memory (same schema and load bookkeeping as dlt's pipeline, no load files).

        Refused before anything is written (`ProjectError`): a `table_name` in dlt's namespace
        (`_dlt*`) or one that normalizes to a table of the dataset saved under another name;
        empty, repeated or colliding column names. dlt's own columns in the data (`_dlt_id`,
        `_dlt_load_id` of a table it was read from) are left out: dlt stamps this write's. A
        write that fails leaves tables, columns and stored schemas as they were (`save_guard`).

        `replace_rows=(column, values)` with `append` replaces the table's rows whose `column`
        holds one of `values` (partitions) with `data`, in one transaction: the direct DuckDB
        insert deletes them first; elsewhere dlt merges with `column` as merge key.
        """
        return save(self, data, table_name, write_disposition, primary_key, columns,
                    replace_rows=replace_rows)
