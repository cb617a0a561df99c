"""What a pipeline run waits for and retries: the pipeline lock, the manifest's retry policy, a
DuckDB file another process holds, and a schema update that lost a race with a parallel load."""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

from dltplus_dagster.project.errors import PipelineLocked
from dltplus_dagster.project.faults import explain_fault
from dltplus_dagster.project.model import RunConfig
from dltplus_dagster.project.project import Project
from dltplus_dagster.project.redact import scrub

if TYPE_CHECKING:
    from tenacity import RetryCallState

T = TypeVar("T")

logger = logging.getLogger(__name__)

SCHEMA_RACE_ATTEMPTS = 4
"""Loads of one package when its schema update keeps conflicting with parallel loads."""


@contextlib.contextmanager
def pipeline_lock(project: Project, name: str, timeout: float = 0.0) -> Iterator[None]:
    """One run of a pipeline per profile at a time: a file lock (released if the process dies)
    waited for up to `timeout` seconds (`run_config.lock_timeout`), else `PipelineLocked`."""
    from filelock import FileLock, Timeout

    lock_dir = os.path.join(project.data_dir, "locks")
    os.makedirs(lock_dir, exist_ok=True)
    path = os.path.join(lock_dir, f"{name}.lock")
    lock = FileLock(path, timeout=max(timeout, 0.0), poll_interval=0.2)
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if timeout <= 0:
                raise
            # say why the run does not start (filelock polls, so nothing else shows it)
            logger.warning(
                "pipeline %s (profile %s) is running in another process: waiting up to %ss "
                "for its lock", name, project.current_profile, timeout,
            )
            lock.acquire()
    except Timeout:
        raise PipelineLocked(
            f"pipeline '{name}' (profile {project.current_profile}) is already running "
            f"in another process (lock {path}); set "
            f"pipelines.{name}.run_config.lock_timeout to wait for it"
        ) from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def local_destination_lock(
    project: Project, destination: str, destination_type: str, name: str
) -> Iterator[None]:
    """Runs into one local DuckDB file (`<local_dir>/<destination>.duckdb`) one at a time: a
    file lock per destination and profile, waited for as long as the other run takes. Other
    destinations take parallel loads: no lock."""
    from filelock import FileLock, Timeout

    from dltplus_dagster.project.local_files import is_local_file_destination

    if not is_local_file_destination(destination_type):
        yield
        return
    lock_dir = os.path.join(project.data_dir, "locks")
    os.makedirs(lock_dir, exist_ok=True)
    lock = FileLock(os.path.join(lock_dir, f"destination__{destination}.lock"), poll_interval=0.2)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.info("pipeline %s: waiting for another run writing into %s (one DuckDB file "
                    "takes one writer)", name, destination)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def run_with_retries(
    fn: Callable[[], T], run_config: RunConfig, name: str, secrets: Sequence[str] = ()
) -> tuple[T, int]:
    """Call `fn` under the pipeline's retry policy; terminal errors are never retried.
    Returns `fn`'s result and the number of attempts."""
    from tenacity import (
        Retrying,
        retry_if_exception,
        stop_after_attempt,
        wait_exponential,
        wait_none,
    )

    policy = run_config.retry_policy
    attempts = 1 if policy.type == "none" else max(1, policy.max_attempts)
    wait = (
        wait_exponential(multiplier=policy.multiplier, min=policy.min, max=policy.max)
        if policy.type == "backoff"
        else wait_none()
    )

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        logger.warning(
            "pipeline %s: attempt %d failed with %s: %s; retrying",
            name,
            state.attempt_number,
            type(error).__name__,
            scrub(str(error), secrets),
        )

    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait,
        retry=retry_if_exception(_retryable(tuple(run_config.retry_pipeline_steps))),
        reraise=True,
        before_sleep=before_sleep,
    )
    result = retrying(fn)
    return result, retrying.statistics["attempt_number"]


def wait_out_file_locks(fn: Callable[[], T], timeout: float, name: str) -> T:
    """Call `fn`; while another process holds the pipeline's DuckDB file (a fault with the
    holder's PID), call it again until `timeout` seconds (`run_config.lock_timeout`) passed."""
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

    def file_held(error: BaseException) -> bool:
        fault = explain_fault(error)
        return fault is not None and fault.holder_pid is not None

    def log_wait(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        fault = explain_fault(error) if error is not None else None
        logger.warning("%s; waiting up to lock_timeout (%ss)", fault, timeout)

    return Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(0.5),
        retry=retry_if_exception(file_held),
        reraise=True,
        before_sleep=log_wait,
    )(fn)


def retry_schema_races(
    first: Callable[[], T],
    again: Callable[[], T],
    name: str,
    before_again: Callable[[], None] = lambda: None,
) -> T:
    """Call `first` (a run or a load). When its load lost a race against a parallel pipeline
    that creates or alters the same dataset and dlt tables (dlt's `SchemaUpdateError`, e.g. two
    pipelines into one new dataset), call `again` (load the pending package): dlt re-reads the
    destination and applies only the missing changes, so this is safe whatever the retry
    policy. `before_again` runs before each new load (to keep what the failed one normalized)."""
    from dlt.pipeline.helpers import retry_schema_update
    from tenacity import Retrying, retry_if_exception, stop_after_attempt

    def log_and_prepare(state: RetryCallState) -> None:
        logger.warning(
            "pipeline %s: the schema update conflicted with a parallel load into the same "
            "dataset; loading again (%d/%d)", name, state.attempt_number + 1,
            SCHEMA_RACE_ATTEMPTS,
        )
        before_again()

    calls = iter([first])

    def call() -> T:
        return next(calls, again)()

    return Retrying(
        stop=stop_after_attempt(SCHEMA_RACE_ATTEMPTS),
        # parallel loaders that collided back off by different, growing amounts
        wait=lambda state: random.uniform(0.1, 0.5) * state.attempt_number,
        retry=retry_if_exception(retry_schema_update()),
        reraise=True,
        before_sleep=log_and_prepare,
    )(call)


def _retryable(steps: tuple[str, ...]) -> Callable[[BaseException], bool]:
    """dlt's `retry_load`, but only for failed pipeline steps and looking through the whole
    exception chain for terminal errors (dlt checks one level: a missing secret inside extract
    arrives wrapped twice). Errors outside the steps (building the source) are not retried."""
    from dlt.common.exceptions import TerminalException
    from dlt.pipeline.exceptions import PipelineStepFailed
    from dlt.pipeline.helpers import retry_load

    dlt_retry = retry_load(steps)  # type: ignore[arg-type]  # steps are validated TPipelineStep names

    def retry(ex: BaseException) -> bool:
        if not isinstance(ex, PipelineStepFailed):
            return False
        seen: set[int] = set()
        chain: list[BaseException | None] = [ex]
        while chain:
            e = chain.pop()
            if e is None or id(e) in seen:
                continue
            seen.add(id(e))
            if isinstance(e, TerminalException):
                return False
            chain += [e.__cause__, e.__context__, getattr(e, "exception", None)]
        return bool(dlt_retry(ex))

    return retry
