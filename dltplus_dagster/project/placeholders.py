"""`{placeholder}` substitution in manifest strings.

Known names: `{env.NAME}` and the project settings (`name`, `project_dir`, `data_dir`,
`local_dir`, `default_profile`, `current_profile`, `allow_undefined_entities`); the partition
placeholders (`{partition_key}`, `{partition_start}`, `{partition_end}`) stay for the run. Unlike the
reference system, an unknown placeholder or an unset env var is an error naming the key, never a
silent empty string. `{{` and `}}` stand for literal braces (as in `str.format`).

Every value an `{env.NAME}` puts into the manifest is a secret, whatever its key is called (a
token inside an `endpoint` URL, a header value): pass `secrets`, a set, to collect them for the
project's redaction.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from dltplus_dagster.project.manifest import KeyPath, Locations, error_at

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|\{")  # the last: a `{` never closed

SETTING_NAMES = (
    "name",
    "project_dir",
    "data_dir",
    "local_dir",
    "default_profile",
    "current_profile",
    "allow_undefined_entities",
)
PARTITION_PLACEHOLDERS = ("partition_key", "partition_start", "partition_end")
"""Left in place at load; a partitioned run fills them (see `project/partitions.py`)."""


def interpolate(
    value: Any,
    settings: Mapping[str, Any],
    locations: Locations,
    path: KeyPath = (),
    environ: Mapping[str, str] | None = None,
    secrets: set[str] | None = None,
) -> Any:
    """Return `value` with placeholders in every string (nested mappings and lists) replaced;
    the values substituted from `{env.*}` are added to `secrets` (when given)."""
    environ = os.environ if environ is None else environ
    if isinstance(value, str):
        return _substitute(value, settings, locations, path, environ, secrets)
    if isinstance(value, dict):
        return {
            k: interpolate(v, settings, locations, path + (k,), environ, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            interpolate(v, settings, locations, path + (str(i),), environ, secrets)
            for i, v in enumerate(value)
        ]
    return value


def _substitute(
    text: str,
    settings: Mapping[str, Any],
    locations: Locations,
    path: KeyPath,
    environ: Mapping[str, str],
    secrets: set[str] | None = None,
) -> str:
    if "{" not in text and "}" not in text:
        return text

    def replace(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        if token == "{":  # the text is not shown: it may hold a secret
            raise error_at(
                locations,
                path,
                f"unclosed placeholder: '{{' at character {m.start() + 1} has no '}}'; write "
                "{{ for a literal brace",
            )
        name = m.group(1).strip()
        if name.startswith("env."):
            var = name[4:]
            if var not in environ:
                raise error_at(
                    locations,
                    path,
                    f"environment variable {var} is not set (used as {{{name}}})",
                )
            if secrets is not None:
                secrets.add(environ[var])
            return environ[var]
        if name in settings and settings[name] is not None:
            return str(settings[name])
        if name in PARTITION_PLACEHOLDERS:
            return token  # filled in by a partitioned run (`project/partitions.py`)
        known = ", ".join(["env.<NAME>", *SETTING_NAMES, *PARTITION_PLACEHOLDERS])
        raise error_at(
            locations,
            path,
            f"unknown placeholder {{{name}}}; known: {known}. Write {{{{{name}}}}} for literal "
            "braces",
        )

    return _TOKEN.sub(replace, text)
