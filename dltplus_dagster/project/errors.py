"""Exceptions of the project layer.

Every error a user can cause by editing the project says where: the file, the line (when YAML
has one), the entity and the key. The CLI prints `str(error)` alone, no traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class ProjectError(Exception):
    """Base of all project errors."""


class ProjectNotFound(ProjectError):
    """No `dlt.yml` was found where the project was looked for."""

    def __init__(self, tried: Sequence[str]) -> None:
        self.tried = list(tried)
        lines = "\n".join(f"  - {t}" for t in self.tried)
        super().__init__(
            "No dlt project found (a folder with dlt.yml). Looked in:\n"
            f"{lines}\nSet DLT_PROJECT_DIR or run from inside the project."
        )


class ManifestError(ProjectError):
    """A problem in the manifest: YAML syntax, wrong types, bad placeholders, bad references."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        super().__init__(self._format())

    def _format(self) -> str:
        where = self.file or "dlt.yml"
        if self.line is not None:
            where = f"{where}:{self.line}"
        if self.key:
            return f"{where}: {self.key}: {self.message}"
        return f"{where}: {self.message}"


class ProjectInvalid(ProjectError):
    """The references of a loaded project do not hold (see `validate.validate_project`)."""

    def __init__(self, problems: Sequence[str], where: str) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            message = f"Found {len(self.problems)} problem(s) in {where}:\n{lines}"
        super().__init__(message)


class ProfileNotFound(ProjectError, KeyError):
    """The requested profile is neither declared nor implicit."""

    def __init__(self, profile: str, available: Iterable[str], project_dir: str) -> None:
        self.profile = profile
        self.available = sorted(available)
        super().__init__(
            f"Profile '{profile}' is not declared in {project_dir}/dlt.yml and is not an implicit "
            f"profile. Available profiles: {', '.join(self.available)}"
        )

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class InvalidProfileName(ProjectError, ValueError):
    """A profile name that is not a plain name (it would be used in file and dir names)."""


class EntityNotFound(ProjectError, KeyError):
    """An entity reference that is neither declared nor allowed implicitly."""

    def __init__(self, kind: str, name: str, declared: Iterable[str], reason: str = "") -> None:
        self.kind = kind
        self.name = name
        self.declared = sorted(declared)
        listed = ", ".join(self.declared) or "(none)"
        extra = f" {reason}" if reason else ""
        super().__init__(
            f"{kind} '{name}' is not declared in dlt.yml.{extra} Declared {kind}s: {listed}"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class TableNotFound(ProjectError, KeyError):
    """A table that a dataset does not (yet) hold."""

    def __init__(self, dataset: str, table: str, tables: Iterable[str]) -> None:
        self.dataset = dataset
        self.table = table
        listed = ", ".join(sorted(tables)) or "(none: nothing was loaded yet)"
        super().__init__(f"Dataset '{dataset}' has no table '{table}'. Its tables: {listed}")

    def __str__(self) -> str:
        return str(self.args[0])


class InvalidDestination(ProjectError):
    """A dataset used on a destination it is not declared for."""


class SourceReferenceError(ProjectError):
    """A source `type` that could not be imported; lists every candidate tried."""

    def __init__(self, entity: str, ref: str, tried: Sequence[tuple[str, str]]) -> None:
        self.entity = entity
        self.ref = ref
        self.tried = list(tried)
        lines = "\n".join(f"  - {cand}: {why}" for cand, why in self.tried)
        super().__init__(
            f"dlt.yml: sources.{entity}.type: cannot resolve source '{ref}'. Tried:\n{lines}"
        )


class PipelineLocked(ProjectError):
    """Another process runs the same pipeline of the same profile right now."""


class DestinationFault(ProjectError):
    """A destination a run could not use, said in one line a person can act on: a DuckDB file
    another process holds (with its PID), a server that closed the connection mid-load. Built by
    `faults.explain_fault` from dlt's error chain, which it replaces."""

    def __init__(
        self,
        message: str,
        *,
        pipeline: str | None = None,
        step: str | None = None,
        destination: str | None = None,
        holder_pid: int | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.step = step
        self.destination = destination
        self.holder_pid = holder_pid
        super().__init__(message)


class SourceBuildError(ManifestError):
    """A source entity whose factory cannot be called: config values it needs are missing,
    its arguments do not fit, or the source itself failed while being built (a table it
    reflects does not exist). Located at the source entry; `in_pipeline` names the pipeline."""

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
    ) -> None:
        self.source = source
        self.missing = list(missing)
        self.pipeline = pipeline
        self.detail = message
        shown = f"pipeline '{pipeline}': {message}" if pipeline else message
        super().__init__(shown, file=file, line=line, key=key)

    def in_pipeline(self, pipeline: str) -> SourceBuildError:
        """The same error, saying which pipeline needed the source."""
        if self.pipeline == pipeline:
            return self
        error = SourceBuildError(
            self.detail, source=self.source, missing=self.missing, pipeline=pipeline,
            file=self.file, line=self.line, key=self.key,
        )
        error.__cause__ = self.__cause__
        return error
