"""EntityFactory: dlt objects (sources, destinations, pipelines, datasets) from the manifest."""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from dlt.common.configuration.exceptions import (
    ConfigFieldMissingException,
    ConfigValueCannotBeCoercedException,
)

from dltplus_dagster.project.dlt_config import set_run_context
from dltplus_dagster.project.errors import (
    EntityNotFound,
    InvalidDestination,
    ProjectError,
    SourceBuildError,
    SourceReferenceError,
)
from dltplus_dagster.project.model import (
    ContractSpec,
    DatasetEntity,
    PipelineEntity,
    RunConfig,
    SourceEntity,
    TransformationEntity,
)
from dltplus_dagster.project.postgres_credentials import allow_passwordless
from dltplus_dagster.project.project import Project
from dltplus_dagster.project.trace_store import trace_datasets

if TYPE_CHECKING:
    import dlt
    from dlt.common.destination import Destination
    from dlt.common.normalizers.naming import NamingConvention
    from dlt.extract.source import DltSource



@dataclass(frozen=True)
class ResolvedPipeline:
    """A declared pipeline with the entities it names, looked up and checked once.

    Made by `EntityFactory.resolve_pipeline`; the table cache, the runner and the Dagster asset
    of the pipeline take this object instead of looking the pipeline's name up again.
    """

    entity: PipelineEntity
    destination: str
    """Name of the destination entity (declared or implicit)."""
    destination_type: str
    """dlt's short destination type (`duckdb`, `postgres`, ...)."""
    dataset_name: str
    dataset: DatasetEntity | None
    """The declared dataset the pipeline writes; None for an implicit one."""

    @property
    def name(self) -> str:
        return self.entity.name

    @property
    def source(self) -> str | None:
        """Name of the source entity; None when the manifest sets none (runs refuse it)."""
        return self.entity.source

    @property
    def run_config(self) -> RunConfig:
        return self.entity.run_config

    @property
    def schema_contract(self) -> dict[str, Any] | str | None:
        """The declared dataset's contract in the form `pipeline.run(schema_contract=...)` takes."""
        contract = self.dataset.contract if self.dataset is not None else None
        if isinstance(contract, ContractSpec):
            return {k: v for k, v in vars(contract).items() if v is not None}
        return contract


class SourceConfigMissing(SourceBuildError, ConfigFieldMissingException):
    """A source that lacks config values: the located `SourceBuildError` (naming source,
    pipeline and keys), and dlt's `ConfigFieldMissingException` (its lookup traces) alike."""

    def __init__(
        self,
        message: str,
        *,
        source: str,
        missing: Sequence[str] = (),
        pipeline: str | None = None,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        dlt_error: ConfigFieldMissingException | None = None,
    ) -> None:
        # the two bases take other arguments: set what each reads, then the message once
        self.source, self.missing, self.pipeline = source, list(missing), pipeline
        self.detail = message
        self.message = f"pipeline '{pipeline}': {message}" if pipeline else message
        self.file, self.line, self.key = file, line, key
        self.dlt_error = dlt_error
        self.traces = getattr(dlt_error, "traces", {})
        self.config = getattr(dlt_error, "config", None)
        self.spec_name = getattr(dlt_error, "spec_name", "")
        self.resolved_fields_set = getattr(dlt_error, "resolved_fields_set", [])
        self.fields = list(self.traces)
        Exception.__init__(self, self._format())

    @classmethod
    def from_errors(
        cls, located: SourceBuildError, dlt_error: ConfigFieldMissingException
    ) -> SourceConfigMissing:
        return cls(
            located.detail, source=located.source, missing=located.missing,
            pipeline=located.pipeline, file=located.file, line=located.line, key=located.key,
            dlt_error=dlt_error,
        )

    def in_pipeline(self, pipeline: str) -> SourceBuildError:
        if self.pipeline == pipeline:
            return self
        moved = type(self)(
            self.detail, source=self.source, missing=self.missing, pipeline=pipeline,
            file=self.file, line=self.line, key=self.key, dlt_error=self.dlt_error,
        )
        moved.__cause__ = self.__cause__
        return moved

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


_NOT_ALLOWED = "Implicit entities are disabled (project.allow_undefined_entities: false)."


class EntityFactory:
    """Builds the dlt objects a project declares (and implicit ones, when allowed)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._written_by_pipelines: dict[str, list[str]] | None = None
        self._naming: dict[str | None, NamingConvention] = {}

    @property
    def allow_undefined_entities(self) -> bool:
        return self.project.allow_undefined_entities

    # --- listing ---
    def list_sources(self) -> list[str]:
        return list(self.project.sources)

    def list_destinations(self) -> list[str]:
        return list(self.project.destinations)

    def list_pipelines(self) -> list[str]:
        return list(self.project.pipelines)

    def list_transformations(self) -> list[str]:
        return list(self.project.transformations)

    def list_datasets(self) -> list[str]:
        """Declared datasets, plus (when allowed) datasets that pipelines and transformations write."""
        names = list(self.project.datasets)
        implicit = self._implicit_dataset_names() if self.allow_undefined_entities else []
        for ds in [*implicit, *trace_datasets(self.project)]:
            if ds not in names:
                names.append(ds)
        return names

    def _implicit_dataset_names(self) -> list[str]:
        names = [p.dataset_name for p in self.project.pipelines.values() if p.dataset_name]
        for t in self.project.transformations.values():
            names.extend(t.inputs)
            if t.output:
                names.append(t.output)
        return names

    # --- sources ---
    def get_source_entity(self, name: str) -> SourceEntity:
        if name in self.project.sources:
            return self.project.sources[name]
        if not self.allow_undefined_entities:
            raise EntityNotFound("source", name, self.project.sources, _NOT_ALLOWED)
        return SourceEntity(name=name, type=name)

    def get_source_factory(self, name: str) -> Any:
        """The dlt source factory for a source entity, named and sectioned by the entity name.

        A `type` that names a resource (not a source) is wrapped into a one-resource source.
        """
        entity = self.get_source_entity(name)
        set_run_context(self.project)
        ref = entity.type or entity.name
        obj = resolve_source_ref(self.project, entity.name, ref)
        # an implicit reference (`shop.shop`) is no valid source/schema name: use its function
        source_name = entity.name if entity.name.isidentifier() else ref.rsplit(".", 1)[-1]
        return _as_source_factory(obj, source_name)

    def get_source(self, name: str, **overrides: Any) -> DltSource:
        """The `DltSource` of a source entity, called with `with_args` (and `overrides`).

        Arguments not given there are injected by dlt from `sources.<name>.<arg>` (the
        manifest entry, the profile's TOML files, env vars), as when calling the decorated
        function with no arguments. Missing config values (named, never shown) and arguments
        that do not fit raise a `SourceBuildError` located at the manifest entry; an error of
        the source's own code propagates as it is (see `source_error`).
        """
        entity = self.get_source_entity(name)
        factory = self.get_source_factory(name)
        # dlt coerces config it resolves, not explicit arguments: coerce `with_args` the same way
        # (a "10" from YAML becomes 10; an ".inf" for an int is refused, naming the key)
        if problems := source_value_problems(factory, entity.with_args, {}):
            key, message = problems[0]
            raise self.project.error_at(("sources", name, *key), message)
        kwargs = {**coerce_source_args(factory, entity.with_args), **overrides}
        try:
            source: DltSource = factory(**kwargs)
            return source
        except ConfigFieldMissingException as e:
            raise self.missing_config_error(name, e) from e
        except ConfigValueCannotBeCoercedException as e:
            # a manifest/TOML value of the wrong type; the value itself may be a secret
            field = e.field_name
            raise self._source_error(
                name, f"source '{name}': the config value of `{field}` cannot be used as "
                f"{_type_name(e.hint)}",
                key_suffix=(field,) if field in self.project.sources.get(name, entity).config
                else (),
            ) from e
        except TypeError as e:
            raise self._source_error(
                name, f"source '{name}': the arguments do not fit: {e}",
                key_suffix=("with_args",) if entity.with_args else (),
            ) from e
        # any other error is the source's own (a table it reflects does not exist): it keeps
        # its type and stack; `source_error` locates it where a caller must not fail whole

    def missing_local_bucket(self, name: str) -> SourceBuildError | None:
        """For a `filesystem` source whose manifest `bucket_url` is a local folder that does not
        exist: the located error (dlt would find no files and load nothing, silently)."""
        from dlt.common.storages.configuration import FilesystemConfiguration

        entity = self.get_source_entity(name)
        bucket_url = entity.config.get("bucket_url")
        if not (entity.type or "").startswith("filesystem") or not isinstance(bucket_url, str):
            return None
        if not FilesystemConfiguration.is_local_path(bucket_url) and not bucket_url.startswith(
            "file://"
        ):
            return None
        path = (FilesystemConfiguration.make_local_path(bucket_url)
                if bucket_url.startswith("file://") else bucket_url)
        if not os.path.isabs(path) or os.path.isdir(path):
            return None  # a relative path is dlt's to resolve
        return self._source_error(
            name, f"source '{name}': bucket_url is a local folder that does not exist "
            f"({path}); a run would find no files", key_suffix=("bucket_url",),
        )

    def source_error(self, name: str, error: Exception) -> SourceBuildError:
        """A located `SourceBuildError` for an error source `name` raised while being built."""
        if isinstance(error, SourceBuildError):
            return error
        return self._source_error(
            name, f"source '{name}' could not be built: {type(error).__name__}: "
            f"{_first_line(error)}",
        )

    def missing_config_error(
        self, name: str, error: ConfigFieldMissingException
    ) -> SourceConfigMissing:
        """The located error for dlt's `ConfigFieldMissingException` raised building source
        `name`; still dlt's exception type for callers catching that. (A resource whose
        arguments resolve only at extract fails in dlt's extract step instead, with dlt's
        message naming the pipeline, the keys and the lookups.)"""
        missing = _missing_fields(error)
        env = ", ".join(f"SOURCES__{name.upper()}__{m.upper().replace('.', '__')}"
                        for m in missing)
        message = (
            f"source '{name}' cannot be built: missing config value(s) {', '.join(missing)}. Set them under sources.{name} in dlt.yml, "
            f"under [sources.{name}] in .dlt/config.toml or .dlt/secrets.toml "
            f"(<profile>.secrets.toml), or as env vars ({env})"
        )
        return SourceConfigMissing.from_errors(self._source_error(name, message, missing), error)

    def _source_error(
        self, name: str, message: str, missing: Sequence[str] = (),
        key_suffix: tuple[str, ...] = (),
    ) -> SourceBuildError:
        path = ("sources", name, *key_suffix) if name in self.project.sources else ("sources",)
        file, line = self.project.locations.find(path)
        shown = os.path.relpath(file, self.project.project_dir) if file else "dlt.yml"
        return SourceBuildError(
            message, source=name, missing=missing, file=shown, line=line,
            key=".".join(("sources", name, *key_suffix)),
        )

    # --- destinations ---
    def get_destination(self, name: str) -> Destination[Any, Any]:
        """A named dlt destination. Local files go to `<local_dir>/<name>.<ext>` whoever asks."""
        from dlt.common.destination import Destination

        set_run_context(self.project)
        if name in self.project.destinations:
            entity = self.project.destinations[name]
            dest_type = entity.type or name
        elif not self.allow_undefined_entities:
            raise EntityNotFound("destination", name, self.project.destinations, _NOT_ALLOWED)
        else:
            dest_type = name
        try:
            # trust/peer auth: a postgres DSN or mapping without a password is complete
            # from_reference returns None only for a None reference; dest_type is a str
            destination = Destination.from_reference(dest_type, destination_name=name)
            return allow_passwordless(cast("Destination[Any, Any]", destination))
        except Exception as e:
            declared = ", ".join(self.project.destinations) or "(none)"
            raise ProjectError(
                f"dlt.yml: destination '{name}' of type '{dest_type}' cannot be created: {e}. "
                f"Declared destinations: {declared}"
            ) from e

    def naming(self, destination: str | None) -> NamingConvention:
        """dlt's naming convention of tables and datasets on destination `destination` (dlt's
        default for None or a destination that cannot be created), found once per factory:
        resolving a destination's capabilities resolves its whole config (~10 ms), and
        hundreds of pipelines usually share a few destinations."""
        if destination not in self._naming:
            from dltplus_dagster.project.names import naming_for

            set_run_context(self.project)  # `schema.naming` config is the project's
            dest = None
            if destination:
                with contextlib.suppress(ProjectError):
                    dest = self.get_destination(destination)
            self._naming[destination] = naming_for(dest)
        return self._naming[destination]

    def destination_type(self, name: str) -> str:
        """dlt's short type of destination `name` (`duckdb` for `dlt.destinations.duckdb`)."""
        entity = self.project.destinations.get(name)
        return (entity.type if entity and entity.type else name).split(".")[-1]

    # --- pipelines ---
    def get_pipeline_entity(self, name: str) -> PipelineEntity:
        """The manifest entry of pipeline `name` (checked as in `resolve_pipeline`)."""
        return self.resolve_pipeline(name).entity

    def resolve_pipeline(self, name: str) -> ResolvedPipeline:
        """Pipeline `name` with its destination and dataset; an unknown pipeline, a missing
        destination or dataset name, or a dataset not available on the destination raises."""
        if name not in self.project.pipelines:
            raise EntityNotFound(
                "pipeline", name, self.project.pipelines, "Pipelines are never implicit."
            )
        entity = self.project.pipelines[name]
        if not entity.destination:
            raise self.project.error_at(
                ("pipelines", name), "destination is not defined for this pipeline"
            )
        if not entity.dataset_name:
            raise self.project.error_at(
                ("pipelines", name), "dataset_name is not defined for this pipeline"
            )
        allowed = self.dataset_destinations(entity.dataset_name)
        if entity.dataset_name in self.project.datasets and entity.destination not in allowed:
            raise InvalidDestination(
                f"dlt.yml: pipelines.{name}.destination: dataset '{entity.dataset_name}' is not "
                f"available on destination '{entity.destination}'. Available destinations: "
                f"{allowed}"
            )
        return ResolvedPipeline(
            entity=entity,
            destination=entity.destination,
            destination_type=self.destination_type(entity.destination),
            dataset_name=entity.dataset_name,
            dataset=self.project.datasets.get(entity.dataset_name),
        )

    def get_pipeline(
        self, name: str, pipelines_dir: str | None = None, **overrides: Any
    ) -> dlt.Pipeline:
        """A `dlt.Pipeline` for a declared pipeline, its working dir under the profile's data dir."""
        return self.make_pipeline(self.resolve_pipeline(name), pipelines_dir, **overrides)

    def make_pipeline(
        self, resolved: ResolvedPipeline, pipelines_dir: str | None = None, **overrides: Any
    ) -> dlt.Pipeline:
        """The `dlt.Pipeline` of a resolved pipeline; `pipelines_dir` defaults to the profile's."""
        import dlt

        entity, name = resolved.entity, resolved.name
        set_run_context(self.project)
        kwargs: dict[str, Any] = {
            "pipeline_name": name,
            "destination": self.get_destination(resolved.destination),
            "dataset_name": resolved.dataset_name,
            "pipelines_dir": pipelines_dir or self.project.pipelines_dir,
        }
        if entity.progress:
            from dltplus_dagster.project.progress import progress_problem

            if problem := progress_problem(entity.progress):  # dlt would fail late and bare
                raise self.project.error_at(("pipelines", name, "progress"), problem)
            kwargs["progress"] = entity.progress
        kwargs.update(entity.pipeline_kwargs())
        kwargs.update(overrides)
        pipeline: dlt.Pipeline = dlt.pipeline(**kwargs)
        return pipeline

    # --- datasets ---
    def get_dataset_entity(self, name: str) -> DatasetEntity:
        if name in self.project.datasets:
            return self.project.datasets[name]
        if self.allow_undefined_entities and name in self._implicit_dataset_names():
            return DatasetEntity(name=name)
        if name in trace_datasets(self.project):  # implied by a pipeline's store_trace_info
            return DatasetEntity(name=name)
        reason = "" if self.allow_undefined_entities else _NOT_ALLOWED
        raise EntityNotFound("dataset", name, self.list_datasets(), reason)

    def dataset_destinations(self, name: str) -> list[str]:
        """Allowed destinations of a dataset; the first is the default.

        Declared ones, else inferred from the pipelines that write the dataset.
        """
        entity = self.project.datasets.get(name)
        if entity is not None and entity.destination:
            return list(entity.destination)
        inferred = list(self._pipeline_destinations().get(name, []))
        if not inferred and name in (traced := trace_datasets(self.project)):
            inferred = [traced[name]]
        if not inferred:
            for t in self.project.transformations.values():
                if t.output == name:
                    for src in t.inputs:
                        for d in self.dataset_destinations(src):
                            if d not in inferred:
                                inferred.append(d)
        return inferred

    def _pipeline_destinations(self) -> dict[str, list[str]]:
        """Dataset -> destinations of the pipelines writing it, in manifest order (built once:
        asking per pipeline would make definitions load quadratic in the number of pipelines)."""
        if self._written_by_pipelines is None:
            index: dict[str, list[str]] = {}
            for p in self.project.pipelines.values():
                if p.dataset_name and p.destination:
                    dests = index.setdefault(p.dataset_name, [])
                    if p.destination not in dests:
                        dests.append(p.destination)
            self._written_by_pipelines = index
        return self._written_by_pipelines

    # --- transformations ---
    def get_transformation(self, name: str) -> TransformationEntity:
        if name not in self.project.transformations:
            raise EntityNotFound("transformation", name, self.project.transformations)
        return self.project.transformations[name]

    def get_transformation_function(self, name: str) -> Callable[..., Any]:
        entity = self.get_transformation(name)
        if not entity.function:
            raise self.project.error_at(("transformations", name), "`function` is not set")
        set_run_context(self.project)
        obj, tried = _import_candidates(
            _ref_candidates(entity.function, "transformations", builtin=False)
        )
        if obj is None:
            lines = "\n".join(f"  - {c}: {why}" for c, why in tried)
            raise ProjectError(
                f"dlt.yml: transformations.{name}.function: cannot import "
                f"'{entity.function}'. Tried:\n{lines}"
            )
        return cast("Callable[..., Any]", obj)  # a transformation is a function


def _ref_candidates(ref: str, project_pkg: str, builtin: bool = True) -> list[str]:
    """Import candidates for a reference, most specific first (as the reference system)."""
    parts = ref.split(".")
    if len(parts) == 1:
        cands = [f"{project_pkg}.{ref}.{ref}"]
        if builtin:
            cands.append(f"dlt.sources.{ref}.{ref}")
        return cands
    cands = [ref, f"{project_pkg}.{ref}"]
    if builtin:
        cands.append(f"dlt.sources.{ref}")
    return cands


def _import_candidates(candidates: Sequence[str]) -> tuple[Any, list[tuple[str, str]]]:
    tried: list[tuple[str, str]] = []
    for cand in candidates:
        module_name, _, attr = cand.rpartition(".")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            tried.append((cand, f"module not found ({e.name})"))
            continue
        except Exception as e:  # an error inside the user's module: show it, do not hide it
            raise ProjectError(f"importing {module_name} failed: {type(e).__name__}: {e}") from e
        if not hasattr(module, attr):
            tried.append((cand, f"{module_name} has no attribute '{attr}'"))
            continue
        return getattr(module, attr), tried
    return None, tried


def resolve_source_ref(project: Project, entity: str, ref: str) -> Any:
    """Import the object a source `type` names; on failure list every candidate tried."""
    obj, tried = _import_candidates(_ref_candidates(ref, "sources"))
    if obj is None:
        raise SourceReferenceError(entity, ref, tried)
    return obj


def _as_source_factory(obj: Any, name: str) -> Any:
    import dlt
    from dlt.extract.resource import DltResource

    if hasattr(obj, "clone") and hasattr(obj, "with_args"):  # a @dlt.source factory
        return obj.clone(name=name, section=name)
    factory: Any = getattr(obj, "_factory", None)
    if isinstance(obj, DltResource) and hasattr(factory, "clone"):
        # a top-level @dlt.resource (e.g. `sql_database.sql_table`): dlt's own one-resource
        # source, so its arguments resolve from `sources.<name>` like a source's; a resource
        # whose name comes from its arguments (`table`) is only named once they are resolved
        return factory.clone(name=name, section=name)
    if isinstance(obj, DltResource) or callable(obj):
        resource_fn = obj

        def one_resource_source(**kwargs: Any) -> Any:
            made = resource_fn(**kwargs) if callable(resource_fn) else resource_fn
            return made

        return dlt.source(one_resource_source, name=name, section=name)
    raise ProjectError(f"dlt.yml: sources.{name}.type: {obj!r} is not a dlt source or resource")


def _source_fields(factory: Any) -> dict[str, Any]:
    """Typed arguments/config fields of a source factory (from dlt's config spec), or {}."""
    spec = getattr(getattr(factory, "ref", None), "SPEC", None)
    try:
        return dict(spec.get_resolvable_fields()) if spec is not None else {}
    except Exception:  # noqa: BLE001 - a spec dlt cannot describe: nothing to check
        return {}


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """`value` coerced to `hint` by dlt's own config coercion (raises when it cannot)."""
    from dlt.common.configuration.specs.base_configuration import extract_inner_hint
    from dlt.common.configuration.utils import deserialize_value

    # as dlt's resolver does: Optional/Annotated unwrapped, literals kept
    return deserialize_value(key, value, extract_inner_hint(hint, preserve_literal=True))


def coerce_source_args(factory: Any, with_args: dict[str, Any]) -> dict[str, Any]:
    """`with_args` with values coerced to the source function's typed arguments where dlt can."""
    fields = _source_fields(factory)
    out = dict(with_args)
    for key, value in with_args.items():
        if key in fields and value is not None:
            with contextlib.suppress(Exception):
                out[key] = _coerce(key, value, fields[key])
    return out


def source_value_problems(
    factory: Any, with_args: dict[str, Any], config: dict[str, Any]
) -> list[tuple[tuple[str, ...], str]]:
    """Values dlt cannot coerce to the source's typed arguments: `(key path under the source,
    message)`. The value itself is never shown (it may be a secret)."""
    from dlt.common.configuration.exceptions import ConfigValueCannotBeCoercedException

    from dltplus_dagster.project.partitions import placeholders_in

    fields = _source_fields(factory)
    found: list[tuple[tuple[str, ...], str]] = []
    for prefix, values in ((("with_args",), with_args), ((), config)):
        for key, value in values.items():
            if key not in fields or value is None or any(placeholders_in(value)):
                continue  # a `{partition_*}` value is coerced once a partitioned run fills it
            try:
                _coerce(key, value, fields[key])
            except ConfigValueCannotBeCoercedException:
                found.append(((*prefix, key), (
                    f"the value cannot be coerced to {_hint_name(fields[key])}, the type of "
                    f"argument '{key}' of the source"
                )))
            except Exception:  # noqa: BLE001, S112 - a hint dlt cannot coerce to: dlt decides
                continue
    return found


def _hint_name(hint: Any) -> str:
    from dlt.common.typing import extract_inner_type

    inner = extract_inner_type(hint)
    return getattr(inner, "__name__", str(inner))


def _missing_fields(error: Any, prefix: str = "") -> list[str]:
    """Dotted names of the fields a `ConfigFieldMissingException` reports (nested specs too)."""
    from dlt.common.configuration.exceptions import LookupTraces

    names: list[str] = []
    for field_name, traces in error.traces.items():
        nested = [t for t in traces if isinstance(t, LookupTraces)]
        if nested and any(t.resolved_fields_set for t in nested):  # partly given: name the rest
            for t in nested:
                names += _missing_fields(t, f"{prefix}{field_name}.")
        else:
            names.append(f"{prefix}{field_name}")
    return list(dict.fromkeys(names))


def _type_name(hint: Any) -> str:
    """A short readable name of a type hint (`str`, `Literal['append', ...]`)."""
    text = getattr(hint, "__name__", None) if isinstance(hint, type) else None
    return text or str(hint).replace("typing.", "")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"
