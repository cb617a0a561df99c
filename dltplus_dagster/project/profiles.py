"""Profiles: which one is active, which exist, the pin file, and the deep merge."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from typing import Any

from dltplus_dagster.project.errors import ProfileNotFound

PROFILE_ENV = "WORKSPACE__PROFILE"
PIN_FILE = os.path.join(".dlt", "profile-name")
IMPLICIT_PROFILES = ("tests", "access")


def available_profiles(declared: Iterable[str], default_profile: str) -> list[str]:
    """Declared profiles plus the implicit ones: the default (`dev`), `tests` and `access`."""
    names = set(declared) | {default_profile, *IMPLICIT_PROFILES}
    return sorted(names)


def read_pin(project_dir: str) -> str | None:
    path = os.path.join(project_dir, PIN_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline().strip()
    except OSError:
        return None
    return first or None


def write_pin(project_dir: str, profile: str) -> str:
    path = os.path.join(project_dir, PIN_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(profile + "\n")
    return path


def select_profile(
    project_dir: str, explicit: str | None, default_profile: str
) -> tuple[str, str]:
    """The active profile and why: explicit > env var > pin file > default."""
    if explicit:
        return explicit, "explicit"
    if env := os.environ.get(PROFILE_ENV):
        return env, f"env {PROFILE_ENV}"
    if pinned := read_pin(project_dir):
        return pinned, f"pin file {PIN_FILE}"
    return default_profile, "default"


def check_profile(profile: str, available: list[str], project_dir: str) -> None:
    if profile not in available:
        raise ProfileNotFound(profile, available, project_dir)


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge recursively; scalars and lists replace; an explicit null replaces too."""
    result = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result
