"""Orchestration settings in dlt.yml (automation, owners, tags, kinds, group, description,
freshness, deps) and code versions, on real definitions, materializations and DuckDB."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dagster import (
    AssetKey,
    AutomationCondition,
    DagsterInstance,
    evaluate_automation_conditions,
)
from dagster._core.definitions.freshness import TimeWindowFreshnessPolicy
from dagster._core.definitions.utils import is_valid_owner
from dagster._utils.tags import is_valid_strict_tag_value, is_valid_tag_key
from orch_support import ORCH_YML, orch_project, rows

from dltplus_dagster import build_definitions
from dltplus_dagster.project.errors import ProjectError
from dltplus_dagster.project.orchestration import OrchestrationKeys, orchestration_problems
from dltplus_dagster.project.project import load_project

ACCOUNTS = AssetKey(["crm_raw", "accounts"])
ORDERS = AssetKey(["crm_raw", "orders"])
TOTALS = AssetKey(["reports", "account_totals"])
THINGS = AssetKey(["other_raw", "things"])


def graph(root: Path) -> Any:
    return build_definitions(str(root), "dev").resolve_asset_graph()


def test_settings_reach_the_asset_specs_and_table_settings_win(tmp_path: Path) -> None:
    g = graph(orch_project(tmp_path))
    orders, accounts, totals = g.get(ORDERS), g.get(ACCOUNTS), g.get(TOTALS)

    # the pipeline's settings
    assert orders.automation_condition == AutomationCondition.on_missing()
    assert orders.owners == ["data@example.com"]
    assert orders.tags["domain"] == "crm" and orders.tags["tier"] == "bronze"
    assert orders.kinds == {"dlt", "duckdb", "api"}
    assert orders.group_name == "ingest"
    assert AssetKey(["upstream", "crm_export"]) in orders.parent_keys
    policy = orders.freshness_policy
    assert isinstance(policy, TimeWindowFreshnessPolicy)
    assert policy.fail_window.to_timedelta() == timedelta(hours=24)
    assert policy.warn_window is not None
    assert policy.warn_window.to_timedelta() == timedelta(hours=12)

    # the table's entry wins key by key; tags merge; unset keys stay the pipeline's
    assert accounts.automation_condition == AutomationCondition.on_cron(
        "0 6 * * *", "Europe/Berlin"
    )
    assert accounts.owners == ["team:sales"]
    assert accounts.tags["tier"] == "gold" and accounts.tags["domain"] == "crm"
    assert accounts.kinds == {"dlt", "duckdb", "api"}
    assert accounts.description == "CRM accounts"
    assert accounts.group_name == "ingest"
    assert accounts.freshness_policy.fail_window.to_timedelta() == timedelta(days=2)
    assert accounts.freshness_policy.warn_window is None

    # a transformation's settings
    assert totals.automation_condition == AutomationCondition.eager()
    assert totals.owners == ["team:analytics"]
    assert totals.description == "Totals per account"
    assert set(totals.parent_keys) == {ACCOUNTS, ORDERS}

    # an entity without settings keeps the defaults
    things = g.get(THINGS)
    assert things.automation_condition is None and things.freshness_policy is None
    assert things.owners == [] and things.kinds == {"dlt", "duckdb"}


def test_settings_of_a_declared_table_nothing_writes(tmp_path: Path) -> None:
    """A table only the dataset declares (an observable external asset) takes them too."""
    yml = ORCH_YML.replace(
        "  reports:\n    destination: [warehouse]\n",
        "  reports:\n    destination: [warehouse]\n  legacy:\n    destination: [warehouse]\n"
        "    tables:\n      old_accounts: {owners: [a@b.co], kinds: [legacy], group: old,\n"
        "        automation_condition: {on_cron: '0 * * * *'}, freshness: {fail_after: 1d}}\n",
    )
    node = graph(orch_project(tmp_path, yml)).get(AssetKey(["legacy", "old_accounts"]))
    assert node.owners == ["a@b.co"] and node.group_name == "old"
    assert node.kinds == {"dlt", "duckdb", "legacy"}
    assert node.automation_condition == AutomationCondition.on_cron("0 * * * *", "UTC")
    assert node.freshness_policy.fail_window.to_timedelta() == timedelta(days=1)


def test_automation_sensor_requests_the_table_at_its_cron_tick(
    tmp_path: Path, instance: DagsterInstance
) -> None:
    """Declarative automation runs the project without jobs: the tick after 06:00 Berlin
    requests `accounts` (`on_cron`) and nothing else; a run of it loads the table; a later tick
    the same day requests nothing. (Dagster's `eager`/`on_missing` fire on assets that become
    missing after the condition's first evaluation, so a fresh instance shows nothing for them.)"""
    root = orch_project(tmp_path, ORCH_YML.replace("    deps: [upstream/crm_export]\n", ""))
    defs = build_definitions(str(root), "dev")
    at = lambda h, m: datetime(2026, 1, 5, h, m, tzinfo=ZoneInfo("Europe/Berlin"))
    before = evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=at(5, 59))
    assert before.total_requested == 0
    tick = evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=before.cursor, evaluation_time=at(6, 1)
    )
    assert tick.get_num_requested(ACCOUNTS) == 1
    assert tick.total_requested == 1

    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=instance, asset_selection=[ACCOUNTS]).success
    assert rows(root, "SELECT COUNT(*) FROM crm_raw.accounts") == [(2,)]
    later = evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=tick.cursor, evaluation_time=at(6, 30)
    )
    assert later.get_num_requested(ACCOUNTS) == 0


BAD = [
    ("automation_condition: sometimes", "other_pipeline.automation_condition",
     "expected one of 'eager', 'on_missing' or a mapping"),
    ("automation_condition: {on_cron: '61 * * * *'}",
     "other_pipeline.automation_condition.on_cron", "bad minute field"),
    ("automation_condition: {on_cron: '0 6 * * *', timezone: Mars/Olympus}",
     "other_pipeline.automation_condition.timezone", "unknown timezone"),
    ("owners: [bob]", "other_pipeline.owners.0", "must be an email address or a team name"),
    ("tags: {'bad key!': x}", "other_pipeline.tags.bad key!", "tag key"),
    ("tags: {tier: 'two words'}", "other_pipeline.tags.tier", "tag value"),
    ("kinds: ['no spaces']", "other_pipeline.kinds.0", "kind 'no spaces'"),
    ("freshness: {fail_after: 1 day}", "other_pipeline.freshness.fail_after", "not a duration"),
    ("freshness: {fail_after: 12h, warn_after: 1d}", "other_pipeline.freshness.warn_after",
     "must be shorter than fail_after"),
    ("freshness: {fail_after: 30s}", "other_pipeline.freshness.fail_after", "at least 1m"),
    ("freshness: {warn_after: 1h}", "other_pipeline.freshness.fail_after", "is required"),
    ("deps: ['crm//accounts']", "other_pipeline.deps.0", "is not an asset key"),
    ("owner: [a@b.co]", "other_pipeline.owner", "unknown key"),
]


@pytest.mark.parametrize(("line", "where", "expected"), BAD)
def test_bad_settings_name_file_line_and_key(
    tmp_path: Path, line: str, where: str, expected: str
) -> None:
    yml = ORCH_YML.replace("    dataset_name: other_raw\n", f"    dataset_name: other_raw\n    {line}\n")
    root = orch_project(tmp_path, yml)
    line_no = yml.lstrip("\n").splitlines().index(f"    {line}") + 1
    with pytest.raises(ProjectError) as e:
        build_definitions(str(root), "dev")
    text = str(e.value)
    assert f"dlt.yml:{line_no}" in text, text
    assert where in text and expected in text, text


def test_a_table_entry_is_checked_too(tmp_path: Path) -> None:
    yml = ORCH_YML.replace("owners: [\"team:sales\"]", "owners: [\"team:\"]")
    with pytest.raises(ProjectError, match=r"datasets\.crm_raw\.tables\.accounts\.owners\.0"):
        load_project(str(orch_project(tmp_path, yml)), "dev")


@pytest.mark.parametrize(
    "owner", ["a@b.co", "first.last+x@sub.example.org", "team:x", "team:", "bob", "a@b", "@b.co"]
)
def test_owner_rule_is_dagsters(owner: str) -> None:
    problems = list(orchestration_problems(OrchestrationKeys(owners=[owner])))
    assert (not problems) == is_valid_owner(owner)


@pytest.mark.parametrize(
    ("key", "value"),
    [("tier", "gold"), ("ns/tier", "a.b-c_d"), ("a/b/c", "x"), ("x" * 64, "v"), ("k", "x" * 64),
     ("k", ""), ("k", "a b"), ("", "v"), ("dagster/kind/x", "")],
)
def test_tag_rule_is_dagsters(key: str, value: str) -> None:
    problems = list(orchestration_problems(OrchestrationKeys(tags={key: value})))
    dagster_ok = is_valid_tag_key(key) and is_valid_strict_tag_value(value)
    if key.startswith("dagster/kind/"):  # Dagster's kinds namespace: use `kinds` for those
        assert problems
        return
    assert (not problems) == dagster_ok


# --- code versions ---------------------------------------------------------------------------


def code_versions(root: Path) -> dict[AssetKey, str | None]:
    g = graph(root)
    return {k: g.get(k).code_version for k in (ACCOUNTS, ORDERS, TOTALS, THINGS)}


def test_code_version_follows_the_entry_and_the_code(tmp_path: Path) -> None:
    root = orch_project(tmp_path)
    first = code_versions(root)
    assert all(first.values())
    assert first[ACCOUNTS] == first[ORDERS]  # one pipeline, one code version
    assert len({first[ORDERS], first[TOTALS], first[THINGS]}) == 3
    assert code_versions(root) == first  # stable

    dlt_yml = root / "dlt.yml"
    original = dlt_yml.read_text()
    # orchestration-only keys and other entities' entries change nothing
    dlt_yml.write_text(original.replace("group: ingest", "group: crm_ingest")
                       .replace("owners: [data@example.com]", "owners: [ops@example.com]"))
    assert code_versions(root) == first

    # the pipeline's entry (its source's entry counts too)
    dlt_yml.write_text(original.replace("dataset_name: crm_raw", "dataset_name: crm_raw\n"
                                        "    write_disposition: append"))
    changed = code_versions(root)
    assert changed[ORDERS] != first[ORDERS]
    assert {changed[k] for k in (TOTALS, THINGS)} == {first[TOTALS], first[THINGS]}

    # the transformation's SQL
    dlt_yml.write_text(original.replace("SUM(o.amount) AS total", "MAX(o.amount) AS total"))
    changed = code_versions(root)
    assert changed[TOTALS] != first[TOTALS]
    assert changed[ORDERS] == first[ORDERS]
    dlt_yml.write_text(original)

    # the source module's code: only its pipeline's tables
    crm = root / "sources" / "crm.py"
    crm.write_text(crm.read_text().replace("10.5", "11.5"))
    changed = code_versions(root)
    assert changed[ORDERS] != first[ORDERS] and changed[ACCOUNTS] == changed[ORDERS]
    assert changed[THINGS] == first[THINGS] and changed[TOTALS] == first[TOTALS]


def test_code_version_of_a_python_transformation_follows_its_module(tmp_path: Path) -> None:
    yml = ORCH_YML + """
  copy_accounts:
    function: copies.copy_accounts
    inputs: [crm_raw]
    output: reports
    tables: [accounts_copy]
"""
    root = orch_project(tmp_path, yml)
    module = root / "transformations" / "copies.py"
    module.parent.mkdir()
    module.write_text("def copy_accounts(ds):\n    return {'accounts_copy': ds['accounts'].arrow()}\n")
    (root / "transformations" / "__init__.py").write_text("")
    key = AssetKey(["reports", "accounts_copy"])
    before = graph(root).get(key).code_version
    module.write_text(module.read_text() + "# reviewed\n")
    assert graph(root).get(key).code_version != before


def test_code_version_shows_in_the_materialization(
    tmp_path: Path, instance: DagsterInstance
) -> None:
    root = orch_project(tmp_path)
    defs = build_definitions(str(root), "dev")
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=instance, asset_selection=[ORDERS, ACCOUNTS]).success
    record = instance.get_latest_materialization_event(ORDERS)
    assert record is not None
    version = defs.resolve_asset_graph().get(ORDERS).code_version
    assert record.tags is not None
    assert record.tags.get("dagster/code_version") == version
    assert re.fullmatch(r"[0-9a-f]{16}", version or "")
