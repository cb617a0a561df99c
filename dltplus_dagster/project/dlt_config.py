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
import re
import threading
import tomllib
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
from dlt.common.runtime.run_context import RunContext, global_dir

from dltplus_dagster.project.errors import ManifestError
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
            check_toml_files(project.settings_dir, project.current_profile)
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


def check_toml_files(settings_dir: str, profile: str) -> None:
    """Refuse, before anything changes, a TOML file the run context's providers would fail on.

    dlt reads `<profile>.secrets.toml`, `secrets.toml`, `<profile>.config.toml` and
    `config.toml` from the project's `.dlt` and dlt's global dir while it switches the run
    context; a broken one fails there with no file or line named and leaves the switch half
    done. The message names the file and line, never the text (it may hold a secret).
    """
    import tomlkit
    import tomlkit.exceptions

    for directory in (settings_dir, global_dir()):
        for kind in ("secrets.toml", "config.toml"):
            for name in (f"{profile}.{kind}", kind):
                path = os.path.join(directory, name)
                try:
                    with open(path, encoding="utf-8") as f:
                        text = f.read()
                except FileNotFoundError:
                    continue
                except (OSError, UnicodeDecodeError) as e:
                    reason = "is not UTF-8 text" if isinstance(e, UnicodeDecodeError) else (
                        f"cannot be read ({type(e).__name__})")
                    raise ManifestError(f"{reason}; fix or delete it", file=path) from None
                try:
                    tomlkit.parse(text)  # dlt's own parser: what it accepts passes
                except tomlkit.exceptions.TOMLKitError as e:
                    line, column = _error_position(e, text)
                    at = f" (column {column})" if column is not None else ""
                    raise ManifestError(
                        f"not valid TOML{at}; fix or delete it", file=path, line=line
                    ) from None


def _error_position(error: Exception, text: str) -> tuple[int | None, int | None]:
    """Line and column of a TOML error; tomlkit has none for some (a key set twice), the
    standard library's parser has them in its message."""
    line, column = getattr(error, "line", None), getattr(error, "col", None)
    if line is not None:
        return line, column
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        if found := re.search(r"at line (\d+), column (\d+)", str(e)):
            return int(found.group(1)), int(found.group(2))
    return None, None
