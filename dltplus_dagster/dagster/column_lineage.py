"""`dagster/column_lineage` of SQL transformation tables, as dagster-dbt publishes for models.

The lineage comes from `project/sql_lineage.py` after the table is written; each input column
points at the asset key of the input table that holds it. A query dlt cannot resolve gets no
lineage (a warning in the log), never a failed materialization.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dagster import AssetKey, TableColumnDep, TableColumnLineage

from dltplus_dagster.project.catalog import Catalog
from dltplus_dagster.project.model import TransformationEntity

if TYPE_CHECKING:
    from dlt.common.normalizers.naming import NamingConvention

logger = logging.getLogger(__name__)

COLUMN_LINEAGE_KEY = "dagster/column_lineage"


def sql_lineage_metadata(
    catalog: Catalog,
    entity: TransformationEntity,
    table: str,
    naming: NamingConvention,
    input_key: Callable[[str, str], AssetKey],
) -> dict[str, Any]:
    """`{"dagster/column_lineage": ...}` for an output `table` of a SQL transformation; empty
    for a Python transformation or a query whose lineage cannot be computed."""
    sql = next((q for t, q in entity.sql.items() if naming.normalize_tables_path(t) == table), None)
    if sql is None or not entity.inputs:
        return {}
    from dltplus_dagster.project.sql_lineage import sql_column_lineage

    dataset = entity.inputs[0]  # a SQL transformation reads its one input dataset
    try:
        lineage = sql_column_lineage(catalog.dataset(dataset), sql)
    except Exception as e:  # noqa: BLE001 - lineage is extra: a query sqlglot cannot follow
        logger.warning("no column lineage for %s.%s: %s", entity.name, table, e)
        return {}
    deps_by_column = {
        naming.normalize_identifier(column): [
            TableColumnDep(asset_key=input_key(dataset, t), column_name=c) for t, c in inputs
        ]
        for column, inputs in lineage.items()
    }
    return {COLUMN_LINEAGE_KEY: TableColumnLineage(deps_by_column=deps_by_column)}
