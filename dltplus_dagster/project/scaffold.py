"""`project init`: write a new, runnable dlt project from a source and a destination choice.

The project is complete as generated: `dlt.yml` (one source, one destination, pipeline
`my_pipeline` into dataset `my_pipeline_dataset`), `sources/` when the source is code,
`.dlt/config.toml`, `.dlt/secrets.toml` with placeholders, `.gitignore`. Nothing is
overwritten: a dir that holds a project (`dlt.yml` or `.dlt/`) or any of the files is refused
before anything is written, and a failure while writing removes what was written.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from dltplus_dagster.project.errors import ProjectError
from dltplus_dagster.project.scaffold_templates import (
    CONFIG,
    DESTINATIONS,
    GITIGNORE,
    MANIFEST,
    PLACEHOLDER,
    SECRETS,
    SOURCE_RESOURCES,
    SOURCES,
)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclass
class Scaffold:
    """A written project: its dir, the files (relative paths) and what is left to do."""

    project_dir: str
    files: list[str]
    notes: list[str]


def render(source: str, destination: str, name: str) -> dict[str, str]:
    """The files of a new project: relative path -> text. Raises `ProjectError` on bad input."""
    if source not in SOURCES:
        raise ProjectError(
            f"project init: unknown source '{source}'; one of {', '.join(SOURCES)}"
        )
    if destination not in DESTINATIONS:
        raise ProjectError(
            f"project init: unknown destination '{destination}'; one of {', '.join(DESTINATIONS)}"
        )
    if not _NAME.match(name):
        raise ProjectError(
            f"project init: project name {name!r} must start with a letter or _ and hold only "
            "letters, digits, _ and - (pass --project-name)"
        )
    src, dst = SOURCES[source], DESTINATIONS[destination]
    manifest = MANIFEST.format(
        name=name,
        name_yaml=json.dumps(name),  # a JSON string is a YAML scalar, whatever it holds
        source=source,
        destination=destination,
        sources=src.manifest,
        destinations=dst.manifest,
        source_name=source,
        destination_name=destination,
        pipeline_extra=SOURCE_RESOURCES.get(source, ""),
    )
    files = {
        "dlt.yml": manifest.rstrip("\n") + "\n",
        ".dlt/config.toml": CONFIG.format(extra=src.config + dst.config),
        ".dlt/secrets.toml": SECRETS.format(
            placeholder=PLACEHOLDER, extra="\n".join(p for p in (src.secrets, dst.secrets) if p)
        ),
        ".gitignore": GITIGNORE,
        **src.files,
        **dst.files,
    }
    return files


def init_project(
    source: str, destination: str, project_dir: str, name: str | None = None
) -> Scaffold:
    """Write a new project into `project_dir` (created if missing); never overwrites."""
    root = os.path.abspath(project_dir)
    if name is None:
        name = re.sub(r"[^A-Za-z0-9_\-]", "_", os.path.basename(root)) or "dlt_project"
        if not re.match(r"[A-Za-z_]", name):
            name = f"project_{name}"
    files = render(source, destination, name)
    if os.path.exists(root) and not os.path.isdir(root):
        raise ProjectError(f"project init: {root} exists and is not a directory")
    for marker in ("dlt.yml", ".dlt"):
        if os.path.exists(os.path.join(root, marker)):
            raise ProjectError(
                f"project init: {root} already holds a dlt project ({marker}); nothing was "
                "written. Choose another DIR, or remove the project first"
            )
    existing = [rel for rel in files if os.path.lexists(os.path.join(root, rel))]
    if existing:
        raise ProjectError(
            f"project init: {root} already has {', '.join(sorted(existing))}; nothing was "
            "written. Choose an empty or new DIR"
        )
    written: list[str] = []
    created_root = not os.path.exists(root)
    try:
        for rel, text in files.items():
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "x", encoding="utf-8") as f:  # "x": never replace a file
                written.append(path)
                f.write(text)
    except OSError as e:
        for path in reversed(written):
            _remove(path)
        _remove_empty_dirs(root, files, created_root)
        raise ProjectError(f"project init: could not write {root}: {e}") from e
    notes = [p.note for p in (SOURCES[source], DESTINATIONS[destination]) if p.note]
    return Scaffold(root, list(files), notes)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _remove_empty_dirs(root: str, files: dict[str, str], created_root: bool) -> None:
    dirs = {os.path.dirname(os.path.join(root, rel)) for rel in files}
    for d in sorted(dirs, key=len, reverse=True):
        if d != root:
            try:
                os.rmdir(d)
            except OSError:
                pass
    if created_root:
        try:
            os.rmdir(root)
        except OSError:
            pass
