"""Column lineage of a SQL transformation: which input columns feed each output column.

dlt qualifies the query against the dataset's schemas (`dlt.dataset.lineage`, on sqlglot:
stars expanded, every column tied to its table), then sqlglot's `lineage` follows each output
column through CTEs and subqueries down to the tables it reads. Output columns computed from no
column (a constant) have no inputs. It needs the input tables' schemas, so it runs after a
materialization, not at definitions load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from dltplus_dagster.project.dataset import Dataset

ColumnLineage = dict[str, list[tuple[str, str]]]
"""Output column -> sorted (input table, input column) pairs."""


def sql_column_lineage(dataset: Dataset, sql: str) -> ColumnLineage:
    """The lineage of `sql` over `dataset`; raises dlt's `LineageFailedException` (or a sqlglot
    error) when the query cannot be resolved against the dataset's schemas."""
    from dlt.dataset.lineage import compute_columns_schema
    from sqlglot import exp
    from sqlglot.lineage import lineage
    from sqlglot.optimizer.scope import build_scope

    dlt_dataset = dataset.dlt_dataset
    schema = dlt_dataset.sqlglot_schema
    dialect = dlt_dataset.destination_dialect
    _, qualified = compute_columns_schema(
        # dlt types its argument with its own sqlglot stubs' Expression: a Query is one
        cast("Any", dataset.query(sql).sqlglot_expression), schema, dialect,
        infer_sqlglot_schema=False, allow_partial=False,
    )
    assert qualified is not None  # allow_partial=False raises instead
    # dlt qualified the query already, keeping the case of its names: sqlglot gets its scope
    # as is (qualifying again would fold `Total` to `total` and miss it)
    nodes = lineage(None, qualified, schema=schema, dialect=dialect, scope=build_scope(qualified))
    return {
        name: sorted({
            (leaf.source.name, leaf.name.split(".")[-1])
            for leaf in node.walk()
            if not leaf.downstream and isinstance(leaf.source, exp.Table)
        })
        for name, node in nodes.items()
    }
