"""Per-run options checked before a run starts: `refresh`, `progress` and `source_args`.

The CLI (`--refresh`, `--progress`, `--source-arg NAME=VALUE`), `Runner.run_pipeline` and a
Dagster run's config (`PipelineRunConfig`) ask for the same options, and this module checks them
in one way. A source argument the source does not take is refused before anything runs, naming
the pipeline, the argument and the ones the source has; values are coerced by dlt's own config
coercion (a `"5"` typed in the CLI or the Launchpad becomes `5` for an `int` argument). A value
is never shown: it may be a secret.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dltplus_dagster.project.errors import ProjectError

if TYPE_CHECKING:
    from dltplus_dagster.project.pipeline_run import RunOptions

REFRESH_MODES = ("drop_sources", "drop_resources", "drop_data")
"""dlt's refresh modes (`dlt.common.pipeline.TRefreshMode`), for `pipeline.run(refresh=...)`."""


def check_refresh(refresh: str, pipeline: str) -> str:
    """`refresh` when it is one of dlt's refresh modes, else a `ProjectError` naming them."""
    if refresh not in REFRESH_MODES:
        raise ProjectError(
            f"pipeline '{pipeline}': refresh '{refresh}' is not one of {', '.join(REFRESH_MODES)}"
        )
    return refresh


def run_option_overrides(options: RunOptions, pipeline: str) -> dict[str, Any]:
    """`dlt.pipeline()` arguments a run overrides: its progress collector, checked first (dlt
    would fail late, with a bare error)."""
    if not options.progress:
        return {}
    from dltplus_dagster.project.progress import check_progress

    return {"progress": check_progress(options.progress, f"pipeline '{pipeline}': progress")}


def source_parameters(factory: Any) -> tuple[list[str], bool]:
    """The argument names of a source factory and whether it takes any keyword (`**kwargs`)."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # no signature to read: the call decides
        return [], True
    names = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def check_source_args(
    factory: Any, args: Mapping[str, Any], pipeline: str, source: str
) -> dict[str, Any]:
    """`args` coerced to the source's typed arguments; a `ProjectError` naming the pipeline and
    the argument when the source does not take it or its value cannot be coerced."""
    from dltplus_dagster.project.entities import coerce_source_args, source_value_problems

    names, any_keyword = source_parameters(factory)
    where = f"pipeline '{pipeline}': source_args"
    unknown = [a for a in args if a not in names]
    if unknown and not any_keyword:
        raise ProjectError(
            f"{where}: source '{source}' has no argument(s) {', '.join(map(repr, unknown))}; "
            f"its arguments: {', '.join(names) or '(none)'}"
        )
    if problems := source_value_problems(factory, dict(args), {}):
        (_, name), message = problems[0]
        raise ProjectError(f"{where}: argument '{name}': {message}")
    return coerce_source_args(factory, dict(args))
