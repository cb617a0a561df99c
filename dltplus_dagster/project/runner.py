"""The project runner: the one way pipelines and transformations run (CLI, Python, Dagster)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dltplus_dagster.project.dlt_config import set_run_context
from dltplus_dagster.project.duckdb_load import destination_with_load_settings
from dltplus_dagster.project.errors import PipelineLocked, ProjectError, SourceBuildError
from dltplus_dagster.project.faults import explain_fault
from dltplus_dagster.project.local_files import local_file_config
from dltplus_dagster.project.model import RunConfig
from dltplus_dagster.project.project import Project
from dltplus_dagster.project.redact import (
    redact_exception,
    scrub,
    scrub_secrets,
    secrets_registered,
)
from dltplus_dagster.project.trace_store import TraceRecorder, trace_target

if TYPE_CHECKING:
    import dlt
    from dlt.common.pipeline import LoadInfo

    from dltplus_dagster.project.entities import EntityFactory
    from dltplus_dagster.project.transformations import RowsWritten

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run did: dlt's load info, rows per table, time taken and attempts."""

    pipeline_name: str
    dataset_name: str
    destination_name: str
    destination_type: str
    load_info: LoadInfo | None
    row_counts: dict[str, int]
    elapsed: float
    attempts: int = 1
    schema_name: str | None = None
    schema_version: int | None = None
    schema_hash: str | None = None
    tables: dict[str, Any] = field(default_factory=dict)
    """dlt table schemas (deep copies) of the loaded tables."""
    new_tables: list[str] = field(default_factory=list)
    """Tables this run found that the project's table lists did not know yet (nested tables,
    table names decided per row): Dagster shows them after the next definitions reload."""

    @property
    def load_ids(self) -> list[str]:
        return list(self.load_info.loads_ids) if self.load_info else []

    def __str__(self) -> str:
        counts = ", ".join(f"{t}={n}" for t, n in self.row_counts.items()) or "no rows"
        text = (
            f"{self.pipeline_name}: loaded {counts} into {self.dataset_name}@"
            f"{self.destination_name} in {self.elapsed:.2f}s ({self.attempts} attempt(s))"
        )
        if self.new_tables:
            text += (f"; new table(s) {', '.join(self.new_tables)}: assets after the next "
                     "definitions reload")
        return text


class Runner:
    """Runs declared pipelines and transformations with the manifest's run_config."""

    def __init__(self, project: Project, entities: EntityFactory) -> None:
        self.project = project
        self.entities = entities

    def run_pipeline(
        self,
        name: str,
        limit: int | None = None,
        resources: Sequence[str] | None = None,
        write_disposition: str | None = None,
        refresh: str | None = None,
        pipelines_dir: str | None = None,
        source_args: dict[str, Any] | None = None,
        **run_options: Any,
    ) -> RunResult:
        """Run pipeline `name` and return what it loaded.

        `limit` caps extracted pages/items per resource; `resources` selects resources;
        `write_disposition` and `refresh` go to `pipeline.run()`; `pipelines_dir` gives the run
        a working dir of its own (Dagster does this per run); `source_args` are extra source
        arguments (e.g. a partition's date range). An error whose message shows a secret of the
        project (a source's `401 ... ?api_key=...`) is replaced by a `RedactedError` chain; a
        destination fault a person can act on (a DuckDB file another process holds, a server
        that went away mid-load) by a one-line `DestinationFault`.
        """
        return self._redacting(
            lambda: self._run_pipeline(
                name, limit, resources, write_disposition, refresh, pipelines_dir, source_args,
                **run_options,
            )
        )

    def secrets(self) -> list[str]:
        """The project's secret values (`{env.*}` substitutions, TOML secrets, secret-named
        manifest keys, env vars): masked in this runner's errors, logs and dlt traces."""
        return self.project.secret_values()

    def _redacting(self, fn: Any) -> Any:
        secrets = self.secrets()
        with secrets_registered(secrets):  # dlt's and Dagster's log records, too
            try:
                return fn()
            except Exception as e:
                fault = explain_fault(e)
                if fault is not None:
                    logger.debug("%s", fault, exc_info=e)  # the whole chain, for who wants it
                    replaced: BaseException | None = redact_exception(fault, secrets) or fault
                else:
                    replaced = redact_exception(e, secrets)
                if replaced is None:
                    raise
            raise replaced  # outside the handler: the original (with the secret) is not chained

    def _run_pipeline(
        self,
        name: str,
        limit: int | None,
        resources: Sequence[str] | None,
        write_disposition: str | None,
        refresh: str | None,
        pipelines_dir: str | None,
        source_args: dict[str, Any] | None,
        **run_options: Any,
    ) -> RunResult:
        import dlt

        from dltplus_dagster.project.validate import ensure_valid, pipeline_scope

        # the one gate: what `validate` refuses about this pipeline never runs
        ensure_valid(self.project, tables=False, scope=pipeline_scope(self.project, name))
        entity = self.entities.get_pipeline_entity(name)
        if not entity.source:
            raise self.project.error_at(("pipelines", name), "source is not defined for this pipeline")
        rc = entity.run_config
        traces = trace_target(self.project, name)  # a bad store_trace_info fails before the run
        set_run_context(self.project)
        started = time.monotonic()
        with pipeline_lock(self.project, name, rc.lock_timeout):
            pipeline = self.entities.get_pipeline(name, pipelines_dir=pipelines_dir)
            if rc.run_from_clean_folder:
                pipeline.drop()  # wipe local state; dlt restores it from the destination
                pipeline = self.entities.get_pipeline(name, pipelines_dir=pipelines_dir)
            contract = self._dataset_contract(entity.dataset_name)
            kwargs: dict[str, Any] = dict(run_options)
            if write_disposition or entity.write_disposition:
                kwargs["write_disposition"] = write_disposition or entity.write_disposition
            if refresh:
                kwargs["refresh"] = refresh
            if contract is not None:
                kwargs["schema_contract"] = contract
            destination = destination_with_load_settings(pipeline)
            if destination is not None:
                kwargs["destination"] = destination

            def make_source() -> Any:
                if missing := self.entities.missing_local_bucket(entity.source):
                    raise missing.in_pipeline(name)
                try:
                    source = self.entities.get_source(entity.source, **(source_args or {}))
                except SourceBuildError as e:
                    raise e.in_pipeline(name) from e.__cause__
                for resource_name, table in entity.table_names.items():
                    if resource_name in source.resources:
                        source.resources[resource_name].apply_hints(table_name=table)
                if entity.resources and not resources:
                    source = source.with_resources(*entity.resources)
                if resources:
                    missing = [r for r in resources if r not in source.resources]
                    if missing:
                        raise ProjectError(
                            f"pipeline '{name}': source '{entity.source}' has no resource(s) "
                            f"{missing}; it has {list(source.resources)}"
                        )
                    source = source.with_resources(*resources)
                if limit is not None:
                    source = source.add_limit(limit)
                expected.update(
                    r.table_name for r in source.selected_resources.values()
                    if isinstance(r.table_name, str)
                )
                return source

            expected: set[str] = set()  # the resources' own table names (not news)
            extracted = False  # this run extracted a package (a retry must not extract again)
            normalized: list[Any] = []  # normalize info of this run's package

            def load_pending() -> Any:
                if pipeline.last_trace is not None and pipeline.last_trace.last_normalize_info:
                    normalized.append(pipeline.last_trace.last_normalize_info)
                if pipeline.list_extracted_load_packages():
                    norm_info = pipeline.normalize()
                    if norm_info is not None and norm_info.row_counts:
                        normalized.append(norm_info)
                return finish_schema_races(pipeline, name, pipeline.load)

            def attempt() -> Any:
                nonlocal extracted
                if pipeline.has_pending_data:
                    if extracted:
                        # a retry after normalize or load failed: finish this run's package;
                        # extracting again would load the data twice
                        return load_pending()
                    # finish what a failed or killed run left behind, then load the new data
                    logger.info("pipeline %s: loading pending packages first", name)
                    load_pending()
                    normalized.clear()
                extracted = True
                return finish_schema_races(
                    pipeline, name, lambda: pipeline.run(make_source(), **kwargs), normalized
                )

            run_attempt = attempt
            if traces is not None:
                run_attempt = TraceRecorder(
                    self.project, self.entities, name, pipeline, traces, self.secrets
                ).wrap(attempt)
            files = local_file_config(self.entities.destination_type(entity.destination), name)
            secrets = self.secrets()
            try:
                with dlt.config.values(files):
                    info, attempts = wait_out_file_locks(
                        lambda: run_with_retries(run_attempt, rc, name, secrets),
                        rc.lock_timeout,
                        name,
                    )
            finally:
                scrub_trace(pipeline, secrets)  # failed *and* successful runs keep a trace
            info = scrub_secrets(info, secrets)
        result = _result(pipeline, entity.destination, self.entities, info, attempts, started,
                         normalized[-1] if normalized else None)
        result.new_tables = self._record_tables(name, pipeline, entity.destination, expected)
        return result

    def _record_tables(
        self, name: str, pipeline: dlt.Pipeline, destination: str, expected: set[str]
    ) -> list[str]:
        """Remember the tables the run's schema holds (for definitions); the new ones."""
        from dltplus_dagster.project.table_state import TableListCache

        if not pipeline.default_schema_name:
            return []
        try:
            state = TableListCache(self.project, self.entities)
            new = state.record_run(name, pipeline.default_schema, pipeline.dataset_name,
                                   destination, expected)
        except Exception as e:  # noqa: BLE001 - bookkeeping never fails a finished run
            logger.warning("pipeline %s: tables of the run not recorded: %s", name, e)
            return []
        if new:
            logger.info("pipeline %s: new table(s) %s; they become assets after the next "
                        "definitions reload", name, ", ".join(new))
        return new

    def _dataset_contract(self, dataset_name: str | None) -> Any:
        if not dataset_name or dataset_name not in self.project.datasets:
            return None
        from dltplus_dagster.project.catalog import get_dataset

        return get_dataset(self.entities, dataset_name).contract

    def run_transformation(self, name: str) -> RowsWritten:
        """Run transformation `name`; returns rows written (and load ids) per output table."""
        from dltplus_dagster.project.transformations import run_transformation
        from dltplus_dagster.project.validate import ensure_valid, transformation_scope

        ensure_valid(self.project, tables=False, scope=transformation_scope(self.project, name))
        return self._redacting(lambda: run_transformation(self.project, self.entities, name))


def run_with_retries(
    fn: Any, rc: RunConfig, name: str, secrets: Sequence[str] = ()
) -> tuple[Any, int]:
    """Call `fn` under the pipeline's retry policy; terminal errors are never retried."""
    from tenacity import (
        Retrying,
        retry_if_exception,
        stop_after_attempt,
        wait_exponential,
        wait_none,
    )

    policy = rc.retry_policy
    attempts = 1 if policy.type == "none" else max(1, policy.max_attempts)
    wait = (
        wait_exponential(multiplier=policy.multiplier, min=policy.min, max=policy.max)
        if policy.type == "backoff"
        else wait_none()
    )
    count = 0

    def before_sleep(state: Any) -> None:
        logger.warning(
            "pipeline %s: attempt %d failed with %s: %s; retrying",
            name,
            state.attempt_number,
            type(state.outcome.exception()).__name__,
            scrub(str(state.outcome.exception()), secrets),
        )

    for attempt in Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait,
        retry=retry_if_exception(_retryable(tuple(rc.retry_pipeline_steps))),
        reraise=True,
        before_sleep=before_sleep,
    ):
        with attempt:
            count += 1
            result = fn()
    return result, count


def wait_out_file_locks(fn: Any, timeout: float, name: str) -> Any:
    """Call `fn`; while another process holds the pipeline's DuckDB file (a fault with the
    holder's PID), call it again until `timeout` seconds (`run_config.lock_timeout`) passed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except Exception as e:
            fault = explain_fault(e)
            if fault is None or fault.holder_pid is None or time.monotonic() >= deadline:
                raise
            logger.warning("%s; waiting up to lock_timeout (%ss)", fault, timeout)
        time.sleep(0.5)


SCHEMA_RACE_ATTEMPTS = 4


def finish_schema_races(
    pipeline: dlt.Pipeline, name: str, fn: Any, normalized: list[Any] | None = None
) -> Any:
    """Call `fn` (a run or a load). When its load lost a race against a parallel pipeline that
    creates or alters the same dataset and dlt tables (dlt's `SchemaUpdateError`, e.g. two
    pipelines into one new dataset), load the pending package again: dlt re-reads the
    destination and applies only the missing changes, so this is safe whatever the retry
    policy. `normalized` collects the run's normalize info before a standalone load."""
    from dlt.pipeline.helpers import retry_schema_update

    lost_race = retry_schema_update()
    for n in range(1, SCHEMA_RACE_ATTEMPTS + 1):
        try:
            return fn()
        except Exception as e:
            if n == SCHEMA_RACE_ATTEMPTS or not lost_race(e):
                raise
            logger.warning(
                "pipeline %s: the schema update conflicted with a parallel load into the same "
                "dataset; loading again (%d/%d)", name, n + 1, SCHEMA_RACE_ATTEMPTS,
            )
            trace = pipeline.last_trace
            if normalized is not None and trace is not None and trace.last_normalize_info:
                normalized.append(trace.last_normalize_info)
            time.sleep(random.uniform(0.1, 0.5) * n)
            fn = pipeline.load
    raise AssertionError("unreachable")


def _retryable(steps: tuple[str, ...]) -> Any:
    """dlt's `retry_load`, but only for failed pipeline steps and looking through the whole
    exception chain for terminal errors (dlt checks one level: a missing secret inside extract
    arrives wrapped twice). Errors outside the steps (building the source) are not retried."""
    from dlt.common.exceptions import TerminalException
    from dlt.pipeline.exceptions import PipelineStepFailed
    from dlt.pipeline.helpers import retry_load

    dlt_retry = retry_load(steps)  # type: ignore[arg-type]

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
        return dlt_retry(ex)

    return retry


@contextlib.contextmanager
def pipeline_lock(project: Project, name: str, timeout: float = 0.0) -> Iterator[None]:
    """One run of a pipeline per profile at a time (a file lock, released if the process dies)."""
    lock_dir = os.path.join(project.data_dir, "locks")
    os.makedirs(lock_dir, exist_ok=True)
    path = os.path.join(lock_dir, f"{name}.lock")
    with open(path, "a+") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PipelineLocked(
                        f"pipeline '{name}' (profile {project.current_profile}) is already running "
                        f"in another process (lock {path}); set "
                        f"pipelines.{name}.run_config.lock_timeout to wait for it"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _result(
    pipeline: dlt.Pipeline,
    destination_name: str,
    entities: EntityFactory,
    info: Any,
    attempts: int,
    started: float,
    normalized: Any = None,
) -> RunResult:
    import copy

    trace = pipeline.last_trace
    counts: dict[str, int] = {}
    last = trace.last_normalize_info if trace is not None else None
    if last is not None and (last.row_counts or normalized is None):
        normalized = last
    if normalized is not None:  # else the last trace is a standalone load after a retry
        counts = {t: n for t, n in normalized.row_counts.items() if not t.startswith("_dlt")}
    schema = pipeline.default_schema if pipeline.default_schema_name else None
    tables = (
        {t: copy.deepcopy(schema.tables[t]) for t in schema.data_table_names() if t in schema.tables}
        if schema
        else {}
    )
    return RunResult(
        pipeline_name=pipeline.pipeline_name,
        dataset_name=pipeline.dataset_name,
        destination_name=destination_name,
        destination_type=entities.destination_type(destination_name),
        load_info=info,
        row_counts=counts,
        elapsed=time.monotonic() - started,
        attempts=attempts,
        schema_name=schema.name if schema else None,
        schema_version=schema.version if schema else None,
        schema_hash=schema.version_hash if schema else None,
        tables=tables,
    )


def remove_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


TRACE_FILE = "trace.pickle"


def _holds_secret(path: str, secrets: Sequence[str]) -> bool:
    try:
        with open(path, "rb") as f:
            content = f.read()
    except OSError:
        return False
    # pickle stores str as UTF-8, so a secret is a plain byte run in the file
    return any(s.encode("utf-8") in content for s in secrets if s and len(s) >= 4)


def scrub_trace(pipeline: dlt.Pipeline, secrets: Sequence[str]) -> None:
    """Mask `secrets` in dlt's trace of `pipeline`'s last run, in memory and on disk.

    dlt keeps the last run's trace next to the pipeline state: raw error messages (a source's
    `401 ... ?token=<secret>`) and, after a successful run too, the config values it resolved
    under non-secret names (an `endpoint` URL holding an `{env.*}` token). The trace is
    rewritten with the secrets masked; a file that still holds one is removed.
    """
    from dlt.pipeline.trace import save_trace

    path = os.path.join(pipeline.working_dir, TRACE_FILE)
    # dlt's own attribute: `last_trace` would load the file, and we replace what it holds
    trace = getattr(pipeline, "_last_trace", None)
    if trace is not None:
        pipeline._last_trace = trace = scrub_secrets(trace, secrets)
    if not _holds_secret(path, secrets):
        return
    if trace is not None:
        save_trace(pipeline.working_dir, trace)
    if _holds_secret(path, secrets):
        os.remove(path)
        logger.warning("removed %s: it showed a secret of the project", path)
