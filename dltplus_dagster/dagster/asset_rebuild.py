"""Rebuild a project's assets: keep a selection of their tables, or run each step through
another function (the Dagster component's `select` and `execute`).

The asset factories stay the one place assets are made; this only narrows their specs and
swaps the step body, with Dagster's own decorators and the factories' op settings.
"""

# no `from __future__ import annotations`: Dagster reads the step's parameter annotations
# (the `dlt_project` resource) at decoration time

import fnmatch
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, cast

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    multi_asset,
    multi_observable_source_asset,
)

from dltplus_dagster.dagster.assets import ProjectAssets
from dltplus_dagster.dagster.resources import DltProjectResource
from dltplus_dagster.dagster.run_config import run_config_schema

StepFn = Callable[[AssetExecutionContext, DltProjectResource], Iterator[Any]]
"""A step body: what a pipeline, transformation or observation asset runs (a pipeline's run
config is `context.op_execution_context.op_config`, see `run_config.run_config_of`)."""


def table_path(spec: AssetSpec) -> str:
    """`<dataset>/<table>` of a project table asset (whatever key the translator gave it)."""
    md = spec.metadata or {}
    return f"{md.get('dlt/dataset', '')}/{md.get('dlt/table', '')}"


def matches(spec: AssetSpec, patterns: Sequence[str]) -> bool:
    """Whether the table of `spec` matches one of the glob `patterns` (`shop_raw/*`)."""
    path = table_path(spec)
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


def rebuild_assets(
    built: ProjectAssets,
    select: Sequence[str] | None = None,
    wrap: Callable[[str, StepFn], StepFn] | None = None,
) -> ProjectAssets:
    """`built` with only the tables `select` matches (all when None) and each step body
    passed through `wrap(op_name, body)`. A transformation writes all its tables in one step,
    so it stays whole when any of them is selected."""
    assets: list[AssetsDefinition] = []
    kept: set[AssetKey] = set()
    for assets_def in built.assets:
        all_specs = list(assets_def.specs)
        specs = all_specs
        if select is not None:
            whole = not assets_def.can_subset and not _observable(assets_def)
            chosen = [s for s in specs if matches(s, select)]
            specs = specs if whole and chosen else chosen
        if not specs:
            continue
        kept.update(s.key for s in specs)
        if len(specs) == len(all_specs) and wrap is None:
            assets.append(assets_def)
            continue
        assets.append(_rebuilt(assets_def, specs, wrap))
    return replace(
        built,
        assets=assets,
        keys_by_pipeline={n: [k for k in ks if k in kept] for n, ks in
                          built.keys_by_pipeline.items()},
        keys_by_transformation={n: [k for k in ks if k in kept] for n, ks in
                                built.keys_by_transformation.items()},
    )


def _observable(assets_def: AssetsDefinition) -> bool:
    return bool(assets_def.is_observable)


def _rebuilt(
    assets_def: AssetsDefinition, specs: list[AssetSpec],
    wrap: Callable[[str, StepFn], StepFn] | None,
) -> AssetsDefinition:
    """The same step over `specs`, its body the original's (passed through `wrap`)."""
    op = assets_def.op
    original = cast("StepFn", op.compute_fn.decorated_fn)  # type: ignore[union-attr]  # a decorated op
    body = wrap(op.name, original) if wrap is not None else original

    def _step(context: AssetExecutionContext, dlt_project: DltProjectResource) -> Iterator[Any]:
        yield from body(context, dlt_project)

    keys = {s.key for s in specs}
    if _observable(assets_def):
        return cast("AssetsDefinition", multi_observable_source_asset(
            name=op.name, specs=specs, can_subset=True, description=op.description,
        )(_step))
    return multi_asset(
        name=op.name,
        specs=specs,
        check_specs=[c for c in assets_def.check_specs if c.asset_key in keys],
        can_subset=assets_def.can_subset,
        op_tags=op.tags,
        pool=op.pool,
        description=op.description,
        partitions_def=assets_def.partitions_def,
        backfill_policy=assets_def.backfill_policy,
        config_schema=run_config_schema() if op.has_config_field else None,  # a pipeline's
    )(_step)
