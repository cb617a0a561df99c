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
from dltplus_dagster.project.model import PartitionsSpec
from dltplus_dagster.project.partitions import (
    WINDOW_PLACEHOLDERS,
    is_time_window,
    placeholders_in,
    spec_problems,
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
