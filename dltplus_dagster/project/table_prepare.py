"""Prepare the table-list state: every pipeline's tables, found ahead of definitions load.

One function fills the state wherever it is kept: `dltplus project prepare` writes the
project's own cache file, the Dagster component (`DltProjectComponent.write_state_to_path`,
run by `dg utils refresh-defs-state`) writes its defs state. Both call source factories here
(resources are built, nothing is extracted) and read the schemas runs stored, so loading
definitions from the state never calls a source nor needs a source's secrets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dltplus_dagster.project.entities import EntityFactory
from dltplus_dagster.project.project import Project
from dltplus_dagster.project.table_state import TableListCache


@dataclass
class PreparedPipeline:
    """What preparing one pipeline found."""

    name: str
    source: str
    tables: list[str] = field(default_factory=list)
    cached: bool = False
    """The state held a current list already (no source call was needed)."""
    error: Exception | None = None
    """Why the source could not be built (not masked: callers mask its message)."""
    note: Exception | None = None
    """Why the schema stored in the destination was not read (a note only)."""


@dataclass
class PreparedState:
    """The outcome of `prepare_table_state`: one entry per pipeline, and the file written."""

    path: str
    pipelines: list[PreparedPipeline]

    @property
    def failed(self) -> list[PreparedPipeline]:
        return [p for p in self.pipelines if p.error is not None]


def prepare_table_state(
    project: Project, path: str | None = None, entities: EntityFactory | None = None
) -> PreparedState:
    """Find and store the tables of every pipeline of `project` in the state file `path`
    (default: the project's `.dlt/.dltplus_state.json`).

    A pipeline whose source cannot be built is reported (`PreparedPipeline.error`) and the
    others are prepared; the state keeps whatever was known of it before."""
    entities = entities or EntityFactory(project)
    state = TableListCache(project, entities, path)
    prepared: list[PreparedPipeline] = []
    try:
        for name, entity in project.pipelines.items():
            item = PreparedPipeline(name, entity.source or "", cached=state.is_cached(name))
            prepared.append(item)
            try:
                tables = state.pipeline_tables(name)
            except Exception as e:  # noqa: BLE001 - reported per pipeline, the others go on
                item.error = e
                continue
            try:  # tables a run decided (nested, named per row): from the stored schema
                if state.record_stored_schema(name):
                    tables = state.pipeline_tables(name)
            except Exception as e:  # noqa: BLE001 - an unreachable destination: a note only
                item.note = e
            item.tables = [t.table for t in tables]
    finally:
        state.save()
    return PreparedState(state.path, prepared)

