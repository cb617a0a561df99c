"""The Dagster code location: the example project, or the project in DLT_PROJECT_DIR.

    dagster dev -w workspace.yaml
    dagster asset materialize -f definitions.py --select '*'
"""

import os

from dltplus_dagster import build_definitions

EXAMPLE_PROJECT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "examples", "shop_project", "shop_project"
)

defs = build_definitions(os.environ.get("DLT_PROJECT_DIR") or EXAMPLE_PROJECT)
