"""`make demo`: materialize the example project through Dagster into DuckDB, print what loaded.

Runs the real `dagster asset materialize` CLI on definitions.py with a temporary DAGSTER_HOME,
then reads the catalog back and prints row counts per dataset table.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(REPO, "examples", "shop_project", "shop_project")


def main() -> int:
    project_dir = os.environ.get("DLT_PROJECT_DIR") or EXAMPLE
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    with tempfile.TemporaryDirectory(prefix="dagster_home_") as home:
        env = {**os.environ, "DAGSTER_HOME": home, "DLT_PROJECT_DIR": project_dir}
        print(f"Materializing every asset of {project_dir} through Dagster ...", flush=True)
        proc = subprocess.run(
            [dagster, "asset", "materialize", "-f", os.path.join(REPO, "definitions.py"),
             "--select", "*"], check=False,
            env=env, cwd=REPO, capture_output=True, text=True,
        )
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            print("Materialization failed.", file=sys.stderr)
            return 1
    from dltplus_dagster import current

    catalog = current.catalog(project_dir)
    print(f"Loaded into DuckDB (profile {catalog.project.current_profile}):")
    for name in catalog:
        ds = catalog.dataset(name)
        for table, rows in ds.row_counts().items():
            print(f"  {name}.{table}: {rows} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
