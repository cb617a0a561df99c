"""The `dlt_schema_change` check of pipeline tables: real runs on DuckDB, results read back from
the Dagster instance's event storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dagster import AssetCheckKey, AssetCheckSeverity, AssetKey, DagsterInstance
from orch_support import ORCH_YML, orch_project, rows

from dltplus_dagster import build_definitions
from dltplus_dagster.project.schema_changes import _table_change

ACCOUNTS = AssetKey(["crm_raw", "accounts"])
ORDERS = AssetKey(["crm_raw", "orders"])
CHECK = "dlt_schema_change"


def run(root: Path, instance: DagsterInstance) -> Any:
    defs = build_definitions(str(root), "dev")
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance, asset_selection=[ACCOUNTS, ORDERS], raise_on_error=False
    )


def stored_check(instance: DagsterInstance, key: AssetKey) -> Any:
    """The latest evaluation of the key's schema-change check, from event storage."""
    records = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(key, CHECK), limit=1
    )
    assert records, f"no {CHECK} result stored for {key.to_user_string()}"
    event = records[0].event
    assert event is not None and event.dagster_event is not None
    return event.dagster_event.event_specific_data  # AssetCheckEvaluation


def md(evaluation: Any, key: str) -> Any:
    value = evaluation.metadata[key]
    return getattr(value, "value", value)


def test_added_column_warns_first_run_and_unchanged_runs_pass(
    tmp_path: Path, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = orch_project(tmp_path)
    graph = build_definitions(str(root), "dev").resolve_asset_graph()
    assert {(k.asset_key, k.name) for k in graph.asset_check_keys} >= {
        (ACCOUNTS, CHECK), (ORDERS, CHECK), (AssetKey(["other_raw", "things"]), CHECK)
    }

    # first run: every table is new, which is not a change
    assert run(root, instance).success
    first = stored_check(instance, ACCOUNTS)
    assert first.passed and md(first, "new_table") is True

    # the source now sends a `region` column: a WARN listing it
    monkeypatch.setenv("CRM_REGION", "emea")
    assert run(root, instance).success
    accounts = stored_check(instance, ACCOUNTS)
    assert not accounts.passed
    assert accounts.severity == AssetCheckSeverity.WARN
    assert md(accounts, "added_columns") == {"region": "text"}
    assert md(accounts, "changed_columns") == {}
    assert "added region (text) in accounts" in (accounts.description or "")
    orders = stored_check(instance, ORDERS)
    assert orders.passed and md(orders, "added_columns") == {}
    assert rows(root, "SELECT DISTINCT region FROM crm_raw.accounts") == [("emea",)]

    # same data again: nothing changed
    assert run(root, instance).success
    assert stored_check(instance, ACCOUNTS).passed


def test_contract_refusing_the_change_is_an_error_result(
    tmp_path: Path, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    yml = ORCH_YML.replace("  crm_raw:\n    destination: [warehouse]\n",
                           "  crm_raw:\n    destination: [warehouse]\n    contract: {columns: freeze}\n")
    assert yml != ORCH_YML
    root = orch_project(tmp_path, yml)
    assert run(root, instance).success

    monkeypatch.setenv("CRM_REGION", "emea")
    result = run(root, instance)
    assert not result.success  # the contract stops the run
    evaluation = stored_check(instance, ACCOUNTS)
    assert not evaluation.passed
    assert evaluation.severity == AssetCheckSeverity.ERROR
    assert md(evaluation, "contract") == "columns: freeze"
    assert md(evaluation, "column") == "region"
    assert "refused" in (evaluation.description or "")
    # the table kept its columns
    columns = rows(root, "SELECT column_name FROM information_schema.columns "
                         "WHERE table_schema = 'crm_raw' AND table_name = 'accounts'")
    assert "region" not in {c for (c,) in columns}


def test_changed_hints_are_listed_as_changed_columns() -> None:
    """A column whose type or nullability differs from the stored version is changed."""
    change = _table_change(
        "t",
        {"a": {"name": "a", "data_type": "double"}, "b": {"name": "b", "data_type": "text"},
         "c": {"name": "c", "data_type": "bigint", "nullable": True}},
        {"a": {"name": "a", "data_type": "bigint"},
         "c": {"name": "c", "data_type": "bigint", "nullable": False}},
    )
    assert change.is_change
    assert change.added == {"b": "text"}
    assert change.changed == {"a": {"data_type": ["bigint", "double"]},
                              "c": {"nullable": [False, True]}}
    assert "changed a (data_type: bigint -> double)" in change.describe()
