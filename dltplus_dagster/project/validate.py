"""Checking the references of a loaded project: what the typed model alone cannot see.

`load_project` already checks YAML syntax, types, placeholders and cron strings. This module
checks that the entities refer to each other correctly for the active profile, by the same
rules the `EntityFactory` uses at run time: a pipeline's source, destination and dataset, the
datasets' destinations, the transformations' inputs, outputs and function, and the Dagster jobs
and schedules. Each problem names the file (and line), the key and the entity.

It is also the one gate of the project (`ensure_valid`): the CLI, the runner, the catalog and
`build_definitions` all refuse a project it finds problems with, with the same messages. Names
are checked here too (see `names.py`): two datasets or tables that dlt's naming convention maps
to one identifier, two writers of one asset key, pipeline and dataset names dlt cannot use,
entities whose Dagster names coincide, source values dlt cannot coerce and `resources:` a source
does not have.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dltplus_dagster.project.dlt_config import set_run_context
from dltplus_dagster.project.entities import (
    EntityFactory,
    resolve_source_ref,
    source_value_problems,
)
from dltplus_dagster.project.errors import (
    ManifestError,
    ProjectError,
    ProjectInvalid,
    SourceBuildError,
)
from dltplus_dagster.project.manifest import KeyPath, format_path
from dltplus_dagster.project.names import collisions, dagster_name
from dltplus_dagster.project.partition_checks import partition_problems
from dltplus_dagster.project.progress import progress_problem
from dltplus_dagster.project.project import Project
from dltplus_dagster.project.trace_store import trace_pipeline_problem

Problem = tuple[KeyPath, str] | str
"""A key path and a message, or a message already located (`file:line: key: ...`)."""


def validate_project(project: Project, *, tables: bool = True, state: Any = None) -> list[str]:
    """Problems with the references and names of `project` (empty when it is consistent).

    Each problem reads `<file>:<line>: <key path>: <message>`, e.g.
    `dlt.yml:37: pipelines.p.source: source 'x' is not declared ...`. Source types and
    transformation functions are imported (from the project dir) to check they resolve.

    With `tables` (the default), the table list of every pipeline is found the way
    `build_definitions` finds it (cached, else the source factory is called: nothing is
    extracted) to check `resources:` and the tables pipelines and transformations write. The
    runner and the catalog check without it (a run builds its source itself): a project that
    passes with `tables` passes without. `state` is the `TableListCache` to find the tables
    with (default: the project's own cache file).
    """
    return [text for _, text in _located_problems(project, tables, state)]


def _located_problems(project: Project, tables: bool, state: Any = None) -> _Found:
    """Every problem as (key path, or None when it came located; the formatted message)."""
    checker = _Checker(project, state)
    found: list[Problem] = [
        *checker.sources(),
        *checker.source_values(),
        *checker.destinations(),
        *checker.pipelines(),
        *checker.datasets(),
        *checker.transformations(),
        *checker.dagster(),
        *checker.names(),
        *partition_problems(project),
    ]
    pipeline_tables = checker.pipeline_tables(found) if tables and not found else None
    if pipeline_tables is not None:
        found += checker.table_problems
    found += checker.tables(pipeline_tables)
    problems: _Found = [
        (None, p) if isinstance(p, str) else (p[0], _format(project, *p)) for p in _unique(found)
    ]
    if pipeline_tables is not None and not problems:
        checker.state.save()  # build_definitions reads the table lists just found
    return problems


_Found = list[tuple[KeyPath | None, str]]
_checked: dict[tuple[int, bool], tuple[weakref.ref[Project], _Found]] = {}
_checked_lock = threading.Lock()


def ensure_valid(
    project: Project, *, tables: bool = True, scope: Sequence[KeyPath] | None = None,
    state: Any = None,
) -> None:
    """The one gate: raise `ProjectInvalid` with `validate_project`'s problems, if any.

    The CLI (`project validate`, `pipeline NAME run`), the runner, the catalog and
    `build_definitions` call this, so whatever `validate` accepts they accept, and what they
    refuse they refuse with `validate`'s messages. `scope` (see `pipeline_scope`,
    `dataset_scope`) limits the refusal to problems at or below those keys: running one
    pipeline is not refused for another pipeline's typo. The problems are found once per
    loaded `Project` object. `state` is the `TableListCache` to check the table lists of
    (default: the project's own cache file): a build passes the one it reads them from.
    """
    key = (id(project), tables)
    with _checked_lock:
        hit = _checked.get(key)
    if hit is not None and hit[0]() is project:
        found = hit[1]
    else:
        found = _located_problems(project, tables, state)
        with _checked_lock:
            _checked[key] = (weakref.ref(project, lambda _: _checked.pop(key, None)), found)
    problems = [
        text
        for path, text in found
        if scope is None or path is None or any(path[: len(pre)] == pre for pre in scope)
    ]
    if problems:
        raise ProjectInvalid(
            problems, f"project {project.name}, profile {project.current_profile}"
        )


def dataset_scope(project: Project, name: str) -> list[KeyPath]:
    """The keys whose problems concern dataset `name`: its entry and every key naming it."""
    keys: list[KeyPath] = [("datasets", name)]
    keys += [("pipelines", p, "dataset_name") for p, e in project.pipelines.items()
             if e.dataset_name == name]
    for t, e in project.transformations.items():
        keys += [("transformations", t, "inputs", str(i)) for i, ds in enumerate(e.inputs)
                 if ds == name]
        if e.output == name:
            keys.append(("transformations", t, "output"))
    return keys


def pipeline_scope(project: Project, name: str) -> list[KeyPath]:
    """The keys whose problems concern running pipeline `name`: the pipeline, its source,
    destination and dataset."""
    keys: list[KeyPath] = [("pipelines", name)]
    p = project.pipelines.get(name)
    if p is not None:
        keys += [("sources", p.source or ""), ("destinations", p.destination or "")]
        keys += dataset_scope(project, p.dataset_name) if p.dataset_name else []
    return keys


def transformation_scope(project: Project, name: str) -> list[KeyPath]:
    """The keys whose problems concern running transformation `name`."""
    keys: list[KeyPath] = [("transformations", name)]
    t = project.transformations.get(name)
    for ds in ([*t.inputs, t.output] if t is not None else []):
        keys += dataset_scope(project, ds) if ds else []
    return keys


def _format(project: Project, path: KeyPath, message: str) -> str:
    file, line = project.locations.find(path)
    return _located(project, file, line, format_path(path), message)


def _located(
    project: Project, file: str | None, line: int | None, key: str | None, message: str
) -> str:
    shown = os.path.relpath(file, project.project_dir) if file else "dlt.yml"
    if shown.startswith(".."):
        shown = file or "dlt.yml"
    where = f"{shown}:{line}" if line is not None else shown
    return f"{where}: {key}: {message}" if key else f"{where}: {message}"


@dataclass(frozen=True)
class _Table:
    """One table a pipeline or transformation writes, or a dataset declares."""

    dataset: str
    table: str
    who: str
    """`pipeline 'p'`, `transformation 't'` or `dataset 'd'` (declared tables)."""
    path: KeyPath
    writer: bool


def _unique(problems: list[Problem]) -> Iterator[Problem]:
    seen: set[Problem] = set()
    for p in problems:
        if p not in seen:
            seen.add(p)
            yield p


def _listed(names: Iterable[str]) -> str:
    listed = sorted(names)
    return ", ".join(listed) if listed else "(none)"


class _Checker:
    """One pass over the project; caches what it resolved so each entity is checked once."""

    def __init__(self, project: Project, state: Any = None) -> None:
        self.project = project
        self.entities = state.entities if state is not None else EntityFactory(project)
        self._source_ok: dict[str, str | None] = {}
        self._destination_ok: dict[str, str | None] = {}
        self._resolved_refs: set[str] = set()
        self.table_problems: list[Problem] = []
        self._state: Any = state

    @property
    def state(self) -> Any:
        if self._state is None:
            from dltplus_dagster.project.table_state import TableListCache

            self._state = TableListCache(self.project, self.entities)
        return self._state

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
            if ref in self._resolved_refs:  # many sources of one type: import it once
                self._source_ok[name] = None
                return None
            set_run_context(self.project)  # project modules (`sources.x`) import from the project dir
            try:
                resolve_source_ref(self.project, name, ref)
                self._source_ok[name] = None
                self._resolved_refs.add(ref)
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

    # --- source values ------------------------------------------------------------------------
    def source_values(self) -> Iterator[Problem]:
        """`with_args` and config values dlt cannot coerce to the source's typed arguments."""
        for name, entity in self.project.sources.items():
            if not (entity.with_args or entity.config):
                continue  # nothing to coerce: the factory is not needed
            if self._source_problem(name):
                continue  # reported under sources.<name>
            try:
                factory = self.entities.get_source_factory(name)
            except ProjectError:
                continue
            for key, message in source_value_problems(factory, entity.with_args, entity.config):
                yield ("sources", name, *key), message

    # --- names --------------------------------------------------------------------------------
    def _naming_of(self, destination: str | None) -> Any:
        """dlt's naming convention on `destination` (dlt's default when None or broken)."""
        return self.entities.naming(destination)

    def _dataset_sites(self) -> dict[str, KeyPath]:
        """Every dataset name in the manifest, at the first key that names it."""
        sites: dict[str, KeyPath] = {}
        for name in self.project.datasets:
            sites.setdefault(name, ("datasets", name))
        for name, p in self.project.pipelines.items():
            if p.dataset_name:
                sites.setdefault(p.dataset_name, ("pipelines", name, "dataset_name"))
        for name, t in self.project.transformations.items():
            for i, ds in enumerate(t.inputs):
                sites.setdefault(ds, ("transformations", name, "inputs", str(i)))
            if t.output:
                sites.setdefault(t.output, ("transformations", name, "output"))
        return sites

    def names(self) -> Iterator[Problem]:
        """Pipeline and dataset names dlt cannot use; names that collide after normalizing.

        Long because it walks the three name families (pipeline folders, op names, dataset
        names per destination) in one pass over the same sites."""
        from dlt.common.schema.utils import is_valid_schema_name
        from dlt.common.storages import FileStorage

        for name in self.project.pipelines:
            try:
                FileStorage.validate_file_name_component(name)
            except ValueError:
                yield ("pipelines", name), (
                    f"'{name}' is no valid dlt pipeline name: it names the pipeline's working "
                    "folder, so it cannot hold path separators, dots or other characters a "
                    "file name cannot"
                )
        sites = self._dataset_sites()
        for name, path in sites.items():
            if not is_valid_schema_name(name):
                hint = self._naming_of(None).normalize_table_identifier(name or "dataset")[:64]
                yield path, (
                    f"dataset name '{name}' cannot be read back through the catalog: dlt needs "
                    f"a Python identifier of at most 64 characters (e.g. '{hint}')"
                )
        by_destination: dict[str | None, list[tuple[str, str]]] = {}
        for name in sites:
            dests: list[str | None] = [*self.entities.dataset_destinations(name)] or [None]
            for dest in dests:
                by_destination.setdefault(dest, []).append((name, name))
        for dest, entries in by_destination.items():
            naming = self._naming_of(dest)
            for ident, group in collisions(entries, naming.normalize_table_identifier):
                first, *others = [n for n, _ in group]
                on = f" on destination '{dest}'" if dest else ""
                for other in others:
                    yield sites[other], (
                        f"datasets '{first}' and '{other}' are one dataset '{ident}'{on} "
                        f"(dlt's {naming.name()} naming); rename one of them"
                    )
        for kind, section in (
            ("pipeline", self.project.pipelines),
            ("transformation", self.project.transformations),
        ):
            for ident, group in collisions(
                [(n, n) for n in section], lambda n: dagster_name(n)
            ):
                first, *others = [n for n, _ in group]
                for other in others:
                    yield (f"{kind}s", other), (
                        f"{kind}s '{first}' and '{other}' map to one Dagster name "
                        f"'dlt_{kind}_{ident}' (Dagster names hold only A-Z, a-z, 0-9 and _); "
                        "rename one of them"
                    )

    # --- tables -------------------------------------------------------------------------------
    def pipeline_tables(self, found: list[Problem]) -> dict[str, list[str]] | None:
        """Tables per pipeline, found as build_definitions finds them; problems go to
        `table_problems`."""
        from dlt.common.configuration.exceptions import (
            ConfigFieldMissingException,
            ConfigValueCannotBeCoercedException,
        )

        from dltplus_dagster.project.redact import scrub, secret_values

        result: dict[str, list[str]] = {}
        for name, p in self.project.pipelines.items():
            try:  # a list not cached calls the source factory in the project's run context
                result[name] = [t.table for t in self.state.pipeline_tables(name)]
            except SourceBuildError:
                # a source that cannot be built here (config set only where runs execute, a
                # database it reflects that is not reachable): definitions load without it
                # (its known tables, or none, with a warning), so this is no problem of the
                # project; a run names the cause. Values of the wrong type were checked above.
                continue
            except ManifestError as e:
                self.table_problems.append(
                    _located(self.project, e.file, e.line, e.key, e.message)
                )
            except ConfigValueCannotBeCoercedException as e:
                self.table_problems.append((("sources", p.source or "", e.field_name), (
                    f"the value cannot be coerced to {getattr(e.hint, '__name__', e.hint)}"
                )))
            except ConfigFieldMissingException as e:
                self.table_problems.append((("pipelines", name, "source"), (
                    f"the tables of source '{p.source}' cannot be listed: missing config "
                    f"value(s) {', '.join(e.fields)} (set them, or run `dltplus project "
                    "prepare` where they are set)"
                )))
            except Exception as e:  # noqa: BLE001 - the user's source failed while built
                secrets = secret_values(
                    self.project.settings_dir, self.project.current_profile,
                    self.project.resolved,
                )
                self.table_problems.append((("pipelines", name, "source"), (
                    f"the tables of source '{p.source}' cannot be listed: building the source "
                    f"failed: {type(e).__name__}: {_one_line(scrub(str(e), secrets))}"
                )))
        return result

    def tables(self, pipeline_tables: dict[str, list[str]] | None) -> Iterator[Problem]:
        """Tables that normalize to one identifier, and asset keys with two writers."""
        entries: list[_Table] = []
        for name, ds in self.project.datasets.items():
            for table in ds.tables:
                entries.append(_Table(name, table, f"dataset '{name}'",
                                      ("datasets", name, "tables", table), False))
        for name, p in self.project.pipelines.items():
            if any(not str(t).strip() for t in p.table_names.values()):
                # the table cache drops nameless tables: report them from the manifest
                yield ("pipelines", name), f"pipeline '{name}' names an empty table name"
            for table in (pipeline_tables or {}).get(name, []):
                entries.append(_Table(p.dataset_name or "", table, f"pipeline '{name}'",
                                      ("pipelines", name), True))
        for name, t in self.project.transformations.items():
            key = "sql" if t.sql else "tables"
            for i, table in enumerate(t.output_tables()):
                at = table if t.sql else str(i)
                entries.append(_Table(t.output or "", table, f"transformation '{name}'",
                                      ("transformations", name, key, at), True))
        prefix = tuple(dagster_name(p) for p in self.project.dagster.asset_key_prefix)
        by_key: dict[tuple[str, ...], list[tuple[_Table, str]]] = {}
        for e in entries:
            if not e.table.strip():
                yield e.path, f"{e.who} names an empty table name"
                continue
            dests = self.entities.dataset_destinations(e.dataset)
            naming = self._naming_of(dests[0] if dests else None)
            ident = naming.normalize_tables_path(e.table)
            asset_key = (*prefix, dagster_name(e.dataset), dagster_name(ident))
            by_key.setdefault(asset_key, []).append((e, ident))
        for asset_key, group in by_key.items():
            shown = "/".join(asset_key)
            first = group[0][0]
            writers = [e for e, _ in group if e.writer]
            for e, ident in group[1:]:
                if e.table != first.table or e.dataset != first.dataset:
                    yield e.path, (
                        f"{e.who} names table '{e.table}' of dataset '{e.dataset}' and "
                        f"{first.who} names '{first.table}' of dataset '{first.dataset}': "
                        f"both are table '{ident}' (asset key {shown}) after dlt's naming; "
                        "rename one of them"
                    )
            for e in writers[1:]:
                if e.table == writers[0].table and e.dataset == writers[0].dataset:
                    yield e.path, (
                        f"{writers[0].who} and {e.who} both write table '{e.table}' of dataset "
                        f"'{e.dataset}': one asset key {shown} cannot have two writers"
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
