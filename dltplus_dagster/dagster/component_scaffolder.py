"""`dg scaffold defs dltplus_dagster.DltProjectComponent NAME --project-dir DIR`.

Writes the component's `defs.yaml`, pointing at the project with a path relative to it. When
`DIR` holds no project yet, a starter project is written there first, as `dltplus project
init SOURCE DESTINATION DIR` does (`--source arrow --destination duckdb` by default).
"""

from __future__ import annotations

import os
from typing import Any

from dagster import Scaffolder, scaffold_component
from dagster.components.scaffold.scaffold import ScaffoldRequest
from pydantic import BaseModel, Field


class DltProjectScaffoldParams(BaseModel):
    """Options of `dg scaffold defs dltplus_dagster.DltProjectComponent`."""

    project_dir: str | None = Field(
        default=None, description="Folder of the dlt project (made with a starter dlt.yml if "
        "it holds none); default: a `dlt_project` folder next to defs.yaml"
    )
    project: str | None = Field(
        default=None, description="An installed project package instead of --project-dir"
    )
    profile: str | None = Field(default=None, description="Profile to load and run with")
    source: str = Field(default="arrow", description="Starter project source (project init)")
    destination: str = Field(
        default="duckdb", description="Starter project destination (project init)"
    )


class DltProjectScaffolder(Scaffolder[DltProjectScaffoldParams]):
    """Scaffolds `defs.yaml` (and a starter project where there is none)."""

    @classmethod
    def get_scaffold_params(cls) -> type[DltProjectScaffoldParams]:
        return DltProjectScaffoldParams

    def scaffold(self, request: ScaffoldRequest[DltProjectScaffoldParams]) -> None:
        params = request.params or DltProjectScaffoldParams()
        target = os.path.abspath(request.target_path)
        os.makedirs(target, exist_ok=True)
        attributes: dict[str, Any] = {}
        if params.project:
            attributes["project"] = params.project
        else:
            project_dir = os.path.abspath(params.project_dir or os.path.join(target, "dlt_project"))
            if not os.path.exists(os.path.join(project_dir, "dlt.yml")):
                from dltplus_dagster.project.scaffold import init_project

                init_project(params.source, params.destination, project_dir)
            attributes["project_dir"] = os.path.relpath(project_dir, target)
        if params.profile:
            attributes["profile"] = params.profile
        scaffold_component(request=request, yaml_attributes=attributes)
