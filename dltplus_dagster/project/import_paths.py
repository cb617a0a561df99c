"""Project import paths: a project's own packages (`sources.x`, `transformations.y`) import from
its folder (the flat layout), and only from the project in use.

Several projects may be used in one process (tests, a code location serving two), so switching
projects takes the previous project's folder off `sys.path` and drops the modules of another
project's packages from the import cache.
"""

from __future__ import annotations

import os
import sys

PROJECT_PACKAGES = ("sources", "transformations", "destinations")
"""Top-level package names that belong to the project in use, never to another project."""

_added_paths: set[str] = set()
_modules_dir: str | None = None  # the project whose modules are importable now


def use_project_modules(project_dir: str) -> None:
    """Make the packages of the project at `project_dir` importable, and no other project's."""
    global _modules_dir
    if _modules_dir == project_dir and sys.path and sys.path[0] == project_dir:
        return  # nothing switched since (each step enters its project's context several times)
    # another project's dir stays off the path: a regular `sources` package there would win
    # over this project's namespace `sources/` folder wherever it stood on sys.path
    for old in _added_paths - {project_dir}:
        if old in sys.path:
            sys.path.remove(old)
    _added_paths.intersection_update({project_dir})
    if project_dir in sys.path:
        sys.path.remove(project_dir)
    else:
        _added_paths.add(project_dir)  # only dirs this package put on the path are taken off
    sys.path.insert(0, project_dir)
    _forget_other_project_modules(project_dir)
    _modules_dir = project_dir


def _forget_other_project_modules(project_dir: str) -> None:
    """Drop cached `PROJECT_PACKAGES` modules that were not imported from `project_dir`."""
    prefix = os.path.join(project_dir, "")
    for mod_name in list(sys.modules):
        if mod_name.split(".")[0] not in PROJECT_PACKAGES:
            continue
        mod = sys.modules[mod_name]
        paths = list(getattr(mod, "__path__", []) or []) + [getattr(mod, "__file__", None) or ""]
        if not any(p and p.startswith(prefix) for p in paths):
            del sys.modules[mod_name]
