"""A small project for the orchestration tests: a `crm` source (accounts, orders) loaded into
`crm_raw` and a SQL transformation into `reports`, all on one local DuckDB file.

Setting the env var `CRM_REGION` adds a `region` column to `accounts` (a schema change)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
from helpers import make_project

CRM_SOURCE = '''
import os

import dlt


@dlt.source
def crm():
    @dlt.resource(primary_key="id", write_disposition="replace")
    def accounts():
        region = os.environ.get("CRM_REGION")
        for i, name in ((1, "acme"), (2, "globex")):
            row = {"id": i, "name": name}
            if region:
                row["region"] = region
            yield row

    @dlt.resource(write_disposition="append")
    def orders():
        yield [{"order_id": 1, "account_id": 1, "amount": 10.5},
               {"order_id": 2, "account_id": 1, "amount": 4.5},
               {"order_id": 3, "account_id": 2, "amount": 7.0}]

    return accounts, orders
'''

OTHER_SOURCE = '''
import dlt


@dlt.source
def other():
    @dlt.resource
    def things():
        yield {"x": 1}

    return things
'''

ORCH_YML = """
project: {name: orch_demo}
sources:
  crm: {type: crm.crm}
  other: {type: other.other}
destinations:
  warehouse: {type: duckdb, credentials: "{data_dir}/warehouse.duckdb"}
datasets:
  crm_raw:
    destination: [warehouse]
    tables:
      accounts:
        owners: ["team:sales"]
        automation_condition: {on_cron: "0 6 * * *", timezone: Europe/Berlin}
        tags: {tier: gold}
        freshness: {fail_after: 2d}
        description: CRM accounts
  reports:
    destination: [warehouse]
pipelines:
  crm_pipeline:
    source: crm
    destination: warehouse
    dataset_name: crm_raw
    automation_condition: on_missing
    owners: [data@example.com]
    tags: {domain: crm, tier: bronze}
    kinds: [api]
    group: ingest
    freshness: {fail_after: 24h, warn_after: 12h}
    deps: [upstream/crm_export]
  other_pipeline:
    source: other
    destination: warehouse
    dataset_name: other_raw
transformations:
  account_totals:
    sql:
      account_totals: >-
        SELECT a.id AS account_id, a.name AS account_name, SUM(o.amount) AS total
        FROM accounts AS a JOIN orders AS o ON o.account_id = a.id GROUP BY a.id, a.name
    inputs: [crm_raw]
    output: reports
    depends_on: [crm_raw/accounts, crm_raw/orders]
    automation_condition: eager
    owners: ["team:analytics"]
    description: Totals per account
"""


def orch_project(tmp_path: Path, yml: str = ORCH_YML) -> Path:
    """The project under `tmp_path/project`."""
    return make_project(
        tmp_path, yml, {"sources/crm.py": CRM_SOURCE, "sources/other.py": OTHER_SOURCE}
    )


def rows(root: Path, sql: str) -> list[tuple[Any, ...]]:
    """`sql` on the project's DuckDB file (`dev` profile), read-only."""
    con = duckdb.connect(str(root / "_data" / "dev" / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
