"""The reference CLI forms, run as the real `dltplus` console script against copies of the
example project: `project config show|validate`, `profile NAME pin|info`, dlt's pipeline
commands on the profile's working dir, `dataset NAME drop`, `project clean`, `--progress`,
examples in `--help`."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dagster_support import duckdb_file, duckdb_tables
from helpers import ITEMS_SOURCE, clean_env, copy_example, make_project
from test_cli import DLTPLUS, SECRET, dltplus, ok, one_line_error, table_counts

PIPELINE = "shop_pipeline"
SHOP_TABLES = {"customers": 10, "products": 20, "orders": 40}  # tests profile


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example with `shop_pipeline` run once by the CLI (profile tests)."""
    project = copy_example(tmp_path_factory.mktemp("forms") / "shop")
    ok(dltplus(project, "pipeline", PIPELINE, "run"))
    return project


@pytest.fixture()
def fresh_loaded(tmp_path: Path) -> Path:
    """Like `loaded`, for tests that change what was loaded."""
    project = copy_example(tmp_path / "shop")
    ok(dltplus(project, "pipeline", PIPELINE, "run"))
    return project


def answering(project: Path, text: str, *args: str, profile: str = "tests") -> Any:
    """`dltplus ARGS` with `text` on stdin (the answers to its questions)."""
    return subprocess.run(
        [DLTPLUS, *args], cwd=project, env=clean_env(WORKSPACE__PROFILE=profile),
        input=text, capture_output=True, text=True, timeout=300, check=False,
    )


def working_dir(project: Path, profile: str = "tests") -> Path:
    return project / "_data" / profile / "pipelines" / PIPELINE


# --- project config show | validate ------------------------------------------------------------


def test_project_config_show_is_config(loaded: Path) -> None:
    shown = ok(dltplus(loaded, "project", "config", "show", "--section", "pipelines"))
    assert shown == ok(dltplus(loaded, "project", "config", "--section", "pipelines"))
    assert "shop_pipeline:" in shown
    as_json = ok(dltplus(loaded, "project", "--profile", "tests", "config", "show",
                         "--format", "json"))
    assert '"shop_pipeline"' in as_json and SECRET not in as_json


def test_project_config_validate(loaded: Path, tmp_path: Path) -> None:
    out = ok(dltplus(loaded, "project", "--profile", "tests", "config", "validate"))
    assert "Configuration validation successful" in out and "profile tests" in out

    broken = make_project(tmp_path, """
        pipelines:
          p: {source: nowhere.src, destination: duckdb, dataset_name: d}
    """)
    result = dltplus(broken, "project", "config", "validate")
    assert result.returncode == 1
    assert "nowhere" in result.stderr and "Traceback" not in result.stderr


# --- profile NAME pin | info -------------------------------------------------------------------


def test_profile_name_before_verb(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    pin = project / ".dlt" / "profile-name"
    out = ok(dltplus(project, "profile", "prod", "pin", profile=None))
    assert "Pinned profile prod" in out
    assert pin.read_text().strip() == "prod"
    # today's verb-first form still works
    ok(dltplus(project, "profile", "pin", "tests", profile=None))
    assert pin.read_text().strip() == "tests"

    dsn = "postgresql://loader:pw-x9@localhost:5432/shop"
    info = ok(dltplus(project, "profile", "prod", "info", profile=None,
                      env={"SHOP_PG_DSN": dsn}))
    assert "Profile prod\n" in info and "declared: yes" in info
    assert str(project / "_data" / "prod") in info and "pw-x9" not in info
    info = ok(dltplus(project, "profile", "prod", "info", profile=None))  # SHOP_PG_DSN unset
    assert "does not load here" in info and "SHOP_PG_DSN" in info
    info = ok(dltplus(project, "profile", "tests", "info", profile=None))
    assert "(current, pinned)" in info
    assert "Available profiles:" in ok(dltplus(project, "profile", "info", profile=None))

    error = one_line_error(dltplus(project, "profile", "nosuch", "pin", profile=None))
    assert "'nosuch'" in error and "Available profiles" in error
    assert pin.read_text().strip() == "tests"  # a refused pin writes nothing
    error = one_line_error(dltplus(project, "profile", "nosuch", "info", profile=None))
    assert "'nosuch'" in error


# --- dlt's pipeline commands on the profile's working dir -------------------------------------


def test_pipeline_info_schema_trace_show_loaded_tables(loaded: Path) -> None:
    info = ok(dltplus(loaded, "pipeline", PIPELINE, "info", "-v"))
    assert f"Found pipeline {PIPELINE} in {loaded / '_data' / 'tests' / 'pipelines'}" in info
    for table in SHOP_TABLES:
        assert re.search(rf"{table} table \d+ column\(s\) received data", info), info
    assert "dltplus pipeline shop_pipeline trace" in info  # dlt's hint, in our CLI's words

    schema = ok(dltplus(loaded, "pipeline", PIPELINE, "schema"))
    for table in SHOP_TABLES:
        assert re.search(rf"^  {table}:$", schema, re.MULTILINE), schema
    assert "order_id:" in schema
    assert '"orders"' in ok(dltplus(loaded, "pipeline", PIPELINE, "schema", "--format", "json"))

    trace = ok(dltplus(loaded, "pipeline", PIPELINE, "trace", "-v"))
    assert "Run started at" in trace and "is LOADED and contains no failed jobs" in trace
    for table in SHOP_TABLES:
        assert table in trace
    assert SECRET not in info + schema + trace


def test_pipeline_failed_jobs_and_load_package(loaded: Path) -> None:
    assert "No failed jobs found" in ok(dltplus(loaded, "pipeline", PIPELINE, "failed-jobs"))
    package = ok(dltplus(loaded, "pipeline", PIPELINE, "load-package"))
    assert re.search(r"Package \d+\.\d+ found in", package), package
    assert "orders" in package


def test_pipeline_commands_without_working_dir_say_sync(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    for verb in ("info", "trace", "schema", "failed-jobs", "load-package", "drop"):
        error = one_line_error(dltplus(project, "pipeline", PIPELINE, verb))
        assert "no working dir in profile tests" in error and "sync" in error, verb
    assert not (project / "_data" / "tests" / "pipelines").exists()  # asking wrote nothing
    error = one_line_error(dltplus(project, "pipeline", "nosuch", "info"))
    assert "nosuch" in error and "shop_pipeline" in error  # lists the declared ones


def test_pipeline_sync_restores_working_dir_from_destination(fresh_loaded: Path) -> None:
    shutil.rmtree(working_dir(fresh_loaded))  # as after Dagster runs or on another machine
    out = ok(dltplus(fresh_loaded, "pipeline", PIPELINE, "sync", "--yes"))
    assert working_dir(fresh_loaded).is_dir(), out
    schema = ok(dltplus(fresh_loaded, "pipeline", PIPELINE, "schema"))
    for table in SHOP_TABLES:
        assert re.search(rf"^  {table}:$", schema, re.MULTILINE), schema
    # sync with local state asks first: no answer keeps it
    state = working_dir(fresh_loaded) / "state.json"
    before = state.read_bytes()
    result = answering(fresh_loaded, "n\n", "pipeline", PIPELINE, "sync")
    assert result.returncode == 0 and "Proceed?" in result.stdout
    assert state.read_bytes() == before
    error = one_line_error(answering(fresh_loaded, "", "pipeline", PIPELINE, "sync"))
    assert "aborted, nothing was changed" in error  # no answer (stdin closed) is no
    assert state.read_bytes() == before


def test_pipeline_sync_of_never_loaded_pipeline_is_an_error(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    error = one_line_error(dltplus(project, "pipeline", PIPELINE, "sync", "--yes"))
    assert "nothing to restore" in error
    assert not working_dir(project).exists()


def test_pipeline_drop_asks_then_drops_resource_tables(fresh_loaded: Path) -> None:
    refused = answering(fresh_loaded, "n\n", "pipeline", PIPELINE, "drop", "orders")
    assert refused.returncode == 0
    assert "About to drop" in refused.stdout and "orders" in refused.stdout
    assert "shop_raw.orders" in duckdb_tables(fresh_loaded)

    out = ok(dltplus(fresh_loaded, "pipeline", PIPELINE, "drop", "orders", "--yes"))
    assert "orders" in out
    tables = duckdb_tables(fresh_loaded)
    assert "shop_raw.orders" not in tables
    assert {"shop_raw.customers", "shop_raw.products"} <= tables


# --- dataset NAME drop -------------------------------------------------------------------------


def test_dataset_drop_asks_then_drops_everything(fresh_loaded: Path) -> None:
    refused = answering(fresh_loaded, "n\n", "dataset", "shop_raw", "drop")
    assert refused.returncode == 1 and "Aborted: nothing was dropped" in refused.stdout
    for table in ("orders", "customers", "products", "_dlt_loads"):
        assert table in refused.stdout
    assert "shop_raw.orders" in duckdb_tables(fresh_loaded)

    no_tty = answering(fresh_loaded, "", "dataset", "shop_raw", "drop")  # no answer: no
    assert no_tty.returncode == 1 and "shop_raw.orders" in duckdb_tables(fresh_loaded)

    out = ok(dltplus(fresh_loaded, "dataset", "shop_raw", "drop", "--yes"))
    assert "Dropped dataset shop_raw on destination warehouse" in out
    assert not any(t.startswith("shop_raw.") for t in duckdb_tables(fresh_loaded))
    assert not working_dir(fresh_loaded).exists()  # stale local state went with it
    counts = ok(dltplus(fresh_loaded, "dataset", "shop_raw", "row-counts"))
    assert "has no tables" in counts
    assert "Nothing to drop" in ok(dltplus(fresh_loaded, "dataset", "shop_raw", "drop"))

    # the next run starts from scratch and loads everything again
    ok(dltplus(fresh_loaded, "pipeline", PIPELINE, "run"))
    assert table_counts(ok(dltplus(fresh_loaded, "dataset", "shop_raw", "row-counts"))) == (
        SHOP_TABLES
    )


# --- project clean -----------------------------------------------------------------------------


def test_project_clean_removes_only_the_active_profile(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    ok(dltplus(project, "pipeline", PIPELINE, "run", profile="tests"))
    ok(dltplus(project, "pipeline", PIPELINE, "run", profile="dev"))
    tests_dir, dev_dir = project / "_data" / "tests", project / "_data" / "dev"
    assert duckdb_file(project, "tests").exists() and duckdb_file(project, "dev").exists()

    refused = answering(project, "n\n", "project", "clean")
    assert refused.returncode == 1 and str(tests_dir) in refused.stdout
    assert tests_dir.exists()

    out = ok(dltplus(project, "project", "--profile", "tests", "clean", "--yes", profile=None))
    assert "Removed the local state of profile tests" in out
    assert not tests_dir.exists()
    assert duckdb_file(project, "dev").exists() and (dev_dir / "pipelines" / PIPELINE).is_dir()
    dev_counts = table_counts(ok(dltplus(project, "dataset", "shop_raw", "row-counts",
                                         profile="dev")))
    assert dev_counts["orders"] == 500
    assert (project / "dlt.yml").exists() and (project / ".dlt" / "secrets.toml").exists()
    assert "Nothing to clean" in ok(dltplus(project, "project", "clean"))


def test_project_clean_skip_data_dir_keeps_pipeline_state(fresh_loaded: Path) -> None:
    out = ok(dltplus(fresh_loaded, "project", "clean", "--skip-data-dir", "--yes"))
    assert str(fresh_loaded / "_data" / "tests" / "local") in out
    assert not duckdb_file(fresh_loaded).exists()
    assert working_dir(fresh_loaded).is_dir()


def test_project_clean_refuses_shared_data_dir(tmp_path: Path) -> None:
    project = make_project(tmp_path, """
        project:
          data_dir: "{project_dir}/_data"
        profiles:
          prod: {}
        pipelines: {}
    """)
    shared = project / "_data"
    (shared / "pipelines" / "p").mkdir(parents=True)
    error = one_line_error(dltplus(project, "project", "clean", "--yes"))
    assert "data_dir" in error and "profile" in error and "refusing" in error
    assert (shared / "pipelines" / "p").is_dir()


def test_project_clean_refuses_project_dir_as_data_dir(tmp_path: Path) -> None:
    project = make_project(tmp_path, """
        project:
          data_dir: "{project_dir}"
        pipelines: {}
    """)
    error = one_line_error(dltplus(project, "project", "clean", "--yes"))
    assert "the project dir" in error and "refusing" in error
    assert (project / "dlt.yml").exists()


# --- progress and help -------------------------------------------------------------------------


def test_pipeline_run_progress_log(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    result = dltplus(project, "pipeline", PIPELINE, "run", "--progress", "log")
    out = ok(result)
    assert re.search(r"-+ Extract shop -+", out + result.stderr), out + result.stderr
    assert "Resources:" in out + result.stderr


def test_progress_unknown_or_missing_package(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    result = dltplus(project, "pipeline", PIPELINE, "run", "--progress", "bars")
    assert result.returncode == 2 and "unknown progress 'bars'" in result.stderr
    missing = next((n for n in ("enlighten", "alive_progress", "tqdm")
                    if importlib.util.find_spec(n) is None), None)
    if missing is None:
        pytest.skip("every optional progress package is installed")
    result = dltplus(project, "pipeline", PIPELINE, "run", "--progress", missing)
    assert result.returncode == 2 and f"pip install {missing}" in result.stderr
    assert not (project / "_data" / "tests" / "pipelines").exists()


def test_manifest_progress_missing_package_names_key(tmp_path: Path) -> None:
    project = make_project(tmp_path, """
        pipelines:
          p:
            source: items
            destination: duckdb
            dataset_name: d
            progress: bars
    """, {"sources/items.py": ITEMS_SOURCE})
    result = dltplus(project, "project", "validate")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert re.search(r"dlt\.yml:\d+: pipelines\.p\.progress: unknown progress 'bars'",
                     result.stderr), result.stderr
    error = one_line_error(dltplus(project, "pipeline", "p", "run"))
    assert "pipelines.p.progress" in error and "unknown progress 'bars'" in error
    assert not (project / "_data" / "tests" / "pipelines" / "p").exists()


@pytest.mark.parametrize(
    "args, example",
    [
        (("pipeline", "run"), "dltplus pipeline my_pipeline run --limit 10 --progress log"),
        (("pipeline", "x", "sync"), "dltplus pipeline my_pipeline sync --yes"),
        (("dataset", "x", "drop"), "dltplus dataset my_dataset drop --yes"),
        (("project", "init"), "dltplus project init arrow duckdb my_project"),
        (("project", "config"), "dltplus project config validate"),
        (("profile", "pin"), "dltplus profile prod pin"),
        (("project",), "dltplus project --profile prod config show"),
    ],
)
def test_help_shows_an_example(tmp_path: Path, args: tuple[str, ...], example: str) -> None:
    out = ok(dltplus(tmp_path, *args, "--help"))
    assert "example:" in out and example in out


LEAKY_SOURCE = '''
import dlt


@dlt.source
def leaky(api_key: str = dlt.secrets.value):
    @dlt.resource(write_disposition="append")
    def rows():
        dlt.current.resource_state()["token_seen"] = api_key  # a source that keeps its key
        yield [{"id": 1}, {"id": 2}]

    return rows
'''


def test_pipeline_commands_mask_secrets_dlt_would_print(tmp_path: Path) -> None:
    project = make_project(tmp_path, """
        sources:
          leaky: {type: leaky.leaky}
        pipelines:
          p: {source: leaky, destination: duckdb, dataset_name: leaky_data}
    """, {"sources/leaky.py": LEAKY_SOURCE,
          ".dlt/secrets.toml": '[sources.leaky]\napi_key = "tok-5b9e1d77c2"\n'})
    ok(dltplus(project, "pipeline", "p", "run"))
    state = (project / "_data" / "tests" / "pipelines" / "p" / "state.json").read_text()
    assert "token_seen" in state  # dlt keeps what the source stored
    out = ok(dltplus(project, "pipeline", "-v", "p", "info"))
    assert "token_seen" in out and "tok-5b9e1d77c2" not in out
    assert "tok-5b9e1d77c2" not in ok(dltplus(project, "pipeline", "p", "trace", "-vv"))


def test_pipeline_info_on_corrupt_working_dir_is_one_line(fresh_loaded: Path) -> None:
    (working_dir(fresh_loaded) / "state.json").write_text("{not json")
    error = one_line_error(dltplus(fresh_loaded, "pipeline", PIPELINE, "info"))
    assert str(working_dir(fresh_loaded)) in error and "sync" in error
    ok(dltplus(fresh_loaded, "pipeline", PIPELINE, "sync", "--yes"))  # the way out
    assert "orders" in ok(dltplus(fresh_loaded, "pipeline", PIPELINE, "schema"))
