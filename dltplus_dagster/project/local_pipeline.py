"""dlt's own pipeline commands (`info`, `trace`, `schema`, `drop`, `sync`, ...) on a project's
pipeline, in the profile's working dir.

Which working dir: `<data_dir>/pipelines/<pipeline>` of the active profile, the one
`dltplus pipeline NAME run` and `current.runner()` use. Dagster runs use per-run dirs that are
deleted on success, so after Dagster runs (or on another machine) `sync` restores this dir from
the destination: state, schemas and the tables they describe. The commands themselves are dlt's
(`dlt._workspace.cli._pipeline_command.pipeline_command`), run with the project's config
active; their output passes through a stream that masks the project's secrets.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from dltplus_dagster.project.dlt_config import set_run_context
from dltplus_dagster.project.errors import ProjectError

if TYPE_CHECKING:
    from dltplus_dagster.project.entities import EntityFactory

OPERATIONS = ("info", "trace", "schema", "drop", "sync", "load-package", "failed-jobs")
"""dlt pipeline commands offered on a project pipeline (the rest need dlt's dashboard/MCP)."""

NEEDS_LOCAL_STATE = ("info", "trace", "schema", "drop", "load-package", "failed-jobs")


class PipelineNotLocal(ProjectError):
    """A pipeline has no working dir in the active profile yet."""


def working_dir(entities: EntityFactory, name: str) -> str:
    """The profile working dir of declared pipeline `name` (it may not exist yet)."""
    entities.get_pipeline_entity(name)  # an unknown name lists the declared ones
    return os.path.join(entities.project.pipelines_dir, name)


def run_command(
    entities: EntityFactory,
    name: str,
    operation: str,
    *,
    verbosity: int = 0,
    yes: bool = False,
    clean: Callable[[str], str] = lambda s: s,
    **command_kwargs: Any,
) -> None:
    """Run dlt's pipeline command `operation` on pipeline `name` of the active profile.

    `yes` answers dlt's confirmations (`drop`, `sync`) with yes; otherwise they are asked on
    stdin. `clean` masks secrets in everything dlt prints. Raises `PipelineNotLocal` when the
    pipeline has no local working dir and the operation needs one. (Long because it is one
    dispatch table: each of dlt's command functions takes its own arguments.)
    """
    if operation not in OPERATIONS:
        raise ProjectError(f"unknown pipeline command '{operation}'; one of {', '.join(OPERATIONS)}")
    project = entities.project
    path = working_dir(entities, name)
    if operation in NEEDS_LOCAL_STATE and not os.path.isdir(path):
        raise PipelineNotLocal(
            f"pipeline '{name}' has no working dir in profile {project.current_profile} "
            f"({path}): run `dltplus pipeline {name} run`, or `dltplus pipeline {name} sync` "
            "to restore its state and schemas from the destination"
        )
    entity = entities.get_pipeline_entity(name)
    if operation == "sync":
        # the destination and dataset the manifest declares: dlt asks for them on stdin otherwise
        command_kwargs["destination"] = entities.get_destination(str(entity.destination))
        command_kwargs["dataset_name"] = entity.dataset_name
    set_run_context(project)
    import click
    from dlt._workspace.cli import echo as fmt
    from dlt._workspace.cli._pipeline_command import pipeline_command
    from dlt._workspace.cli.exceptions import CliCommandInnerException
    from dlt.pipeline.exceptions import CannotRestorePipelineException

    def run() -> None:
        pipeline_command(operation, name, project.pipelines_dir, verbosity, **command_kwargs)

    answers = fmt.always_choose(False, True) if yes else contextlib.nullcontext()
    with _cli_host("dltplus"), answers, _scrubbed_stdout(clean):
        try:
            try:
                run()
            except (ValueError, OSError) as e:  # e.g. a state.json that is not JSON
                unreadable = (
                    f"the working dir {path} could not be read ({type(e).__name__}: {e})"
                )
                if operation != "sync":
                    raise ProjectError(
                        f"pipeline '{name}' {operation}: {unreadable}; `dltplus pipeline {name} "
                        "sync` restores it from the destination"
                    ) from None
                # sync replaces the local state anyway: an unreadable one goes first
                fmt.warning(unreadable)
                if not fmt.confirm("Remove it and restore from the destination?", default=False):
                    return
                shutil.rmtree(path)
                run()
        except CannotRestorePipelineException as e:
            raise PipelineNotLocal(f"pipeline '{name}': {e}") from None
        except CliCommandInnerException as e:
            raise ProjectError(f"pipeline '{name}' {operation}: {e}") from None
        except click.exceptions.Abort:  # a question with no answer (stdin closed, Ctrl-C)
            raise ProjectError(
                f"pipeline '{name}' {operation}: aborted, nothing was changed (--yes answers yes)"
            ) from None
    if operation == "sync" and not os.path.isdir(path):
        raise ProjectError(
            f"pipeline '{name}' was not found in dataset '{entity.dataset_name}' on destination "
            f"'{entity.destination}': nothing to restore (run it first)"
        )


@contextlib.contextmanager
def _cli_host(name: str) -> Iterator[None]:
    """dlt prints follow-up commands as `<host> pipeline NAME ...`: ours has the same form."""
    from dlt._workspace.cli import echo as fmt

    previous = fmt.get_cli_host_name()
    fmt.set_cli_host_name(name)
    try:
        yield
    finally:
        fmt.set_cli_host_name(previous)


class _Scrubbing(io.TextIOBase):
    """A text stream that masks secrets in what is written through it."""

    def __init__(self, target: Any, clean: Callable[[str], str]) -> None:
        self._target = target
        self._clean = clean

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._target.write(self._clean(text))
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return bool(self._target.isatty())


@contextlib.contextmanager
def _scrubbed_stdout(clean: Callable[[str], str]) -> Iterator[None]:
    with contextlib.redirect_stdout(_Scrubbing(sys.stdout, clean)):
        yield
