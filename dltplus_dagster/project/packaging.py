"""Expose a project shipped inside a pip-installable package.

In the package's `__init__.py`::

    from dltplus_dagster.project.packaging import bind_package
    project, entities, catalog, runner, access_profile = bind_package(__file__)

and in its `pyproject.toml`::

    [project.entry-points.dlt_package]
    dlt-project = "my_package"

`dltplus project list` finds installed project packages through that entry point group.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dltplus_dagster.project.catalog import Catalog
from dltplus_dagster.project.entities import EntityFactory
from dltplus_dagster.project.profiles import PROFILE_ENV
from dltplus_dagster.project.project import Project
from dltplus_dagster.project.runner import Runner
from dltplus_dagster.project.selection import current_project

ENTRY_POINT_GROUP = "dlt_package"
PACKAGE_DEFAULT_PROFILE = "access"


def bind_package(
    package_file: str, default_profile: str = PACKAGE_DEFAULT_PROFILE
) -> tuple[Callable[..., Project], Callable[..., EntityFactory], Callable[..., Catalog],
           Callable[..., Runner], Callable[[], str]]:
    """Functions `project, entities, catalog, runner, access_profile` bound to the package dir.

    The profile is `default_profile` (`access`, as dlt+ packages) unless one is passed, or set
    with `WORKSPACE__PROFILE`.
    """
    package_dir = os.path.dirname(os.path.abspath(package_file))

    def access_profile() -> str:
        return os.environ.get(PROFILE_ENV) or default_profile

    def project(profile: str | None = None) -> Project:
        return current_project(package_dir, profile or access_profile())

    def entities(profile: str | None = None) -> EntityFactory:
        return EntityFactory(project(profile))

    def catalog(profile: str | None = None) -> Catalog:
        return Catalog.for_project(project(profile))

    def runner(profile: str | None = None) -> Runner:
        p = project(profile)
        return Runner(p, EntityFactory(p))

    return project, entities, catalog, runner, access_profile


@dataclass
class InstalledPackage:
    distribution: str
    module: str
    description: str
    project_dir: str | None


def installed_packages() -> list[InstalledPackage]:
    """Project packages registered under the `dlt_package` entry point group."""
    import importlib.metadata
    import importlib.util

    found: list[InstalledPackage] = []
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP:
                continue
            module = ep.value.split(":")[0]
            spec = importlib.util.find_spec(module)
            pdir = os.path.dirname(spec.origin) if spec and spec.origin else None
            found.append(
                InstalledPackage(dist.metadata["Name"], module, _doc_line(spec), pdir)
            )
    return found


def find_installed_project(name: str) -> InstalledPackage | None:
    """The installed project package whose module or distribution is `name`, if any."""
    for pkg in installed_packages():
        if name in (pkg.module, pkg.distribution) and pkg.project_dir:
            return pkg
    return None


def package_default_profile(pkg: InstalledPackage) -> str:
    """The profile a package's project uses when none is given: what its `access_profile()`
    (from `bind_package`) says, else `access` (`WORKSPACE__PROFILE` overrides both)."""
    import importlib

    module = importlib.import_module(pkg.module)
    access_profile = getattr(module, "access_profile", None)
    if callable(access_profile):
        return str(access_profile())
    return os.environ.get(PROFILE_ENV) or PACKAGE_DEFAULT_PROFILE


def locate_project(value: str | None, profile: str | None = None) -> tuple[str, str | None]:
    """The project dir and profile for `value`: a dir (or None: `DLT_PROJECT_DIR`, else a
    search up from the cwd), or the module/distribution name of an installed project package,
    whose default profile applies unless `profile` is given."""
    from dltplus_dagster.project.errors import ProjectNotFound
    from dltplus_dagster.project.project import find_project_dir

    if not value:
        return find_project_dir(), profile
    if os.path.isdir(value):
        return os.path.abspath(value), profile
    pkg = find_installed_project(value)
    if pkg is None or pkg.project_dir is None:
        raise ProjectNotFound([f"{value} (not a directory, nor an installed dlt package)"])
    return pkg.project_dir, profile or package_default_profile(pkg)


def _doc_line(spec: Any) -> str:
    import ast

    if not spec or not spec.origin or not os.path.isfile(spec.origin):
        return ""
    with open(spec.origin, encoding="utf-8") as f:
        doc = ast.get_docstring(ast.parse(f.read())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
