"""DltProjectTranslator: how project tables become Dagster asset specs. Subclass to change it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from dagster import AssetKey, AssetSpec

from dltplus_dagster.dagster.orchestration import automation_condition, dep_keys, freshness_policy
from dltplus_dagster.project.names import dagster_name
from dltplus_dagster.project.orchestration import OrchestrationKeys

AssetKind = Literal["pipeline", "transformation", "external"]


@dataclass(frozen=True)
class TableAssetData:
    """Everything the translator knows about one table asset."""

    kind: AssetKind
    entity: str
    """Name of the pipeline or transformation (or the dataset, for external tables)."""
    dataset: str
    table: str
    destination: str
    destination_type: str
    description: str | None = None
    group: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    deps: Sequence[AssetKey] = ()
    key_prefix: Sequence[str] = ()
    orchestration: OrchestrationKeys = field(default_factory=OrchestrationKeys)
    """The manifest's orchestration settings of the table (its writer's, the table's on top)."""
    code_version: str | None = None
    """Hash of the writer's manifest entry and Python source (see `project/code_version.py`)."""


class DltProjectTranslator:
    """Asset key `<dataset>/<table>` (one identity whoever writes the table), group per entity.

    `get_asset_spec` is the one source of asset keys: lineage (a nested table's parent, a
    transformation's inputs), checks, jobs, schedules and the IO manager all use the key of the
    spec it returns, so a subclass may override it alone (or only the narrower hooks it calls).

    Dagster names are derived here, in one way: `data.table` is the table's name after dlt's
    naming convention (what the destination holds), and every key part and group name passes
    `dagster_name` (each character outside `A-Z a-z 0-9 _` becomes `_`), because Dagster
    accepts only those in op, output and group names. `dltplus project validate` refuses two
    entities whose mapped names coincide.
    """

    def get_asset_key(self, data: TableAssetData) -> AssetKey:
        return AssetKey([dagster_name(p) for p in (*data.key_prefix, data.dataset, data.table)])

    def get_group_name(self, data: TableAssetData) -> str | None:
        return dagster_name(data.group or data.entity)

    def get_description(self, data: TableAssetData) -> str | None:
        if data.description:
            return data.description
        verb = {"pipeline": "Loaded by dlt pipeline", "transformation": "Written by transformation",
                "external": "Table of dataset"}[data.kind]
        return f"{verb} `{data.entity}` into `{data.dataset}.{data.table}`."

    def get_tags(self, data: TableAssetData) -> Mapping[str, str]:
        return dict(data.tags)

    def get_owners(self, data: TableAssetData) -> Sequence[str]:
        return list(data.orchestration.owners or ())

    def get_kinds(self, data: TableAssetData) -> set[str]:
        return {"dlt", data.destination_type, *(data.orchestration.kinds or ())}

    def get_asset_spec(self, data: TableAssetData) -> AssetSpec:
        """The spec of one table asset; override this, or the narrower hooks above."""
        return AssetSpec(
            key=self.get_asset_key(data),
            group_name=self.get_group_name(data),
            description=self.get_description(data),
            tags=self.get_tags(data),
            owners=list(self.get_owners(data)),
            kinds=self.get_kinds(data),
            deps=[*data.deps, *dep_keys(data.orchestration)],
            automation_condition=automation_condition(data.orchestration),
            freshness_policy=freshness_policy(data.orchestration),
            code_version=data.code_version,
            metadata=identity_metadata(data),
        )


def identity_metadata(data: TableAssetData) -> dict[str, str]:
    """The `dlt/*` metadata that says which table an asset is and who writes it. Every spec
    carries it (the asset factories add it when a translator leaves it out): lineage and the
    IO manager find tables by it, whatever key the translator gave them. The entries of a
    `DltTableMetadataSet` (read them back typed with its `extract`), written as a plain dict:
    a 500-pipeline build makes 1,500 of them (`tests/test_dagster_assets.py` checks both
    agree)."""
    return {
        "dlt/dataset": data.dataset, "dlt/table": data.table,
        "dlt/destination": data.destination, f"dlt/{data.kind}": data.entity,
    }
