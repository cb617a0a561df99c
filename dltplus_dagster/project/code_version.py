"""Code versions of pipelines and transformations: what Dagster compares to mark an asset whose
definition changed since its last materialization.

A code version hashes the entity's manifest entry (a pipeline's with its source's; secrets
masked, orchestration-only keys such as `owners` or `schedule` left out: they change no data)
and the Python module that defines its code (a source factory's, a transformation function's),
found by file name without importing it. A reference outside the project (a dlt built-in source,
an installed package) counts by the dlt version. Module hashes are cached by path, size and
mtime, so 500 pipelines over a few modules read each file once.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from typing import Any

from dltplus_dagster.project.orchestration import ORCHESTRATION_KEYS
from dltplus_dagster.project.project import Project

_NOT_CODE = (*ORCHESTRATION_KEYS, "schedule")
"""Entry keys that change how an asset is shown or scheduled, not what it holds."""


def pipeline_code_version(project: Project, name: str) -> str:
    """The code version of pipeline `name`'s tables."""
    entry = _entry(project, "pipelines", name)
    source = str(entry.get("source") or "")
    source_entry = _entry(project, "sources", source)
    ref = str(source_entry.get("type") or source)
    code = _module_hash(project.project_dir, _module_candidates(ref, "sources"))
    return _digest([entry, source_entry, code])


def transformation_code_version(project: Project, name: str) -> str:
    """The code version of transformation `name`'s tables (its SQL is in its entry)."""
    entry = _entry(project, "transformations", name)
    function = entry.get("function")
    code = (
        _module_hash(project.project_dir, _module_candidates(str(function), "transformations"))
        if function
        else ""
    )
    return _digest([entry, code])


def _entry(project: Project, section: str, name: str) -> dict[str, Any]:
    """The entity's resolved entry without orchestration keys, secrets masked."""
    from dltplus_dagster.project.redact import redact

    entry = (project.resolved.get(section) or {}).get(name) or {}
    kept = {k: v for k, v in entry.items() if k not in _NOT_CODE} if isinstance(entry, dict) else {}
    masked: dict[str, Any] = redact(kept, project.substituted)
    return masked


def _digest(parts: list[Any]) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _module_candidates(ref: str, project_pkg: str) -> list[str]:
    """Module names a reference may live in, as `entities._ref_candidates` tries them."""
    parts = ref.split(".")
    if len(parts) == 1:
        return [f"{project_pkg}.{ref}"]
    module = ".".join(parts[:-1])
    return [module, f"{project_pkg}.{module}"]


def _module_hash(project_dir: str, modules: list[str]) -> str:
    """Hash of the first candidate module found in the project folder; the dlt version when
    the code lives elsewhere (a built-in source or an installed package)."""
    for module in modules:
        base = os.path.join(project_dir, *module.split("."))
        for path in (base + ".py", os.path.join(base, "__init__.py")):
            try:
                st = os.stat(path)
            except OSError:
                continue
            return _file_hash(path, st.st_size, st.st_mtime_ns)
    import dlt

    return f"dlt {dlt.__version__}"


@lru_cache(maxsize=1024)
def _file_hash(path: str, size: int, mtime_ns: int) -> str:
    """Hash of a file's bytes (size and mtime are part of the cache key only)."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()
