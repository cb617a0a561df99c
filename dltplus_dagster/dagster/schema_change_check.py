"""The `dlt_schema_change` asset check every pipeline table gets.

After a run it passes when the run added or changed no column of the table (a table the run
created is new, not changed: it passes too), WARNs listing the added and changed columns
otherwise, and ERRORs when the dataset's schema contract refused the run's change (the step
fails; the check result is recorded before the error is raised). The name has no `/`: Dagster
builds op output names from check names, and those allow only `A-Z a-z 0-9 _`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MetadataValue,
)

from dltplus_dagster.project.schema_changes import ContractViolation, TableChange

SCHEMA_CHANGE_CHECK = "dlt_schema_change"


def schema_change_spec(key: AssetKey) -> AssetCheckSpec:
    return AssetCheckSpec(
        SCHEMA_CHANGE_CHECK,
        asset=key,
        description="WARN when a run added or changed columns of the table; ERROR when the "
        "dataset's schema contract refused the change",
    )


def schema_check_selected(context: AssetExecutionContext, key: AssetKey) -> bool:
    """True when the run selected the schema-change check of `key`."""
    return any(
        c.asset_key == key and c.name == SCHEMA_CHANGE_CHECK
        for c in context.selected_asset_check_keys
    )


def schema_change_result(key: AssetKey, table: str, change: TableChange | None) -> AssetCheckResult:
    """The check's result for one table after a successful run (`change` None: untouched)."""
    change = change or TableChange(table)
    return AssetCheckResult(
        asset_key=key,
        check_name=SCHEMA_CHANGE_CHECK,
        passed=not change.is_change,
        severity=AssetCheckSeverity.WARN,
        description=change.describe(),
        metadata={
            "added_columns": MetadataValue.json(change.added),
            "changed_columns": MetadataValue.json(change.changed),
            "new_table": change.new_table,
        },
    )


def contract_violation_results(
    context: AssetExecutionContext,
    violation: ContractViolation,
    table_by_key: Mapping[AssetKey, str],
) -> Iterator[AssetCheckResult]:
    """ERROR results on the selected tables the refused change was for."""
    for key, table in table_by_key.items():
        if table == violation.table and schema_check_selected(context, key):
            yield AssetCheckResult(
                asset_key=key,
                check_name=SCHEMA_CHANGE_CHECK,
                passed=False,
                severity=AssetCheckSeverity.ERROR,
                description=violation.describe(),
                metadata={
                    "contract": f"{violation.entity}: {violation.mode}",
                    "column": violation.column or "",
                },
            )
