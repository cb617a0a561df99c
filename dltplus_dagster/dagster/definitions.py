"""build_definitions(): a dlt project as a Dagster code location."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
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
from dltplus_dagster.project.entities import EntityFactory
from dltplus_dagster.project.errors import ProjectInvalid
from dltplus_dagster.project.gc_pause import gc_paused
from dltplus_dagster.project.packaging import locate_project
from dltplus_dagster.project.project import Project, load_project
from dltplus_dagster.project.table_state import TableListCache
from dltplus_dagster.project.validate import ensure_valid

RESOURCE_KEY = "dlt_project"

_REMOVED_ARGUMENTS = ("assets", "resources", "jobs", "schedules", "sensors", "asset_checks")


def build_definitions(
    project_dir: str | None = None,
    profile: str | None = None,
    translator: DltProjectTranslator | None = None,
    *,
    state_path: str | None = None,
    max_concurrent: int | None = None,
    executor: ExecutorDefinition | None = None,
    **removed: Any,
) -> Definitions:
    """Definitions for the project at `project_dir` (default: `DLT_PROJECT_DIR` or discovery).

    `project_dir` may also name an installed project package (`"my_dlt_package"`, as the CLI's
    `--project`); its default profile (`access`) applies unless `profile` is given.

    Pipelines, transformations and declared dataset tables become assets keyed
    `<dataset>/<table>`; the profile is a `DltProjectResource` under `dlt_project` (change it
    per run in the Launchpad); `dlt_dataset_io` is the dataset IO manager; jobs and schedules
    come from the manifest. Only what the project defines is returned: add your own code with
    `Definitions.merge(build_definitions(...), Definitions(assets=[...], ...))`. Loading
    extracts nothing. `state_path` is the table-list cache file (default
    `.dlt/.dltplus_state.json` in the project; see `dltplus project prepare`).

    `executor` replaces the default (the multiprocess executor with one step at a time per
    local DuckDB file, see `LOCAL_FILE_TAG`), e.g. `dagster_celery.celery_executor` or
    `dagster_k8s.k8s_job_executor`; those do not apply the tag limits (see docs/deployment.md).
    """
    _refuse_removed(removed)
    root, profile = locate_project(project_dir, profile)
    with gc_paused():  # one bulk of long-lived objects: see gc_pause.py
        project = load_project(root, profile)
        # an invalid project fails the code location load with the located message of
        # `dltplus project validate`, not with whatever dlt raises building the assets
        state = TableListCache(project, EntityFactory(project), state_path)
        ensure_valid(project, state=state)  # the lists it finds are the ones the build reads
        return project_definitions(
            project, profile, state, translator, max_concurrent=max_concurrent,
            executor=executor,
        )


def project_definitions(
    project: Project,
    profile: str | None,
    state: TableListCache,
    translator: DltProjectTranslator | None = None,
    *,
    max_concurrent: int | None = None,
    executor: ExecutorDefinition | None = None,
    adapt: Callable[[ProjectAssets], ProjectAssets] | None = None,
) -> Definitions:
    """The definitions of a validated project, its table lists read from `state`: the one
    implementation under `build_definitions` and `DltProjectComponent`. `adapt` may select
    and rewrap the built assets before jobs and schedules are made from them."""
    translator = translator or DltProjectTranslator()
    project_resource = project_resource_for(project.project_dir, profile)
    with gc_paused():  # the component comes here directly
        built = build_project_assets(project, translator, state=state)
        if adapt is not None:
            built = adapt(built)
        _refuse_shared_keys(project, built)
        project_jobs, project_schedules = build_jobs_and_schedules(project, built)
        defs = Definitions(
            assets=built.assets,
            resources=_wired_resources(project_resource),
            jobs=project_jobs,
            schedules=project_schedules,
            executor=executor or _default_executor(built.local_file_tags, max_concurrent),
        )
        # Dagster resolves the asset graph of the definitions it loads (and caches it): done
        # here, while the collector still waits, the graph's objects are not rescanned a few
        # times as they are promoted, and a graph Dagster refuses fails this call
        defs.resolve_asset_graph()
    return defs


def _refuse_removed(removed: Mapping[str, Any]) -> None:
    """A clear TypeError for the arguments that moved to `Definitions.merge`."""
    if not removed:
        return
    moved = [name for name in removed if name in _REMOVED_ARGUMENTS]
    if moved:
        raise TypeError(
            f"build_definitions() no longer takes {', '.join(moved)}: it returns the project's "
            "definitions only. Combine them with yours: Definitions.merge(build_definitions("
            "...), Definitions(assets=[...], resources={...}))"
        )
    raise TypeError(
        f"build_definitions() got unexpected keyword argument(s) {', '.join(removed)}"
    )


def _wired_resources(project_resource: DltProjectResource) -> dict[str, Any]:
    """The project resource and the default dataset IO manager (`dlt_dataset_io`), which
    writes an output into the dataset its asset key names (`<dataset>/<table>`)."""
    return {
        RESOURCE_KEY: project_resource,
        DATASET_IO_MANAGER_KEY: DltDatasetIOManager(dlt_project=project_resource),
    }


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
