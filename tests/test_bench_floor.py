"""The Dagster floor of benchmark 2b builds the same multi-assets as ours: everything the bench
puts above the floor is then our own Python, not a bigger asset shape Dagster builds."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from dagster import AssetsDefinition, Definitions

from bench.defs_load import prepare


def _definitions(path: Path, name: str) -> Definitions:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    defs: Definitions = module.defs
    return defs


def _shape(assets_def: AssetsDefinition) -> dict[str, Any]:
    """What Dagster builds for one multi-asset, minus the values only ours can know (the
    code version's hash)."""
    op = assets_def.op
    return {
        "op": (op.name, op.description, dict(op.tags), sorted(op.required_resource_keys),
               sorted(op.output_dict), sorted(op.config_schema.as_field().config_type.fields)),
        "can_subset": assets_def.can_subset,
        "checks": sorted((c.key.to_user_string(), c.description or "")
                         for c in assets_def.check_specs),
        "specs": sorted(
            (key.to_user_string(), s.group_name, sorted(s.kinds), s.description,
             s.code_version is not None, sorted(s.metadata.items()), sorted(s.tags.items()),
             list(s.deps), s.partitions_def)
            for key, s in assets_def.specs_by_key.items()
        ),
    }


def test_the_floor_builds_our_multi_assets(tmp_path: Path) -> None:
    root = Path(prepare(str(tmp_path), 3))
    ours = _definitions(root / "defs_ours.py", "bench_defs_ours")
    floor = _definitions(root / "defs_floor_shaped.py", "bench_defs_floor_shaped")
    ours_assets = {a.op.name: a for a in ours.assets or [] if isinstance(a, AssetsDefinition)}
    floor_assets = {a.op.name: a for a in floor.assets or [] if isinstance(a, AssetsDefinition)}
    assert sorted(ours_assets) == sorted(floor_assets) == [f"dlt_pipeline_p_{i}" for i in range(3)]
    for name, assets_def in ours_assets.items():
        assert _shape(floor_assets[name]) == _shape(assets_def), name
    assert sorted(floor.resources or {}) == sorted(ours.resources or {})
    assert len(floor.resolve_asset_graph().asset_check_keys) == 9
