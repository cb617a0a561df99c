"""Checking the references of a loaded project: what the typed model alone cannot see.

`load_project` already checks YAML syntax, types, placeholders and cron strings. This module
checks that the entities refer to each other correctly for the active profile, by the same
rules the `EntityFactory` uses at run time: a pipeline's source, destination and dataset, the
datasets' destinations, the transformations' inputs, outputs and function, and the Dagster jobs
and schedules. Each problem names the file (and line), the key and the entity.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from dltplus_dagster.project.entities import EntityFactory, resolve_source_ref
from dltplus_dagster.project.errors import ProjectError
from dltplus_dagster.project.manifest import KeyPath, format_path
from dltplus_dagster.project.progress import progress_problem
from dltplus_dagster.project.project import Project
from dltplus_dagster.project.run_context import activate
from dltplus_dagster.project.trace_store import trace_pipeline_problem

Problem = tuple[KeyPath, str]


def validate_project(project: Project) -> list[str]:
    """Problems with the references of `project` (empty when it is consistent).

    Each problem reads `<file>:<line>: <key path>: <message>`, e.g.
    `dlt.yml:37: pipelines.p.source: source 'x' is not declared ...`. Source types and
    transformation functions are imported (from the project dir) to check they resolve.
    """
    checker = _Checker(project)
    found = [
        *checker.sources(),
        *checker.destinations(),
        *checker.pipelines(),
        *checker.datasets(),
        *checker.transformations(),
        *checker.dagster(),
    ]
    return [_format(project, path, message) for path, message in _unique(found)]


def _format(project: Project, path: KeyPath, message: str) -> str:
    file, line = project.locations.find(path)
    shown = os.path.relpath(file, project.project_dir) if file else "dlt.yml"
    if shown.startswith(".."):
        shown = file or "dlt.yml"
    where = f"{shown}:{line}" if line is not None else shown
    return f"{where}: {format_path(path)}: {message}"


def _unique(problems: list[Problem]) -> Iterator[Problem]:
    seen: set[Problem] = set()
    for p in problems:
        if p not in seen:
            seen.add(p)
            yield p


def _listed(names: object) -> str:
    names = list(names)  # type: ignore[call-overload]
    return ", ".join(sorted(names)) if names else "(none)"


class _Checker:
    """One pass over the project; caches what it resolved so each entity is checked once."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.entities = EntityFactory(project)
        self._source_ok: dict[str, str | None] = {}
        self._destination_ok: dict[str, str | None] = {}

    @property
    def implicit(self) -> bool:
        return self.project.allow_undefined_entities

    # --- sources and destinations -------------------------------------------------------------
    def sources(self) -> Iterator[Problem]:
        for name, entity in self.project.sources.items():
            if problem := self._source_problem(name):
                message = f"cannot resolve source '{entity.type or name}': {problem}"
                yield _entity_key("sources", name, entity.type), message

    def _source_problem(self, name: str) -> str | None:
        """Why source `name` (declared, or an implicit reference) does not resolve, or None."""
        if name not in self._source_ok:
            entity = self.project.sources.get(name)
            ref = (entity.type or name) if entity else name
            activate(self.project)  # project modules (`sources.x`) import from the project dir
            try:
                resolve_source_ref(self.project, name, ref)
                self._source_ok[name] = None
            except ProjectError as e:
                self._source_ok[name] = _source_reason(ref, e)
        return self._source_ok[name]

    def destinations(self) -> Iterator[Problem]:
        for name, entity in self.project.destinations.items():
            if problem := self._destination_problem(name):
                yield _entity_key("destinations", name, entity.type), problem

    def _destination_problem(self, name: str) -> str | None:
        if name not in self._destination_ok:
            try:
                self.entities.get_destination(name)
                self._destination_ok[name] = None
            except ProjectError as e:
                self._destination_ok[name] = _one_line(str(e).removeprefix("dlt.yml: "))
        return self._destination_ok[name]

    def _destination_ref(self, name: str) -> str | None:
        """Why a reference to destination `name` is invalid, or None."""
        if name in self.project.destinations:
            return None  # a problem of its own type is reported under destinations.<name>
        if not self.implicit:
            return (
                f"destination '{name}' is not declared and implicit entities are disabled "
                f"(project.allow_undefined_entities: false). Declared destinations: "
                f"{_listed(self.project.destinations)}"
            )
        if self._destination_problem(name):
            return (
                f"destination '{name}' is not declared and is not a dlt destination type. "
                f"Declared destinations: {_listed(self.project.destinations)}"
            )
        return None

    def _source_ref(self, name: str) -> str | None:
        """Why a pipeline's reference to source `name` is invalid, or None."""
        if name in self.project.sources:
            return None  # reported under sources.<name>.type
        if not self.implicit:
            return (
                f"source '{name}' is not declared and implicit entities are disabled "
                f"(project.allow_undefined_entities: false). Declared sources: "
                f"{_listed(self.project.sources)}"
            )
        if reason := self._source_problem(name):
            return (
                f"source '{name}' is not declared and is not an importable source reference "
                f"({reason}). Declared sources: {_listed(self.project.sources)}"
            )
        return None

    # --- pipelines ----------------------------------------------------------------------------
    def pipelines(self) -> Iterator[Problem]:
        for name, p in self.project.pipelines.items():
            base: KeyPath = ("pipelines", name)
            if not p.source:
                yield base, "source is not set (a pipeline needs a source to run)"
            elif problem := self._source_ref(p.source):
                yield base + ("source",), problem
            if not p.destination:
                yield base, "destination is not set"
            elif problem := self._destination_ref(p.destination):
                yield base + ("destination",), problem
            traces = p.run_config.store_trace_info
            if isinstance(traces, str) and (problem := trace_pipeline_problem(self.project, traces)):
                yield base + ("run_config", "store_trace_info"), problem
            if not p.dataset_name:
                yield base, "dataset_name is not set"
            elif p.destination:
                allowed = self.entities.dataset_destinations(p.dataset_name)
                declared = p.dataset_name in self.project.datasets
                if declared and p.destination not in allowed:
                    yield (
                        base + ("destination",),
                        (
                            f"dataset '{p.dataset_name}' is not available on destination "
                            f"'{p.destination}'. Available destinations: {_listed(allowed)}"
                        ),
                    )
                elif not declared and not self.implicit:
                    yield (
                        base + ("dataset_name",),
                        (
                            f"dataset '{p.dataset_name}' is not declared and implicit entities are "
                            f"disabled. Declared datasets: {_listed(self.project.datasets)}"
                        ),
                    )
            if p.progress and (problem := progress_problem(p.progress)):
                yield base + ("progress",), problem

    # --- datasets -----------------------------------------------------------------------------
    def datasets(self) -> Iterator[Problem]:
        for name, ds in self.project.datasets.items():
            for i, dest in enumerate(ds.destination or []):
                if problem := self._destination_ref(dest):
                    yield ("datasets", name, "destination", str(i)), problem

    def _dataset_writers(self) -> set[str]:
        written = {p.dataset_name for p in self.project.pipelines.values() if p.dataset_name}
        written |= {t.output for t in self.project.transformations.values() if t.output}
        return written

    def _dataset_ref(self, name: str) -> str | None:
        """Why a transformation's reference to dataset `name` is invalid, or None."""
        declared = name in self.project.datasets
        if not declared and not self.implicit:
            return (
                f"dataset '{name}' is not declared and implicit entities are disabled. "
                f"Declared datasets: {_listed(self.project.datasets)}"
            )
        if not declared and name not in self._dataset_writers():
            return (
                f"dataset '{name}' is not declared and no pipeline or transformation writes it. "
                f"Known datasets: {_listed(self.project.datasets.keys() | self._dataset_writers())}"
            )
        if not self.entities.dataset_destinations(name):
            return (
                f"dataset '{name}' has no destination: declare `datasets.{name}.destination` or "
                "write it with a pipeline"
            )
        return None

    # --- transformations ----------------------------------------------------------------------
    def transformations(self) -> Iterator[Problem]:
        for name, t in self.project.transformations.items():
            base: KeyPath = ("transformations", name)
            if not t.inputs:
                yield base + ("inputs",), "no input datasets"
            for i, ds in enumerate(t.inputs):
                if problem := self._dataset_ref(ds):
                    yield base + ("inputs", str(i)), problem
            if not t.output:
                yield base + ("output",), "output dataset is not set"
            elif problem := self._dataset_ref(t.output):
                yield base + ("output",), problem
            yield from self._transformation_code(name, base)
            for i, dep in enumerate(t.depends_on or []):
                dataset, sep, table = dep.partition("/")
                if not sep or not table:
                    yield base + ("depends_on", str(i)), f"'{dep}' is not `dataset/table`"
                elif dataset not in t.inputs:
                    yield (
                        base + ("depends_on", str(i)),
                        (f"dataset '{dataset}' is not one of the inputs ({_listed(t.inputs)})"),
                    )

    def _transformation_code(self, name: str, base: KeyPath) -> Iterator[Problem]:
        t = self.project.transformations[name]
        if t.function and t.sql:
            yield base, "set either `function` or `sql`, not both"
        elif not t.function and not t.sql:
            yield base, "neither `function` nor `sql` is set"
        elif t.function:
            try:
                self.entities.get_transformation_function(name)
            except ProjectError as e:
                yield base + ("function",), _one_line(str(e).split(": ", 2)[-1])

    # --- dagster ------------------------------------------------------------------------------
    def dagster(self) -> Iterator[Problem]:
        section = self.project.dagster
        for job_name, job in section.jobs.items():
            base: KeyPath = ("dagster", "jobs", job_name)
            for kind, names, declared in (
                ("pipeline", job.pipelines, self.project.pipelines),
                ("transformation", job.transformations, self.project.transformations),
            ):
                for i, name in enumerate(names):
                    if name not in declared:
                        message = f"{kind} '{name}' is not declared. Declared {kind}s: "
                        yield base + (f"{kind}s", str(i)), message + _listed(declared)
            if not (job.pipelines or job.transformations or job.assets):
                yield base, "the job selects nothing (set pipelines, transformations or assets)"
        for sched_name, sched in section.schedules.items():
            if sched.job not in section.jobs:
                yield (
                    ("dagster", "schedules", sched_name, "job"),
                    (f"job '{sched.job}' is not declared. Declared jobs: {_listed(section.jobs)}"),
                )


def _entity_key(section: str, name: str, entity_type: str | None) -> KeyPath:
    return (section, name, "type") if entity_type else (section, name)


def _one_line(text: str) -> str:
    """Multi-line messages (lists of tried candidates) as one line."""
    out = ""
    for part in (p.strip().removeprefix("- ") for p in text.splitlines()):
        if part:
            out += ("" if not out else " " if out.endswith(":") else "; ") + part
    return out


def _source_reason(ref: str, error: ProjectError) -> str:
    tried = getattr(error, "tried", None)
    if tried:
        return "tried " + "; ".join(f"{cand}: {why}" for cand, why in tried)
    return f"cannot import '{ref}': {error}"
