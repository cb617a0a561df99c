"""Benchmark 2: definitions load time of N pipelines, ours vs dagster-dlt's `@dlt_assets`.

Each variant is one whole Python process that imports a definitions module and resolves the
asset graph, as a code server does. The project has N pipelines, each with its own
3-resource source entity. Ours reads table lists from the cache `.dlt/.dltplus_state.json`,
which the first (untimed, reported as "cold") load writes. dagster-dlt's users must call the
source and `dlt.pipeline()` per load at import: that is what the peer module does.

The in-process build (libraries imported first) is also compared with Dagster's floor: the
same `multi_asset`s as ours built from ready-made specs (`FLOOR_SHAPED`: with a schema-change
check per table, the run config and the resource), `Definitions(...)` and
`resolve_asset_graph()`. Everything above the floor is ours. The floor without checks
(`FLOOR`: 3 specs with group, kinds and two metadata keys, the assets as they were when issue
15 was filed) is measured beside it.
"""

from __future__ import annotations

import os
import subprocess
import textwrap

from bench.common import PYTHON, alternate, median, pair_ratio, run_process
from bench.data import THREE_MODULE, many_pipelines_manifest, write_project

SIZES = (1, 10, 100, 500)

OURS = """\
from dltplus_dagster import build_definitions

defs = build_definitions({project!r})
"""

PEER = """\
import sys

import dlt
from dagster import Definitions
from dagster_dlt import DagsterDltResource, dlt_assets

sys.path.insert(0, {project!r})
from sources.three import three  # noqa: E402


def make(i):
    source = three.clone(name=f"src_{{i}}", section=f"src_{{i}}")()
    pipeline = dlt.pipeline(
        pipeline_name=f"p_{{i}}",
        destination=dlt.destinations.duckdb({db!r}),
        dataset_name=f"ds_{{i}}",
        pipelines_dir={pipelines!r},
    )

    @dlt_assets(dlt_source=source, dlt_pipeline=pipeline, name=f"p_{{i}}")
    def assets(context, dlt: DagsterDltResource):
        yield from dlt.run(context=context)

    return assets


defs = Definitions(assets=[make(i) for i in range({n})], resources={{"dlt": DagsterDltResource()}})
"""

FLOOR = """\
from dagster import AssetExecutionContext, AssetSpec, Definitions, multi_asset


def make(i):
    specs = [
        AssetSpec(key=[f"ds_{{i}}", table], group_name=f"p_{{i}}", kinds={{"dlt", "duckdb"}},
                  metadata={{"dlt/dataset": f"ds_{{i}}", "dlt/table": table}})
        for table in ("users", "orders", "items")
    ]

    @multi_asset(name=f"dlt_pipeline_p_{{i}}", specs=specs, can_subset=True)
    def assets(context: AssetExecutionContext):
        yield from ()

    return assets


defs = Definitions(assets=[make(i) for i in range({n})])
"""
"""Dagster's own floor for N pipelines: what Dagster takes to build the same assets from
specs made by hand (no manifest, no dlt)."""

FLOOR_SHAPED = """\
from dagster import (AssetCheckSpec, AssetExecutionContext, AssetSpec, ConfigurableIOManager,
                     ConfigurableResource, Definitions, Field, multi_asset, multiprocess_executor)

TABLES = (("users", "Users."), ("orders", "Orders."), ("items", "Order items."))
CHECK = ("WARN when a run added or changed columns of the table; ERROR when the dataset's "
         "schema contract refused the change")
RUN_CONFIG = {{"limit": Field(int, is_required=False), "refresh": Field(str, is_required=False),
               "source_args": Field(dict, is_required=False),
               "progress": Field(str, is_required=False)}}


class Project(ConfigurableResource):
    project_dir: str


class DatasetIO(ConfigurableIOManager):
    def handle_output(self, context, obj):
        pass

    def load_input(self, context):
        return None


def make(i):
    specs = [
        AssetSpec(key=[f"ds_{{i}}", table], group_name=f"p_{{i}}", kinds={{"dlt", "duckdb"}},
                  description=description, code_version="0123456789abcdef",
                  metadata={{"dlt/dataset": f"ds_{{i}}", "dlt/table": table,
                            "dlt/destination": "warehouse", "dlt/pipeline": f"p_{{i}}"}},
                  ).with_io_manager_key("dlt_dataset_io")
        for table, description in TABLES
    ]
    checks = [AssetCheckSpec("dlt_schema_change", asset=spec.key, description=CHECK)
              for spec in specs]

    @multi_asset(name=f"dlt_pipeline_p_{{i}}", specs=specs, check_specs=checks, can_subset=True,
                 op_tags={{"dltplus/local_file": "duckdb:warehouse"}},
                 description=f"dlt pipeline p_{{i}}", config_schema=RUN_CONFIG)
    def assets(context: AssetExecutionContext, dlt_project: Project):
        yield from ()

    return assets


project = Project(project_dir=".")
defs = Definitions(
    assets=[make(i) for i in range({n})],
    resources={{"dlt_project": project, "dlt_dataset_io": DatasetIO()}},
    executor=multiprocess_executor.configured({{"tag_concurrency_limits": [
        {{"key": "dltplus/local_file", "value": "duckdb:warehouse", "limit": 1}}]}}),
)
"""
"""Dagster alone building the same multi-assets as ours from ready-made specs: the floor of
issue 15 (item 3) for the assets this package builds now. Each pipeline's `multi_asset` has
what ours has (`tests/test_bench_floor.py` compares them): 3 specs with group, kinds,
description, code version, the 4 `dlt/*` identity keys and the IO manager key; issue 13's
`dlt_schema_change` check per table (a second op output per table); the op's tag,
description, Launchpad run config and the typed project resource; `Definitions` with the
resource, the IO manager and the executor. Everything above it is our own Python. `FLOOR`
(3 specs, group, kinds, two metadata keys, no checks) is what these assets were when the
issue was filed; it is kept for scale."""

LOAD = "import {module} as m; m.defs.resolve_asset_graph()"
BUILD = (
    "import time, dagster, dlt, dagster_dlt, dlt.sources.helpers.requests, "
    "dltplus_dagster.dagster.definitions; "
    "t = time.perf_counter(); import {module} as m; m.defs.resolve_asset_graph(); "
    "print(time.perf_counter() - t)"
)
"""In-process time of building the definitions alone (the libraries imported beforehand): the
per-pipeline cost without the fixed import time, for the growth check and the floor. dlt's
runtime imports its requests helpers when a run context is first set up (any dlt user pays
that once per process): it counts as a library import here."""


def prepare(work: str, n: int) -> str:
    """The project of `n` pipelines and the two definitions modules; returns their folder."""
    root = os.path.join(work, f"defs_{n}")
    project = write_project(os.path.join(root, "project"), many_pipelines_manifest(n),
                            {"three": THREE_MODULE})
    with open(os.path.join(root, "defs_ours.py"), "w") as f:
        f.write(OURS.format(project=project))
    with open(os.path.join(root, "defs_floor.py"), "w") as f:
        f.write(FLOOR.format(n=n))
    with open(os.path.join(root, "defs_floor_shaped.py"), "w") as f:
        f.write(FLOOR_SHAPED.format(n=n))
    with open(os.path.join(root, "defs_peer.py"), "w") as f:
        f.write(textwrap.dedent(PEER.format(
            project=project, n=n, db=os.path.join(root, "peer.duckdb"),
            pipelines=os.path.join(root, "peer_pipelines"),
        )))
    return root


ENV = {"DAGSTER_DISABLE_TELEMETRY": "1", "RUNTIME__LOG_LEVEL": "WARNING"}


def load_time(root: str, module: str) -> float:
    return run_process([PYTHON, "-c", LOAD.format(module=module)], cwd=root, env=ENV)


def build_time(root: str, module: str) -> float:
    out = subprocess.run([PYTHON, "-c", BUILD.format(module=module)], cwd=root,
                         env={**os.environ, **ENV}, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def run(work: str) -> dict:
    """Times per size: ours (cache warm), ours cold (first load, once), dagster-dlt, and our
    in-process build time (for the growth check)."""
    out: dict = {}
    for n in SIZES:
        root = prepare(work, n)
        state = os.path.join(root, "project", ".dlt", ".dltplus_state.json")
        if os.path.exists(state):
            os.remove(state)
        cold = load_time(root, "defs_ours")
        assert os.path.exists(state), "the first load must write the table cache"
        times = alternate({"ours": lambda r=root: load_time(r, "defs_ours"),
                           "dagster_dlt": lambda r=root: load_time(r, "defs_peer")})
        variants = {"ours": lambda r=root: build_time(r, "defs_ours"),
                    "floor": lambda r=root: build_time(r, "defs_floor")}
        if n == max(SIZES):
            variants["floor_shaped"] = lambda r=root: build_time(r, "defs_floor_shaped")
        builds = alternate(variants, warmup=0)
        out[n] = {
            "ours_cold_s": cold,
            "ours_build": builds["ours"],
            "ours_build_median_s": median(builds["ours"]),
            "floor_build": builds["floor"],
            "floor_build_median_s": median(builds["floor"]),
            "build_vs_floor": pair_ratio(builds["ours"], builds["floor"]),
            **({"floor_shaped_build": builds["floor_shaped"],
                "build_vs_floor_shaped": pair_ratio(builds["ours"], builds["floor_shaped"]),
                "floor_shaped_vs_floor": pair_ratio(builds["floor_shaped"], builds["floor"])}
               if "floor_shaped" in builds else {}),
            "ours": times["ours"],
            "dagster_dlt": times["dagster_dlt"],
            "ours_median_s": median(times["ours"]),
            "dagster_dlt_median_s": median(times["dagster_dlt"]),
            "ratio": pair_ratio(times["ours"], times["dagster_dlt"]),
        }
    return out


COMPONENT_STATE = """\
import pathlib
from dltplus_dagster.dagster.component import DltProjectComponent

DltProjectComponent(project_dir={project!r}).write_state_to_path(pathlib.Path({state!r}))
"""

COMPONENT_BUILD = (
    "import time, pathlib, dagster, dlt, dagster_dlt, dlt.sources.helpers.requests, "
    "dltplus_dagster.dagster.definitions; "
    "from dagster.components.core.component_tree import ComponentTree; "
    "from dltplus_dagster.dagster.component import DltProjectComponent; "
    "context = ComponentTree.for_test().load_context; "
    "t = time.perf_counter(); "
    "c = DltProjectComponent(project_dir={project!r}); "
    "c.build_defs_from_state(context, pathlib.Path({state!r})).resolve_asset_graph(); "
    "print(time.perf_counter() - t)"
)
"""In-process time of the component's definitions from its defs state (libraries imported
beforehand, as `BUILD`): what a code server does on a load once `dg utils refresh-defs-state`
wrote the state."""


def component_vs_build(work: str, n: int = 500) -> dict:
    """The Dagster component's load from its defs state vs `build_definitions()` of the same
    project (issue 15, item 3: within 0.3 s), both in-process with the libraries imported
    first. The state is written once, untimed, as `dg utils refresh-defs-state` does."""
    root = prepare(work, n)
    project = os.path.join(root, "project")
    state = os.path.join(root, "component_state.json")
    subprocess.run([PYTHON, "-c", COMPONENT_STATE.format(project=project, state=state)],
                   cwd=root, env={**os.environ, **ENV}, check=True, capture_output=True)
    build_time(root, "defs_ours")  # fills the project's own cache (the build's warm state)

    def component() -> float:
        out = subprocess.run(
            [PYTHON, "-c", COMPONENT_BUILD.format(project=project, state=state)], cwd=root,
            env={**os.environ, **ENV}, capture_output=True, text=True, check=True,
        )
        return float(out.stdout.strip().splitlines()[-1])

    times = alternate({"component": component,
                       "build": lambda: build_time(root, "defs_ours")}, warmup=0)
    return {"component": times["component"], "build": times["build"]}
