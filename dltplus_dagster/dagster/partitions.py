"""A manifest `partitions:` block as Dagster sees it: the partitions definition, the backfill
policy, and the partition (or range) of a run as runner arguments."""

from __future__ import annotations

from typing import Any

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    HourlyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    PartitionsDefinition,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    StaticPartitionsDefinition,
    WeeklyPartitionsDefinition,
)

from dltplus_dagster.project.model import PartitionsSpec
from dltplus_dagster.project.names import dagster_name
from dltplus_dagster.project.partitions import backfill_policy, fmt_of, parse_point, timezone_of

_TIME_WINDOWS: dict[str, Any] = {
    "hourly": HourlyPartitionsDefinition,
    "daily": DailyPartitionsDefinition,
    "weekly": WeeklyPartitionsDefinition,
    "monthly": MonthlyPartitionsDefinition,
}


def partitions_def(spec: PartitionsSpec | None, name: str) -> PartitionsDefinition | None:
    """The Dagster partitions of `spec`; dynamic partitions are named `name` (the pipeline or
    transformation, in Dagster's alphabet): add keys with `instance.add_dynamic_partitions`."""
    if spec is None:
        return None
    if spec.type == "static":
        return StaticPartitionsDefinition(list(spec.values or []))
    if spec.type == "dynamic":
        return DynamicPartitionsDefinition(name=dagster_name(name))
    # naive points: Dagster puts them in `timezone` (validation parsed them already)
    start = parse_point(spec.start, spec).replace(tzinfo=None)
    end = parse_point(spec.end, spec).replace(tzinfo=None) if spec.end is not None else None
    definition: PartitionsDefinition = _TIME_WINDOWS[spec.type or ""](
        start_date=start, end_date=end, timezone=timezone_of(spec), fmt=fmt_of(spec)
    )
    return definition


def backfill_policy_of(spec: PartitionsSpec | None) -> BackfillPolicy | None:
    """One run for a whole backfill (`single_run`), or one run per partition."""
    if spec is None:
        return None
    if backfill_policy(spec) == "single_run":
        return BackfillPolicy.single_run()
    return BackfillPolicy.multi_run(1)


def run_partition(context: AssetExecutionContext) -> dict[str, Any]:
    """Runner arguments for the run's partition: `partition=key`, or `partition_range=(first,
    last)` for a single-run backfill; none for an unpartitioned asset."""
    if context.has_partition_key_range:  # a backfill's range (or a one-key range)
        keys = context.partition_key_range
        if keys.start == keys.end:
            return {"partition": keys.start}
        return {"partition_range": (keys.start, keys.end)}
    if context.has_partition_key:
        return {"partition": context.partition_key}
    return {}


def pipeline_schedule(
    name: str, cron: str, job: Any, spec: PartitionsSpec | None, pipeline: str,
    timezone: str | None = None, description: str | None = None,
) -> ScheduleDefinition:
    """A pipeline's `schedule:` (or a `dagster.schedules` entry of a job); over time-window
    partitions each tick runs the latest window complete at the tick (validation refuses a
    schedule on static or dynamic partitions). `timezone` is the tick's (default: the
    partitions')."""
    if spec is None:
        return ScheduleDefinition(name=name, cron_schedule=cron, job=job,
                                  execution_timezone=timezone, description=description)
    windows = partitions_def(spec, pipeline)
    assert windows is not None

    def latest_window(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        keys = windows.get_partition_keys(current_time=context.scheduled_execution_time)
        if not keys:
            return SkipReason(f"pipeline {pipeline} has no complete partition yet")
        return RunRequest(partition_key=keys[-1])

    return ScheduleDefinition(
        name=name, cron_schedule=cron, job=job, execution_fn=latest_window,
        execution_timezone=timezone or timezone_of(spec), description=description,
    )
