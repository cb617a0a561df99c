"""`PipelineRunConfig`: the per-run settings of a pipeline asset, set in the Launchpad.

A pipeline's multi-asset takes this config on its op, so a run sets `ops.<op name>.config`
(`ops.dlt_pipeline_<pipeline>.config.limit: 10`). Each field is a keyword argument of
`Runner.run_pipeline`, the one the CLI's `pipeline NAME run` option of the same name sets:
`limit` (`--limit`), `refresh` (`--refresh`), `source_args` (`--source-arg NAME=VALUE`) and
`progress` (`--progress`). They are checked where the CLI's are, in the runner
(`project/run_options.py`). No field has a default that could hold a secret; a value typed in
the Launchpad is stored with the run, so pass secrets through the profile's TOML, not here.
"""

from __future__ import annotations

import functools
from enum import Enum
from typing import Any

from dagster import AssetExecutionContext, Config
from pydantic import Field


class RefreshMode(str, Enum):
    """dlt's refresh modes (`project.run_options.REFRESH_MODES`): what a run drops first."""

    drop_sources = "drop_sources"
    drop_resources = "drop_resources"
    drop_data = "drop_data"


class ProgressCollector(str, Enum):
    """dlt's progress collectors (`project.progress.PROGRESS_PACKAGES`)."""

    log = "log"
    tqdm = "tqdm"
    enlighten = "enlighten"
    alive_progress = "alive_progress"


class PipelineRunConfig(Config):
    """Settings of one run of a pipeline asset (the CLI's `pipeline NAME run` options)."""

    limit: int | None = Field(
        default=None, gt=0,
        description="Extract at most N pages/items per resource (the CLI's --limit).",
    )
    refresh: RefreshMode | None = Field(
        default=None,
        description="Drop tables and state before loading: drop_sources (every table and "
        "the source's state), drop_resources (the selected resources' tables and state) or "
        "drop_data (truncate the tables, reset the resources' state).",
    )
    source_args: dict[str, Any] = Field(
        default_factory=dict,
        description="Arguments for the pipeline's source (over the manifest's with_args), "
        "checked against the source's signature and coerced to its types.",
    )
    progress: ProgressCollector | None = Field(
        default=None,
        description="dlt's progress collector for this run: log, tqdm, enlighten or "
        "alive_progress (its package must be installed).",
    )

    def runner_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `Runner.run_pipeline` this config sets."""
        return {
            "limit": self.limit,
            "refresh": self.refresh.value if self.refresh else None,
            "source_args": dict(self.source_args),
            "progress": self.progress.value if self.progress else None,
        }


@functools.cache
def run_config_schema() -> dict[str, Any]:
    """The op config schema of `PipelineRunConfig`, converted once: Dagster converts a
    `config: PipelineRunConfig` parameter anew for every op (0.5 s over 500 pipelines)."""
    return PipelineRunConfig.to_fields_dict()


def run_config_of(context: AssetExecutionContext) -> PipelineRunConfig:
    """The run's `PipelineRunConfig`, from the op config `run_config_schema` declared."""
    return PipelineRunConfig(**(context.op_execution_context.op_config or {}))
