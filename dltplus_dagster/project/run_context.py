"""The dlt run context of a project, and which project is active.

dlt resolves config through one process-wide run context. `ProjectRunContext` makes that
context the project's: its `.dlt` folder (with `<profile>.secrets.toml` first), the manifest as
the lowest-precedence config provider, and the profile's data and local dirs. Plain dlt code in
the project (`dlt.pipeline(...)`, `dlt.config[...]`) therefore sees the same config.

Which project `current` means is a context variable, not a global: a Dagster step binds the
project of its run's resource with `bound(project)`; outside of that the process-wide project
(discovered, or chosen with `switch_profile`) applies.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

from dlt._workspace.providers import ProfileSecretsTomlProvider
from dlt.common.configuration.container import Container
from dlt.common.configuration.providers import ConfigTomlProvider, EnvironProvider
from dlt.common.configuration.providers.doc import CustomLoaderDocProvider
from dlt.common.configuration.providers.provider import ConfigProvider
from dlt.common.configuration.specs.pluggable_run_context import (
    PluggableRunContext,
    ProfilesRunContext,
)
from dlt.common.runtime.run_context import RunContext

from dltplus_dagster.project.errors import ProjectNotFound
from dltplus_dagster.project.profiles import check_profile_name, select_profile
from dltplus_dagster.project.project import Project, find_project_dir, load_project

_bound: contextvars.ContextVar[Project | None] = contextvars.ContextVar(
    "dltplus_bound_project", default=None
)
_process_project: Project | None = None
_explicit_profile: str | None = None
_lock = threading.RLock()


def provider_doc(project: Project) -> dict[str, Any]:
    """The manifest as dlt config: sources and destinations by entity name, plus pass-through."""
    doc: dict[str, Any] = {}
    for key, value in project.resolved.items():
        if key in ("pipelines", "datasets", "transformations", "dagster", "profiles", "project"):
            continue
        if key == "sources":
            doc["sources"] = {
                name: {k: v for k, v in (body or {}).items() if k not in ("type", "with_args")}
                for name, body in (value or {}).items()
            }
        elif key == "destinations":
            # dlt's section is singular; the type is exposed so that plain
            # dlt.pipeline(destination="<entity name>") also works (the reference fails there)
            doc["destination"] = {
                name: {
                    **{k: v for k, v in (body or {}).items() if k != "type"},
                    "destination_type": (body or {}).get("type") or name,
                }
                for name, body in (value or {}).items()
            }
        else:
            doc[key] = value
    # dlt gzips the files extract writes, which normalize reads back moments later from the same
    # working dir: ~20% of a run of a Python-object source. Off unless the project turns it on
    # (`[sources.data_writer] disable_compression=false` in TOML, or the env var); load files
    # (`normalize.data_writer`) keep dlt's default.
    sources = doc.setdefault("sources", {})
    if isinstance(sources, dict):
        writer = sources.setdefault("data_writer", {})
        if isinstance(writer, dict):
            writer.setdefault("disable_compression", True)
    return doc


class ManifestProvider(CustomLoaderDocProvider):
    """The manifest as dlt's lowest-precedence config provider.

    dlt asks every provider for every key in every section path, about 2,000 times in one
    pipeline run; this lookup walks the document directly instead of through dlt's generic
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
        # from the dlt plugin rather than from `activate()`
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
            ConfigTomlProvider(self.settings_dir, self.global_dir),
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
        return switch_profile(new_profile, self.project.project_dir)

    def __repr__(self) -> str:
        return f"ProjectRunContext({self.project.project_dir!r}, profile={self.profile!r})"


def activate(project: Project) -> ProjectRunContext:
    """Make `project` dlt's run context in this process (idempotent)."""
    with _lock:
        container = Container()
        pluggable = container[PluggableRunContext]
        ctx = pluggable.context
        if isinstance(ctx, ProjectRunContext) and ctx.project is project:
            return ctx
        if isinstance(ctx, ProjectRunContext) and _same_config(ctx.project, project):
            # another load of the same manifest and profile (a resource's own, the process
            # one, the dlt plugin's): dlt's providers stay valid, reloading them costs ~12 ms
            ctx.project = project
            new_ctx = ctx
        else:
            new_ctx = ProjectRunContext(project)
            pluggable.reload(new_ctx)
        _use_project_modules(project.project_dir)
        os.makedirs(project.data_dir, exist_ok=True)
        os.makedirs(project.local_dir, exist_ok=True)
        return new_ctx


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


_PROJECT_PACKAGES = ("sources", "transformations", "destinations")
_added_paths: set[str] = set()
_modules_dir: str | None = None  # the project whose modules are importable now


def _use_project_modules(project_dir: str) -> None:
    """Flat layout: `sources.x` and `transformations.y` import from the project dir.

    Several projects may be used in one process (tests, a code location serving two), so the
    modules of another project's `sources` package are dropped from the import cache.
    """
    global _modules_dir
    if _modules_dir == project_dir and sys.path and sys.path[0] == project_dir:
        return  # nothing switched since (each step activates its project several times)
    # another project's dir stays off the path: a regular `sources` package there would win
    # over this project's namespace `sources/` folder wherever it stood on sys.path
    for old in _added_paths - {project_dir}:
        if old in sys.path:
            sys.path.remove(old)
    _added_paths.intersection_update({project_dir})
    if project_dir in sys.path:
        sys.path.remove(project_dir)
    else:
        _added_paths.add(project_dir)  # only dirs this package put on the path are taken off
    sys.path.insert(0, project_dir)
    prefix = os.path.join(project_dir, "")
    for mod_name in list(sys.modules):
        if mod_name.split(".")[0] not in _PROJECT_PACKAGES:
            continue
        mod = sys.modules[mod_name]
        paths = list(getattr(mod, "__path__", []) or []) + [getattr(mod, "__file__", None) or ""]
        if not any(p and p.startswith(prefix) for p in paths):
            del sys.modules[mod_name]
    _modules_dir = project_dir


@contextlib.contextmanager
def bound(project: Project) -> Iterator[Project]:
    """Within the block, `current` means `project` (and dlt's run context is its)."""
    token = _bound.set(project)
    try:
        activate(project)
        yield project
    finally:
        _bound.reset(token)
        outer = _bound.get() or _process_project
        if outer is not None:
            activate(outer)


def active_project(project_dir: str | None = None, profile: str | None = None) -> Project:
    """The project `current` means: the bound one, else the process one (discovered, cached).

    The cached process project is reloaded when its manifest changed on disk, or when the
    profile selection (env var, pin file) now picks another profile.
    """
    global _process_project
    if profile is not None:
        check_profile_name(profile, "argument profile")  # "" is no way to say "the default"
    if project_dir is None and profile is None and (b := _bound.get()) is not None:
        return b
    with _lock:
        p = _process_project
        if project_dir:
            root = os.path.abspath(project_dir)
        elif p is not None and _explicit_profile:
            root = p.project_dir
        else:
            try:
                root = find_project_dir()
            except ProjectNotFound:
                if p is None:
                    raise
                root = p.project_dir  # the project chosen earlier in this process
        same_dir = p is not None and p.project_dir == root
        want = profile or (_explicit_profile if same_dir else None)
        if same_dir and not p.is_stale():
            if want is None:
                want_now = select_profile(root, None, p.default_profile)[0]
            else:
                want_now = want
            if p.current_profile == want_now:
                activate(p)
                return p
        _process_project = load_project(root, want)
        activate(_process_project)
        return _process_project


_loaded: dict[tuple[str, str | None], Project] = {}


def cached_project(project_dir: str, profile: str | None = None) -> Project:
    """`load_project(project_dir, profile)`, loaded once per process while it stays current.

    Dagster copies resources for every run and step, so a resource keeps no loaded project of
    its own. A cached project is loaded again when a manifest file changed or, without an
    explicit profile, when the selection (env var, pin file) now picks another profile.
    """
    key = (os.path.abspath(project_dir), profile)
    with _lock:
        p = _loaded.get(key)
        if p is not None and not p.is_stale() and (
            profile or p.current_profile == select_profile(p.project_dir, None, p.default_profile)[0]
        ):
            return p
        p = _loaded[key] = load_project(project_dir, profile)
        return p


def switch_profile(profile: str, project_dir: str | None = None) -> ProjectRunContext:
    """Switch the active profile in this process and return the new run context.

    An unknown profile raises `ProfileNotFound`, listing the known ones.
    """
    global _process_project, _explicit_profile
    with _lock:
        root = project_dir or (
            _process_project.project_dir if _process_project else find_project_dir()
        )
        project = load_project(root, profile)
        _process_project = project
        _explicit_profile = profile
        return activate(project)


def reset() -> None:
    """Forget the process-wide project and explicit profile (tests, notebooks)."""
    global _process_project, _explicit_profile
    with _lock:
        _process_project = None
        _explicit_profile = None

