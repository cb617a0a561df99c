"""Which tables each pipeline loads, known without extracting anything and cached on disk.

Definitions must load fast and without side effects, so the table list of a pipeline is read
from a cache file. On a miss the source factory is called (that builds resources; it extracts
nothing) and the answer is stored, keyed by a fingerprint of the source's manifest entry and of
the project's Python files, so an edit to either refreshes it.

Some tables are only decided at run time: a resource with a callable `table_name` (one
resource, many tables) and nested child tables (`orders__items`). Those come from the schema a
run stored: the runner records its tables here after each run (`record_run`), `dltplus project
prepare` reads the schema stored in the destination (`record_stored_schema`), and tables
declared up front in `datasets.<dataset>.tables` count too. Such a table keeps its resource (a
child table that of its root) and its parent table, so an asset can depend on its parent and
a subset run selects the right resource.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from dltplus_dagster.project.dlt_config import set_run_context
from dltplus_dagster.project.entities import EntityFactory, ResolvedPipeline
from dltplus_dagster.project.errors import ProjectError, SourceBuildError
from dltplus_dagster.project.project import Project

logger = logging.getLogger(__name__)

STATE_FILE = os.path.join(".dlt", ".dltplus_state.json")
_VERSION = 1


@dataclass(frozen=True)
class PipelineTable:
    """One table a pipeline loads: the resource that produces it and its description."""

    resource: str
    """The resource that loads the table ("" when several resources may: a declared table of a
    source with more than one resource whose table name is decided per row)."""
    table: str
    description: str | None = None
    parent: str | None = None
    """The table a nested table belongs to (`orders` for `orders__items`)."""


class TableListCache:
    """Cached table lists of a project's pipelines.

    `path` is the cache file (default `.dlt/.dltplus_state.json` in the project dir; the Dagster
    component keeps it in its defs state instead). With `offline`, a missing or stale list is
    never looked up: the tables known without calling the source are used (see `known_tables`).
    """

    def __init__(
        self, project: Project, entities: EntityFactory, path: str | None = None,
        *, offline: bool = False,
    ) -> None:
        self.project = project
        self.entities = entities
        self.path = path or default_state_path(project)
        self.offline = offline
        self._doc = self._read()
        self._runs_doc: dict[str, Any] | None = None
        self._dirty = False
        self._discovered: set[str] = set()
        self._code_fp: str | None = None
        self._fingerprints: dict[str, str] = {}
        self._lists: dict[str, list[PipelineTable]] = {}
        """Table lists found since the file was last read: the gate and the build of one
        definitions load ask for each pipeline's list once each."""

    def _read(self, path: str | None = None) -> dict[str, Any]:
        try:
            with open(path or self.path, encoding="utf-8") as f:
                doc = json.load(f)
            if isinstance(doc, dict) and doc.get("version") == _VERSION and isinstance(
                doc.get("pipelines"), dict
            ):
                # an entry that is no mapping (a hand-edited file) counts as not cached
                doc["pipelines"] = {
                    n: e for n, e in doc["pipelines"].items() if isinstance(e, dict)
                }
                for entry in doc["pipelines"].values():
                    if not isinstance(entry.get("seen", {}), dict):
                        del entry["seen"]
                return doc
        except (OSError, ValueError):
            pass
        return {"version": _VERSION, "pipelines": {}}

    def save(self) -> None:
        """Write the table lists discovered here (skipped where the project dir is read-only).

        The file is read again under a lock and only these pipelines' discovered lists are
        replaced: runs record the tables they saw in the same file at the same time."""
        if self._dirty:
            self._update(lambda doc: None)

    def _update(self, change: Callable[[dict[str, Any]], None]) -> bool:
        """Under a file lock: read the file, put in the lists discovered here, apply `change`,
        write it back atomically."""
        from filelock import FileLock

        discovered = {n: e for n, e in self._doc["pipelines"].items() if n in self._discovered}
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with FileLock(f"{self.path}.lock", timeout=60):
                doc = self._read()
                for name, entry in discovered.items():
                    current = doc["pipelines"].setdefault(name, {})
                    current.update({k: v for k, v in entry.items() if k != "seen"})
                change(doc)
                with open(tmp, "w", encoding="utf-8") as f:
                    json.dump(doc, f, indent=1, sort_keys=True)
                os.replace(tmp, self.path)  # atomic: parallel loaders never read half a file
        except (OSError, TimeoutError) as e:
            logger.info("table cache not written (%s): %s", self.path, e)
            return False
        self._doc = doc
        self._lists.clear()  # the file may hold other processes' lists and runs now
        self._discovered.clear()
        self._dirty = False
        return True

    def is_cached(self, pipeline_name: str) -> bool:
        """Whether the cache holds a current table list for the pipeline (no source call)."""
        cached = self._doc["pipelines"].get(pipeline_name)
        return bool(cached) and cached.get("fingerprint") == self._fingerprint(pipeline_name)

    def pipeline_tables(self, pipeline: str | ResolvedPipeline) -> list[PipelineTable]:
        """The pipeline's tables: its resources' tables (from the source factory, cached), the
        tables runs found (nested tables, per-row table names) and declared dataset tables.

        `pipeline` is a pipeline's name or the pipeline resolved already. A source that cannot
        be built raises `SourceBuildError` naming the pipeline."""
        name = pipeline if isinstance(pipeline, str) else pipeline.name
        if name in self._lists:
            return list(self._lists[name])
        if isinstance(pipeline, str):
            pipeline = self.entities.resolve_pipeline(pipeline)
        tables = self._pipeline_tables(pipeline)
        self._lists[name] = tables
        return list(tables)

    def _pipeline_tables(self, pipeline: ResolvedPipeline) -> list[PipelineTable]:
        pipeline_name, entity = pipeline.name, pipeline.entity
        if self.offline:  # the state as prepared, even if stale: no source is called
            return self.known_tables(pipeline_name)
        fp = self._fingerprint(pipeline_name)
        cached = self._doc["pipelines"].get(pipeline_name)
        if not (cached and cached.get("fingerprint") == fp):
            try:
                tables, dynamic = self._discover(
                    entity.source or "", entity.resources, entity.table_names, pipeline_name
                )
            except SourceBuildError as e:
                raise e.in_pipeline(pipeline_name) from e.__cause__
            except ProjectError:
                raise  # a manifest problem (a resource the source does not have): located
            except Exception as e:  # the source's own error: located, so callers go on
                located = self.entities.source_error(entity.source or "", e)
                raise located.in_pipeline(pipeline_name) from e
            cached = self._doc["pipelines"].setdefault(pipeline_name, {})
            cached.update({
                "fingerprint": fp,
                "tables": [asdict(t) for t in tables],
                "dynamic": dynamic,
            })
            self._discovered.add(pipeline_name)
            self._dirty = True
        return self._merge(pipeline_name, _tables(cached.get("tables")), cached.get("dynamic"))

    def known_tables(self, pipeline_name: str) -> list[PipelineTable]:
        """The tables known without calling the source: the cached list (even if stale), the
        ones runs found and declared ones. For a pipeline whose source cannot be built now."""
        cached = self._doc["pipelines"].get(pipeline_name) or {}
        return self._merge(pipeline_name, _tables(cached.get("tables")), cached.get("dynamic"))

    def _merge(
        self, pipeline_name: str, static: list[PipelineTable], dynamic: list[str] | None
    ) -> list[PipelineTable]:
        entity = self.project.pipelines[pipeline_name]
        dynamic = [d for d in dynamic if isinstance(d, str)] if isinstance(dynamic, list) else []
        seen = self._seen(pipeline_name)
        tables = list(static)
        names = {t.table for t in tables}
        for t in [*seen, *self._declared(entity.dataset_name, static + seen, dynamic)]:
            if t.table not in names:
                tables.append(t)
                names.add(t.table)
        # a per-row resource is listed under its own name until tables of it are known
        placeholders = {t.table for t in static if t.resource in dynamic and t.table == t.resource}
        covered = {t.resource for t in tables if t.table not in placeholders}
        seen_names = {t.table for t in seen}
        tables = [
            t for t in tables
            if t.table not in placeholders or t.table in seen_names
            or not ({t.resource, ""} & covered)
        ]
        if entity.resources:  # the pipeline loads a selection of the source's resources
            tables = [t for t in tables if not t.resource or t.resource in entity.resources]
        return tables

    def _declared(
        self, dataset: str | None, known: list[PipelineTable], dynamic: list[str]
    ) -> Iterable[PipelineTable]:
        """Declared tables of the pipeline's dataset that are this pipeline's: a nested table
        of a known table (`<table>__<field>`), or any table when a resource names its tables
        per row. Other declared tables are left to other writers (or external assets)."""
        ds = self.project.datasets.get(dataset or "")
        if ds is None:
            return
        parents = sorted(known, key=lambda t: len(t.table), reverse=True)
        for table in ds.tables:
            parent = next((p for p in parents if table.startswith(f"{p.table}__")), None)
            if parent is not None:
                yield PipelineTable(parent.resource, table, None, parent.table)
            elif dynamic:
                yield PipelineTable(dynamic[0] if len(dynamic) == 1 else "", table)

    def _seen(self, pipeline_name: str) -> list[PipelineTable]:
        """Tables runs found: those in this file and, for a cache kept elsewhere (the
        component's defs state), those runs recorded in the project's own file since."""
        docs = [self._doc]
        if self.path != default_state_path(self.project):
            if self._runs_doc is None:
                self._runs_doc = self._read(default_state_path(self.project))
            docs.append(self._runs_doc)
        entity = self.project.pipelines[pipeline_name]
        tables: list[PipelineTable] = []
        for doc in docs:
            entry = (doc["pipelines"].get(pipeline_name) or {}).get("seen") or {}
            if (entry.get("dataset"), entry.get("destination")) != (
                entity.dataset_name, entity.destination
            ):
                continue  # found for another dataset or destination than the manifest's now
            names = {t.table for t in tables}
            tables += [t for t in _tables(entry.get("tables")) if t.table not in names]
        return tables

    def record_run(
        self, pipeline_name: str, schema: Any, dataset: str, destination: str,
        expected: Iterable[str] = (),
    ) -> list[str]:
        """Remember the tables of `schema` (the one a run of the pipeline stored) and return
        the ones the definitions did not know yet (nor `expected`: the resources' own table
        names), in schema order."""
        before = {t.table for t in self.known_tables(pipeline_name)} | set(expected)
        seen = schema_tables(schema)
        if not seen:
            return []
        old_entry = (self._doc["pipelines"].get(pipeline_name) or {}).get("seen") or {}
        if old_entry == {"dataset": dataset, "destination": destination,
                         "tables": [asdict(t) for t in seen]}:
            return []  # nothing new: the file stays as it is

        def change(doc: dict[str, Any]) -> None:
            entry = doc["pipelines"].setdefault(pipeline_name, {})
            old = entry.get("seen") or {}
            tables = _tables(old.get("tables")) if (old.get("dataset"), old.get(
                "destination")) == (dataset, destination) else []
            names = {t.table for t in seen}
            merged = seen + [t for t in tables if t.table not in names]  # another run's too
            entry["seen"] = {
                "dataset": dataset,
                "destination": destination,
                "tables": [asdict(t) for t in merged],
            }

        self._update(change)
        return [t.table for t in seen if t.table not in before]

    def record_stored_schema(self, pipeline_name: str) -> list[str]:
        """Record the tables of the schema the pipeline's runs stored in its destination (for
        `dltplus project prepare`); the new ones. Nothing before the first run."""
        entity = self.entities.get_pipeline_entity(pipeline_name)
        from dltplus_dagster.project.catalog import get_dataset

        schema_name = self.entities.get_source_factory(entity.source or "").name
        dataset = get_dataset(self.entities, entity.dataset_name or "", entity.destination)
        for schema in dataset.dlt_dataset.schemas:
            if schema.name == schema_name:
                return self.record_run(
                    pipeline_name, schema, entity.dataset_name or "", entity.destination or ""
                )
        return []

    def _discover(
        self,
        source_name: str,
        selection: list[str] | None,
        table_names: dict[str, str],
        pipeline_name: str = "",
    ) -> tuple[list[PipelineTable], list[str]]:
        # the source's config resolves, and its modules import, in the project's context
        # (another pipeline's source may have switched it): set here, where a source is built
        set_run_context(self.project)
        source = self.entities.get_source(source_name, **self._partition_args(pipeline_name))
        # a resource the source does not have is a typo, never silently dropped
        for key, names in (("resources", selection or []), ("table_names", list(table_names))):
            for i, n in enumerate(names):
                if n not in source.resources:
                    path = ("pipelines", pipeline_name, key, str(i) if key == "resources" else n)
                    raise self.project.error_at(path, (
                        f"source '{source_name}' has no resource '{n}'; its resources: "
                        f"{', '.join(source.resources) or '(none)'}"
                    ))
        resources = source.selected_resources
        if selection:
            resources = {n: source.resources[n] for n in selection if n in source.resources}
        tables = []
        dynamic = []
        for name, resource in resources.items():
            table = table_names.get(name)
            if table is None:
                tn = resource.table_name
                if not isinstance(tn, str):
                    dynamic.append(name)  # tables named per row: known after a run
                table = tn if isinstance(tn, str) else name
            doc = _describe(resource)
            tables.append(PipelineTable(resource=name, table=table, description=doc))
        return tables, dynamic

    def _partition_args(self, pipeline_name: str) -> dict[str, Any]:
        """A partitioned pipeline's source is built for its first partition (see
        `partition_args.sample_source_args`)."""
        from dltplus_dagster.project.partition_args import sample_source_args

        if pipeline_name not in self.project.pipelines:
            return {}
        return sample_source_args(self.entities, self.entities.resolve_pipeline(pipeline_name))

    def _fingerprint(self, pipeline_name: str) -> str:
        if pipeline_name not in self._fingerprints:  # the project does not change meanwhile
            self._fingerprints[pipeline_name] = self._compute_fingerprint(pipeline_name)
        return self._fingerprints[pipeline_name]

    def _compute_fingerprint(self, pipeline_name: str) -> str:
        entity = self.project.pipelines[pipeline_name]
        source_entry = self.project.resolved.get("sources", {}).get(entity.source or "", None)
        payload = json.dumps(
            {
                "source": entity.source,
                "source_entry": _without_secrets(source_entry),
                "resources": entity.resources,
                "table_names": entity.table_names,
                "code": self._code_fingerprint(),
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha1(payload.encode()).hexdigest()

    def _code_fingerprint(self) -> str:
        if self._code_fp is None:
            import dlt

            parts = [dlt.__version__]
            for root, dirs, files in os.walk(self.project.project_dir):
                dirs[:] = [d for d in dirs if not d.startswith((".", "_")) and d != "data"]
                for f in sorted(files):
                    if f.endswith(".py"):
                        p = os.path.join(root, f)
                        parts.append(f"{p}:{os.path.getmtime(p)}")
            self._code_fp = hashlib.sha1("|".join(sorted(parts)).encode()).hexdigest()
        return self._code_fp


def default_state_path(project: Project) -> str:
    """The project's own cache file, `.dlt/.dltplus_state.json` in the project dir."""
    return os.path.join(project.project_dir, STATE_FILE)


def schema_tables(schema: Any) -> list[PipelineTable]:
    """The data tables of a stored dlt schema that hold data, each with its resource (a
    nested table: its root table's) and parent table."""
    tables = {t["name"]: t for t in schema.data_tables(seen_data_only=True)}
    everything = schema.tables

    def root_resource(name: str) -> str:
        seen: set[str] = set()
        table = everything.get(name) or {}
        while table.get("parent") and table["parent"] not in seen:
            seen.add(table["parent"])
            table = everything.get(table["parent"]) or {}
        return str(table.get("resource") or table.get("name") or name)

    return [
        PipelineTable(
            resource=root_resource(name),
            table=name,
            description=table.get("description") or None,
            parent=table.get("parent"),
        )
        for name, table in tables.items()
    ]


def _tables(rows: Any) -> list[PipelineTable]:
    """Table entries of the cache file; entries that do not fit (a hand-edited or foreign
    file) are skipped, as a missing cache would be."""
    tables = []
    for row in rows if isinstance(rows, list) else []:
        try:
            table = PipelineTable(**row)
        except TypeError:
            continue
        if isinstance(table.table, str) and table.table and isinstance(table.resource, str):
            tables.append(table)
    return tables


def _describe(resource: Any) -> str | None:
    fn = getattr(getattr(resource, "_pipe", None), "gen", None)
    doc = getattr(fn, "__doc__", None)
    return doc.strip().splitlines()[0] if doc and doc.strip() else None


def _without_secrets(value: Any) -> Any:
    from dltplus_dagster.project.redact import redact

    return redact(value)
