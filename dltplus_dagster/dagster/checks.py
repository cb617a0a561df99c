"""Asset checks declared in the manifest (`datasets.<ds>.tables.<t>.checks`)."""

from __future__ import annotations

from collections.abc import Iterator

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey

from dltplus_dagster.project.catalog import Dataset
from dltplus_dagster.project.model import TableCheck


def check_specs(key: AssetKey, checks: TableCheck) -> list[AssetCheckSpec]:
    specs = []
    if checks.not_empty:
        specs.append(AssetCheckSpec("not_empty", asset=key, description="table has rows"))
    if checks.unique:
        specs.append(
            AssetCheckSpec(
                "unique", asset=key, description=f"no duplicates of ({', '.join(checks.unique)})"
            )
        )
    if checks.not_null:
        specs.append(
            AssetCheckSpec(
                "not_null", asset=key, description=f"no nulls in {', '.join(checks.not_null)}"
            )
        )
    return specs


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def run_checks(
    key: AssetKey, dataset: Dataset, table: str, checks: TableCheck, row_count: int
) -> Iterator[AssetCheckResult]:
    """Evaluate the declared checks of one table after it was materialized."""
    if checks.not_empty:
        yield AssetCheckResult(
            asset_key=key,
            check_name="not_empty",
            passed=row_count > 0,
            metadata={"row_count": row_count},
            severity=AssetCheckSeverity.ERROR,
        )
    t = _ident(table)
    if checks.unique:
        cols = ", ".join(_ident(c) for c in checks.unique)
        sql = (
            f"SELECT COUNT(*) FROM (SELECT {cols} FROM {t} GROUP BY {cols} "
            "HAVING COUNT(*) > 1) AS dups"
        )
        # no rows (the table may not even exist yet): nothing can be duplicated
        dups = int(dataset.query(sql).fetchall()[0][0]) if row_count else 0
        yield AssetCheckResult(
            asset_key=key,
            check_name="unique",
            passed=dups == 0,
            metadata={"duplicate_keys": dups, "columns": ", ".join(checks.unique)},
        )
    if checks.not_null:
        cond = " OR ".join(f"{_ident(c)} IS NULL" for c in checks.not_null)
        nulls = (
            int(dataset.query(f"SELECT COUNT(*) FROM {t} WHERE {cond}").fetchall()[0][0])
            if row_count
            else 0
        )
        yield AssetCheckResult(
            asset_key=key,
            check_name="not_null",
            passed=nulls == 0,
            metadata={"rows_with_nulls": nulls},
        )
