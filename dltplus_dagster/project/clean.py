"""`project clean`: remove the active profile's local state, and nothing else.

The profile's local state is its `data_dir` (pipeline working dirs, per-run dirs, locks) and
its `local_dir` (local destination files such as `<local_dir>/<destination>.duckdb`). Remote
data is untouched. A dir is refused, not removed, when deleting it would take along something
that is not this profile's: the project dir itself (or a parent of it), the settings dir, or
another profile's data or local dir (profiles that share one `data_dir` cannot be cleaned one
at a time).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from dltplus_dagster.project.errors import ProjectError
from dltplus_dagster.project.project import Project, load_project


@dataclass
class CleanPlan:
    """The dirs `clean` removes (existing ones only), for one profile."""

    profile: str
    dirs: list[str]


def plan_clean(project: Project, skip_data_dir: bool = False) -> CleanPlan:
    """The dirs of `project`'s active profile that `clean_profile` removes.

    Raises `ProjectError` (naming the dir and the reason) when one of them holds something
    that is not this profile's local state.
    """
    candidates = [("local_dir", project.local_dir)]
    if not skip_data_dir:
        candidates.insert(0, ("data_dir", project.data_dir))
    protected = _protected(project)
    dirs: list[str] = []
    for key, path in candidates:
        path = os.path.realpath(path)
        for other, why in protected:
            if _within(other, path):
                raise ProjectError(
                    f"project.{key} of profile {project.current_profile} ({path}) holds {why} "
                    f"({other}); refusing to remove it. Give each profile its own {key} "
                    "(the default is {project_dir}/_data/{current_profile})"
                )
        # loading a project makes its empty dirs: only dirs with files are local state
        if _has_files(path) and not any(_within(path, d) for d in dirs):
            dirs.append(path)
    return CleanPlan(project.current_profile, dirs)


def clean_profile(plan: CleanPlan) -> None:
    """Remove the dirs of `plan`."""
    for path in plan.dirs:
        shutil.rmtree(path)


def _protected(project: Project) -> list[tuple[str, str]]:
    """Paths (with a reason) that cleaning this profile must never remove."""
    paths = [
        (os.path.realpath(project.project_dir), "the project dir"),
        (os.path.realpath(project.settings_dir), "the settings dir"),
    ]
    for name in project.profiles:
        if name == project.current_profile:
            continue
        try:
            other = load_project(project.project_dir, name)
        except ProjectError:
            continue  # a profile that does not load has no local state it could own
        for key in ("data_dir", "local_dir"):
            paths.append((os.path.realpath(getattr(other, key)), f"profile {name}'s {key}"))
    return paths


def _has_files(path: str) -> bool:
    return any(files for _, _, files in os.walk(path))


def _within(path: str, parent: str) -> bool:
    """True when `path` is `parent` or inside it."""
    return path == parent or path.startswith(parent.rstrip(os.sep) + os.sep)
