"""The package calls no deprecated Dagster or dlt API (`context.run_id`,
`InitResourceContext.dagster_run`, dlt's `fetch_arrow_table`, ...): a deprecation warning
attributed to a file of `dltplus_dagster` fails. (`pyproject.toml` also turns such warnings into
errors for the whole suite; this test records them, so it names every offending line.)"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import yaml
from dagster import AssetIn, DagsterInstance, Definitions, asset
from dagster_support import EXAMPLE_KEYS, ORDERS, PROFILE, materializations, run_assets

import dltplus_dagster
from dltplus_dagster import build_definitions, current
from dltplus_dagster.cli import main

PACKAGE_DIR = str(Path(dltplus_dagster.__file__).resolve().parent)


def _ours(caught: list[warnings.WarningMessage]) -> list[str]:
    return [
        f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}"
        for w in caught
        if issubclass(w.category, DeprecationWarning)
        and str(Path(w.filename).resolve()).startswith(PACKAGE_DIR)
    ]


def test_no_deprecation_warning_from_the_package(
    shop_project: Path, instance: DagsterInstance
) -> None:
    doc = yaml.safe_load((shop_project / "dlt.yml").read_text(encoding="utf-8"))
    doc["datasets"]["shop_raw"]["tables"]["legacy_accounts"] = {}  # an observable table too
    (shop_project / "dlt.yml").write_text(yaml.safe_dump(doc), encoding="utf-8")

    @asset(ins={"orders": AssetIn(key=ORDERS)}, io_manager_key="dlt_dataset_io",
           metadata={"dataset": "shop_reports"})
    def big_orders(orders: pd.DataFrame) -> pd.DataFrame:
        return orders[orders["amount"] > 20]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        defs = Definitions.merge(
            build_definitions(str(shop_project), PROFILE), Definitions([big_orders])
        )
        run = run_assets(defs, instance, run_config={"ops": {"dlt_pipeline_shop_pipeline": {
            "config": {"limit": 1, "refresh": "drop_sources"}}}})
        assert run.success
        assert set(materializations(run)) == EXAMPLE_KEYS | {big_orders.key}
        assert current.catalog(str(shop_project), PROFILE).dataset("shop_raw").table(
            "orders").arrow().num_rows == 40
        assert main(["--project", str(shop_project), "pipeline", "--profile", PROFILE,
                     "stores_pipeline", "run", "--progress", "log"]) == 0
    assert _ours(caught) == []
    assert caught  # the recorder works: Dagster warns about its beta APIs meanwhile
