"""The project runner: the one way pipelines and transformations run (CLI, Python, Dagster)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from dltplus_dagster.project.faults import explain_fault
from dltplus_dagster.project.pipeline_run import PipelineRun, RunOptions, RunResult
from dltplus_dagster.project.project import Project
from dltplus_dagster.project.redact import redact_exception, secrets_registered

if TYPE_CHECKING:
    from dltplus_dagster.project.entities import EntityFactory
    from dltplus_dagster.project.transformations import RowsWritten

__all__ = ["RunResult", "Runner"]

T = TypeVar("T")

logger = logging.getLogger(__name__)


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
        progress: str | None = None,
        partition: str | None = None,
        partition_range: tuple[str, str] | None = None,
        **run_options: Any,
    ) -> RunResult:
        """Run pipeline `name` and return what it loaded.

        `limit` caps extracted pages/items per resource; `resources` selects resources;
        `write_disposition` and `refresh` go to `pipeline.run()`; `pipelines_dir` gives the run
        a working dir of its own (Dagster does this per run); `source_args` are extra source
        arguments, checked against the source's signature; `progress` names dlt's progress
        collector for this run (`log`, `tqdm`, ...). `partition` (a key) or `partition_range`
        (first and last key) runs that part of a pipeline with `partitions:`: its
        `{partition_*}` placeholders filled, under a dlt pipeline name (and lock, and state) of
        its own. An error whose message shows a secret of the project (a source's `401 ...
        ?api_key=...`) is replaced by a `RedactedError` chain; a destination fault a person can
        act on (a DuckDB file another process holds, a server that went away mid-load) by a
        one-line `DestinationFault`.
        """
        options = RunOptions(
            limit=limit, resources=resources, write_disposition=write_disposition,
            refresh=refresh, pipelines_dir=pipelines_dir, source_args=dict(source_args or {}),
            progress=progress, run_kwargs=run_options,
        )
        return self._redacting(
            lambda: self._run_pipeline(name, options, partition, partition_range)
        )

    def secrets(self) -> list[str]:
        """The project's secret values (`{env.*}` substitutions, TOML secrets, secret-named
        manifest keys, env vars): masked in this runner's errors, logs and dlt traces."""
        return self.project.secret_values()

    def _redacting(self, fn: Callable[[], T]) -> T:
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
        options: RunOptions,
        partition: str | None = None,
        partition_range: tuple[str, str] | None = None,
    ) -> RunResult:
        from dltplus_dagster.project.partition_args import partition_source_args, run_window
        from dltplus_dagster.project.validate import ensure_valid, pipeline_scope

        # the one gate: what `validate` refuses about this pipeline never runs
        ensure_valid(self.project, tables=False, scope=pipeline_scope(self.project, name))
        resolved = self.entities.resolve_pipeline(name)
        window = run_window(self.entities, resolved, partition, partition_range)
        if window is not None:
            args = partition_source_args(self.entities, resolved, window)
            options = dataclasses.replace(
                options, partition=window, source_args={**args, **options.source_args}
            )
        return PipelineRun(self.project, self.entities, resolved, options, self.secrets).execute()

    def run_transformation(
        self,
        name: str,
        partition: str | None = None,
        partition_range: tuple[str, str] | None = None,
    ) -> RowsWritten:
        """Run transformation `name`; returns rows written (and load ids) per output table.
        `partition`/`partition_range` run one window of a transformation with `partitions:`."""
        from dltplus_dagster.project.transformations import run_transformation
        from dltplus_dagster.project.validate import ensure_valid, transformation_scope

        ensure_valid(self.project, tables=False, scope=transformation_scope(self.project, name))
        return self._redacting(lambda: run_transformation(
            self.project, self.entities, name, partition=partition, partition_range=partition_range
        ))

