"""Destination faults in one line a person can act on.

dlt wraps a driver error in several layers (`PipelineStepFailed` > `LoadClientJobRetry` or
`DestinationConnectionError` with "check your credentials ... internet connection" boilerplate
> the driver's error). For the faults an operator fixes outside the project, `explain_fault`
finds the driver's words in that chain and says what happened, where and in which dlt step:

- a DuckDB file another process holds: the file and the holder's PID (parsed from DuckDB's
  `Conflicting lock is held in <program> (PID <n>)`);
- a server that closed the connection (`pg_terminate_backend`, a restart, a dropped network):
  the server's first line and the step; the load package stays pending for the next run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dltplus_dagster.project.errors import DestinationFault

_DUCKDB_LOCK = re.compile(
    r'Could not set lock on file "(?P<file>[^"]+)": Conflicting lock is held in '
    r"(?P<program>.+?) \(PID (?P<pid>\d+)\)"
)
CONNECTION_LOST = (
    "terminating connection due to administrator command",
    "server closed the connection unexpectedly",
    "connection already closed",
    "SSL connection has been closed unexpectedly",
    "could not receive data from server",
    "connection to server was lost",
    "the database system is shutting down",
    "consuming input failed",
)
"""Driver messages (libpq/psycopg) of a connection the server closed."""


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen or not isinstance(e, BaseException):
            continue
        seen.add(id(e))
        yield e
        # dlt keeps inner errors in attributes, not only as __cause__
        todo += [getattr(e, a, None) for a in ("exception", "inner_exc", "client_exception")]
        todo += [e.__cause__, e.__context__]


def _text(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # noqa: BLE001 - a broken __str__ is no reason to hide the fault
        return ""


def explain_fault(error: BaseException) -> DestinationFault | None:
    """A one-line `DestinationFault` for a known destination fault in `error`'s chain (dlt's
    `PipelineStepFailed` gives the pipeline and the step), or None."""
    from dlt.pipeline.exceptions import PipelineStepFailed

    chain = list(_chain(error))
    failed = next((e for e in chain if isinstance(e, PipelineStepFailed)), None)
    pipeline = failed.pipeline.pipeline_name if failed is not None else None
    step = str(failed.step) if failed is not None else None
    destination = None
    if failed is not None and failed.pipeline.destination is not None:
        destination = failed.pipeline.destination.destination_name
    prefix = f"pipeline '{pipeline}' failed at step {step}: " if failed is not None else ""
    where = f"destination '{destination}'" if destination else "the destination"
    texts = [_text(e) for e in chain]
    for text in texts:
        m = _DUCKDB_LOCK.search(text)
        if m:
            pid = int(m["pid"])
            wait = (
                f"; set pipelines.{pipeline}.run_config.lock_timeout to wait for it"
                if pipeline else ""
            )
            return DestinationFault(
                f"{prefix}DuckDB file {m['file']} of {where} is locked by another process "
                f"(PID {pid}, {m['program']}); stop it or let it finish{wait}",
                pipeline=pipeline, step=step, destination=destination, holder_pid=pid,
            )
    # the most telling words anywhere in the chain (the server's own before libpq's)
    lost = next((m for m in CONNECTION_LOST if any(m in text for text in texts)), None)
    if lost:
        pending = (
            "; the load package stays pending and the next run in the same working dir "
            "loads it first"
            if step == "load" else ""
        )
        return DestinationFault(
            f"{prefix}{where} closed the connection ({lost}){pending}",
            pipeline=pipeline, step=step, destination=destination,
        )
    return None
