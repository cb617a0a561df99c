"""DltProjectComponent: a dlt project as a Dagster component (`dg`), with state-backed defs.

`defs.yaml`::

    type: dltplus_dagster.DltProjectComponent
    attributes:
      project_dir: ../../../../dlt_project   # relative to this file; or `project: my_package`
      profile: dev                            # optional
      select: ["shop_raw/*"]                  # optional: globs over <dataset>/<table>
      translation:                            # optional, like dagster-dbt's
        group_name: ingest
        key: "warehouse/{{ data.dataset }}/{{ data.table }}"

The defs state is the table-list cache (`TableListCache`): `dg utils refresh-defs-state`
fills it through `prepare_table_state`, the code `dltplus project prepare` runs, and loading
reads it without calling a source factory (nor needing a source's secrets). The assets are
`build_definitions`' own (`project_definitions`); `get_asset_spec` and `execute` are the
override points.
"""

# no `from __future__ import annotations`: Dagster resolves the attribute annotations below
# into the component's YAML schema at class creation

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from dagster import (
    AssetExecutionContext,
    AssetSpec,
    ComponentLoadContext,
    Definitions,
    Resolvable,
    Resolver,
)
from dagster.components import (
    DefsStateConfig,
    DefsStateConfigArgs,
    ResolvedDefsStateConfig,
    StateBackedComponent,
)
from dagster.components.resolved.context import ResolutionContext
from dagster.components.scaffold.scaffold import scaffold_with
from dagster.components.utils.translation import TranslationFn, TranslationFnResolver

from dltplus_dagster.dagster.asset_rebuild import StepFn, rebuild_assets
from dltplus_dagster.dagster.assets import ProjectAssets
from dltplus_dagster.dagster.component_scaffolder import DltProjectScaffolder
from dltplus_dagster.dagster.definitions import project_definitions
from dltplus_dagster.dagster.resources import DltProjectResource
from dltplus_dagster.dagster.translator import DltProjectTranslator, TableAssetData
from dltplus_dagster.project.entities import EntityFactory
from dltplus_dagster.project.errors import ProjectError, ProjectInvalid
from dltplus_dagster.project.packaging import locate_project
from dltplus_dagster.project.project import Project, load_project
from dltplus_dagster.project.table_prepare import prepare_table_state
from dltplus_dagster.project.table_state import TableListCache
from dltplus_dagster.project.validate import ensure_valid, validate_project

logger = logging.getLogger(__name__)


def _source_relative(context: ResolutionContext, value: str | None) -> str | None:
    """`project_dir` relative to the `defs.yaml` that sets it (absolute paths stay)."""
    return str(context.resolve_source_relative_path(value)) if value else None


def _table_vars(data: TableAssetData) -> dict[str, Any]:
    return {"data": data}


@scaffold_with(DltProjectScaffolder)
@dataclass
class DltProjectComponent(StateBackedComponent, Resolvable):
    """Every pipeline table, transformation output and declared dataset table of a dlt project
    (`dlt.yml`) as Dagster assets, with the manifest's checks, jobs and schedules, the
    `dlt_project` resource and the `dlt_dataset_io` IO manager: what `build_definitions`
    returns, from a `defs.yaml`.

    Subclass and override `get_asset_spec` (asset keys, groups, tags) or `execute` (what a
    pipeline, transformation or observation step runs).
    """

    project_dir: Annotated[
        str | None, Resolver(_source_relative, model_field_type=str | None)
    ] = None
    """Folder holding `dlt.yml`, relative to the `defs.yaml` (or `{{ project_root }}/...`)."""
    project: str | None = None
    """An installed project package (module or distribution name) instead of `project_dir`;
    its default profile (`access`) applies unless `profile` is given."""
    profile: str | None = None
    """The profile definitions load with and runs use (default: the project's selection)."""
    select: Sequence[str] | None = None
    """Only these project tables, as globs over `<dataset>/<table>` (`shop_raw/*`)."""
    translation: Annotated[
        TranslationFn[TableAssetData],
        TranslationFnResolver[TableAssetData](_table_vars),
    ] | None = None
    """Asset attributes per table (`key`, `group_name`, `tags`, ...); `{{ data.dataset }}`,
    `{{ data.table }}`, `{{ data.entity }}` and `{{ data.kind }}` are the table's."""
    defs_state: ResolvedDefsStateConfig = field(
        default_factory=DefsStateConfigArgs.local_filesystem
    )

    def __post_init__(self) -> None:
        self._steps: dict[str, StepFn] = {}

    # --- where the project is ---------------------------------------------------------------
    def _located(self) -> tuple[str, str | None]:
        if bool(self.project_dir) == bool(self.project):
            raise ProjectError(
                "DltProjectComponent: set exactly one of `project_dir` (a folder with dlt.yml) "
                "and `project` (an installed project package)"
            )
        return locate_project(self.project_dir or self.project, self.profile)

    def _load_project(self) -> tuple[Project, str | None]:
        root, profile = self._located()
        return load_project(root, profile), profile

    # --- defs state: the table-list cache ---------------------------------------------------
    @property
    def defs_state_config(self) -> DefsStateConfig:
        name = self.project or os.path.basename(os.path.normpath(self.project_dir or ""))
        key = f"{type(self).__name__}[{name}{f'@{self.profile}' if self.profile else ''}]"
        return DefsStateConfig.from_args(self.defs_state, default_key=key)

    def write_state_to_path(self, state_path: Path) -> None:
        """Find every pipeline's tables (source factories are called, nothing is extracted)
        and store them at `state_path`: `dltplus project prepare`'s code. Fails when a
        source cannot be built, naming the pipeline (secrets masked)."""
        from dltplus_dagster.project.redact import scrub

        project, _ = self._load_project()
        ensure_valid(project, tables=False)
        state_path.parent.mkdir(parents=True, exist_ok=True)
        entities = EntityFactory(project)
        prepared = prepare_table_state(project, str(state_path), entities)
        secrets = project.secret_values()
        if prepared.failed:
            raise ProjectError("\n".join(
                f"pipeline '{p.name}': source '{p.source}' could not be built: "
                f"{scrub((str(p.error) or repr(p.error)).splitlines()[0], secrets)}"
                for p in prepared.failed
            ))
        # the table checks of `dltplus project validate` (two writers of a table, ...), on the
        # lists just stored: loading from this state skips them
        problems = validate_project(
            project, state=TableListCache(project, entities, str(state_path), offline=True)
        )
        if problems:
            raise ProjectInvalid(
                [scrub(p, secrets) for p in problems],
                f"project {project.name}, profile {project.current_profile}",
            )

    def build_defs_from_state(
        self, context: ComponentLoadContext, state_path: Path | None
    ) -> Definitions:
        """The project's definitions, table lists read from the defs state: no source is
        called. With no state yet, the lists are found once as `build_definitions` finds them
        (the project's own cache, filled by calling source factories on a miss), with a
        warning saying so."""
        project, profile = self._load_project()
        entities = EntityFactory(project)
        if state_path is None:
            logger.warning(
                "%s: no defs state yet for key %s; the table lists come from the project's "
                "own cache, and source factories are called for pipelines it does not hold. "
                "Run `dg utils refresh-defs-state` where the sources' config and secrets are set",
                type(self).__name__, self.defs_state_config.key,
            )
            state = TableListCache(project, entities)
        else:
            state = TableListCache(project, entities, str(state_path), offline=True)
        ensure_valid(project, tables=state_path is None, state=state)
        return project_definitions(
            project, profile, state, _ComponentTranslator(self), adapt=self._adapt
        )

    def _adapt(self, built: ProjectAssets) -> ProjectAssets:
        # steps are rebuilt around `execute` only when a subclass overrides it: the default
        # runs the step body as it is (a rebuild costs a second multi_asset per pipeline)
        overridden = type(self).execute is not DltProjectComponent.execute
        return rebuild_assets(built, self.select, self._wrap_step if overridden else None)

    def _wrap_step(self, op_name: str, body: StepFn) -> StepFn:
        self._steps[op_name] = body
        return self.execute

    # --- override points ----------------------------------------------------------------------
    def get_asset_spec(self, data: TableAssetData) -> AssetSpec:
        """The spec of one table asset: `DltProjectTranslator`'s, then `translation`.

        Override to change keys, groups, tags or descriptions in one place; keep the
        `dlt/dataset` and `dlt/table` metadata (transformation deps and the IO manager find
        tables through them)."""
        spec = DltProjectTranslator().get_asset_spec(data)
        return self.translation(spec, data) if self.translation is not None else spec

    def execute(
        self, context: AssetExecutionContext, dlt_project: DltProjectResource
    ) -> Iterator[Any]:
        """Run one step: the selected tables of a pipeline (through the project's runner), a
        transformation, or the observation of declared tables. A pipeline step's Launchpad
        settings are `run_config_of(context)` (`PipelineRunConfig`). Override to add work
        around it, e.g. `yield from super().execute(context, dlt_project)` between two log
        lines."""
        yield from self._steps[context.op_def.name](context, dlt_project)


class _ComponentTranslator(DltProjectTranslator):
    """Asks the component for each spec, so a subclass's `get_asset_spec` applies."""

    def __init__(self, component: DltProjectComponent) -> None:
        self.component = component

    def get_asset_spec(self, data: TableAssetData) -> AssetSpec:
        return self.component.get_asset_spec(data)

    def get_asset_key(self, data: TableAssetData) -> Any:
        return self.get_asset_spec(data).key
