"""Benchmark 2: definitions load time of N pipelines, ours vs dagster-dlt's `@dlt_assets`.

Each variant is one whole Python process that imports a definitions module and resolves the
asset graph, as a code server does. The project has N pipelines, each with its own
3-resource source entity. Ours reads table lists from the cache `.dlt/.dltplus_state.json`,
which the first (untimed, reported as "cold") load writes. dagster-dlt's users must call the
source and `dlt.pipeline()` per load at import: that is what the peer module does.
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

LOAD = "import {module} as m; m.defs.resolve_asset_graph()"
BUILD = (
    "import time, dagster, dlt, dagster_dlt, dltplus_dagster.dagster.definitions; "
    "t = time.perf_counter(); import {module} as m; m.defs.resolve_asset_graph(); "
    "print(time.perf_counter() - t)"
)
"""In-process time of building the definitions alone (the libraries imported beforehand): the
per-pipeline cost without the fixed import time, for the growth check."""


def prepare(work: str, n: int) -> str:
    """The project of `n` pipelines and the two definitions modules; returns their folder."""
    root = os.path.join(work, f"defs_{n}")
    project = write_project(os.path.join(root, "project"), many_pipelines_manifest(n),
                            {"three": THREE_MODULE})
    with open(os.path.join(root, "defs_ours.py"), "w") as f:
        f.write(OURS.format(project=project))
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
        builds = alternate({"ours": lambda r=root: build_time(r, "defs_ours")}, warmup=0)["ours"]
        out[n] = {
            "ours_cold_s": cold,
            "ours_build": builds,
            "ours_build_median_s": median(builds),
            "ours": times["ours"],
            "dagster_dlt": times["dagster_dlt"],
            "ours_median_s": median(times["ours"]),
            "dagster_dlt_median_s": median(times["dagster_dlt"]),
            "ratio": pair_ratio(times["ours"], times["dagster_dlt"]),
        }
    return out
