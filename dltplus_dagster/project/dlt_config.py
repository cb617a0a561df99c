"""The dlt configuration of a project: the config document, its provider and the run context.

dlt resolves config through one process-wide run context. `ProjectRunContext` makes that
context the project's: its `.dlt` folder (`<profile>.secrets.toml` and `<profile>.config.toml`
before `secrets.toml` and `config.toml`), the manifest as the lowest-precedence config provider,
and the profile's data and local dirs. Plain dlt code in the project (`dlt.pipeline(...)`,
`dlt.config[...]`) therefore sees the same config as the runner.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from dlt._workspace.providers import ProfileConfigTomlProvider, ProfileSecretsTomlProvider
from dlt.common.configuration.container import Container
from dlt.common.configuration.providers import EnvironProvider
from dlt.common.configuration.providers.doc import CustomLoaderDocProvider
from dlt.common.configuration.providers.provider import ConfigProvider
from dlt.common.configuration.specs.pluggable_run_context import (
    PluggableRunContext,
    ProfilesRunContext,
)
from dlt.common.runtime.run_context import RunContext

from dltplus_dagster.project.import_paths import use_project_modules
from dltplus_dagster.project.project import Project

_NOT_DLT_CONFIG = ("pipelines", "datasets", "transformations", "dagster", "profiles", "project")
"""Manifest sections that are this package's, not config dlt looks up."""

_lock = threading.RLock()


def provider_doc(project: Project) -> dict[str, Any]:
    """The manifest as dlt config: sources and destinations by entity name, plus pass-through."""
    doc: dict[str, Any] = {}
    for key, value in project.resolved.items():
        if key in _NOT_DLT_CONFIG:
            continue
        if key == "sources":
            doc["sources"] = {
                name: {k: v for k, v in (body or {}).items() if k not in ("type", "with_args")}
                for name, body in (value or {}).items()
            }
        elif key == "destinations":
            # dlt's section is singular; with the type exposed, plain
            # `dlt.pipeline(destination="<entity name>")` finds the entity too
            doc["destination"] = {
                name: {
                    **{k: v for k, v in (body or {}).items() if k != "type"},
                    "destination_type": (body or {}).get("type") or name,
                }
                for name, body in (value or {}).items()
            }
        else:
            doc[key] = value
    # extract's files are read back moments later by normalize from the same working dir, so
    # compressing them only costs CPU (figures: bench/README.md). Off unless the project turns
    # it on (`[sources.data_writer] disable_compression=false` in TOML, or the env var); load
    # files (`normalize.data_writer`) keep dlt's default.
    sources = doc.setdefault("sources", {})
    if isinstance(sources, dict):
        writer = sources.setdefault("data_writer", {})
        if isinstance(writer, dict):
            writer.setdefault("disable_compression", True)
    return doc


class ManifestProvider(CustomLoaderDocProvider):
    """The manifest as dlt's lowest-precedence config provider.

    dlt asks every provider for every key in every section path (thousands of times in one
    pipeline run); this lookup walks the document directly instead of through dlt's generic
    key helpers (same answers: path `[pipeline_name, *sections, key]`, dotted name).
    """

    def get_value(
        self, key: str, hint: Any, pipeline_name: str | None, *sections: str
    ) -> tuple[Any | None, str]:
        path = (pipeline_name, *sections, key) if pipeline_name else (*sections, key)
        node: Any = self._config_doc
        for part in path:
            if not isinstance(node, dict):
                node = None
                break
            node = node.get(part)
            if node is None:
                break
        return node, ".".join(p for p in path if p)


class ProjectRunContext(RunContext, ProfilesRunContext):
    """dlt run context of a project with one active profile."""

    def __init__(self, project: Project) -> None:
        super().__init__(project.project_dir)
        self.project = project
        # dlt (e.g. a local duckdb file) expects these to exist, also when the context comes
        # from the dlt plugin rather than from `set_run_context()`
        for path in (project.data_dir, project.local_dir):
            with contextlib.suppress(OSError):
                os.makedirs(path, exist_ok=True)

    @property
    def name(self) -> str:
        return self.project.name

    @property
    def run_dir(self) -> str:
        return self.project.project_dir

    @property
    def settings_dir(self) -> str:
        return self.project.settings_dir

    @property
    def data_dir(self) -> str:
        return self.project.data_dir

    @property
    def local_dir(self) -> str:
        return self.project.local_dir

    @property
    def profile(self) -> str:
        return self.project.current_profile

    @property
    def default_profile(self) -> str:
        return self.project.default_profile

    @property
    def runtime_kwargs(self) -> dict[str, Any]:
        return {"profile": self.project.current_profile}

    @property
    def module(self) -> None:
        return None

    def available_profiles(self) -> list[str]:
        return list(self.project.profiles)

    def initial_providers(self) -> list[ConfigProvider]:
        return [
            EnvironProvider(),
            ProfileSecretsTomlProvider(self.settings_dir, self.profile, self.global_dir),
            ProfileConfigTomlProvider(self.settings_dir, self.profile, self.global_dir),
            ManifestProvider(
                self.project.name,
                lambda: provider_doc(self.project),
                supports_secrets=True,
                locations=[self.project.manifest_path],
            ),
        ]

    def get_run_entity(self, entity: str) -> str:
        return os.path.join(self.run_dir, entity)

    def switch_profile(self, new_profile: str) -> ProjectRunContext:
        from dltplus_dagster.project.selection import switch_profile  # selection uses this module

        return switch_profile(new_profile, self.project.project_dir)

    def __repr__(self) -> str:
        return f"ProjectRunContext({self.project.project_dir!r}, profile={self.profile!r})"


def set_run_context(project: Project) -> ProjectRunContext:
    """Make `project` dlt's run context in this process, its packages importable (idempotent)."""
    with _lock:
        pluggable = Container()[PluggableRunContext]
        context = pluggable.context
        if isinstance(context, ProjectRunContext) and context.project is project:
            return context
        if isinstance(context, ProjectRunContext) and _same_config(context.project, project):
            # another load of the same manifest and profile (a resource's own, the process
            # one, the dlt plugin's): dlt's providers stay valid, and reloading them is costly
            context.project = project
            new_context = context
        else:
            new_context = ProjectRunContext(project)
            pluggable.reload(new_context)
        use_project_modules(project.project_dir)
        os.makedirs(project.data_dir, exist_ok=True)
        os.makedirs(project.local_dir, exist_ok=True)
        return new_context


def _same_config(a: Project, b: Project) -> bool:
    """True when two loaded projects give dlt the same config (dirs, profile, resolved values)."""
    return (
        a.project_dir == b.project_dir
        and a.current_profile == b.current_profile
        and a.settings_dir == b.settings_dir
        and a.data_dir == b.data_dir
        and a.local_dir == b.local_dir
        and a.manifest_path == b.manifest_path
        and a.resolved == b.resolved
    )
