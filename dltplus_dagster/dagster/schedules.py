"""Jobs and schedules from the manifest: per-pipeline `schedule:` and the `dagster:` section."""

from __future__ import annotations

from typing import Any

from dagster import AssetKey, AssetSelection, ScheduleDefinition, define_asset_job

from dltplus_dagster.dagster.assets import ProjectAssets
from dltplus_dagster.dagster.partitions import pipeline_schedule
from dltplus_dagster.project.errors import ManifestError
from dltplus_dagster.project.partition_checks import job_partitions_spec
from dltplus_dagster.project.project import Project


def build_jobs_and_schedules(
    project: Project, assets: ProjectAssets
) -> tuple[list[Any], list[ScheduleDefinition]]:
    jobs: dict[str, Any] = {}
    schedules: list[ScheduleDefinition] = []
    for name, pipeline in project.pipelines.items():
        keys = assets.keys_by_pipeline.get(name, [])
        if not pipeline.schedule or not keys:
            continue
        job = define_asset_job(
            f"{name}_job",
            selection=AssetSelection.assets(*keys),
            description=f"Runs dlt pipeline {name}",
            tags=pipeline.tags or None,
        )
        jobs[job.name] = job
        schedules.append(pipeline_schedule(f"{name}_schedule", pipeline.schedule, job,
                                           pipeline.partitions, name))
    for name, spec in project.dagster.jobs.items():
        selection = _selection(project, assets, name, spec.pipelines, spec.transformations,
                               spec.assets)
        jobs[name] = define_asset_job(
            name, selection=selection, description=spec.description, tags=spec.tags or None
        )
    for name, sched in project.dagster.schedules.items():
        if sched.job not in jobs:
            raise project.error_at(
                ("dagster", "schedules", name, "job"),
                f"job '{sched.job}' is not defined; jobs: {', '.join(jobs) or '(none)'}",
            )
        # a partitioned job's tick runs its latest time window
        windows = job_partitions_spec(project, project.dagster.jobs.get(sched.job))
        schedules.append(pipeline_schedule(
            name, sched.cron, jobs[sched.job], windows, sched.job, sched.timezone,
            sched.description,
        ))
    return list(jobs.values()), schedules


def _selection(
    project: Project,
    assets: ProjectAssets,
    job: str,
    pipelines: list[str],
    transformations: list[str],
    strings: list[str],
) -> AssetSelection:
    keys: list[AssetKey] = []
    for p in pipelines:
        if p not in assets.keys_by_pipeline:
            raise _unknown(project, job, "pipelines", p, assets.keys_by_pipeline)
        keys.extend(assets.keys_by_pipeline[p])
    for t in transformations:
        if t not in assets.keys_by_transformation:
            raise _unknown(project, job, "transformations", t, assets.keys_by_transformation)
        keys.extend(assets.keys_by_transformation[t])
    selection: AssetSelection = AssetSelection.assets(*keys)
    for s in strings:
        try:
            selection = selection | AssetSelection.from_string(s)
        except Exception as e:  # noqa: BLE001 - Dagster raises several types for bad syntax
            raise project.error_at(("dagster", "jobs", job, "assets"), f"bad selection {s!r}: {e}")
    return selection


def _unknown(
    project: Project, job: str, kind: str, name: str, known: dict[str, Any]
) -> ManifestError:
    return project.error_at(
        ("dagster", "jobs", job, kind),
        f"'{name}' is not declared; declared {kind}: {', '.join(known) or '(none)'}",
    )
