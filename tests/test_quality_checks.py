"""Data-quality checks as the reference names them: `is_in`, `is_primary_key`, `row_count`,
`case`, severities, and the aliases `is_unique`/`is_not_null`, evaluated on real DuckDB and
PostgreSQL tables, as Dagster asset checks and by `dltplus dataset NAME check`.

Bad declarations are in `bad_manifests/4NN_*.yml` (run by test_bad_manifests.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster import AssetCheckSeverity, DagsterInstance
from dagster_support import CUSTOMERS, PROFILE, SECRET, md_value, run_assets
from helpers import REPO, clean_env, make_project, write
from pg import PgDatabase, pg_db, pg_server  # noqa: F401 - fixtures

from dltplus_dagster.project.catalog import Catalog
from dltplus_dagster.project.checks import (
    check_dataset,
    dataset_check_report,
    run_table_checks,
)
from dltplus_dagster.project.errors import ManifestError
from dltplus_dagster.project.project import load_project

INJECTION = "x'); DROP TABLE t; --"

# a table another tool wrote: names dlt would never produce (quote, space, unicode)
ODD_TABLE = '''
CREATE SCHEMA shop;
CREATE TABLE shop.odd ("it's ""odd""" INTEGER, "with space" TEXT, "prix€" DOUBLE, t TEXT);
INSERT INTO shop.odd VALUES
  (1, 'emea', 10.0, 'x''); DROP TABLE t; --'),
  (2, 'amer', 5.5, 'ok'),
  (2, 'apac', -1.0, NULL),
  (NULL, NULL, 3.0, 'ok');
'''

ODD_YML = """
project: {name: checks_demo}
destinations:
  warehouse: {type: duckdb, credentials: "{data_dir}/warehouse.duckdb"}
datasets:
  shop:
    destination: [warehouse]
    tables:
      odd:
        checks:
          not_empty: true
          is_in:
            with space: [emea, amer, null]
            t: ["x'); DROP TABLE t; --", ok]
          is_primary_key: ["it's \\"odd\\""]
          is_unique: ["with space"]
          is_not_null: [t]
          row_count: {min: 1, max: 3}
          case: ['"prix€" >= 0', "\\"prix€\\" < 100 -- a trailing comment"]
          severity: {row_count: warn, is_unique: warn}
"""


def _odd_project(tmp_path: Path) -> Path:
    root = make_project(tmp_path, ODD_YML)
    db = root / "_data" / "dev" / "warehouse.duckdb"
    db.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db))
    con.execute(ODD_TABLE)
    con.close()
    return root


def edit_manifest_text(root: Path, edit: Any) -> None:
    path = root / "dlt.yml"
    before = path.read_text(encoding="utf-8")
    after = edit(before)
    assert after != before, "the edit changed nothing"
    path.write_text(after, encoding="utf-8")


def _catalog(root: Path, profile: str | None = None) -> Catalog:
    project = load_project(str(root), profile)
    return Catalog.for_project(project)


def _by_name(results: list[Any]) -> dict[str, Any]:
    return {r.check: r for r in results}


def test_reference_checks_on_hostile_names_and_values(tmp_path: Path) -> None:
    root = _odd_project(tmp_path)
    results = _by_name(check_dataset(_catalog(root).dataset("shop")))

    assert list(results) == [
        "not_empty", "unique", "not_null", "is_in", "is_primary_key", "row_count",
        "case_1", "case_2",
    ]
    assert results["not_empty"].passed
    # is_in: 'apac' is not accepted; null is accepted for `with space` but not for `t`; the
    # injection string is a value like any other (it is in the data and accepted)
    is_in = results["is_in"]
    assert not is_in.passed and is_in.severity == "error"
    assert is_in.failing_rows == 1
    assert is_in.details["failing_rows_by_column"] == {"with space": 1, "t": 1}
    assert is_in.sample == [{"with space": "apac", "t": None}]
    # is_primary_key: one null key and two rows sharing key 2
    pk = results["is_primary_key"]
    assert not pk.passed and pk.failing_rows == 3
    assert pk.details == {"rows_with_nulls": 1, "duplicate_keys": 1, "duplicate_rows": 2}
    # is_unique (alias of unique) on a column whose values are all distinct; null is one group
    assert results["unique"].passed and results["unique"].severity == "warn"
    # is_not_null (alias of not_null)
    assert results["not_null"].failing_rows == 1
    assert not results["row_count"].passed and results["row_count"].severity == "warn"
    assert results["row_count"].details == {"row_count": 4, "min": 1, "max": 3}
    # case: one negative price; a trailing `--` comment does not swallow the SQL around it
    assert results["case_1"].failing_rows == 1
    assert results["case_1"].sample == [{"prix€": -1.0}]
    assert results["case_2"].passed and results["case_2"].error is None

    con = duckdb.connect(str(root / "_data" / "dev" / "warehouse.duckdb"))
    assert con.execute("SELECT COUNT(*) FROM shop.odd").fetchone() == (4,)  # nothing dropped
    con.close()


def test_case_that_is_not_valid_sql_fails_the_check_with_the_database_message(
    tmp_path: Path,
) -> None:
    root = _odd_project(tmp_path)
    project = load_project(str(root))
    checks = project.datasets["shop"].tables["odd"].checks
    checks.case = ["t IS NOT NULL AND AND", "no_such_column > 1"]
    ds = Catalog.for_project(project).dataset("shop")
    results = _by_name(run_table_checks(ds, "odd", checks))

    bad = results["case_1"]
    assert not bad.passed and bad.failing_rows is None
    assert "syntax error" in bad.error.lower(), bad.error
    assert "no_such_column" in results["case_2"].error
    assert results["not_empty"].passed  # the other checks still ran
    assert results["is_in"].failing_rows == 1


def test_column_the_table_does_not_have_is_a_clear_failing_result(tmp_path: Path) -> None:
    root = make_project(tmp_path, """
        project: {name: checks_demo}
        destinations:
          warehouse: {type: duckdb, credentials: "{data_dir}/warehouse.duckdb"}
        datasets:
          shop:
            destination: [warehouse]
            tables:
              customers:
                checks:
                  is_in: {region: [emea], Customer ID: [1, 2]}
                  not_null: [customer_id]
    """)
    ds = _catalog(root).dataset("shop")
    ds.save([{"customer_id": 1, "name": "a"}, {"customer_id": 3, "name": "b"}], "customers")
    ds.refresh()
    results = _by_name(check_dataset(ds))
    assert results["not_null"].passed
    is_in = results["is_in"]
    assert not is_in.passed
    assert is_in.error == (
        "column 'region' is not in table 'customers'; its columns: customer_id, name"
    )


def test_declared_column_in_dlt_naming_finds_the_normalized_column(tmp_path: Path) -> None:
    root = make_project(tmp_path, """
        project: {name: checks_demo}
        destinations:
          warehouse: {type: duckdb, credentials: "{data_dir}/warehouse.duckdb"}
        datasets:
          shop:
            destination: [warehouse]
            tables:
              customers:
                checks: {is_in: {Customer ID: [1, 2]}}
              Orders:
                checks: {not_empty: true}
    """)
    ds = _catalog(root).dataset("shop")
    ds.save([{"Customer ID": 1}, {"Customer ID": 3}], "customers")
    ds.save([{"id": 1}], "orders")
    ds.refresh()
    result, declared_in_other_case = check_dataset(ds)
    assert result.error is None and result.failing_rows == 1
    assert result.sample == [{"Customer ID": 3}]
    # a table declared as `Orders` is dlt's `orders`
    assert declared_in_other_case.table == "Orders" and declared_in_other_case.passed


def test_checks_of_a_table_not_loaded_yet_create_no_database(tmp_path: Path) -> None:
    root = make_project(tmp_path, ODD_YML)
    results = _by_name(check_dataset(_catalog(root).dataset("shop")))
    assert not results["not_empty"].passed
    assert results["is_in"].passed and results["is_in"].failing_rows == 0
    assert not (root / "_data" / "dev" / "warehouse.duckdb").exists()


def test_aliases_and_severity_are_read_from_the_manifest(tmp_path: Path) -> None:
    root = make_project(tmp_path, """
        datasets:
          raw:
            tables:
              t:
                checks:
                  unique: [a]
                  is_unique: [b, a]
                  is_not_null: [c]
                  severity: {is_unique: warn}
    """)
    from dltplus_dagster.project.checks import plan_checks

    checks = load_project(str(root)).datasets["raw"].tables["t"].checks
    planned = {p.name: p for p in plan_checks(checks)}
    assert planned["unique"].columns == ("a", "b") and planned["unique"].severity == "warn"
    assert planned["not_null"].columns == ("c",) and planned["not_null"].severity == "error"


def test_bad_declaration_names_file_line_and_key(tmp_path: Path) -> None:
    root = make_project(tmp_path, """
        datasets:
          raw:
            tables:
              t:
                checks:
                  row_count: {min: 5, max: 2}
    """)
    with pytest.raises(ManifestError) as exc:
        load_project(str(root))
    assert str(exc.value).endswith(
        "dlt.yml:6: datasets.raw.tables.t.checks.row_count: min (5) is greater than max (2)"
    )


# --- the CLI ------------------------------------------------------------------------------


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dltplus_dagster.cli", "--project", str(root), *args],
        check=False, capture_output=True, text=True, env=clean_env(), cwd=REPO, timeout=300,
    )


def test_cli_dataset_check_prints_the_table_and_exits_1_on_an_error_check(
    tmp_path: Path,
) -> None:
    root = _odd_project(tmp_path)
    # a secret of the project stored as data: the sample never shows it
    write(root / ".dlt" / "secrets.toml", f'[sources.x]\napi_key = "{SECRET}"\n')
    con = duckdb.connect(str(root / "_data" / "dev" / "warehouse.duckdb"))
    con.execute("UPDATE shop.odd SET \"with space\" = ? WHERE \"with space\" = 'apac'", [SECRET])
    con.close()

    done = _cli(root, "dataset", "shop", "check")
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["table", "check", "severity", "passed", "failing", "rows",
                                "details"]
    rows = {tuple(line.split()[:5]) for line in lines[2:]}
    assert ("odd", "is_in", "error", "NO", "1") in rows
    assert ("odd", "row_count", "warn", "NO", "-") in rows
    assert ("odd", "unique", "warn", "yes", "0") in rows
    assert ("odd", "is_primary_key", "error", "NO", "3") in rows
    # column names and severities of `is_primary_key` are no secrets (the key ends in `_key`)
    assert "(it's \"odd\"=None)" in done.stdout
    assert "8 check(s) on dataset shop" in done.stdout
    assert SECRET not in done.stdout + done.stderr
    assert "***" in done.stdout
    assert "Traceback" not in done.stderr


def test_cli_dataset_check_exits_0_when_only_warn_checks_fail(tmp_path: Path) -> None:
    root = _odd_project(tmp_path)
    edit_manifest_text(root, lambda text: text.replace(
        "severity: {row_count: warn, is_unique: warn}",
        "severity: {row_count: warn, is_unique: warn, is_in: warn, is_primary_key: warn, "
        "not_null: warn, case: warn}",
    ))
    done = _cli(root, "dataset", "shop", "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed, 0 failed, 5 warning(s)" in done.stdout

    only = _cli(root, "dataset", "shop", "check", "--tables", "nope")
    assert only.returncode == 1
    assert only.stderr.startswith("Error: Dataset 'shop' has no table 'nope'")


def test_cli_dataset_check_refuses_a_bad_declaration(tmp_path: Path) -> None:
    root = _odd_project(tmp_path)
    edit_manifest_text(root, lambda text: text.replace("{min: 1, max: 3}", "{min: -1}"))
    done = _cli(root, "dataset", "shop", "check")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"Error: {root / 'dlt.yml'}:17: datasets.shop.tables.odd.checks.row_count.min: "
        "must not be negative, got -1"
    )
    assert done.stdout == ""


# --- Dagster --------------------------------------------------------------------------------


def test_reference_checks_run_as_dagster_asset_checks(
    shop_project: Path, instance: DagsterInstance
) -> None:
    from dltplus_dagster.dagster.definitions import build_definitions

    edit_manifest_text(shop_project, lambda text: text.replace(
        "checks: {not_empty: true, unique: [customer_id]}",
        "checks: {is_in: {city: [Berlin, Lisbon, Oslo]}, is_primary_key: [customer_id],"
        " row_count: {max: 5}, case: 'customer_id < 8', severity: {row_count: warn}}",
    ))
    # a secret that also occurs as data: failing samples show it masked
    with (shop_project / ".dlt" / "secrets.toml").open("a", encoding="utf-8") as f:
        f.write('\n[destinations.elsewhere]\npassword = "Vienna"\n')
    defs = build_definitions(str(shop_project), PROFILE)
    graph = defs.resolve_asset_graph()
    specs = {
        k.name: graph.get_check_spec(k) for k in graph.asset_check_keys if k.asset_key == CUSTOMERS
    }
    assert set(specs) == {"is_in", "is_primary_key", "row_count", "case", "dlt_schema_change"}
    assert "customer_id < 8" in (specs["case"].description or "")

    result = run_assets(defs, instance, [CUSTOMERS])
    assert result.success  # failing checks are reported, the step does not fail
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    # 10 customers over 5 cities: Porto and Vienna are 4 of them
    is_in = checks["is_in"]
    assert not is_in.passed and is_in.severity == AssetCheckSeverity.ERROR
    assert md_value(is_in.metadata, "failing_rows") == 4
    sample = md_value(is_in.metadata, "failing_sample")
    assert 1 <= len(sample) <= 5 and {r["city"] for r in sample} == {"Porto", "***"}
    assert checks["is_primary_key"].passed
    row_count = checks["row_count"]
    assert not row_count.passed and row_count.severity == AssetCheckSeverity.WARN
    assert md_value(row_count.metadata, "row_count") == 10
    case = checks["case"]
    assert md_value(case.metadata, "failing_rows") == 2
    assert sorted(r["customer_id"] for r in md_value(case.metadata, "failing_sample")) == [8, 9]
    assert "Vienna" not in str([e.metadata for e in checks.values()])


def test_invalid_case_sql_does_not_crash_the_dagster_run(
    shop_project: Path, instance: DagsterInstance
) -> None:
    from dltplus_dagster.dagster.definitions import build_definitions

    edit_manifest_text(shop_project, lambda text: text.replace(
        "checks: {not_empty: true, unique: [customer_id]}",
        "checks: {not_empty: true, case: 'customer_id <<>> 1'}",
    ))
    defs = build_definitions(str(shop_project), PROFILE)
    result = run_assets(defs, instance, [CUSTOMERS])
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["not_empty"].passed
    assert not checks["case"].passed
    assert "error" in checks["case"].metadata


# --- PostgreSQL -----------------------------------------------------------------------------


def test_checks_on_postgres_with_hostile_value(
    tmp_path: Path, pg_db: PgDatabase, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.setenv("CHECKS_PG_DSN", pg_db.dsn)
    root = make_project(tmp_path, """
        project: {name: checks_pg}
        destinations:
          warehouse: {type: postgres, credentials: "{env.CHECKS_PG_DSN}"}
        datasets:
          shop:
            destination: [warehouse]
            tables:
              regions:
                checks:
                  is_in: {name: ["x'); DROP TABLE t; --", emea]}
                  is_primary_key: [id]
                  case: "id > 0"
                  row_count: {min: 3}
    """)
    ds = _catalog(root).dataset("shop")
    ds.save([{"id": 1, "name": INJECTION}, {"id": 2, "name": "emea"}, {"id": 2, "name": "O'Hara"},
             {"id": -1, "name": "emea"}], "regions")
    ds.refresh()
    text, code = dataset_check_report(ds)
    assert code == 1
    results = _by_name(check_dataset(ds))
    assert results["is_in"].failing_rows == 1
    assert results["is_in"].sample == [{"name": "O'Hara"}]
    assert results["is_primary_key"].failing_rows == 2
    assert results["case"].failing_rows == 1
    assert results["row_count"].passed
    assert pg_db.count("shop", "regions") == 4
    assert "(destination warehouse)" in text and pg_db.dsn not in text
