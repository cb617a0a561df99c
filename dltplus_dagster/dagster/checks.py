"""Asset checks declared in the manifest (`datasets.<ds>.tables.<t>.checks`).

The project layer (`project/checks.py`) plans and evaluates the checks; this module turns them
into Dagster `AssetCheckSpec`s at definitions time and `AssetCheckResult`s after a
materialization: the manifest's severity becomes `AssetCheckSeverity`, the failing row count
and a few failing rows (only the columns a check reads, secrets masked) become metadata.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
)

from dltplus_dagster.project.checks import CheckResult, plan_checks, run_table_checks
from dltplus_dagster.project.dataset import Dataset
from dltplus_dagster.project.model import TableCheck

SEVERITY = {"warn": AssetCheckSeverity.WARN, "error": AssetCheckSeverity.ERROR}
_NO_CHECKS = TableCheck()


def check_specs(
    key: AssetKey, checks: TableCheck, secrets: Sequence[str] = ()
) -> list[AssetCheckSpec]:
    """One spec per declared check of the table behind `key`."""
    if checks == _NO_CHECKS:
        return []  # most tables: nothing to plan (definitions build this for every table)
    return [
        AssetCheckSpec(p.name, asset=key, description=f"{p.description} (severity {p.severity})")
        for p in plan_checks(checks, secrets)
    ]


def check_result(key: AssetKey, result: CheckResult) -> AssetCheckResult:
    """A project-layer check result as Dagster's."""
    metadata: dict[str, object] = {
        k: MetadataValue.json(v) if isinstance(v, (dict, list)) else v
        for k, v in result.details.items()
    }
    if result.failing_rows is not None:
        metadata["failing_rows"] = result.failing_rows
    if result.sample:
        metadata["failing_sample"] = MetadataValue.json(result.sample)
    if result.error:
        metadata["error"] = MetadataValue.text(result.error)
    return AssetCheckResult(
        asset_key=key,
        check_name=result.check,
        passed=result.passed,
        severity=SEVERITY[result.severity],
        # plain values or MetadataValues; dagster's RawMetadataValue alias is not public
        metadata=metadata,  # type: ignore[arg-type]
    )


def run_checks(
    key: AssetKey,
    dataset: Dataset,
    table: str,
    checks: TableCheck,
    row_count: int,
    secrets: Sequence[str] = (),
) -> Iterator[AssetCheckResult]:
    """Evaluate the declared checks of one table after it was materialized."""
    for result in run_table_checks(dataset, table, checks, row_count, secrets):
        yield check_result(key, result)
