"""The manifest checks of partitions, for `validate.py`'s gate: each `partitions:` block, and
where the `{partition_*}` placeholders may stand.

A placeholder only has a value in a partitioned run, so it may stand in a pipeline's
`partitions.source_args`, in the arguments and config of a source that only partitioned
pipelines run, and in the SQL of a partitioned transformation; the window placeholders
(`{partition_start}`, `{partition_end}`) only where the partitions are time windows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dltplus_dagster.project.manifest import KeyPath
from dltplus_dagster.project.model import DagsterJob, PartitionsSpec
from dltplus_dagster.project.partitions import (
    WINDOW_PLACEHOLDERS,
    fmt_of,
    is_time_window,
    placeholders_in,
    spec_problems,
    timezone_of,
)
from dltplus_dagster.project.project import Project

WHERE = ("a pipeline's partitions.source_args, the arguments and config of a source that only "
         "partitioned pipelines run, and the sql of a partitioned transformation")


def partition_problems(project: Project) -> Iterator[tuple[KeyPath, str]]:
    """Every problem of the project's partitions, as (key path, message)."""
    for section, entities in (("pipelines", project.pipelines),
                              ("transformations", project.transformations)):
        for name, entity in entities.items():
            if entity.partitions is not None:
                base: KeyPath = (section, name, "partitions")
                for subpath, message in spec_problems(entity.partitions):
                    yield base + subpath, message
    for name, p in project.pipelines.items():
        if p.schedule and p.partitions is not None and not is_time_window(p.partitions):
            yield ("pipelines", name, "schedule"), (
                f"a schedule runs the latest time window; {p.partitions.type} partitions have "
                "none (materialize their keys, or use a sensor)"
            )
    yield from _placements(project)
    yield from _job_problems(project)


def job_partitions(project: Project, job: DagsterJob) -> list[tuple[str, PartitionsSpec | None]]:
    """The pipelines and transformations a `dagster.jobs` entry names, with their partitions
    (None: unpartitioned). Its `assets:` selection strings are Dagster's to resolve."""
    members: list[tuple[str, PartitionsSpec | None]] = []
    for name in job.pipelines:
        if name in project.pipelines:
            members.append((f"pipeline {name}", project.pipelines[name].partitions))
    for name in job.transformations:
        if name in project.transformations:
            members.append((f"transformation {name}", project.transformations[name].partitions))
    return members


def job_partitions_spec(project: Project, job: DagsterJob | None) -> PartitionsSpec | None:
    """The one partitions spec of a job's members (validation refuses a mix), if any."""
    if job is None:
        return None
    return next((spec for _, spec in job_partitions(project, job) if spec is not None), None)


def _identity(spec: PartitionsSpec | None, who: str) -> tuple[Any, ...]:
    """What makes two `partitions:` blocks the same Dagster partitions definition."""
    if spec is None:
        return ("none",)
    if spec.type == "static":
        return ("static", tuple(spec.values or ()))
    if spec.type == "dynamic":  # named after its pipeline or transformation
        return ("dynamic", who)
    return (spec.type, str(spec.start), str(spec.end), timezone_of(spec), fmt_of(spec))


def _describe(spec: PartitionsSpec | None) -> str:
    if spec is None:
        return "unpartitioned"
    if spec.type == "static":
        return f"static {', '.join(spec.values or [])}"
    if spec.type == "dynamic":
        return "dynamic"
    return f"{spec.type} from {spec.start}"


def _job_problems(project: Project) -> Iterator[tuple[KeyPath, str]]:
    """A Dagster asset job runs one partitions definition, so a job may not mix partitioned
    and unpartitioned members, or different partitions (Dagster's own error would name no
    key); a schedule of a partitioned job runs its latest time window, which static and
    dynamic partitions do not have."""
    for name, job in project.dagster.jobs.items():
        members = job_partitions(project, job)
        if len({_identity(spec, who) for who, spec in members}) > 1:
            listed = "; ".join(f"{who}: {_describe(spec)}" for who, spec in members)
            key = "pipelines" if job.pipelines else "transformations"
            yield ("dagster", "jobs", name, key), (
                f"the job mixes partitions ({listed}); a Dagster job runs one partitions "
                "definition: make one job per partitions"
            )
    for name, sched in project.dagster.schedules.items():
        spec = job_partitions_spec(project, project.dagster.jobs.get(sched.job))
        if spec is not None and not is_time_window(spec):
            yield ("dagster", "schedules", name, "job"), (
                f"job '{sched.job}' runs {spec.type} partitions; a schedule runs the latest "
                "time window and they have none (materialize their keys, or use a sensor)"
            )


def _placements(project: Project) -> Iterator[tuple[KeyPath, str]]:
    for path, names in _strings_with_placeholders(project.resolved, ()):
        specs = _specs_at(project, path)
        if specs is None:
            yield path, f"{{{names[0]}}} has no value here: it works in {WHERE}"
            continue
        for spec, who in specs:
            if spec is None:
                yield path, (f"{{{names[0]}}} has no value when {who} runs: it is not "
                             "partitioned")
                break
            window = [n for n in names if n in WINDOW_PLACEHOLDERS]
            if window and not is_time_window(spec):
                yield path, (f"{{{window[0]}}} needs time-window partitions; {who} has "
                             f"{spec.type} partitions (use {{partition_key}})")
                break


def _specs_at(project: Project, path: KeyPath) -> list[tuple[PartitionsSpec | None, str]] | None:
    """The partitions of the runs that fill a placeholder at `path` (None: no run does)."""
    section, name, rest = (path[0] if path else ""), (path[1] if len(path) > 1 else ""), path[2:]
    if section == "pipelines" and rest[:2] == ("partitions", "source_args"):
        return [(project.pipelines[name].partitions, f"pipeline '{name}'")]
    if section == "transformations" and rest[:1] == ("sql",):
        return [(project.transformations[name].partitions, f"transformation '{name}'")]
    if section == "sources" and rest[:1] != ("type",) and name in project.sources:
        return [(p.partitions, f"pipeline '{n}'")
                for n, p in project.pipelines.items() if p.source == name]
    return None


def _strings_with_placeholders(value: Any, path: KeyPath) -> Iterator[tuple[KeyPath, list[str]]]:
    if isinstance(value, str):
        if names := list(dict.fromkeys(placeholders_in(value))):
            yield path, names
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings_with_placeholders(v, path + (str(k),))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings_with_placeholders(v, path + (str(i),))
