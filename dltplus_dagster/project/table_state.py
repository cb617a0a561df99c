"""Which tables each pipeline loads, known without extracting anything and cached on disk.

Definitions must load fast and without side effects, so the table list of a pipeline is read
from a cache file. On a miss the source factory is called (that builds resources; it extracts
nothing) and the answer is stored, keyed by a fingerprint of the source's manifest entry and of
the project's Python files, so an edit to either refreshes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from typing import Any

from dltplus_dagster.project.entities import EntityFactory
from dltplus_dagster.project.project import Project

logger = logging.getLogger(__name__)

STATE_FILE = os.path.join(".dlt", ".dltplus_state.json")
_VERSION = 1


@dataclass(frozen=True)
class PipelineTable:
    """One table a pipeline loads: the resource that produces it and its description."""

    resource: str
    table: str
    description: str | None = None


class TableState:
    """Cached table lists of a project's pipelines."""

    def __init__(self, project: Project, entities: EntityFactory) -> None:
        self.project = project
        self.entities = entities
        self.path = os.path.join(project.project_dir, STATE_FILE)
        self._doc = self._read()
        self._dirty = False
        self._code_fp: str | None = None

    def _read(self) -> dict[str, Any]:
        try:
            with open(self.path, encoding="utf-8") as f:
                doc = json.load(f)
            if doc.get("version") == _VERSION:
                return doc
        except (OSError, ValueError):
            pass
        return {"version": _VERSION, "pipelines": {}}

    def save(self) -> None:
        """Write the cache if it changed (skipped where the project dir is read-only)."""
        if not self._dirty:
            return
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(self._doc, f, indent=1, sort_keys=True)
            os.replace(tmp, self.path)  # atomic: parallel loaders never read half a file
            self._dirty = False
        except OSError as e:
            logger.info("table cache not written (%s): %s", self.path, e)

    def is_cached(self, pipeline_name: str) -> bool:
        """Whether the cache holds a current table list for the pipeline (no source call)."""
        cached = self._doc["pipelines"].get(pipeline_name)
        return bool(cached) and cached.get("fingerprint") == self._fingerprint(pipeline_name)

    def pipeline_tables(self, pipeline_name: str) -> list[PipelineTable]:
        entity = self.entities.get_pipeline_entity(pipeline_name)
        fp = self._fingerprint(pipeline_name)
        cached = self._doc["pipelines"].get(pipeline_name)
        if cached and cached.get("fingerprint") == fp:
            return [PipelineTable(**t) for t in cached["tables"]]
        tables = self._discover(
            entity.source or "", entity.resources, entity.table_names, pipeline_name
        )
        self._doc["pipelines"][pipeline_name] = {
            "fingerprint": fp,
            "tables": [asdict(t) for t in tables],
        }
        self._dirty = True
        return tables

    def _discover(
        self,
        source_name: str,
        selection: list[str] | None,
        table_names: dict[str, str],
        pipeline_name: str = "",
    ) -> list[PipelineTable]:
        source = self.entities.get_source(source_name)
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
        for name, resource in resources.items():
            table = table_names.get(name)
            if table is None:
                tn = resource.table_name
                table = tn if isinstance(tn, str) else name
            doc = _describe(resource)
            tables.append(PipelineTable(resource=name, table=table, description=doc))
        return tables

    def _fingerprint(self, pipeline_name: str) -> str:
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


def _describe(resource: Any) -> str | None:
    fn = getattr(getattr(resource, "_pipe", None), "gen", None)
    doc = getattr(fn, "__doc__", None)
    return doc.strip().splitlines()[0] if doc and doc.strip() else None


def _without_secrets(value: Any) -> Any:
    from dltplus_dagster.project.redact import redact

    return redact(value)
