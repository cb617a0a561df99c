"""The manifest's orchestration settings as Dagster objects (the keys are checked at load by
`project/orchestration.py`, with Dagster's rules, so nothing here fails on user input)."""

from __future__ import annotations

from dagster import AssetCheckKey, AssetKey, AutomationCondition, FreshnessPolicy

from dltplus_dagster.project.orchestration import (
    OnCron,
    OrchestrationKeys,
    asset_key_parts,
    parse_duration,
)


def automation_condition(keys: OrchestrationKeys) -> AutomationCondition[AssetKey | AssetCheckKey] | None:
    """`eager`, `on_missing` or `{on_cron: ...}` as Dagster's `AutomationCondition`."""
    auto = keys.automation_condition
    if isinstance(auto, OnCron):
        return AutomationCondition.on_cron(auto.on_cron, auto.timezone or "UTC")
    if auto == "eager":
        return AutomationCondition.eager()
    if auto == "on_missing":
        return AutomationCondition.on_missing()
    return None


def freshness_policy(keys: OrchestrationKeys) -> FreshnessPolicy | None:
    """`freshness: {fail_after, warn_after}` as Dagster's time-window `FreshnessPolicy`."""
    if keys.freshness is None:
        return None
    warn = keys.freshness.warn_after
    return FreshnessPolicy.time_window(
        fail_window=parse_duration(keys.freshness.fail_after),
        warn_window=parse_duration(warn) if warn else None,
    )


def dep_keys(keys: OrchestrationKeys) -> list[AssetKey]:
    """`deps: ["crm/accounts"]` as asset keys."""
    return [AssetKey(asset_key_parts(d)) for d in keys.deps or ()]
