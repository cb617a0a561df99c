"""The `Project`: one manifest resolved for one profile, and how projects are found and loaded."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass
from typing import Any, cast

from dlt.common.known_env import DLT_PROJECT_DIR
from dlt.common.runtime.run_context import is_folder_writable

from dltplus_dagster.project.errors import ManifestError, ProjectNotFound
from dltplus_dagster.project.manifest import MANIFEST_NAME, Locations, error_at, load_manifest
from dltplus_dagster.project.model import (
    PROFILE_PROJECT_KEYS,
    DagsterSection,
    DatasetEntity,
    DestinationEntity,
    Manifest,
    PipelineEntity,
    ProjectSettings,
    SourceEntity,
    TransformationEntity,
    build_manifest,
)
from dltplus_dagster.project.placeholders import interpolate
from dltplus_dagster.project.profiles import (
    DEFAULT_PROFILE,
    available_profiles,
    check_profile,
    deep_merge,
    profile_name_problem,
    select_profile,
)
from dltplus_dagster.project.redact import redact, scrub, secret_values

PROJECT_DIR_ENV = DLT_PROJECT_DIR
"""dlt's env var naming the project dir (beats discovery from the working dir)."""


@dataclass(frozen=True)
class Project:
    """A dlt project resolved for one profile: settings, entities and the merged config."""

    name: str
    project_dir: str
    manifest_path: str
    current_profile: str
    default_profile: str
    profiles: list[str]
    profile_source: str
    """Why this profile is active: explicit, env var, pin file or default."""
    settings: ProjectSettings
    manifest: Manifest
    resolved: dict[str, Any]
    """The merged, interpolated document (secrets included: never show it, see `config`)."""
    locations: Locations
    files: tuple[tuple[str, float], ...]
    """Manifest files read and their mtimes, to notice edits."""
    substituted: frozenset[str] = frozenset()
    """Values `{env.*}` placeholders put into `resolved`: secrets, whatever their keys."""

    # --- identity and dirs ---
    @property
    def data_dir(self) -> str:
        # str once resolved: _resolve_settings always sets it
        return self.settings.data_dir  # type: ignore[return-value]

    @property
    def local_dir(self) -> str:
        # str once resolved: _resolve_settings always sets it
        return self.settings.local_dir  # type: ignore[return-value]

    @property
    def settings_dir(self) -> str:
        return os.path.join(self.project_dir, ".dlt")

    @property
    def pipelines_dir(self) -> str:
        return os.path.join(self.data_dir, "pipelines")

    @property
    def allow_undefined_entities(self) -> bool:
        return self.settings.allow_undefined_entities

    # --- declared entities ---
    @property
    def sources(self) -> dict[str, SourceEntity]:
        # build_manifest replaces a None entity with a default one
        return self.manifest.sources  # type: ignore[return-value]

    @property
    def destinations(self) -> dict[str, DestinationEntity]:
        # build_manifest replaces a None entity with a default one
        return self.manifest.destinations  # type: ignore[return-value]

    @property
    def pipelines(self) -> dict[str, PipelineEntity]:
        # build_manifest replaces a None entity with a default one
        return self.manifest.pipelines  # type: ignore[return-value]

    @property
    def datasets(self) -> dict[str, DatasetEntity]:
        # build_manifest replaces a None entity with a default one
        return self.manifest.datasets  # type: ignore[return-value]

    @property
    def transformations(self) -> dict[str, TransformationEntity]:
        # build_manifest replaces a None entity with a default one
        return self.manifest.transformations  # type: ignore[return-value]

    @property
    def dagster(self) -> DagsterSection:
        return self.manifest.dagster

    @property
    def config(self) -> dict[str, Any]:
        """The merged, placeholder-resolved manifest with secrets redacted."""
        doc = {k: v for k, v in self.resolved.items() if k != "profiles"}
        doc["project"] = dataclasses.asdict(self.settings) | {
            "current_profile": self.current_profile
        }
        return cast("dict[str, Any]", redact(doc, self.secret_values()))  # a dict stays a dict

    def secret_values(self) -> list[str]:
        """Every value of this project that must never be shown: `{env.*}` substitutions,
        secrets TOML values, secret-named manifest keys and dlt env vars (see `redact`)."""
        return secret_values(
            self.settings_dir, self.current_profile, self.resolved, substituted=self.substituted
        )

    def is_stale(self) -> bool:
        """True when a manifest file changed on disk since this project was loaded."""
        for path, mtime in self.files:
            try:
                if os.path.getmtime(path) != mtime:
                    return True
            except OSError:
                return True
        return False

    def error_at(self, path: tuple[str, ...], message: str) -> ManifestError:
        return error_at(self.locations, path, message)

    def __repr__(self) -> str:
        return f"Project({self.name!r}, dir={self.project_dir!r}, profile={self.current_profile!r})"


def find_project_dir(start_dir: str | None = None) -> str:
    """`DLT_PROJECT_DIR`, or the nearest folder with `dlt.yml` from `start_dir` (cwd) upward."""
    tried: list[str] = []
    env_dir = os.environ.get(PROJECT_DIR_ENV)
    if env_dir and not start_dir:
        if os.path.isfile(os.path.join(env_dir, MANIFEST_NAME)):
            return os.path.abspath(env_dir)
        tried.append(f"{env_dir} (from {PROJECT_DIR_ENV})")
    current = os.path.abspath(start_dir or os.getcwd())
    while True:
        if os.path.isfile(os.path.join(current, MANIFEST_NAME)):
            return current
        tried.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            raise ProjectNotFound(tried)
        current = parent


def load_project(project_dir: str | None = None, profile: str | None = None) -> Project:
    """Load the project at `project_dir` (or discovered) for `profile` (or the selected one)."""
    root = os.path.abspath(project_dir) if project_dir else find_project_dir()
    manifest_path = os.path.join(root, MANIFEST_NAME)
    if not os.path.isfile(manifest_path):
        raise ProjectNotFound([root])
    raw, locations = load_manifest(manifest_path)
    files = tuple(
        sorted({(f, os.path.getmtime(f)) for f, _ in locations.entries.values()})
    ) or ((manifest_path, os.path.getmtime(manifest_path)),)

    profiles_section, default_profile = _declared_profiles(raw, locations)
    available = available_profiles(profiles_section, default_profile)
    selected, reason = select_profile(root, profile, default_profile)
    check_profile(selected, available, root)
    overlay = _profile_overlay(profiles_section, selected, locations)

    merged_locations = Locations(dict(locations.entries))
    merged_locations.entries.update(locations.rebased(("profiles", selected)).entries)
    base = {k: v for k, v in raw.items() if k != "profiles"}
    merged = deep_merge(base, overlay)

    settings = _resolve_settings(root, merged.get("project") or {}, selected, merged_locations)
    settings_values = dataclasses.asdict(settings) | {"current_profile": selected}
    rest = {k: v for k, v in merged.items() if k != "project"}
    substituted: set[str] = set()
    resolved = interpolate(rest, settings_values, merged_locations, secrets=substituted)
    manifest = _build_manifest_scrubbed(
        {**resolved, "profiles": profiles_section, "project": dataclasses.asdict(settings)},
        merged_locations,
        substituted,
    )
    return Project(
        name=settings.name or os.path.basename(root),
        project_dir=settings.project_dir or root,
        manifest_path=manifest_path,
        current_profile=selected,
        default_profile=default_profile,
        profiles=available,
        profile_source=reason,
        settings=settings,
        manifest=manifest,
        resolved=resolved,
        locations=merged_locations,
        files=files,
        substituted=frozenset(substituted),
    )


def _declared_profiles(
    raw: dict[str, Any], locations: Locations
) -> tuple[dict[str, Any], str]:
    """The manifest's `profiles` section and default profile, each name checked."""
    profiles_section = raw.get("profiles") or {}
    if not isinstance(profiles_section, dict):
        raise error_at(locations, ("profiles",), "expected a mapping of profile name -> settings")
    base_project = raw.get("project") or {}
    if not isinstance(base_project, dict):
        raise error_at(locations, ("project",), "expected a mapping")
    default_profile = base_project.get("default_profile") or DEFAULT_PROFILE
    if not isinstance(default_profile, str):
        raise error_at(locations, ("project", "default_profile"), "expected a string")
    for name in [default_profile, *profiles_section]:
        if problem := profile_name_problem(name):
            where = ("profiles", name) if name in profiles_section else ("project",
                                                                         "default_profile")
            raise error_at(locations, where, problem)
    return profiles_section, default_profile


def _profile_overlay(
    profiles_section: dict[str, Any], selected: str, locations: Locations
) -> dict[str, Any]:
    """The partial manifest of profile `selected`, checked for what a profile may set."""
    body = profiles_section.get(selected) or {}
    if not isinstance(body, dict):
        raise error_at(locations, ("profiles", selected), "expected a mapping (a partial manifest)")
    for key in (body.get("project") or {}):
        if key not in PROFILE_PROJECT_KEYS:
            raise error_at(
                locations,
                ("profiles", selected, "project", key),
                f"not allowed in a profile; a profile may set only {', '.join(PROFILE_PROJECT_KEYS)}",
            )
    if "profiles" in body:
        raise error_at(locations, ("profiles", selected, "profiles"), "profiles cannot nest")
    return body


def _build_manifest_scrubbed(
    doc: dict[str, Any], locations: Locations, substituted: set[str]
) -> Manifest:
    """`build_manifest`, with `{env.*}` values scrubbed from its errors (a type error may quote
    the value, and such a value is a secret)."""
    try:
        return build_manifest(doc, locations)
    except ManifestError as e:
        message = scrub(e.message, substituted)
        if message == e.message:
            raise
        raise ManifestError(message, file=e.file, line=e.line, key=e.key) from None


def _resolve_settings(
    root: str, raw: dict[str, Any], profile: str, locations: Locations
) -> ProjectSettings:
    """Project settings with defaults, placeholders resolved in order, dirs made absolute."""
    from dltplus_dagster.project.model import _build  # the same type checks as the manifest

    settings: ProjectSettings = _build(ProjectSettings, raw, ("project",), locations)
    values: dict[str, Any] = {
        "name": None,
        "project_dir": root,
        "default_profile": settings.default_profile,
        "current_profile": profile,
        "allow_undefined_entities": settings.allow_undefined_entities,
    }
    values["name"] = interpolate(
        settings.name or os.path.basename(root), values, locations, ("project", "name")
    )
    if settings.project_dir:
        pdir = interpolate(settings.project_dir, values, locations, ("project", "project_dir"))
        values["project_dir"] = os.path.normpath(os.path.join(root, pdir))
    data_dir = settings.data_dir or os.path.join("{project_dir}", "_data", "{current_profile}")
    values["data_dir"] = _abs(
        interpolate(data_dir, values, locations, ("project", "data_dir")), values["project_dir"]
    )
    local_dir = settings.local_dir or os.path.join("{data_dir}", "local")
    values["local_dir"] = _abs(
        interpolate(local_dir, values, locations, ("project", "local_dir")), values["project_dir"]
    )
    for key in ("data_dir", "local_dir"):
        if problem := _dir_problem(values[key]):
            if key == "data_dir" and not settings.data_dir and problem.endswith("not writable"):
                continue  # the default in a read-only install: the temp fallback below
            raise error_at(locations, ("project", key), f"{values[key]} {problem}")
    if not _writable(values["data_dir"]):
        # an installed package in a read-only site-packages: keep working in a temp dir
        fallback = os.path.join(tempfile.gettempdir(), "dltplus", values["name"], profile)
        values["data_dir"] = fallback
        if not settings.local_dir:
            values["local_dir"] = os.path.join(fallback, "local")
    return ProjectSettings(
        name=values["name"],
        project_dir=values["project_dir"],
        default_profile=settings.default_profile,
        allow_undefined_entities=settings.allow_undefined_entities,
        data_dir=values["data_dir"],
        local_dir=values["local_dir"],
    )


def _abs(path: str, project_dir: str) -> str:
    return os.path.normpath(os.path.join(project_dir, os.path.expanduser(path)))


def _nearest_existing(path: str) -> str | None:
    probe = path
    while not os.path.lexists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            return None
        probe = parent
    return probe


def _dir_problem(path: str) -> str | None:
    """None when `path` is (or can be created as) a writable dir, else what is wrong."""
    existing = _nearest_existing(path)
    if existing is None or not os.path.isdir(existing):
        shown = "" if existing == path else f" ({existing} is a file)"
        return f"is not a directory{shown}"
    return None if _writable(path) else "is not writable"


def _writable(path: str) -> bool:
    """True when `path`, or the nearest folder that exists on the way to it, takes a new file.

    dlt's `is_folder_writable` really creates one: root passes `os.access` everywhere, also on
    /proc."""
    probe = _nearest_existing(path)
    return probe is not None and is_folder_writable(probe)
