"""The repo's code location (definitions.py) through the real `dagster` CLI and webserver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient
from dagster_support import PROFILE, SECRET, duckdb_query, duckdb_tables
from helpers import REPO, copy_example, free_port, no_daemon_dagster_home
from helpers import webserver as start_webserver

BIN = Path(sys.executable).parent
DEFINITIONS = REPO / "definitions.py"
EXAMPLE_TABLES = {
    "shop_raw.orders",
    "shop_raw.customers",
    "shop_raw.products",
    "shop_raw.stores",
    "shop_reports.customer_totals",
}
EXAMPLE_KEYS = {
    ("shop_raw", "orders"),
    ("shop_raw", "customers"),
    ("shop_raw", "products"),
    ("shop_raw", "stores"),
    ("shop_reports", "customer_totals"),
}


def dagster_env(project: Path, home: Path) -> dict[str, str]:
    no_daemon_dagster_home(home)  # runs launched from the webserver need no daemon
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env.update(
        DAGSTER_HOME=str(home),
        DLT_PROJECT_DIR=str(project),
        WORKSPACE__PROFILE=PROFILE,
        PYTHONUNBUFFERED="1",
    )
    return env


# --- dagster asset materialize -----------------------------------------------------------


def test_cli_materializes_everything(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop_project")
    env = dagster_env(project, tmp_path / "dagster_home")
    proc = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-f", str(DEFINITIONS), "--select", "*"],
        check=False,
        env=env,
        cwd=tmp_path,  # not the repo, not the project: DLT_PROJECT_DIR says where it is
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "RUN_SUCCESS" in output
    assert SECRET not in output
    assert EXAMPLE_TABLES <= duckdb_tables(project)
    assert duckdb_query(project, "SELECT COUNT(*) FROM shop_raw.orders") == [(40,)]
    assert duckdb_query(project, "SELECT COUNT(*) FROM shop_reports.customer_totals") == [(10,)]
    # the user asset of definitions.py (as the README shows it): orders over 50, read from the
    # pipeline table and written back through the project's IO manager
    big = duckdb_query(project, "SELECT COUNT(*) FROM shop_raw.orders WHERE amount > 50")
    assert big[0][0] > 0
    assert duckdb_query(project, "SELECT COUNT(*) FROM shop_reports.big_orders") == big
    # the tests profile was used, not dev
    assert not (project / "_data" / "dev" / "local" / "warehouse.duckdb").exists()


# --- dagster-webserver -------------------------------------------------------------------


@dataclass
class Server:
    port: int
    project: Path
    log: Path
    responses: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """A raw GraphQL POST; every response text is kept for the secret scan."""
        resp = requests.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            timeout=60,
        )
        self.responses.append(resp.text)
        assert resp.ok, resp.text[:2000]
        body = resp.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]


@pytest.fixture()
def webserver(tmp_path: Path) -> Iterator[Server]:
    project = copy_example(tmp_path / "shop_project")
    env = dagster_env(project, tmp_path / "dagster_home")
    server = Server(free_port(), project, tmp_path / "webserver.log")
    with start_webserver(
        DEFINITIONS, port=server.port, env=env, cwd=tmp_path, log_path=server.log,
        ready=lambda: requests.get(f"{server.url}/server_info", timeout=2).ok,
    ):
        yield server


REPOSITORIES = """
query {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } } }
    ... on PythonError { message }
  }
}
"""

METADATA = """
fragment md on MetadataEntry {
  __typename label description
  ... on TextMetadataEntry { text }
  ... on IntMetadataEntry { intValue }
  ... on FloatMetadataEntry { floatValue }
  ... on JsonMetadataEntry { jsonString }
  ... on TableSchemaMetadataEntry { schema { columns { name type description } } }
}
"""

ASSET_NODES = METADATA + """
query {
  assetNodes {
    assetKey { path }
    groupName
    description
    kinds
    jobNames
    isObservable
    isMaterializable
    dependencyKeys { path }
    metadataEntries { ...md }
    assetMaterializations(limit: 1) { runId metadataEntries { ...md } }
  }
}
"""

RUN_LOGS = METADATA + """
query Logs($runId: ID!, $after: String) {
  logsForRun(runId: $runId, afterCursor: $after) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MessageEvent { message level stepKey }
        ... on MaterializationEvent { assetKey { path } metadataEntries { ...md } }
        ... on ObservationEvent { assetKey { path } metadataEntries { ...md } }
        ... on ExecutionStepFailureEvent { error { message stack } }
      }
    }
    ... on PythonError { message }
  }
}
"""


def wait_for_location(server: Server, timeout: float = 90) -> tuple[str, str]:
    """(location name, repository name) once the code location has loaded."""
    deadline = time.monotonic() + timeout
    while True:
        data = server.graphql(REPOSITORIES)["repositoriesOrError"]
        if data["__typename"] == "RepositoryConnection" and data["nodes"]:
            node = data["nodes"][0]
            return node["location"]["name"], node["name"]
        assert time.monotonic() < deadline, (data, server.log.read_text()[-4000:])
        time.sleep(1)


def run_events(server: Server, run_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        conn = server.graphql(RUN_LOGS, {"runId": run_id, "after": cursor})["logsForRun"]
        assert conn["__typename"] == "EventConnection", conn
        events.extend(conn["events"])
        cursor = conn["cursor"]
        if not conn["hasMore"]:
            return events


def test_webserver_asset_graph_and_daily_refresh_run(webserver: Server) -> None:
    location, repository = wait_for_location(webserver)
    assert repository == "__repository__"

    nodes = {tuple(n["assetKey"]["path"]): n for n in webserver.graphql(ASSET_NODES)["assetNodes"]}
    # the project's tables and the user asset definitions.py adds, which reads shop_raw/orders
    assert set(nodes) == EXAMPLE_KEYS | {("shop_reports", "big_orders")}
    assert {tuple(d["path"]) for d in nodes[("shop_reports", "big_orders")][
        "dependencyKeys"]} == {("shop_raw", "orders")}
    assert nodes[("shop_raw", "orders")]["groupName"] == "shop_pipeline"
    assert set(nodes[("shop_raw", "orders")]["kinds"]) == {"dlt", "duckdb"}
    assert "daily_refresh" in nodes[("shop_raw", "orders")]["jobNames"]
    assert {tuple(d["path"]) for d in nodes[("shop_reports", "customer_totals")][
        "dependencyKeys"]} == {("shop_raw", "customers"), ("shop_raw", "orders")}

    client = DagsterGraphQLClient("127.0.0.1", port_number=webserver.port)
    run_id = client.submit_job_execution(
        "daily_refresh", repository_location_name=location, repository_name=repository
    )
    deadline = time.monotonic() + 120
    status = client.get_run_status(run_id)
    while status not in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE,
                         DagsterRunStatus.CANCELED):
        assert time.monotonic() < deadline, f"run still {status}"
        time.sleep(1)
        status = client.get_run_status(run_id)
    events = run_events(webserver, run_id)
    failures = [e for e in events if e["__typename"] == "ExecutionStepFailureEvent"]
    assert status == DagsterRunStatus.SUCCESS, json.dumps(failures or events[-10:], indent=1)

    materialized = {
        tuple(e["assetKey"]["path"]): {m["label"]: m for m in e["metadataEntries"]}
        for e in events
        if e["__typename"] == "MaterializationEvent"
    }
    assert set(materialized) == EXAMPLE_KEYS
    orders_md = materialized[("shop_raw", "orders")]
    assert orders_md["dagster/row_count"]["intValue"] == 40
    assert orders_md["dagster/table_name"]["text"] == "warehouse.shop_raw.orders"
    assert EXAMPLE_TABLES <= duckdb_tables(webserver.project)

    # the asset nodes now carry the materialization metadata
    after = {tuple(n["assetKey"]["path"]): n for n in webserver.graphql(ASSET_NODES)["assetNodes"]}
    for key in EXAMPLE_KEYS:
        assert after[key]["assetMaterializations"][0]["runId"] == run_id

    # the planted secret appears in no response: asset nodes, metadata, run logs
    assert len(webserver.responses) >= 4
    for text in webserver.responses:
        assert SECRET not in text
    assert SECRET not in webserver.log.read_text()
