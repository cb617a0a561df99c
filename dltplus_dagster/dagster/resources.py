"""DltProjectResource: a dlt project and profile as a Dagster resource."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import ClassVar, cast

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from dltplus_dagster.project.catalog import Catalog
from dltplus_dagster.project.entities import EntityFactory
from dltplus_dagster.project.errors import ProjectError
from dltplus_dagster.project.project import Project
from dltplus_dagster.project.runner import Runner
from dltplus_dagster.project.selection import PROJECTS, bind_current


# dagster's documented form; a subscripted base would change the runtime pydantic model
class DltProjectResource(ConfigurableResource):  # type: ignore[type-arg]  # as dagster documents
    """The project (and its profile) a run works with; the one object ops and assets use.

    While a step that uses this resource runs, `dltplus_dagster.current` resolves to this
    project and profile, whatever the code location process or working directory is.

    Made by `project_resource_for` (as `build_definitions` does), the project dir is the code
    location's: run config may switch the profile (to one the project declares), never point
    the run at another folder's code and secrets.
    """

    fixed_project_dir: ClassVar[str | None] = None
    """The code location's project dir; a run whose config names another one is refused."""

    project_dir: str = Field(description="Folder holding dlt.yml")
    profile: str | None = Field(
        default=None,
        description="Profile for this run (dev, tests, prod...); empty: the project's selection",
    )

    _project: Project | None = PrivateAttr(default=None)

    def project(self) -> Project:
        self._check_project_dir()
        if self._project is None or self._project.is_stale():
            self._project = PROJECTS.get(self.project_dir, self.profile or None)
        return self._project

    def entities(self) -> EntityFactory:
        return EntityFactory(self.project())

    def catalog(self) -> Catalog:
        return Catalog.for_project(self.project())

    def runner(self) -> Runner:
        p = self.project()
        return Runner(p, EntityFactory(p))

    def _check_project_dir(self) -> None:
        fixed = type(self).fixed_project_dir
        if fixed is None or _same_dir(self.project_dir, fixed):
            return
        raise ProjectError(
            f"resources.dlt_project.config.project_dir: a run may not change the project dir "
            f"(got {self.project_dir!r}); this code location serves {fixed!r}. Run config may "
            "switch the profile only; serve another project from a code location of its own"
        )

    @contextlib.contextmanager
    def bind_current(self) -> Iterator[Project]:
        """Bind `current` to this project for the block."""
        with bind_current(self.project()) as p:
            yield p

    @contextlib.contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[DltProjectResource]:
        # bind `current` for the whole step that uses the resource
        with self.bind_current():
            yield self


def project_resource_for(project_dir: str, profile: str | None = None) -> DltProjectResource:
    """A `DltProjectResource` whose config *defaults* are `project_dir` and `profile`.

    Dagster replaces a resource's whole config when a run gives any (the Launchpad's
    `resources.dlt_project.config`): with values passed to the constructor, `{profile: tests}`
    alone would fail for the missing `project_dir`. As field defaults of a subclass, a run can
    change the profile alone, and the Launchpad shows both values. `project_dir` is fixed:
    a run that sets another one fails before any step runs (`fixed_project_dir`).
    """
    fields = DltProjectResource.model_fields
    subclass = type(
        DltProjectResource.__name__,
        (DltProjectResource,),
        {
            "__module__": __name__,
            "__doc__": DltProjectResource.__doc__,
            "__annotations__": {"project_dir": str, "profile": str | None},
            "fixed_project_dir": os.path.abspath(project_dir),
            "project_dir": Field(
                default=project_dir,
                description=f"{fields['project_dir'].description} (fixed by the code location)",
            ),
            "profile": Field(default=profile, description=fields["profile"].description),
        },
    )
    return cast("DltProjectResource", subclass())  # a subclass made by type()


def _same_dir(a: str, b: str) -> bool:
    return os.path.realpath(os.path.abspath(a)) == os.path.realpath(os.path.abspath(b))
