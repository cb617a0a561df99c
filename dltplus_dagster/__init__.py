"""dltplus-dagster: dlt.yml projects (profiles, catalog, runner) as Dagster code locations.

Importing the package is cheap: dlt and Dagster load when a name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "current": ("dltplus_dagster.current", None),
    "switch_profile": ("dltplus_dagster.project.run_context", "switch_profile"),
    "load_project": ("dltplus_dagster.project.project", "load_project"),
    "Project": ("dltplus_dagster.project.project", "Project"),
    "build_definitions": ("dltplus_dagster.dagster.definitions", "build_definitions"),
    "DltProjectResource": ("dltplus_dagster.dagster.resources", "DltProjectResource"),
    "DltDatasetIOManager": ("dltplus_dagster.dagster.io_manager", "DltDatasetIOManager"),
    "DltProjectTranslator": ("dltplus_dagster.dagster.translator", "DltProjectTranslator"),
    "DltTableMetadataSet": ("dltplus_dagster.dagster.metadata", "DltTableMetadataSet"),
    "PipelineRunConfig": ("dltplus_dagster.dagster.run_config", "PipelineRunConfig"),
    "run_config_of": ("dltplus_dagster.dagster.run_config", "run_config_of"),
    "DltProjectComponent": ("dltplus_dagster.dagster.component", "DltProjectComponent"),
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'dltplus_dagster' has no attribute '{name}'")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The lazy names too: `dg` finds `DltProjectComponent` by listing the module."""
    return sorted({*globals(), *_LAZY})
