"""The type checker that `make lint` runs: mypy strict (pyproject's `[tool.mypy]`) on the package.

The modules listed here are held at zero errors; the rest of the package joins the list as it
is cleaned (then `.ci/run` enables `make lint`). Real mypy in a subprocess, the project's config.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CLEAN_MODULES = [
    "dltplus_dagster/__init__.py",
    "dltplus_dagster/cli.py",
    "dltplus_dagster/demo.py",
    "dltplus_dagster/dagster/schedules.py",
    *(
        f"dltplus_dagster/project/{m}.py"
        for m in (
            "manifest", "model", "placeholders", "redact", "errors", "validate", "checks",
            "trace_store", "faults", "scaffold", "scaffold_templates", "local_pipeline",
            "dataset_drop", "clean", "progress", "postgres_credentials", "cron",
        )
    ),
]


def test_mypy_is_configured_strict_on_the_package() -> None:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        config = tomllib.load(f)["tool"]["mypy"]
    assert config["strict"] is True
    assert config["files"] == ["dltplus_dagster"]
    # missing imports are ignored per module only (packages that ship no types), never globally
    assert "ignore_missing_imports" not in config


def test_clean_modules_have_no_mypy_errors() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "dltplus_dagster"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert "error:" in proc.stdout or proc.returncode == 0, proc.stdout + proc.stderr
    errors = [
        line for line in proc.stdout.splitlines()
        if ": error:" in line and line.split(":", 1)[0] in CLEAN_MODULES
    ]
    assert errors == [], "\n".join(errors)


def test_type_ignores_in_clean_modules_name_their_code_and_reason() -> None:
    bare = []
    for path in CLEAN_MODULES:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            lines = f.read().splitlines()
        for i, line in enumerate(lines):
            if "# type: ignore" not in line:
                continue
            coded = re.search(r"# type: ignore\[[a-z-]+(, ?[a-z-]+)*\]", line)
            # the reason: a comment after the ignore, or on the line above
            after = line.split("# type: ignore", 1)[1].split("]", 1)[-1]
            reason = "#" in after or (i > 0 and lines[i - 1].strip().startswith("#"))
            if not (coded and reason):
                bare.append(f"{path}:{i + 1}: {line.strip()}")
    assert bare == [], "\n".join(bare)
