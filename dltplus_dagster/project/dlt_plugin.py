"""dlt plugin: plain dlt code run inside a project folder gets the project's run context.

Registered under dlt's `dlt` entry point group. When dlt creates its run context and the run
dir (or the working dir) lies inside a folder with `dlt.yml`, dlt's config resolution sees the
manifest, `.dlt/<profile>.secrets.toml` and the profile's data dirs, as with `current`.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from dlt.common.configuration import plugins

if TYPE_CHECKING:
    from dltplus_dagster.project.dlt_config import ProjectRunContext

logger = logging.getLogger(__name__)

DISABLE_ENV = "DLTPLUS_DISABLE_DLT_PLUGIN"


@plugins.hookimpl(specname="plug_run_context")
def plug_project_context(
    run_dir: str | None, runtime_kwargs: dict[str, Any] | None
) -> ProjectRunContext | None:
    """The project's run context when `run_dir` (or the working dir) lies in a project, else
    None (dlt's own context). Imports stay inside: dlt loads plugins at its own import."""
    if os.environ.get(DISABLE_ENV):
        return None
    from dltplus_dagster.project.dlt_config import ProjectRunContext
    from dltplus_dagster.project.errors import ProjectError, ProjectNotFound
    from dltplus_dagster.project.project import find_project_dir, load_project

    try:
        root = find_project_dir(run_dir)
    except ProjectNotFound:
        return None
    profile = (runtime_kwargs or {}).get("profile")
    try:
        project = load_project(root, profile)
    except ProjectError as e:
        # a broken manifest must not break plain dlt: warn and fall back to dlt's own context
        logger.warning("dlt project at %s not used: %s", root, e)
        return None
    return ProjectRunContext(project)
