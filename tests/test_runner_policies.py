"""The run policies on their own: the schema-race loop, the pipeline lock, the retry count."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from dlt.common.destination.exceptions import SchemaUpdateError
from helpers import make_project

from dltplus_dagster import current
from dltplus_dagster.project.errors import PipelineLocked
from dltplus_dagster.project.model import RetryPolicy, RunConfig
from dltplus_dagster.project.run_policies import (
    SCHEMA_RACE_ATTEMPTS,
    pipeline_lock,
    retry_schema_races,
    run_with_retries,
)


def lost_race() -> SchemaUpdateError:
    return SchemaUpdateError("shop", ["orders"], RuntimeError("relation already exists"))


def test_a_lost_schema_race_loads_again_and_keeps_what_was_normalized(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    def first() -> str:
        calls.append("run")
        raise lost_race()

    def again() -> str:
        calls.append("load")
        if calls.count("load") < 2:
            raise lost_race()
        return "loaded"

    kept: list[int] = []
    with caplog.at_level(logging.WARNING):
        assert retry_schema_races(first, again, "shop", lambda: kept.append(1)) == "loaded"
    assert calls == ["run", "load", "load"]  # the run once, then loads only
    assert kept == [1, 1]
    assert "loading again (2/4)" in caplog.text and "loading again (3/4)" in caplog.text


def test_schema_races_stop_after_the_last_attempt_and_other_errors_are_not_retried() -> None:
    loads: list[int] = []

    def always_lost() -> None:
        loads.append(1)
        raise lost_race()

    with pytest.raises(SchemaUpdateError):
        retry_schema_races(always_lost, always_lost, "shop")
    assert len(loads) == SCHEMA_RACE_ATTEMPTS

    tried: list[int] = []

    def broken() -> None:
        tried.append(1)
        raise ValueError("not a race")

    with pytest.raises(ValueError, match="not a race"):
        retry_schema_races(broken, broken, "shop")
    assert tried == [1]


def test_errors_outside_the_pipeline_steps_count_one_attempt() -> None:
    policy = RunConfig(retry_policy=RetryPolicy(type="fixed", max_attempts=3))
    assert run_with_retries(lambda: "ok", policy, "p") == ("ok", 1)
    tried: list[int] = []

    def fails() -> None:
        tried.append(1)
        raise ValueError("building the source failed")

    with pytest.raises(ValueError):
        run_with_retries(fails, policy, "p")
    assert tried == [1]  # not a failed pipeline step: never retried


def test_the_pipeline_lock_refuses_a_second_holder_and_frees_on_exit(tmp_path: Path) -> None:
    root = make_project(tmp_path, "project: {name: locks}\n")
    project = current.project(str(root))
    with pipeline_lock(project, "p"):
        with pytest.raises(PipelineLocked) as exc, pipeline_lock(project, "p"):
            pass
        assert "pipelines.p.run_config.lock_timeout" in str(exc.value)
        with pipeline_lock(project, "other"):  # one lock per pipeline
            pass
    with pipeline_lock(project, "p"):  # released
        pass
