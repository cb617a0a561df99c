"""Public facade of the project run context (kept for imports such as the README's
`from dltplus_dagster.project.run_context import switch_profile`).

The parts live in modules of one idea each: `dlt_config` (the config document, its provider,
`ProjectRunContext`, `set_run_context`), `import_paths` (`sys.path`/`sys.modules`) and
`selection` (which project `current` means, the `ProjectCache`).
"""

from __future__ import annotations

from dltplus_dagster.project.dlt_config import (
    ManifestProvider,
    ProjectRunContext,
    provider_doc,
    set_run_context,
)
from dltplus_dagster.project.selection import (
    PROJECTS,
    ProjectCache,
    bind_current,
    current_project,
    reset,
    switch_profile,
)

__all__ = [
    "PROJECTS",
    "ManifestProvider",
    "ProjectCache",
    "ProjectRunContext",
    "bind_current",
    "current_project",
    "provider_doc",
    "reset",
    "set_run_context",
    "switch_profile",
]
