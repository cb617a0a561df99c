"""Profiles: which one is active, which exist, the pin file, and the deep merge.

A profile name becomes part of file and dir names (`.dlt/<profile>.secrets.toml`, the data dir),
so wherever one enters (an argument, `WORKSPACE__PROFILE`, the pin file, the manifest) it must
be a plain name: `PROFILE_NAME_PATTERN`.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable
from typing import Any

from dlt._workspace import profile as dlt_profile
from dlt._workspace._known_env import WORKSPACE__PROFILE
from dlt.common.utils import update_dict_nested

from dltplus_dagster.project.errors import InvalidProfileName, ProfileNotFound

DEFAULT_PROFILE = dlt_profile.DEFAULT_PROFILE
"""The profile when nothing selects one and `project.default_profile` is unset: dlt's `dev`."""
PROFILE_ENV = WORKSPACE__PROFILE
"""dlt's env var that selects the profile (beaten only by an explicit one)."""
PIN_FILE = os.path.join(".dlt", dlt_profile.PIN_FILE_NAME)
"""dlt's profile pin file, relative to the project dir."""
IMPLICIT_PROFILES = ("tests", "access")
PROFILE_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")
"""Letters, digits, `_` and `-` (not first), at most 64 characters."""


def profile_name_problem(name: object) -> str | None:
    """None when `name` is a plain profile name, else what is wrong with it."""
    if not isinstance(name, str):
        return f"a profile name must be a string, got {type(name).__name__}"
    if not PROFILE_NAME_PATTERN.fullmatch(name):
        shown = repr(name if len(name) <= 40 else name[:40] + "...")
        return (
            f"profile name {shown} is not a plain name: use letters, digits, '_' and '-' "
            "(not first), at most 64 characters"
        )
    return None


def check_profile_name(name: object, where: str) -> str:
    """`name` when it is a plain profile name; else `InvalidProfileName` saying where it came
    from (`where`: the argument, env var or file)."""
    if problem := profile_name_problem(name) or not isinstance(name, str):
        raise InvalidProfileName(f"{where}: {problem}")
    return name


def available_profiles(declared: Iterable[str], default_profile: str) -> list[str]:
    """Declared profiles plus the implicit ones: the default (`dev`), `tests` and `access`."""
    names = set(declared) | {default_profile, *IMPLICIT_PROFILES}
    return sorted(names)


def read_pin(project_dir: str) -> str | None:
    """The pinned profile, None without a pin; a pin that is not a plain name is an error.

    dlt's `read_profile_pin` reads the same file, but needs a run context (the profile is
    chosen before the project's exists), reads a huge or binary file whole and checks nothing.
    """
    path = os.path.join(project_dir, PIN_FILE)
    try:
        with open(path, "rb") as f:
            data = f.read(4096)  # a profile name is short; never read a huge file whole
    except OSError:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidProfileName(
            f"{path}:1: the pin file is not UTF-8 text; write one profile name or delete it"
        ) from None
    lines = text.splitlines()
    first = lines[0].strip() if lines else ""
    if not first:
        return None
    return check_profile_name(first, f"{path}:1")


def write_pin(project_dir: str, profile: str) -> str:
    """Pin `profile` for the project at `project_dir`; the path written.

    As dlt's `save_profile_pin`, without needing a run context, and only a checked name."""
    check_profile_name(profile, "profile to pin")
    path = os.path.join(project_dir, PIN_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(profile + "\n")
    return path


def select_profile(
    project_dir: str, explicit: str | None, default_profile: str
) -> tuple[str, str]:
    """The active profile and why: explicit > env var > pin file > default.

    Every name is checked on the way in; an empty `WORKSPACE__PROFILE` counts as unset."""
    if explicit is not None:
        return check_profile_name(explicit, "argument profile"), "explicit"
    if env := os.environ.get(PROFILE_ENV):
        return check_profile_name(env, f"env {PROFILE_ENV}"), f"env {PROFILE_ENV}"
    if pinned := read_pin(project_dir):
        return pinned, f"pin file {PIN_FILE}"
    return default_profile, "default"


def check_profile(profile: str, available: list[str], project_dir: str) -> None:
    if profile not in available:
        raise ProfileNotFound(profile, available, project_dir)


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """A new mapping: `overlay` over `base`. Mappings merge recursively; scalars and lists
    replace; an explicit null replaces too (dlt's `update_dict_nested`, on copies so that
    neither input shares a value with the result)."""
    return update_dict_nested(copy.deepcopy(base), copy.deepcopy(overlay))
