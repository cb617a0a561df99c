"""Shared fixtures: every test starts without an active project or profile env vars."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _reset_project_state(monkeypatch: pytest.MonkeyPatch):
    """Forget the process-wide project; no project dir or profile leaks in from the env."""
    from dltplus_dagster.project import run_context

    for var in ("DLT_PROJECT_DIR", "WORKSPACE__PROFILE"):
        monkeypatch.delenv(var, raising=False)
    run_context.reset()
    yield
    run_context.reset()
