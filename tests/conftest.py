"""Shared fixtures: every test starts without an active project or profile env vars; a fresh
copy of the example project (`shop_project`) and an ephemeral Dagster instance (`instance`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import PROJECT_ENV_VARS


@pytest.fixture(autouse=True)
def _reset_project_state(monkeypatch: pytest.MonkeyPatch):
    """Forget the process-wide project; no project dir or profile leaks in from the env."""
    from dltplus_dagster.project import run_context

    for var in PROJECT_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    run_context.reset()
    yield
    run_context.reset()


@pytest.fixture()
def shop_project(tmp_path: Path) -> Iterator[Path]:
    """A fresh copy of the example project, with no active project before or after."""
    from helpers import copy_example

    from dltplus_dagster.project import run_context

    run_context.reset()
    yield copy_example(tmp_path / "shop_project")
    run_context.reset()


@pytest.fixture()
def instance() -> Iterator[Any]:
    """An ephemeral `DagsterInstance`."""
    from dagster import DagsterInstance

    with DagsterInstance.ephemeral() as inst:
        yield inst
