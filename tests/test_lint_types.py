"""The type checker that `make lint` runs: mypy strict (pyproject's `[tool.mypy]`) on the package.

The whole package is held at zero errors (`.ci/run` runs `make lint`), and every `type: ignore`
in it names its code and a reason. Real mypy in a subprocess, the project's config.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CLEAN_MODULES = sorted(
    os.path.relpath(os.path.join(folder, name), ROOT).replace(os.sep, "/")
    for folder, _, names in os.walk(os.path.join(ROOT, "dltplus_dagster"))
    for name in names
    if name.endswith(".py")
)
"""Every module of the package: mypy strict reports no error anywhere in it."""


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
    assert proc.returncode == 0, proc.stdout + proc.stderr


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
