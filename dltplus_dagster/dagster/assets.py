"""Asset factories: pipelines, transformations and external dataset tables of a project."""

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    DataVersion,
    MaterializeResult,
    ObserveResult,
    multi_asset,
    multi_observable_source_asset,
)

from dltplus_dagster.dagster.checks import check_specs, run_checks
from dltplus_dagster.dagster.column_lineage import sql_lineage_metadata
from dltplus_dagster.dagster.metadata import (
    DltTableMetadataSet,
    database_name,
    stored_schema_metadata,
    stored_table_schema,
    table_metadata,
)
from dltplus_dagster.dagster.partition_lock import partition_file_lock
from dltplus_dagster.dagster.partitions import backfill_policy_of, partitions_def, run_partition
from dltplus_dagster.dagster.resources import DltProjectResource
from dltplus_dagster.dagster.run_config import run_config_of, run_config_schema
from dltplus_dagster.dagster.schema_change_check import (
    contract_violation_results,
    schema_change_result,
    schema_change_spec,
    schema_check_selected,
)
from dltplus_dagster.dagster.translator import (
    AssetKind,
    DltProjectTranslator,
    TableAssetData,
    identity_metadata,
)
from dltplus_dagster.project.code_version import (
    pipeline_code_version,
    transformation_code_version,
)
from dltplus_dagster.project.dataset import Dataset
from dltplus_dagster.project.entities import EntityFactory, ResolvedPipeline
from dltplus_dagster.project.errors import SourceBuildError
from dltplus_dagster.project.model import TableCheck, TableSpec, TransformationEntity
from dltplus_dagster.project.names import dagster_name, naming_for, stored_table_name
from dltplus_dagster.project.orchestration import OrchestrationKeys, merged
from dltplus_dagster.project.project import Project
from dltplus_dagster.project.redact import scrub, secret_values
from dltplus_dagster.project.runner import RunResult
from dltplus_dagster.project.schema_changes import contract_violation, run_schema_changes
from dltplus_dagster.project.table_state import PipelineTable, TableListCache

if TYPE_CHECKING:
    from dlt import Pipeline
    from dlt.common.normalizers.naming import NamingConvention

DATASET_IO_MANAGER_KEY = "dlt_dataset_io"
LOCAL_FILE_TAG = "dltplus/local_file"
"""Op tag naming the local DuckDB file a step opens; the executor allows one such step at a time."""

LOCAL_FILE_DESTINATIONS = ("duckdb", "motherduck_local")

logger = logging.getLogger(__name__)


@dataclass
class ProjectAssets:
    """The assets built for a project, plus what jobs and schedules need to select them."""

    assets: list[AssetsDefinition]
    keys_by_pipeline: dict[str, list[AssetKey]]
    keys_by_transformation: dict[str, list[AssetKey]]
    local_file_tags: list[str]


def op_name(prefix: str, name: str) -> str:
    """`<prefix>_<name>` in Dagster's name alphabet (see `names.dagster_name`)."""
    return f"{prefix}_{dagster_name(name)}"


def _table_naming(entities: EntityFactory, destination: str) -> "NamingConvention":
    """dlt's naming convention of the destination: asset keys hold the tables' stored names."""
    return entities.naming(destination or None)


def _local_file_tag(entities: EntityFactory, destination: str) -> str | None:
    """`<type>:<destination>` for a destination that is a local file (one writer at a time)."""
    destination_type = entities.destination_type(destination)
    if destination_type in LOCAL_FILE_DESTINATIONS:
        return f"{destination_type}:{destination}"
    return None


def _checks_for(project: Project, dataset: str, table: str) -> TableCheck:
    spec = _table_entry(project, dataset, table)
    return spec.checks if spec else TableCheck()


def _table_entry(project: Project, dataset: str, table: str) -> TableSpec | None:
    """The table's entry under `datasets.<dataset>.tables`, if any."""
    ds = project.datasets.get(dataset)
    spec = ds.tables.get(table) if ds else None
    if ds and spec is None:  # declared as `Orders`, stored (and keyed) as `orders`
        naming = naming_for(None)
        spec = next(
            (s for n, s in ds.tables.items() if naming.normalize_tables_path(n) == table),
            None,
        )
    return spec


def _table_check_specs(project: Project, key: AssetKey, checks: TableCheck) -> list[AssetCheckSpec]:
    """Check specs of one table; a `case` is the user's SQL, shown with secrets masked."""
    secrets: list[str] = []
    if checks.case is not None:
        secrets = secret_values(project.settings_dir, project.current_profile, project.resolved)
    return check_specs(key, checks, secrets)


@dataclass(frozen=True)
class TableSpecs:
    """The asset specs of the tables one entity (pipeline, transformation or dataset) writes
    into one dataset: the one way the asset factories turn a table into a `TableAssetData`,
    the translator's spec and the table's check specs. A table-level `description` given to
    `data`/`spec` wins over the entity's; the table's manifest entry wins over both."""

    project: Project
    translator: DltProjectTranslator
    kind: AssetKind
    entity: str
    dataset: str
    destination: str
    destination_type: str
    naming: "NamingConvention"
    """The destination's naming convention: keys hold the tables' stored names."""
    description: str | None = None
    group: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    settings: OrchestrationKeys = field(default_factory=OrchestrationKeys)
    """The entity's orchestration settings (`datasets.<ds>.tables.<t>` entries win)."""
    code_version: str | None = None

    def stored_name(self, table: str) -> str:
        """`table` as the destination stores it (dlt's naming convention)."""
        return stored_table_name(self.naming, table)

    def data(
        self, table: str, description: str | None = None, deps: Sequence[AssetKey] = ()
    ) -> TableAssetData:
        entry = _table_entry(self.project, self.dataset, self.stored_name(table))
        settings = merged(self.settings, entry)
        return TableAssetData(
            kind=self.kind,
            entity=self.entity,
            dataset=self.dataset,
            table=self.stored_name(table),
            destination=self.destination,
            destination_type=self.destination_type,
            description=(entry and entry.description) or description or self.description,
            group=(entry and entry.group) or self.group,
            tags={**self.tags, **settings.tags},
            deps=deps,
            key_prefix=self.project.dagster.asset_key_prefix,
            orchestration=settings,
            code_version=self.code_version,
        )

    def key(self, table: str, description: str | None = None) -> AssetKey:
        """The key of the translator's spec (`get_asset_spec` is the one source of keys)."""
        return self.translator.get_asset_spec(self.data(table, description)).key

    def spec(
        self, table: str, description: str | None = None, deps: Sequence[AssetKey] = ()
    ) -> AssetSpec:
        """The translator's spec, with the table's `dlt/*` identity where the translator left it
        out; tables the project writes go through the dataset IO manager."""
        data = self.data(table, description, deps)
        spec = self.translator.get_asset_spec(data)
        identity_keys = ("dlt/dataset", "dlt/table", "dlt/destination", f"dlt/{self.kind}")
        if not all(k in spec.metadata for k in identity_keys):
            identity = identity_metadata(data)
            missing = {k: v for k, v in identity.items() if k not in spec.metadata}
            spec = spec.merge_attributes(metadata=missing)
        return spec if self.kind == "external" else spec.with_io_manager_key(DATASET_IO_MANAGER_KEY)

    def check_specs(self, key: AssetKey, table: str) -> list[AssetCheckSpec]:
        """The checks `datasets.<dataset>.tables.<table>.checks` declares, on asset `key`."""
        return _table_check_specs(self.project, key, _checks_for(self.project, self.dataset, table))


def build_project_assets(
    project: Project, translator: DltProjectTranslator, exclude_keys: Sequence[AssetKey] = (),
    state: TableListCache | None = None,
) -> ProjectAssets:
    """All assets of a project for the definitions-time profile (keys never contain it).

    `state` holds the pipelines' table lists (default: the project's own cache file)."""
    entities = state.entities if state is not None else EntityFactory(project)
    state = state or TableListCache(project, entities)
    result = ProjectAssets([], {}, {}, [])
    produced: set[AssetKey] = set(exclude_keys)
    try:
        for name in project.pipelines:
            pipeline = entities.resolve_pipeline(name)
            assets_def = pipeline_assets(project, entities, state, pipeline, translator)
            result.keys_by_pipeline[name] = list(assets_def.keys) if assets_def else []
            if assets_def is not None:
                result.assets.append(assets_def)
                produced.update(assets_def.keys)
    finally:
        state.save()
    for name in project.transformations:
        # deps name tables `<dataset>/<table>`; the translator may have keyed them otherwise
        assets_def = transformation_assets(
            project, entities, name, translator, _keys_by_table(result.assets)
        )
        result.assets.append(assets_def)
        result.keys_by_transformation[name] = list(assets_def.keys)
        produced.update(assets_def.keys)
    external = external_dataset_assets(project, entities, translator, produced)
    if external is not None:
        result.assets.append(external)
    result.local_file_tags = sorted(
        {t for d in entities.list_destinations() if (t := _local_file_tag(entities, d))}
        | {
            t
            for p in project.pipelines.values()
            if p.destination and (t := _local_file_tag(entities, p.destination))
        }
    )
    return result


def _keys_by_table(assets: Sequence[AssetsDefinition]) -> dict[tuple[str, str], AssetKey]:
    """(dataset, table) -> asset key of the tables already built (keys are the translator's)."""
    keys: dict[tuple[str, str], AssetKey] = {}
    for assets_def in assets:
        for key, spec in assets_def.specs_by_key.items():
            md = DltTableMetadataSet.extract(spec.metadata or {})
            if md.dataset is not None and md.table is not None:
                keys[(md.dataset, md.table)] = key
    return keys


def _op_tags(entities: EntityFactory, destination: str) -> dict[str, str]:
    """Op tags of a step writing to `destination`: the local file it opens, if any."""
    tags: dict[str, str] = {}
    if tag := _local_file_tag(entities, destination):
        tags[LOCAL_FILE_TAG] = tag
    return tags


def pipeline_assets(
    project: Project,
    entities: EntityFactory,
    state: TableListCache,
    pipeline: ResolvedPipeline,
    translator: DltProjectTranslator,
) -> AssetsDefinition | None:
    """One multi-asset per pipeline, one asset per table, subsettable by resource.

    Nested tables (`orders__items`) and tables named per row are assets too once known (see
    `TableListCache`); a nested table depends on its parent table. A pipeline whose source cannot
    be built now (a config value or secret only the run environment has) keeps the tables
    known without it, and is left out (with a warning naming pipeline, source and key) when
    there are none: `validate` accepts such a project, so the other pipelines still load.
    (Most of its length is the asset body, a closure over the specs it runs.)
    """
    name, entity = pipeline.name, pipeline.entity
    tables = _tables_of(project, state, pipeline)
    if tables is None:
        return None
    table_specs = TableSpecs(
        project, translator, "pipeline", name, pipeline.dataset_name, pipeline.destination,
        pipeline.destination_type, _table_naming(entities, pipeline.destination),
        description=entity.description, group=entity.group or project.dagster.default_group,
        tags=entity.tags, settings=entity, code_version=pipeline_code_version(project, name),
    )
    specs: list[AssetSpec] = []
    resource_by_key: dict[AssetKey, str] = {}
    table_by_key: dict[AssetKey, str] = {}
    checks: list[AssetCheckSpec] = []
    # one translator call per table; a nested table's again with its parent's key as dep
    first = {t.table: table_specs.spec(t.table, t.description) for t in tables}
    key_by_table = {table: spec.key for table, spec in first.items()}
    for t in tables:
        parent = key_by_table.get(t.parent or "")
        spec = (first[t.table] if parent is None
                else table_specs.spec(t.table, t.description, [parent]))
        specs.append(spec)
        resource_by_key[spec.key] = t.resource
        table_by_key[spec.key] = table_specs.stored_name(t.table)
        checks.extend(table_specs.check_specs(spec.key, t.table))
        checks.append(schema_change_spec(spec.key))

    @multi_asset(
        name=op_name("dlt_pipeline", name),
        specs=specs,
        check_specs=checks,
        can_subset=True,
        op_tags=_op_tags(entities, pipeline.destination),
        pool=project.dagster.pool,
        description=entity.description or f"dlt pipeline {name}",
        partitions_def=partitions_def(entity.partitions, name),
        backfill_policy=backfill_policy_of(entity.partitions),
        config_schema=run_config_schema(),  # PipelineRunConfig: ops.<op name>.config
    )
    def _pipeline_asset(
        context: AssetExecutionContext, dlt_project: DltProjectResource
    ) -> Iterator[MaterializeResult[Any] | AssetCheckResult]:
        config = run_config_of(context)  # the Launchpad's PipelineRunConfig
        selected = [k for k in specs_keys(specs) if k in context.selected_asset_keys]
        resources = _resources_to_run([resource_by_key[k] for k in selected], len(specs))
        with dlt_project.bind_current() as run_project:
            runner = dlt_project.runner()
            # a working dir per run and pipeline: parallel runs never share local state; dlt
            # restores state and schemas from the destination into the fresh dir
            work_dir = os.path.join(run_project.data_dir, "runs", context.run.run_id, name)
            try:
                # the Launchpad's run config and the run's partition (key or range)
                options = {**config.runner_kwargs(), **run_partition(context)}
                result = runner.run_pipeline(
                    name, resources=resources, pipelines_dir=work_dir, **options
                )
            except Exception as e:
                if violation := contract_violation(e):  # recorded as the check's ERROR
                    yield from contract_violation_results(
                        context, violation, {k: table_by_key[k] for k in selected}
                    )
                raise
            context.log.info(str(result))
            if result.new_tables:
                context.log.warning(
                    f"pipeline {name} loaded table(s) {', '.join(result.new_tables)} that are "
                    "not assets yet: reload the definitions to see them"
                )
            ds = dlt_project.catalog().dataset(result.dataset_name, result.destination_name)
            with partition_file_lock(runner, name, options):  # its reads take their turn too
                yield from _pipeline_results(
                    context, run_project, ds, result, {k: table_by_key[k] for k in selected},
                    runner.secrets,
                )
            _remove_run_dir(work_dir)  # kept on failure, for inspection

    return _pipeline_asset


def _tables_of(
    project: Project, state: TableListCache, pipeline: ResolvedPipeline
) -> list[PipelineTable] | None:
    """The pipeline's tables; when its source cannot be built here, the tables known without
    it (None if there are none), with a warning naming pipeline, source and key (secrets
    masked)."""
    try:
        return state.pipeline_tables(pipeline)
    except SourceBuildError as e:
        tables = state.known_tables(pipeline.name)
        secrets = secret_values(project.settings_dir, project.current_profile, project.resolved)
        logger.warning("%s; %s", scrub(str(e), secrets),
                       f"its known tables: {', '.join(t.table for t in tables)}"
                       if tables else "the pipeline has no assets until it can be built")
        return tables or None


def _resources_to_run(selected_resources: Sequence[str], all_tables: int) -> list[str] | None:
    """The resources a subset run selects; None (all) when every table is selected or one
    selected table is written by several resources. A nested table maps to its root's
    resource; "" marks a declared table that one of several per-row resources writes."""
    wanted = set(selected_resources)
    if len(selected_resources) < all_tables and "" not in wanted:
        return sorted(wanted)
    return None


def _pipeline_results(
    context: AssetExecutionContext,
    run_project: Project,
    ds: Dataset,
    result: RunResult,
    table_by_key: dict[AssetKey, str],
    secrets: Callable[[], Sequence[str]],
) -> Iterator[MaterializeResult[Any] | AssetCheckResult]:
    """A materialization (row counts, schema, load ids) and the selected checks per table."""
    if result.load_info is not None and result.load_info.pipeline.default_schema_name:
        # the loaded tables are in the schema the run just stored: no need to read it
        # a pipeline run's LoadInfo holds the dlt Pipeline
        pipeline = cast("Pipeline", result.load_info.pipeline)
        ds.assume_schemas([pipeline.default_schema])
    counts = replaced_row_counts(result)
    if rest := [t for t in table_by_key.values() if t not in counts and t in ds.tables]:
        counts.update(ds.row_counts(table_names=rest))
    database = database_name(ds)
    wanted = any(schema_check_selected(context, k) for k in table_by_key)
    changes = run_schema_changes(result.load_info) if wanted and result.load_info else {}
    for key, table in table_by_key.items():
        yield MaterializeResult(
            asset_key=key,
            metadata=table_metadata(
                ds,
                table,
                counts.get(table, 0),
                database,
                result.tables.get(table) or stored_table_schema(ds, table),
                DltTableMetadataSet(
                    rows_loaded=result.row_counts.get(table, 0),
                    load_id=", ".join(result.load_ids),
                    pipeline=result.pipeline_name,
                    schema_name=result.schema_name or "",
                    schema_version=result.schema_version or 0,
                    schema_hash=result.schema_hash or "",
                    profile=run_project.current_profile,
                ),
            ),
        )
        yield from _selected_checks(context, key, ds, table, counts.get(table, 0),
                                    _checks_for(run_project, result.dataset_name, table),
                                    secrets)
        if schema_check_selected(context, key):
            yield schema_change_result(key, table, changes.get(table))


def _remove_run_dir(work_dir: str) -> None:
    """Delete a pipeline's run dir, and the run's folder once no other pipeline uses it."""
    shutil.rmtree(work_dir, ignore_errors=True)
    with contextlib.suppress(OSError):  # another pipeline of the same run still works there
        os.rmdir(os.path.dirname(work_dir))


def replaced_row_counts(result: RunResult) -> dict[str, int]:
    """Row counts known without a query: a table the run replaced holds what the run loaded."""
    return {
        table: rows
        for table, rows in result.row_counts.items()
        if (result.tables.get(table) or {}).get("write_disposition") == "replace"
    }


def specs_keys(specs: Sequence[AssetSpec]) -> list[AssetKey]:
    return [s.key for s in specs]


def _selected_checks(
    context: AssetExecutionContext,
    key: AssetKey,
    ds: Dataset,
    table: str,
    row_count: int,
    checks: TableCheck,
    secrets: Callable[[], Sequence[str]] = tuple,
) -> Iterator[AssetCheckResult]:
    """The results of the checks on `key` that the run selected."""
    selected = context.selected_asset_check_keys
    if not any(c.asset_key == key for c in selected):
        return  # no query (nor secrets lookup) for checks nobody selected
    for result in run_checks(key, ds, table, checks, row_count, secrets()):
        if any(c.asset_key == key and c.name == result.check_name for c in selected):
            yield result


def transformation_assets(
    project: Project,
    entities: EntityFactory,
    name: str,
    translator: DltProjectTranslator,
    keys_by_table: dict[tuple[str, str], AssetKey] | None = None,
) -> AssetsDefinition:
    """A multi-asset over a transformation's output tables, depending on the tables it reads.
    (Most of its length is the asset body, a closure over the specs it runs.)"""
    entity = entities.get_transformation(name)
    output = entity.output or ""
    out_dests = entities.dataset_destinations(output)
    destination = out_dests[0] if out_dests else ""
    deps = _transformation_deps(project, entities, entity, translator, keys_by_table or {})
    table_specs = TableSpecs(
        project, translator, "transformation", name, output, destination,
        entities.destination_type(destination) if destination else "",
        _table_naming(entities, destination),
        description=entity.description, group=entity.group or project.dagster.default_group,
        tags=entity.tags, settings=entity,
        code_version=transformation_code_version(project, name),
    )
    specs: list[AssetSpec] = []
    checks: list[AssetCheckSpec] = []
    table_by_key: dict[AssetKey, str] = {}
    for table in entity.output_tables() or [name]:
        spec = table_specs.spec(table, deps=deps)
        specs.append(spec)
        table_by_key[spec.key] = table_specs.stored_name(table)
        checks.extend(table_specs.check_specs(spec.key, table))

    def input_key(ds: str, table: str) -> AssetKey:
        return _input_table_key(project, entities, translator, keys_by_table or {}, ds, table)

    @multi_asset(
        name=op_name("dlt_transformation", name),
        specs=specs,
        check_specs=checks,
        op_tags=_op_tags(entities, destination) if destination else None,
        pool=project.dagster.pool,
        description=entity.description or f"transformation {name}",
        partitions_def=partitions_def(entity.partitions, name),
        backfill_policy=backfill_policy_of(entity.partitions),
    )
    def _transformation_asset(
        context: AssetExecutionContext, dlt_project: DltProjectResource
    ) -> Iterator[MaterializeResult[Any] | AssetCheckResult]:
        with dlt_project.bind_current() as run_project:
            written = dlt_project.runner().run_transformation(name, **run_partition(context))
            ds = dlt_project.catalog().dataset(output)
            counts = ds.row_counts(table_names=[t for t in written if t in ds.tables])
            database = database_name(ds)
            for spec in specs:
                table = table_by_key[spec.key]
                yield MaterializeResult(
                    asset_key=spec.key,
                    metadata=table_metadata(
                        ds, table, counts.get(table, 0), database, stored_table_schema(ds, table),
                        DltTableMetadataSet(
                            rows_written=written.get(table, 0), transformation=name,
                            profile=run_project.current_profile,
                            load_id=written.load_ids.get(table, ""),
                            **stored_schema_metadata(ds, table),
                        ),
                    ) | sql_lineage_metadata(
                        dlt_project.catalog(), entity, table, table_specs.naming, input_key
                    ),
                )
                yield from _selected_checks(context, spec.key, ds, table, counts.get(table, 0),
                                            _checks_for(run_project, output, table),
                                            dlt_project.runner().secrets)

    return _transformation_asset


def _transformation_deps(
    project: Project,
    entities: EntityFactory,
    entity: TransformationEntity,
    translator: DltProjectTranslator,
    known: dict[tuple[str, str], AssetKey],
) -> list[AssetKey]:
    """The keys a transformation depends on: its `depends_on` (`<dataset>/<table>`, or a raw
    key path), else every declared table of its input datasets. A table built already keeps
    the key the translator gave it (`known`); others get the key of an external table."""
    prefix = list(project.dagster.asset_key_prefix)

    def dep_key(ds: str, table: str) -> AssetKey:
        return _input_table_key(project, entities, translator, known, ds, table)

    if entity.depends_on is None:
        return [
            dep_key(ds, t)
            for ds in entity.inputs
            for t in (project.datasets[ds].tables if ds in project.datasets else {})
        ]
    deps = []
    for d in entity.depends_on:
        ds, _, table = d.partition("/")
        deps.append(dep_key(ds, table) if table and "/" not in table
                    else AssetKey([*prefix, *d.split("/")]))
    return deps


def _dataset_table_specs(
    project: Project, entities: EntityFactory, translator: DltProjectTranslator, dataset: str
) -> TableSpecs:
    """The specs of a dataset's tables as the project sees them when nothing in it writes
    them: external, observable tables on the dataset's first destination."""
    ds = project.datasets.get(dataset)
    dests = entities.dataset_destinations(dataset)
    destination = dests[0] if dests else ""
    return TableSpecs(
        project, translator, "external", dataset, dataset, destination,
        entities.destination_type(destination) if destination else "",
        _table_naming(entities, destination),
        description=ds.description if ds else None,
        group=(ds.group if ds else None) or project.dagster.default_group or dataset,
    )


def _input_table_key(
    project: Project,
    entities: EntityFactory,
    translator: DltProjectTranslator,
    known: Mapping[tuple[str, str], AssetKey],
    ds: str,
    table: str,
) -> AssetKey:
    """The key of a table a transformation reads: the key the translator gave it when it was
    built already (`known`), else the key of the dataset's external table."""
    specs = _dataset_table_specs(project, entities, translator, ds)
    table = specs.stored_name(table)
    if (ds, table) in known:
        return known[(ds, table)]
    declared = project.datasets[ds].tables if ds in project.datasets else {}
    description = next(  # as the external asset gets it: the declared table's
        (t.description for n, t in declared.items() if specs.stored_name(n) == table), None
    )
    return specs.key(table, description)


def external_dataset_assets(
    project: Project,
    entities: EntityFactory,
    translator: DltProjectTranslator,
    produced: set[AssetKey],
) -> AssetsDefinition | None:
    """Declared dataset tables nothing in the project writes: observable, reporting row counts."""
    specs: list[AssetSpec] = []
    table_by_key: dict[AssetKey, tuple[str, str]] = {}
    for ds_name, ds in project.datasets.items():
        if not entities.dataset_destinations(ds_name):
            continue
        table_specs = _dataset_table_specs(project, entities, translator, ds_name)
        for table in ds.tables:
            spec = table_specs.spec(table, ds.tables[table].description)
            if spec.key in produced:
                continue
            specs.append(spec)
            table_by_key[spec.key] = (ds_name, table_specs.stored_name(table))
    if not specs:
        return None

    # no op tags here: @multi_observable_source_asset takes none (passing them fails at load)
    @multi_observable_source_asset(  # type: ignore[untyped-decorator]  # untyped in dagster
        name="dlt_external_tables",
        specs=specs,
        can_subset=True,
    )
    def _observe(
        context: AssetExecutionContext, dlt_project: DltProjectResource
    ) -> Iterator[ObserveResult]:
        with dlt_project.bind_current():
            catalog = dlt_project.catalog()
            for key in context.selected_asset_keys:
                ds_name, table = table_by_key[key]
                ds = catalog.dataset(ds_name)
                count = _external_row_count(ds, table)
                yield ObserveResult(
                    asset_key=key,
                    data_version=DataVersion(str(count)),
                    metadata=table_metadata(ds, table, count, database_name(ds)),
                )

    return cast("AssetsDefinition", _observe)  # what the decorator returns


def _external_row_count(ds: Dataset, table: str) -> int:
    """Rows of a table, also one no dlt schema knows (created by another tool); 0 if missing."""
    if table in ds.tables:
        return ds.row_counts(table_names=[table]).get(table, 0)
    from dlt.destinations.exceptions import DatabaseUndefinedRelation

    client = ds.dlt_dataset.sql_client
    try:
        with client:
            qualified = client.make_qualified_table_name(table)
            rows = client.execute_sql(f"SELECT COUNT(*) FROM {qualified}")
    except DatabaseUndefinedRelation:
        return 0
    return int(rows[0][0]) if rows else 0
