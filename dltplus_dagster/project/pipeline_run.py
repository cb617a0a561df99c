"""One run of a declared pipeline: its steps as methods of `PipelineRun`, its outcome `RunResult`."""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dltplus_dagster.project.dlt_config import set_run_context
from dltplus_dagster.project.duckdb_load import destination_with_load_settings
from dltplus_dagster.project.errors import ProjectError, SourceBuildError
from dltplus_dagster.project.last_trace import scrub_last_trace
from dltplus_dagster.project.local_files import is_local_file_destination, local_file_config
from dltplus_dagster.project.partition_staging import drop_own_staging, with_own_staging
from dltplus_dagster.project.partitions import PartitionWindow
from dltplus_dagster.project.project import Project
from dltplus_dagster.project.redact import scrub_secrets
from dltplus_dagster.project.run_options import (
    check_refresh,
    check_source_args,
    run_option_overrides,
)
from dltplus_dagster.project.run_policies import (
    local_destination_lock,
    pipeline_lock,
    retry_schema_races,
    run_with_retries,
    wait_out_file_locks,
)
from dltplus_dagster.project.trace_store import TraceRecorder, trace_target

if TYPE_CHECKING:
    import dlt
    from dlt.common.pipeline import LoadInfo, NormalizeInfo
    from dlt.common.schema.typing import TTableSchema
    from dlt.extract.source import DltSource

    from dltplus_dagster.project.entities import EntityFactory, ResolvedPipeline

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
    tables: dict[str, TTableSchema] = field(default_factory=dict)
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


@dataclass(frozen=True)
class RunOptions:
    """What a caller asks of one run (see `Runner.run_pipeline`)."""

    limit: int | None = None
    resources: Sequence[str] | None = None
    write_disposition: str | None = None
    refresh: str | None = None
    pipelines_dir: str | None = None
    source_args: dict[str, Any] = field(default_factory=dict)
    progress: str | None = None
    """dlt's progress collector for this run (overrides the pipeline's `progress`)."""
    run_kwargs: dict[str, Any] = field(default_factory=dict)
    """Further keyword arguments of `pipeline.run()`."""
    partition: PartitionWindow | None = None
    """The partition (or range) the run covers; its dlt pipeline name is its own."""


class PipelineRun:
    """Runs a resolved pipeline once: lock, open, extract-normalize-load with retries, report.

    The state one run shares between its steps lives here: the dlt pipeline, whether this run
    already extracted its package (a retry must not extract again), the normalize info of that
    package, the `pipeline.run()` arguments, and the table names its resources declare (tables
    beyond those are news).
    """

    def __init__(
        self,
        project: Project,
        entities: EntityFactory,
        pipeline: ResolvedPipeline,
        options: RunOptions,
        secrets: Callable[[], list[str]],
    ) -> None:
        self.project = project
        self.entities = entities
        self.resolved = pipeline
        self.options = options
        self.secrets = secrets
        self.dlt_pipeline: dlt.Pipeline | None = None
        self.extracted = False
        self.normalized: list[NormalizeInfo] = []
        self.expected_tables: set[str] = set()
        self.run_kwargs: dict[str, Any] = {}
        self.pipeline_overrides: dict[str, Any] = {}
        """`dlt.pipeline()` arguments of this run (its progress collector)."""
        self.source_args: dict[str, Any] = dict(options.source_args)
        """The caller's source arguments, checked and coerced by `_check_options`."""
        self.own_staging = False
        """A partition run on a server destination: it stages in a dataset of its own."""

    @property
    def name(self) -> str:
        return self.resolved.name

    @property
    def dlt_name(self) -> str:
        """The dlt pipeline name: the pipeline's, or a partition's own (state and lock apart)."""
        window = self.options.partition
        return window.pipeline_name(self.name) if window is not None else self.name

    @property
    def pipeline(self) -> dlt.Pipeline:
        """The dlt pipeline, once `execute` opened it."""
        if self.dlt_pipeline is None:
            raise RuntimeError(f"pipeline '{self.name}' is not open")
        return self.dlt_pipeline

    def execute(self) -> RunResult:
        """Run the pipeline under its lock and return what it loaded."""
        if not self.resolved.source:
            raise self.project.error_at(
                ("pipelines", self.name), "source is not defined for this pipeline"
            )
        run_config = self.resolved.run_config
        traces = trace_target(self.project, self.name)  # a bad store_trace_info fails first
        set_run_context(self.project)
        self._check_options()
        started = time.monotonic()
        with pipeline_lock(self.project, self.dlt_name, run_config.lock_timeout), \
                self._destination_file_lock():
            self.dlt_pipeline = self._open_pipeline()
            self.run_kwargs = self._run_kwargs()
            attempt = self._attempt
            if traces is not None:
                attempt = TraceRecorder(
                    self.project, self.entities, self.name, self.pipeline, traces, self.secrets
                ).wrap(self._attempt)
            info, attempts = self._run_attempts(attempt)
            if self.own_staging:
                drop_own_staging(self.pipeline)
        result = self._result(info, attempts, started)
        result.new_tables = self._record_tables()
        return result

    def _check_options(self) -> None:
        """The caller's per-run options, checked before the lock is taken (never retried)."""
        options = self.options
        if options.refresh:
            check_refresh(options.refresh, self.name)
        self.pipeline_overrides = run_option_overrides(options, self.name)
        if options.partition is not None:  # a partition runs under a dlt pipeline name of its own
            self.pipeline_overrides["pipeline_name"] = self.dlt_name
            # and stages in a dataset of its own, unless its runs take turns on a local file
            # (`_destination_file_lock`): then dlt's one staging dataset is never shared, and
            # dropping an own one would cost each run a connection
            if not is_local_file_destination(self.resolved.destination_type):
                destination = self.entities.get_destination(self.resolved.destination)
                if with_own_staging(destination, self.dlt_name):
                    self.pipeline_overrides["destination"] = destination
                    self.own_staging = True
        if options.source_args:
            source = self.resolved.source or ""
            factory = self.entities.get_source_factory(source)
            self.source_args = check_source_args(factory, options.source_args, self.name, source)

    def _destination_file_lock(self) -> contextlib.AbstractContextManager[None]:
        """Partitions of a pipeline run side by side; into one local DuckDB file they take
        turns (DuckDB takes one writer process per file)."""
        if self.options.partition is None:
            return contextlib.nullcontext()
        return local_destination_lock(
            self.project, self.resolved.destination, self.resolved.destination_type, self.name
        )

    def _open_pipeline(self) -> dlt.Pipeline:
        pipelines_dir = self.options.pipelines_dir
        overrides = self.pipeline_overrides
        pipeline = self.entities.make_pipeline(self.resolved, pipelines_dir, **overrides)
        if self.resolved.run_config.run_from_clean_folder:
            pipeline.drop()  # wipe local state; dlt restores it from the destination
            pipeline = self.entities.make_pipeline(self.resolved, pipelines_dir, **overrides)
        return pipeline

    def _run_attempts(self, attempt: Callable[[], LoadInfo]) -> tuple[LoadInfo, int]:
        """`attempt` under the retry policy, waiting out a DuckDB file another process holds;
        the trace and load info that come out hold no secret."""
        import dlt

        run_config = self.resolved.run_config
        files = local_file_config(self.resolved.destination_type, self.dlt_name)
        secrets = self.secrets()
        try:
            with dlt.config.values(files):
                info, attempts = wait_out_file_locks(
                    lambda: run_with_retries(attempt, run_config, self.name, secrets),
                    run_config.lock_timeout,
                    self.name,
                )
        finally:
            scrub_last_trace(self.pipeline, secrets)  # failed *and* successful runs keep one
        return scrub_secrets(info, secrets), attempts

    def _attempt(self) -> LoadInfo:
        """One attempt: finish pending packages, else extract, normalize and load the source."""
        pipeline = self.pipeline
        if pipeline.has_pending_data:
            if self.extracted:
                # a retry after normalize or load failed: finish this run's package;
                # extracting again would load the data twice
                return self._load_pending()
            # finish what a failed or killed run left behind, then load the new data
            logger.info("pipeline %s: loading pending packages first", self.name)
            self._load_pending()
            self.normalized.clear()
        self.extracted = True
        return retry_schema_races(
            lambda: pipeline.run(self._make_source(), **self.run_kwargs),
            pipeline.load,
            self.name,
            before_again=self._keep_normalize_info,
        )

    def _load_pending(self) -> LoadInfo:
        pipeline = self.pipeline
        self._keep_normalize_info()
        if pipeline.list_extracted_load_packages():
            norm_info = pipeline.normalize()
            if norm_info is not None and norm_info.row_counts:
                self.normalized.append(norm_info)
        return retry_schema_races(pipeline.load, pipeline.load, self.name)

    def _keep_normalize_info(self) -> None:
        """Keep the last normalize info: a standalone load's trace has none."""
        trace = self.pipeline.last_trace
        if trace is not None and trace.last_normalize_info:
            self.normalized.append(trace.last_normalize_info)

    def _run_kwargs(self) -> dict[str, Any]:
        """`pipeline.run()` arguments: the caller's, the manifest's, the dataset contract."""
        kwargs: dict[str, Any] = dict(self.options.run_kwargs)
        write_disposition = self.options.write_disposition or self.resolved.entity.write_disposition
        if write_disposition:
            kwargs["write_disposition"] = write_disposition
        if self.options.refresh:
            kwargs["refresh"] = self.options.refresh
        contract = self.resolved.schema_contract
        if contract is not None:
            kwargs["schema_contract"] = contract
        destination = destination_with_load_settings(self.pipeline)
        if destination is not None:
            kwargs["destination"] = destination
        return kwargs

    def _make_source(self) -> DltSource:
        """The source with the pipeline's table names, resource selection and limit."""
        name, source_name = self.name, self.resolved.source or ""
        entity, options = self.resolved.entity, self.options
        if missing_bucket := self.entities.missing_local_bucket(source_name):
            raise missing_bucket.in_pipeline(name)
        try:
            source = self.entities.get_source(source_name, **self.source_args)
        except SourceBuildError as e:
            raise e.in_pipeline(name) from e.__cause__
        for resource_name, table in entity.table_names.items():
            if resource_name in source.resources:
                source.resources[resource_name].apply_hints(table_name=table)
        if entity.resources and not options.resources:
            source = source.with_resources(*entity.resources)
        if options.resources:
            missing = [r for r in options.resources if r not in source.resources]
            if missing:
                raise ProjectError(
                    f"pipeline '{name}': source '{source_name}' has no resource(s) "
                    f"{missing}; it has {list(source.resources)}"
                )
            source = source.with_resources(*options.resources)
        if options.limit is not None:
            source = source.add_limit(options.limit)
        self.expected_tables.update(
            r.table_name for r in source.selected_resources.values()
            if isinstance(r.table_name, str)
        )
        return source

    def _result(self, info: LoadInfo, attempts: int, started: float) -> RunResult:
        pipeline = self.pipeline
        trace = pipeline.last_trace
        normalized = self.normalized[-1] if self.normalized else None
        last = trace.last_normalize_info if trace is not None else None
        if last is not None and (last.row_counts or normalized is None):
            normalized = last
        counts: dict[str, int] = {}
        if normalized is not None:  # else the last trace is a standalone load after a retry
            counts = {t: n for t, n in normalized.row_counts.items() if not t.startswith("_dlt")}
        schema = pipeline.default_schema if pipeline.default_schema_name else None
        tables: dict[str, TTableSchema] = (
            {t: copy.deepcopy(schema.tables[t]) for t in schema.data_table_names()
             if t in schema.tables}
            if schema
            else {}
        )
        return RunResult(
            pipeline_name=pipeline.pipeline_name,
            dataset_name=pipeline.dataset_name,
            destination_name=self.resolved.destination,
            destination_type=self.resolved.destination_type,
            load_info=info,
            row_counts=counts,
            elapsed=time.monotonic() - started,
            attempts=attempts,
            schema_name=schema.name if schema else None,
            schema_version=schema.version if schema else None,
            schema_hash=schema.version_hash if schema else None,
            tables=tables,
        )

    def _record_tables(self) -> list[str]:
        """Remember the tables the run's schema holds (for definitions); the new ones."""
        from dltplus_dagster.project.table_state import TableListCache

        pipeline, name = self.pipeline, self.name
        if not pipeline.default_schema_name:
            return []
        try:
            state = TableListCache(self.project, self.entities)
            new = state.record_run(name, pipeline.default_schema, pipeline.dataset_name,
                                   self.resolved.destination, self.expected_tables)
        except Exception as e:  # noqa: BLE001 - bookkeeping never fails a finished run
            logger.warning("pipeline %s: tables of the run not recorded: %s", name, e)
            return []
        if new:
            logger.info("pipeline %s: new table(s) %s; they become assets after the next "
                        "definitions reload", name, ", ".join(new))
        return new
