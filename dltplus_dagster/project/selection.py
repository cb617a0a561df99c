"""Project selection: which project and profile `current` means, and the one project cache.

Which project `current` means is a context variable, not a global: a Dagster step binds the
project of its run's resource with `bind_current(project)`; outside of that, the process's
selection applies (the project found from `DLT_PROJECT_DIR` or the working dir, or chosen with
`switch_profile`). Every loaded project comes from `PROJECTS`, a `ProjectCache`.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Iterator

from dltplus_dagster.project.dlt_config import ProjectRunContext, set_run_context
from dltplus_dagster.project.errors import ProjectNotFound
from dltplus_dagster.project.profiles import check_profile_name, select_profile
from dltplus_dagster.project.project import Project, find_project_dir, load_project

_bound_project: contextvars.ContextVar[Project | None] = contextvars.ContextVar(
    "dltplus_bound_project", default=None
)


class ProjectCache:
    """Projects loaded in this process by (project dir, explicit profile or None), and the
    process's own selection.

    Staleness rule: a cached project is loaded again when a manifest file it read changed on
    disk (mtime) or, when no explicit profile was asked for, when the profile selection
    (`WORKSPACE__PROFILE`, the pin file) now picks another profile. Dagster copies resources
    for every run and step, so resources keep no loaded project of their own but ask here.

    The process's selection is the project `current` means outside a bound block: the one last
    selected, and the profile `switch_profile` chose (which then beats env var and pin file).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._projects: dict[tuple[str, str | None], Project] = {}
        self.selected: Project | None = None
        """The process's project (outside a bound block), None before the first selection."""
        self.switched_profile: str | None = None
        """The profile `switch_profile` chose for the process's project, if any."""

    def get(self, project_dir: str, profile: str | None = None) -> Project:
        """`load_project(project_dir, profile)`, cached while it stays fresh (see the class)."""
        key = (os.path.abspath(project_dir), profile)
        with self._lock:
            project = self._projects.get(key)
            if project is None or not _is_fresh(project, profile):
                project = self._projects[key] = load_project(key[0], profile)
            return project

    def select(self, project_dir: str | None = None, profile: str | None = None) -> Project:
        """Make the project at `project_dir` (else the selected or discovered one) for `profile`
        (else the switched or selected one) the process's project, and dlt's run context."""
        with self._lock:
            selected = self.selected
            if project_dir:
                root = os.path.abspath(project_dir)
            elif selected is not None and self.switched_profile:
                root = selected.project_dir
            else:
                try:
                    root = find_project_dir()
                except ProjectNotFound:
                    if selected is None:
                        raise
                    root = selected.project_dir  # the project chosen earlier in this process
            same_dir = selected is not None and selected.project_dir == root
            wanted = profile or (self.switched_profile if same_dir else None)
            self.selected = self.get(root, wanted)
            set_run_context(self.selected)
            return self.selected

    def switch_profile(self, profile: str, project_dir: str | None = None) -> Project:
        """Load the process's project (or the one at `project_dir`) for `profile`, and keep that
        profile for the process until `clear()`."""
        with self._lock:
            if project_dir:
                root = os.path.abspath(project_dir)
            elif self.selected is not None:
                root = self.selected.project_dir
            else:
                root = find_project_dir()
            project = self._projects[(root, profile)] = load_project(root, profile)
            self.selected = project
            self.switched_profile = profile
            return project

    def clear(self) -> None:
        """Forget every loaded project, the process's selection and its switched profile."""
        with self._lock:
            self._projects.clear()
            self.selected = None
            self.switched_profile = None


def _is_fresh(project: Project, explicit_profile: str | None) -> bool:
    if project.is_stale():
        return False
    if explicit_profile:
        return True
    selected, _ = select_profile(project.project_dir, None, project.default_profile)
    return project.current_profile == selected


PROJECTS = ProjectCache()
"""The process's one project cache."""


def current_project(project_dir: str | None = None, profile: str | None = None) -> Project:
    """The project `current` means: the bound one, else the process's selection (see
    `ProjectCache.select`)."""
    if profile is not None:
        check_profile_name(profile, "argument profile")  # "" is no way to say "the default"
    if project_dir is None and profile is None and (bound := _bound_project.get()) is not None:
        return bound
    return PROJECTS.select(project_dir, profile)


@contextlib.contextmanager
def bind_current(project: Project) -> Iterator[Project]:
    """Within the block, `current` means `project` (and dlt's run context is its)."""
    token = _bound_project.set(project)
    try:
        set_run_context(project)
        yield project
    finally:
        _bound_project.reset(token)
        outer = _bound_project.get() or PROJECTS.selected
        if outer is not None:
            set_run_context(outer)


def switch_profile(profile: str, project_dir: str | None = None) -> ProjectRunContext:
    """Switch the active profile in this process and return the new run context.

    An unknown profile raises `ProfileNotFound`, listing the known ones.
    """
    return set_run_context(PROJECTS.switch_profile(profile, project_dir))


def reset() -> None:
    """Forget the process's project, its switched profile and every cached project (tests,
    notebooks)."""
    PROJECTS.clear()
