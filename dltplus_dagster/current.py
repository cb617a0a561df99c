"""`current`: the project API for the active project and profile.

Inside a Dagster step these resolve to the project and profile of that run's
`DltProjectResource`; elsewhere to the project found from `DLT_PROJECT_DIR` or the working dir,
with the selected profile (`switch_profile`, `WORKSPACE__PROFILE`, pin file, default).
"""

from __future__ import annotations

from dltplus_dagster.project.catalog import Catalog
from dltplus_dagster.project.entities import EntityFactory
from dltplus_dagster.project.project import Project
from dltplus_dagster.project.runner import Runner
from dltplus_dagster.project.selection import current_project

__all__ = ["catalog", "entities", "project", "runner"]


def project(project_dir: str | None = None, profile: str | None = None) -> Project:
    """The active `Project`: name, dirs, profile, merged config (secrets redacted), entities."""
    return current_project(project_dir, profile)


def entities(project_dir: str | None = None, profile: str | None = None) -> EntityFactory:
    """Factory of the project's sources, destinations, pipelines, datasets, transformations."""
    return EntityFactory(project(project_dir, profile))


def catalog(project_dir: str | None = None, profile: str | None = None) -> Catalog:
    """The project's datasets, readable and writable (`catalog.dataset(name).save(...)`)."""
    return Catalog.for_project(project(project_dir, profile))


def runner(project_dir: str | None = None, profile: str | None = None) -> Runner:
    """The runner the CLI and Dagster use: `runner().run_pipeline(name)`."""
    p = project(project_dir, profile)
    return Runner(p, EntityFactory(p))
