"""dlt's progress collectors by name: which exist, and whether their package is installed.

dlt creates a collector from its name when a pipeline is made and fails late, with a bare
`ValueError` or a `MissingDependencyException`, for an unknown name or a missing package.
`check_progress` says it up front, naming the package to install.
"""

from __future__ import annotations

import importlib.util

from dltplus_dagster.project.errors import ProjectError

PROGRESS_PACKAGES: dict[str, str | None] = {
    "log": None,  # dlt's own log collector
    "tqdm": "tqdm",
    "enlighten": "enlighten",
    "alive_progress": "alive_progress",
}
"""Collector name -> the module it needs (None: part of dlt)."""


def progress_problem(name: str) -> str | None:
    """Why `name` cannot be used as dlt progress here, or None when it can."""
    if name not in PROGRESS_PACKAGES:
        return f"unknown progress '{name}'; one of {', '.join(PROGRESS_PACKAGES)}"
    module = PROGRESS_PACKAGES[name]
    if module is not None and importlib.util.find_spec(module) is None:
        return (
            f"progress '{name}' needs the package {module}, which is not installed "
            f"(pip install {module}), or use 'log'"
        )
    return None


def check_progress(name: str, where: str = "--progress") -> str:
    """`name` when it is a dlt progress collector whose package is installed, else a
    `ProjectError` naming `where` (the argument)."""
    problem = progress_problem(name)
    if problem:
        raise ProjectError(f"{where}: {problem}")
    return name
