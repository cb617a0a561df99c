"""A partition's turn at a local DuckDB file for the reads that build its materialization.

Partitions started together take turns at one DuckDB file (the runner's destination lock,
held through the run), but the asset reads the file again after the run (row counts, stored
schemas, checks). Outside the lock that read collided with the next partition's load, and
whichever opened the file second failed (DuckDB takes one process per file):
`python -m bench partition` showed it. The reads now wait for their turn too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from dltplus_dagster.project.run_policies import local_destination_lock
from dltplus_dagster.project.runner import Runner


@contextlib.contextmanager
def partition_file_lock(runner: Runner, name: str, options: Mapping[str, Any]) -> Iterator[None]:
    """Hold the destination's lock when `options` run a partition or range of pipeline `name`
    into a local DuckDB file (as the run did); nothing otherwise."""
    if options.get("partition") is None and options.get("partition_range") is None:
        yield
        return
    pipeline = runner.entities.resolve_pipeline(name)  # the run's profile: its destination
    with local_destination_lock(runner.project, pipeline.destination, pipeline.destination_type,
                                name):
        yield
