"""build_definitions(): a dlt project as a Dagster code location."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dagster import Definitions, ExecutorDefinition, multiprocess_executor

from dltplus_dagster.dagster.assets import (
    DATASET_IO_MANAGER_KEY,
    LOCAL_FILE_TAG,
    ProjectAssets,
    build_project_assets,
)
from dltplus_dagster.dagster.io_manager import DltDatasetIOManager
from dltplus_dagster.dagster.resources import DltProjectResource, project_resource_for
from dltplus_dagster.dagster.schedules import build_jobs_and_schedules
from dltplus_dagster.dagster.translator import DltProjectTranslator
from dltplus_dagster.project.errors import ProjectInvalid
from dltplus_dagster.project.gc_pause import gc_paused
from dltplus_dagster.project.project import Project, find_project_dir, load_project
from dltplus_dagster.project.validate import ensure_valid

RESOURCE_KEY = "dlt_project"


def build_definitions(
    project_dir: str | None = None,
    profile: str | None = None,
    translator: DltProjectTranslator | None = None,
    *,
    assets: Sequence[Any] = (),
    resources: Mapping[str, Any] | None = None,
    jobs: Sequence[Any] = (),
    schedules: Sequence[Any] = (),
    sensors: Sequence[Any] = (),
    asset_checks: Sequence[Any] = (),
    max_concurrent: int | None = None,
    executor: ExecutorDefinition | None = None,
) -> Definitions:
    """Definitions for the project at `project_dir` (default: `DLT_PROJECT_DIR` or discovery).

    Pipelines, transformations and declared dataset tables become assets keyed
    `<dataset>/<table>`; the profile is a `DltProjectResource` under `dlt_project` (change it
    per run in the Launchpad); jobs and schedules come from the manifest. Your own `assets`,
    `resources` (e.g. `DltDatasetIOManager(dataset="reports")`, wired to the project
    automatically), jobs, schedules and sensors are added. Loading extracts nothing.

    `executor` replaces the default (the multiprocess executor with one step at a time per
    local DuckDB file, see `LOCAL_FILE_TAG`), e.g. `dagster_celery.celery_executor` or
    `dagster_k8s.k8s_job_executor`; those do not apply the tag limits (see docs/deployment.md).
    """
    with gc_paused():  # one bulk of long-lived objects: see gc_pause.py
        return _build_definitions(
            project_dir, profile, translator, assets=assets, resources=resources, jobs=jobs,
            schedules=schedules, sensors=sensors, asset_checks=asset_checks,
            max_concurrent=max_concurrent, executor=executor,
        )


def _build_definitions(
    project_dir: str | None,
    profile: str | None,
    translator: DltProjectTranslator | None,
    *,
    assets: Sequence[Any],
    resources: Mapping[str, Any] | None,
    jobs: Sequence[Any],
    schedules: Sequence[Any],
    sensors: Sequence[Any],
    asset_checks: Sequence[Any],
    max_concurrent: int | None,
    executor: ExecutorDefinition | None,
) -> Definitions:
    root = project_dir or find_project_dir()
    project = load_project(root, profile)
    # an invalid project fails the code location load with the located message of
    # `dltplus project validate`, not with whatever dlt raises building the assets
    ensure_valid(project)
    translator = translator or DltProjectTranslator()
    project_resource = project_resource_for(project.project_dir, profile)

    user_keys = [k for a in assets for k in getattr(a, "keys", [])]
    built = build_project_assets(project, translator, exclude_keys=user_keys)
    _refuse_shared_keys(project, built)
    project_jobs, project_schedules = build_jobs_and_schedules(project, built)

    executor = executor or _default_executor(built.local_file_tags, max_concurrent)
    return Definitions(
        assets=[*built.assets, *assets],
        asset_checks=list(asset_checks),
        resources=_wired_resources(project_resource, resources or {}),
        jobs=[*project_jobs, *jobs],
        schedules=[*project_schedules, *schedules],
        sensors=list(sensors),
        executor=executor,
    )


def _wired_resources(
    project_resource: DltProjectResource, resources: Mapping[str, Any]
) -> dict[str, Any]:
    """The project resource, the default dataset IO manager and the user's `resources`; a user
    `DltDatasetIOManager` without a project gets this one."""
    wired: dict[str, Any] = {
        RESOURCE_KEY: project_resource,
        DATASET_IO_MANAGER_KEY: DltDatasetIOManager(dlt_project=project_resource),
    }
    for key, res in resources.items():
        if isinstance(res, DltDatasetIOManager) and res.dlt_project is None:
            res = DltDatasetIOManager(
                dataset=res.dataset, write_disposition=res.write_disposition,
                dlt_project=project_resource,
            )
        wired[key] = res
    return wired


def _default_executor(
    local_file_tags: Iterable[str], max_concurrent: int | None
) -> ExecutorDefinition:
    """The multiprocess executor with one step at a time per local DuckDB file: DuckDB takes
    one writer process per file. Other steps run in parallel processes as usual."""
    return multiprocess_executor.configured(
        {
            **({"max_concurrent": max_concurrent} if max_concurrent else {}),
            "tag_concurrency_limits": [
                {"key": LOCAL_FILE_TAG, "value": tag, "limit": 1} for tag in local_file_tags
            ],
        }
    )


def _refuse_shared_keys(project: Project, built: ProjectAssets) -> None:
    """Two entities whose assets share a key (a translator that keys them alike): a located
    error naming both and the key, not Dagster's bare duplicate-key error. `validate` refuses
    the default keys' clashes already."""
    owner: dict[Any, tuple[str, str]] = {}
    problems: list[str] = []
    for section, keys_by in (
        ("pipelines", built.keys_by_pipeline),
        ("transformations", built.keys_by_transformation),
    ):
        for name, keys in keys_by.items():
            for key in keys:
                if key in owner and owner[key] != (section, name):
                    other_section, other = owner[key]
                    problems.append(str(project.error_at((section, name), (
                        f"{section[:-1]} '{name}' and {other_section[:-1]} '{other}' both "
                        f"produce asset key {key.to_user_string()}; give them different keys"
                    ))))
                owner.setdefault(key, (section, name))
    if problems:
        raise ProjectInvalid(problems, f"project {project.name}, profile {project.current_profile}")
