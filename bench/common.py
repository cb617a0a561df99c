"""Timing helpers shared by the benchmarks: alternating repetitions, medians, pair ratios."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
WARMUP = int(os.environ.get("BENCH_WARMUP", "1"))
REPS = int(os.environ.get("BENCH_REPS", "5"))


def alternate(
    variants: Mapping[str, Callable[[], float]], warmup: int = WARMUP, reps: int = REPS
) -> dict[str, list[float]]:
    """Run the variants in turn (A B C A B C ...); each call returns its own measured seconds.

    Warm-up rounds run first and are discarded. Returns name -> the measured repetitions.
    """
    times: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(warmup + reps):
        for name, fn in variants.items():
            t = fn()
            if i >= warmup:
                times[name].append(t)
    return times


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of `fn` takes."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def pair_ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """The per-repetition ratios a[i] / b[i] (pairs measured back to back)."""
    return [x / y for x, y in zip(a, b)]


def pair_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median of the per-repetition ratios a[i] / b[i] (pairs measured back to back)."""
    return median(pair_ratios(a, b))


def run_process(args: Sequence[str], cwd: str | None = None, env: Mapping[str, str] | None = None,
                ) -> float:
    """Wall-clock seconds of a whole Python subprocess; raises with its output when it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        list(args), cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
            f"{proc.stderr[-3000:]}"
        )
    return elapsed


def run_worker(module: str, *args: str, env: Mapping[str, str] | None = None) -> Any:
    """Run `python -m bench.<module> args...` and return the JSON it prints on its last line."""
    proc = subprocess.run(
        [PYTHON, "-m", f"bench.{module}", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"bench.{module} {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def emit(result: Any) -> None:
    """A worker's result: one JSON line on stdout (the last line is what `run_worker` reads)."""
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()


def quiet_logs() -> None:
    """Keep dlt and Dagster logging out of the timings and the output."""
    import logging
    import warnings

    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    logging.getLogger("dagster").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


@contextmanager
def dlt_defaults(run_dir: str) -> Iterator[None]:
    """dlt's own run context and config providers for the plain dlt and dagster-dlt variants.

    Our variant activates the project's run context in the worker process (its manifest,
    TOML files and defaults such as uncompressed extract files); the peers must run as their
    users run them, with dlt's defaults. Switching costs nothing inside the timings: call it
    around the timed call, not in it.
    """
    from dlt.common.configuration.container import Container
    from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext
    from dlt.common.runtime.run_context import RunContext

    pluggable = Container()[PluggableRunContext]
    saved = pluggable.context
    pluggable.reload(RunContext(run_dir))
    try:
        yield
    finally:
        pluggable.reload(saved)
