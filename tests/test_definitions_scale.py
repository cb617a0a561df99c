"""Definitions of many pipelines: per-destination work is done once, not once per pipeline, and
the garbage-collector pause of the build never outlives it."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetSpec, Definitions
from helpers import make_project

from dltplus_dagster import build_definitions
from dltplus_dagster.dagster.translator import DltProjectTranslator, TableAssetData
from dltplus_dagster.project.entities import EntityFactory, ResolvedPipeline
from dltplus_dagster.project.table_state import TableListCache

PIPELINES = 30

SOURCE = '''
import dlt


@dlt.source
def three():
    @dlt.resource
    def users():
        yield [{"id": 1}]

    @dlt.resource
    def Orders():
        yield [{"id": 1}]

    return users, Orders
'''


def _manifest(n: int) -> str:
    lines = ["project:", "  name: scale", "destinations:", "  warehouse:", "    type: duckdb",
             "sources:"]
    lines += [f"  src_{i}:\n    type: three.three" for i in range(n)]
    lines.append("pipelines:")
    lines += [f"  p_{i}:\n    source: src_{i}\n    destination: warehouse\n    dataset_name: ds_{i}"
              for i in range(n)]
    return "\n".join(lines) + "\n"


@pytest.fixture()
def many(tmp_path: Path) -> Path:
    return make_project(tmp_path, _manifest(PIPELINES), {"sources/three.py": SOURCE})


def test_destination_resolved_once_per_factory_not_per_pipeline(
    many: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resolving a destination (its whole dlt config, ~10 ms) per pipeline made a 500-pipeline
    load take seconds; the naming convention of a destination is found once per factory."""
    calls: list[str] = []
    original = EntityFactory.get_destination

    def counting(self: EntityFactory, name: str) -> object:
        calls.append(name)
        return original(self, name)

    monkeypatch.setattr(EntityFactory, "get_destination", counting)
    defs = build_definitions(str(many))
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    # the keys still hold the destination's stored names (`Orders` -> `orders`)
    assert {f"ds_{i}/{t}" for i in range(PIPELINES) for t in ("users", "orders")} <= keys
    # the gate (a check of the destination and its naming) and the build (its naming)
    assert calls.count("warehouse") <= 4, calls


@pytest.mark.parametrize("cache", ["cold", "warm"])
def test_gate_and_build_find_each_table_list_once(
    many: Path, monkeypatch: pytest.MonkeyPatch, cache: str
) -> None:
    """The gate checks the table lists the build then reads: one `TableListCache` for both,
    so a load from a warm cache works out each pipeline's list (fingerprint, cache entry,
    runs' tables) once. On a cold cache each source factory is called once; the gate writes
    the lists found, and the build reads them back from the file, which other loaders may
    have written meanwhile."""
    if cache == "warm":
        build_definitions(str(many))
    found: list[str] = []
    discovered: list[str] = []
    original, discover = TableListCache._pipeline_tables, TableListCache._discover

    def counting(self: TableListCache, pipeline: ResolvedPipeline) -> object:
        found.append(pipeline.name)
        return original(self, pipeline)

    def counting_discover(self: TableListCache, *args: object) -> object:
        discovered.append(str(args[-1]))
        return discover(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(TableListCache, "_pipeline_tables", counting)
    monkeypatch.setattr(TableListCache, "_discover", counting_discover)
    defs = build_definitions(str(many))
    assert len(defs.resolve_asset_graph().get_all_asset_keys()) == 2 * PIPELINES
    names = sorted(f"p_{i}" for i in range(PIPELINES))
    assert sorted(found) == (names if cache == "warm" else sorted(names * 2))
    assert sorted(discovered) == ([] if cache == "warm" else names)


class _Recording(DltProjectTranslator):
    """Records whether the cyclic garbage collector runs while the specs are built."""

    def __init__(self, fail: bool = False) -> None:
        self.gc_enabled: list[bool] = []
        self.fail = fail

    def get_asset_spec(self, data: TableAssetData) -> AssetSpec:
        self.gc_enabled.append(gc.isenabled())
        if self.fail:
            raise RuntimeError("translator failed")
        return super().get_asset_spec(data)


def test_build_pauses_the_garbage_collector_and_restores_it(
    many: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build allocates one bulk of long-lived objects: the collector waits until it ends.
    The asset graph Dagster resolves from the definitions is part of the bulk: it is resolved
    (and cached) inside the pause."""
    translator = _Recording()
    resolved_with_gc: list[bool] = []
    resolve = Definitions.resolve_asset_graph

    def recording(self: Definitions) -> Any:
        resolved_with_gc.append(gc.isenabled())
        return resolve(self)

    monkeypatch.setattr(Definitions, "resolve_asset_graph", recording)
    assert gc.isenabled()
    defs = build_definitions(str(many), translator=translator)
    assert translator.gc_enabled and not any(translator.gc_enabled)
    assert resolved_with_gc == [False]
    assert gc.isenabled()  # back on after the build
    monkeypatch.undo()
    assert len(defs.resolve_asset_graph().get_all_asset_keys()) == 2 * PIPELINES

    gc.disable()
    try:
        build_definitions(str(many))
        assert not gc.isenabled()  # a caller's own choice is left as it was
    finally:
        gc.enable()


def test_what_the_build_made_is_in_the_oldest_generation_when_it_returns(many: Path) -> None:
    """The bulk is moved to the collector's oldest generation as the pause ends, unscanned:
    the collections after the build do not scan it as young objects."""
    defs = build_definitions(str(many))
    assets_def = next(iter(defs.assets or []))
    assert gc.is_tracked(assets_def)
    assert any(o is assets_def for o in gc.get_objects(generation=2))


def test_build_restores_the_garbage_collector_when_it_fails(many: Path) -> None:
    translator = _Recording(fail=True)
    with pytest.raises(RuntimeError, match="translator failed"):
        build_definitions(str(many), translator=translator)
    assert translator.gc_enabled == [False]
    assert gc.isenabled()
