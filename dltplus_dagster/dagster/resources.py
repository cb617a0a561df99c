"""DltProjectResource: a dlt project and profile as a Dagster resource."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from dltplus_dagster.project.catalog import Catalog
from dltplus_dagster.project.entities import EntityFactory
from dltplus_dagster.project.project import Project
from dltplus_dagster.project.run_context import bound, cached_project
from dltplus_dagster.project.runner import Runner


class DltProjectResource(ConfigurableResource):
    """The project (and its profile) a run works with; the one object ops and assets use.

    While a step that uses this resource runs, `dltplus_dagster.current` resolves to this
    project and profile, whatever the code location process or working directory is.
    """

    project_dir: str = Field(description="Folder holding dlt.yml")
    profile: str | None = Field(
        default=None,
        description="Profile for this run (dev, tests, prod...); empty: the project's selection",
    )

    _project: Project | None = PrivateAttr(default=None)

    def project(self) -> Project:
        if self._project is None or self._project.is_stale():
            self._project = cached_project(self.project_dir, self.profile or None)
        return self._project

    def entities(self) -> EntityFactory:
        return EntityFactory(self.project())

    def catalog(self) -> Catalog:
        p = self.project()
        return Catalog(p, EntityFactory(p))

    def runner(self) -> Runner:
        p = self.project()
        return Runner(p, EntityFactory(p))

    @contextlib.contextmanager
    def bound(self) -> Iterator[Project]:
        """Bind `current` to this project for the block."""
        with bound(self.project()) as p:
            yield p

    @contextlib.contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[Any]:
        # bind `current` for the whole step that uses the resource
        with self.bound():
            yield self


def project_resource_for(project_dir: str, profile: str | None = None) -> DltProjectResource:
    """A `DltProjectResource` whose config *defaults* are `project_dir` and `profile`.

    Dagster replaces a resource's whole config when a run gives any (the Launchpad's
    `resources.dlt_project.config`): with values passed to the constructor, `{profile: tests}`
    alone would fail for the missing `project_dir`. As field defaults of a subclass, a run can
    change the profile alone, and the Launchpad shows both values.
    """
    fields = DltProjectResource.model_fields
    subclass = type(
        DltProjectResource.__name__,
        (DltProjectResource,),
        {
            "__module__": __name__,
            "__doc__": DltProjectResource.__doc__,
            "__annotations__": {"project_dir": str, "profile": str | None},
            "project_dir": Field(default=project_dir,
                                 description=fields["project_dir"].description),
            "profile": Field(default=profile, description=fields["profile"].description),
        },
    )
    return subclass()
