"""The typed manifest model, its validation and its JSON Schema.

Each section of `dlt.yml` is a dataclass. `build()` turns a plain mapping into those classes,
checking types from the type hints, and reports the first problem with file, line and key path.
`json_schema()` derives the editor schema from the same classes, so the two never drift apart.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Union

from dltplus_dagster.project.errors import ManifestError
from dltplus_dagster.project.manifest import KeyPath, Locations, error_at
from dltplus_dagster.project.orchestration import OrchestrationKeys, check_orchestration

logger = logging.getLogger(__name__)

WriteDisposition = Literal["append", "replace", "merge", "skip"]
ContractMode = Literal["evolve", "discard_value", "freeze", "discard_row"]
PipelineStep = Literal["run", "sync", "extract", "normalize", "load"]


@dataclass
class ContractSpec:
    tables: ContractMode | None = None
    columns: ContractMode | None = None
    data_type: ContractMode | None = None


@dataclass
class RetryPolicy:
    type: Literal["none", "fixed", "backoff"] = "none"
    max_attempts: int = 1
    multiplier: float = 1.0
    min: float = 1.0
    max: float = 60.0


@dataclass
class RunConfig:
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    retry_pipeline_steps: list[PipelineStep] = field(default_factory=lambda: ["load"])
    run_from_clean_folder: bool = False
    lock_timeout: float = 0.0
    """Seconds a run waits for another run of the same pipeline and profile (0: fail at once)."""
    store_trace_info: bool | str = False
    """Load every attempt's dlt trace: `true` into `_trace_<dataset>` on the run's destination
    (trace pipeline `_trace_<pipeline>`), a string names a declared pipeline to load it with."""


@dataclass
class ProjectSettings:
    name: str | None = None
    project_dir: str | None = None
    default_profile: str = "dev"
    allow_undefined_entities: bool = True
    data_dir: str | None = None
    local_dir: str | None = None


PROFILE_PROJECT_KEYS = ("allow_undefined_entities", "data_dir", "local_dir")


@dataclass
class SourceEntity:
    EXTRA: ClassVar[str] = "config"
    name: str = field(default="", metadata={"from_key": True})
    type: str | None = None
    with_args: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class DestinationEntity:
    EXTRA: ClassVar[str] = "config"
    name: str = field(default="", metadata={"from_key": True})
    type: str | None = None
    config: dict[str, Any] = field(default_factory=dict)


PartitionType = Literal["hourly", "daily", "weekly", "monthly", "static", "dynamic"]
BackfillPolicyName = Literal["single_run", "per_partition"]


@dataclass
class PartitionsSpec:
    """`partitions:` of a pipeline or transformation (see `project/partitions.py`)."""

    type: PartitionType | None = None
    start: Any = None
    """First partition (time windows): a date or date-time, as text or a YAML date."""
    end: Any = None
    """Exclusive end of the last partition (time windows); open-ended when unset."""
    timezone: str | None = None
    fmt: str | None = None
    """strftime format of the partition keys (time windows; Dagster's default per type)."""
    values: list[str] | None = None
    """The partition keys of a `static` type."""
    source_args: dict[str, Any] = field(default_factory=dict)
    """Source arguments of a run, with `{partition_key}`, `{partition_start}`, `{partition_end}`."""
    backfill: BackfillPolicyName | None = None
    """`single_run` (default for time windows): a backfill is one run over the range;
    `per_partition` (default otherwise): one run per partition."""


PIPELINE_KWARGS = ("dev_mode", "refresh", "export_schema_path", "import_schema_path", "staging")


@dataclass
class PipelineEntity(OrchestrationKeys):
    name: str = field(default="", metadata={"from_key": True})
    source: str | None = None
    destination: str | None = None
    dataset_name: str | None = None
    progress: str | None = None
    run_config: RunConfig = field(default_factory=RunConfig)
    write_disposition: WriteDisposition | None = None
    dev_mode: bool | None = None
    refresh: Literal["drop_sources", "drop_resources", "drop_data"] | None = None
    export_schema_path: str | None = None
    import_schema_path: str | None = None
    staging: str | None = None
    # Dagster extras, ignored by plain dlt
    schedule: str | None = None
    group: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    resources: list[str] | None = None
    """Resources of the source to run (default: all selected by the source)."""
    table_names: dict[str, str] = field(default_factory=dict)
    """Resource -> table name, for resources whose default table name does not fit."""
    partitions: PartitionsSpec | None = None

    def pipeline_kwargs(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in PIPELINE_KWARGS if getattr(self, k) is not None}


Severity = Literal["warn", "error"]


@dataclass
class RowCountBounds:
    min: int | None = None
    max: int | None = None


@dataclass
class TableCheck:
    """Data-quality checks of one table (evaluated by `project/checks.py`)."""

    not_empty: bool = False
    unique: list[str] | None = None
    """Columns that are unique together (`is_unique` is dlt+'s name for it)."""
    not_null: list[str] | None = None
    """Columns without nulls (`is_not_null` is dlt+'s name for it)."""
    is_unique: list[str] | None = None
    is_not_null: list[str] | None = None
    is_in: dict[str, list[Any]] | None = None
    """Column -> accepted values (null in the list accepts nulls)."""
    is_primary_key: list[str] | None = None
    row_count: RowCountBounds | None = None
    case: str | list[str] | None = None
    """SQL boolean(s) every row must satisfy; the user's own SQL, run as-is."""
    severity: dict[str, Severity] = field(default_factory=dict)
    """Check name -> warn or error (default error)."""


@dataclass
class TableSpec(OrchestrationKeys):
    description: str | None = None
    checks: TableCheck = field(default_factory=TableCheck)


@dataclass
class DatasetEntity:
    name: str = field(default="", metadata={"from_key": True})
    destination: list[str] | None = None
    contract: ContractMode | ContractSpec | None = None
    description: str | None = None
    group: str | None = None
    tables: dict[str, TableSpec] = field(default_factory=dict)


@dataclass
class TransformationEntity(OrchestrationKeys):
    name: str = field(default="", metadata={"from_key": True})
    function: str | None = None
    """Dotted reference to a Python function, or `module.func` under `transformations/`."""
    sql: dict[str, str] = field(default_factory=dict)
    """Output table -> SQL over the (single) input dataset."""
    inputs: list[str] = field(default_factory=list)
    output: str | None = None
    write_disposition: WriteDisposition = "replace"
    tables: list[str] = field(default_factory=list)
    """Output tables the function writes (SQL transformations name them in `sql`)."""
    depends_on: list[str] | None = None
    """Input tables as `dataset/table`; by default every known table of the inputs."""
    group: str | None = None
    description: str | None = None
    partitions: PartitionsSpec | None = None
    """Partitions of the outputs (time windows: the window reaches the function and the SQL)."""

    def output_tables(self) -> list[str]:
        return list(self.sql) or list(self.tables)


@dataclass
class DagsterJob:
    pipelines: list[str] = field(default_factory=list)
    transformations: list[str] = field(default_factory=list)
    assets: list[str] = field(default_factory=list)
    """Asset selection strings (Dagster's syntax, e.g. `key:"shop_raw/*"`)."""
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class DagsterSchedule:
    job: str = ""
    cron: str = ""
    timezone: str | None = None
    description: str | None = None


@dataclass
class DagsterSection:
    asset_key_prefix: list[str] = field(default_factory=list)
    default_group: str | None = None
    jobs: dict[str, DagsterJob] = field(default_factory=dict)
    schedules: dict[str, DagsterSchedule] = field(default_factory=dict)
    pool: str | None = None
    """Dagster pool of every pipeline and transformation step of the project (none when unset).

    A pool only limits concurrency once the Dagster instance gives it a limit
    (`concurrency.pools` in dagster.yaml or `dagster instance concurrency set <pool> N`); steps
    on one local DuckDB file are kept apart by the `dltplus/local_file` op tag instead.
    """


@dataclass
class Manifest:
    """The merged manifest of one profile."""

    project: ProjectSettings = field(default_factory=ProjectSettings)
    sources: dict[str, SourceEntity | None] = field(default_factory=dict)
    destinations: dict[str, DestinationEntity | None] = field(default_factory=dict)
    pipelines: dict[str, PipelineEntity | None] = field(default_factory=dict)
    datasets: dict[str, DatasetEntity | None] = field(default_factory=dict)
    transformations: dict[str, TransformationEntity | None] = field(default_factory=dict)
    runtime: dict[str, Any] = field(default_factory=dict)
    dagster: DagsterSection = field(default_factory=DagsterSection)
    profiles: dict[str, dict[str, Any] | None] = field(default_factory=dict)


SECTIONS = tuple(f.name for f in dataclasses.fields(Manifest))


# --- building -------------------------------------------------------------------------------


def build_manifest(doc: dict[str, Any], locations: Locations) -> Manifest:
    """Validate the merged document and build the typed manifest.

    Unknown top-level keys are dlt config passed through (as dlt+ does), with a warning.
    """
    known = {k: v for k, v in doc.items() if k in SECTIONS}
    for extra in sorted(set(doc) - set(SECTIONS)):
        logger.warning(
            "dlt.yml: top-level key '%s' is not a project section; it is passed to dlt as config",
            extra,
        )
    manifest: Manifest = _build(Manifest, known, (), locations)
    for section in ("sources", "destinations", "pipelines", "datasets", "transformations"):
        entities = getattr(manifest, section)
        hint = _hints(Manifest)[section]
        entity_cls = _strip_optional(typing.get_args(hint)[1])
        for name, entity in list(entities.items()):
            entities[name] = entity if entity is not None else entity_cls()
            entities[name].name = name
    _check_cron(manifest, locations)
    _check_table_checks(manifest, locations)
    check_orchestration(manifest, locations)
    return manifest


def _check_table_checks(manifest: Manifest, locations: Locations) -> None:
    from dltplus_dagster.project.checks import declaration_problems

    for ds_name, ds in manifest.datasets.items():
        assert ds is not None  # parse_manifest made empty entities (None) defaults
        for table, spec in ds.tables.items():
            for subpath, problem in declaration_problems(spec.checks):
                path = ("datasets", ds_name, "tables", table, "checks", *subpath)
                raise error_at(locations, path, problem)


def _check_cron(manifest: Manifest, locations: Locations) -> None:
    """Crons and timezones as Dagster will check them, so definitions load never fails on
    them (see `cron.py`)."""
    from dltplus_dagster.project.cron import cron_problem, timezone_problem

    for name, p in manifest.pipelines.items():
        assert p is not None  # parse_manifest made empty entities (None) defaults
        if p.schedule and (problem := cron_problem(p.schedule)):
            raise error_at(locations, ("pipelines", name, "schedule"), problem)
    for name, s in manifest.dagster.schedules.items():
        if problem := cron_problem(s.cron):
            raise error_at(locations, ("dagster", "schedules", name, "cron"), problem)
        if s.timezone is not None and (problem := timezone_problem(s.timezone)):
            raise error_at(locations, ("dagster", "schedules", name, "timezone"), problem)


def _strip_optional(tp: Any) -> Any:
    if _is_union(tp):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _same_shape(tp: Any, value: Any) -> bool:
    """True when `value` is a mapping and `tp` a mapping type (or both are lists)."""
    origin = typing.get_origin(tp)
    if isinstance(value, dict):
        return origin is dict or dataclasses.is_dataclass(tp)
    return isinstance(value, list) and origin is list


def _describe(tp: Any) -> str:
    if tp is Any:
        return "any value"
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if _is_union(tp):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin in (list, list):
        return "a list"
    if origin in (dict, dict) or dataclasses.is_dataclass(tp):
        return "a mapping"
    return {str: "a string", int: "an integer", float: "a number", bool: "true/false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _build(tp: Any, value: Any, path: KeyPath, locations: Locations) -> Any:
    """Check `value` against the type hint `tp`, returning the typed value.

    Long because it is one dispatch over the hint kinds the model uses (literal, union, list,
    dict, dataclass, scalar); each branch is a few lines and they share the error reporting."""
    if tp is Any:
        return value
    if _is_union(tp):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        same_shape = []  # errors of alternatives of the value's shape say more (unknown key...)
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _build(arg, value, path, locations)
            except ManifestError as e:  # try the next alternative
                errors.append(e)
                if _same_shape(arg, value):
                    same_shape.append(e)
        if len(errors) == 1:
            raise errors[0]
        if len(same_shape) == 1:
            raise same_shape[0]
        raise error_at(locations, path, f"expected {_describe(tp)}, got {_type_name(value)}")
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise error_at(locations, path, f"{value!r} is not {_describe(tp)}")
        return value
    if origin in (list, list):
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise error_at(locations, path, f"expected a list, got {_type_name(value)}")
        return [_build(item_tp, v, path + (str(i),), locations) for i, v in enumerate(value)]
    if origin in (dict, dict):
        _, item_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise error_at(locations, path, f"expected a mapping, got {_type_name(value)}")
        return {k: _build(item_tp, v, path + (k,), locations) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, value, path, locations)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float) and isinstance(value, bool):
        raise error_at(locations, path, f"expected {_describe(tp)}, got a boolean")
    if not isinstance(value, tp):
        hint = ""
        if tp is str and isinstance(value, (bool, int, float)):  # `source: on`, `name: 010`
            hint = f" ({str(value).lower()}); quote it if it is a name, e.g. 'on'"
        raise error_at(
            locations, path, f"expected {_describe(tp)}, got {_type_name(value)}{hint}"
        )
    return value


@functools.cache
def _hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def _fields(cls: Any) -> dict[str, Any]:
    return {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("from_key")}


def _build_dataclass(cls: Any, value: Any, path: KeyPath, locations: Locations) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise error_at(locations, path, f"expected a mapping, got {_type_name(value)}")
    hints = _hints(cls)
    fields = _fields(cls)
    extra_field = getattr(cls, "EXTRA", None)
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, v in value.items():
        if key in fields and key != extra_field:
            kwargs[key] = _build(hints[key], v, path + (key,), locations)
        elif extra_field:
            extra[key] = v
        else:
            allowed = ", ".join(sorted(fields))
            raise error_at(locations, path + (key,), f"unknown key; allowed keys: {allowed}")
    if extra_field:
        kwargs[extra_field] = extra
    return cls(**kwargs)


# --- JSON Schema ----------------------------------------------------------------------------


def json_schema() -> dict[str, Any]:
    """JSON Schema of `dlt.yml` for editors, derived from the dataclasses above."""
    schema = _schema(Manifest)
    schema["additionalProperties"] = True  # unknown top-level keys are dlt config
    profile_body = {k: v for k, v in schema["properties"].items() if k != "profiles"}
    schema["properties"]["profiles"] = {
        "type": "object",
        "additionalProperties": {
            "anyOf": [{"type": "null"}, {"type": "object", "properties": profile_body}]
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "dlt.yml",
        **schema,
    }


def _schema(tp: Any) -> dict[str, Any]:
    if tp is Any:
        return {}
    if tp is type(None):
        return {"type": "null"}
    origin = typing.get_origin(tp)
    if _is_union(tp):
        return {"anyOf": [_schema(a) for a in typing.get_args(tp)]}
    if origin is Literal:
        return {"enum": list(typing.get_args(tp))}
    if origin in (list, list):
        return {"type": "array", "items": _schema(typing.get_args(tp)[0])}
    if origin in (dict, dict):
        return {"type": "object", "additionalProperties": _schema(typing.get_args(tp)[1])}
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        extra = getattr(tp, "EXTRA", None)
        props = {
            f.name: _schema(hints[f.name])
            for f in dataclasses.fields(tp)
            if not f.metadata.get("from_key") and f.name != extra
        }
        return {"type": "object", "properties": props, "additionalProperties": bool(extra)}
    return {
        str: {"type": "string"},
        int: {"type": "integer"},
        float: {"type": "number"},
        bool: {"type": "boolean"},
    }[tp]
