"""The `dltplus` console script, run in subprocesses against a copy of the example project."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import clean_env, copy_example

from dltplus_dagster.cli import main

DLTPLUS = os.path.join(os.path.dirname(sys.executable), "dltplus")
SECRET = "shop-demo-key-7f3a9c"  # in the example's .dlt/secrets.toml


def dltplus(
    project: Path, *args: str, profile: str | None = "tests", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `dltplus ARGS` from inside `project`; `profile` goes in via WORKSPACE__PROFILE."""
    run_env = clean_env()
    if profile:
        run_env["WORKSPACE__PROFILE"] = profile
    run_env.update(env or {})
    return subprocess.run(
        [DLTPLUS, *args],
        cwd=project,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def table_counts(stdout: str) -> dict[str, int]:
    """`table_name row_count` rows printed by `dataset NAME row-counts`."""
    return {m[1]: int(m[2]) for m in re.finditer(r"^\s*(\w+)\s+(\d+)\s*$", stdout, re.MULTILINE)}


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, f"{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example with `shop_pipeline` loaded and the transformation run once."""
    project = copy_example(tmp_path_factory.mktemp("cli") / "shop")
    out = ok(dltplus(project, "pipeline", "shop_pipeline", "run"))
    assert "Running pipeline shop_pipeline" in out
    assert "is LOADED and contains no failed jobs" in out  # dlt's LoadInfo summary
    assert re.search(r"Finished shop_pipeline: loaded .*orders=40", out)
    out = ok(dltplus(project, "transformation", "customer_totals", "run"))
    assert "Finished customer_totals: wrote customer_totals=10 into shop_reports" in out
    return project


# --- pipelines and datasets -------------------------------------------------------------------


def test_row_counts_show_loaded_tables(loaded: Path) -> None:
    out = ok(dltplus(loaded, "dataset", "shop_raw", "row-counts"))
    assert "Loading row counts for dataset shop_raw." in out
    assert table_counts(out) == {"customers": 10, "products": 20, "orders": 40}

    with_dlt = table_counts(
        ok(dltplus(loaded, "dataset", "shop_raw", "row-counts", "--dlt-tables"))
    )
    assert with_dlt["orders"] == 40 and with_dlt["_dlt_loads"] == 1


def test_profile_flag_after_group_and_project_flag(loaded: Path, tmp_path: Path) -> None:
    result = dltplus(
        tmp_path,
        "--project",
        str(loaded),
        "dataset",
        "--profile",
        "tests",
        "shop_raw",
        "row-counts",
        profile=None,
    )
    assert table_counts(ok(result))["orders"] == 40
    # the dev profile has its own data dir: nothing loaded there
    dev = ok(dltplus(loaded, "dataset", "--profile", "dev", "shop_raw", "row-counts"))
    assert "has no tables" in dev


def test_head(loaded: Path) -> None:
    out = ok(dltplus(loaded, "dataset", "shop_raw", "head", "orders", "--limit", "3"))
    lines = out.strip().splitlines()
    assert lines[0] == "Loading first 3 rows of table orders."
    assert "order_id" in lines[1] and len(lines) == 2 + 3
    default = ok(dltplus(loaded, "dataset", "shop_raw", "head", "customers"))
    assert default.startswith("Loading first 5 rows of table customers.")
    assert len(default.strip().splitlines()) == 2 + 5


def test_head_unknown_table(loaded: Path) -> None:
    line = one_line_error(dltplus(loaded, "dataset", "shop_raw", "head", "nope"))
    assert "nope" in line and "customers" in line


def test_transformation_output(loaded: Path) -> None:
    out = ok(dltplus(loaded, "dataset", "shop_reports", "row-counts"))
    assert table_counts(out) == {"customer_totals": 10}
    listed = ok(dltplus(loaded, "transformation", "list"))
    assert "* customer_totals: shop_raw to shop_reports" in listed


def test_dataset_info_and_list(loaded: Path) -> None:
    info = ok(dltplus(loaded, "dataset", "shop_raw", "info"))
    assert "Dataset shop_raw (declared)" in info
    assert "destinations: warehouse (default)" in info
    assert re.search(r"^\s+orders$", info, re.MULTILINE)
    listed = ok(dltplus(loaded, "dataset", "list"))
    assert "Found 2 dataset(s) in project:" in listed
    assert "* shop_raw: warehouse (declared)" in listed


def test_run_with_limit_and_resources(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    out = ok(
        dltplus(
            project, "pipeline", "shop_pipeline", "run", "--resources", "products", "--limit", "1"
        )
    )
    assert "products=20" in out and "orders" not in out.split("Finished")[-1]
    counts = table_counts(ok(dltplus(project, "dataset", "shop_raw", "row-counts")))
    assert counts == {"products": 20}


def test_implicit_dataset(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    manifest = project / "dlt.yml"
    text = manifest.read_text()
    text = text.replace(
        "    dataset_name: shop_raw\n    resources:", "    dataset_name: store_data\n    resources:"
    )
    manifest.write_text(text)
    ok(dltplus(project, "pipeline", "stores_pipeline", "run"))
    out = ok(dltplus(project, "dataset", "store_data", "row-counts"))
    assert table_counts(out) == {"stores": 5}
    listed = ok(dltplus(project, "dataset", "list"))
    assert "* store_data: warehouse (implicit)" in listed
    info = ok(dltplus(project, "dataset", "store_data", "info"))
    assert "Dataset store_data (implicit)" in info


def test_pipeline_list(loaded: Path) -> None:
    out = ok(dltplus(loaded, "pipeline", "list"))
    assert out.splitlines() == [
        "Found 2 pipeline(s) in project:",
        "  * shop_pipeline: shop to warehouse",
        "  * stores_pipeline: store_files to warehouse",
    ]


# --- errors -----------------------------------------------------------------------------------


def test_unknown_pipeline_is_one_line(loaded: Path) -> None:
    result = dltplus(loaded, "pipeline", "nope", "run")
    line = one_line_error(result)
    assert "pipeline 'nope' is not declared" in line
    assert "shop_pipeline, stores_pipeline" in line
    assert result.stdout == ""


def test_debug_shows_traceback(loaded: Path) -> None:
    result = dltplus(loaded, "--debug", "pipeline", "nope", "run")
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: pipeline 'nope'")


def test_no_project_found(tmp_path: Path) -> None:
    result = dltplus(tmp_path, "pipeline", "list")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: No dlt project found")
    assert str(tmp_path) in result.stderr  # the dirs it looked in


def test_error_does_not_leak_credentials(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    dsn = "postgresql://loader:pw-9d8e7f@127.0.0.1:1/shop"  # nothing listens on port 1
    result = dltplus(
        project,
        "pipeline",
        "shop_pipeline",
        "run",
        "--limit",
        "1",
        profile="prod",
        env={"SHOP_PG_DSN": dsn},
    )
    assert result.returncode == 1
    assert "pw-9d8e7f" not in result.stdout + result.stderr
    assert "Error: pipeline 'shop_pipeline' failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2() -> None:
    assert main(["pipeline", "shop_pipeline", "run", "--limit", "0"]) == 2
    assert main(["pipeline"]) == 2
    assert main(["--help"]) == 0


# --- project ----------------------------------------------------------------------------------


def test_validate_ok(loaded: Path) -> None:
    out = ok(dltplus(loaded, "project", "validate"))
    assert "Configuration validation successful" in out


def test_validate_broken_reference(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    manifest = project / "dlt.yml"
    text = manifest.read_text().replace("    source: shop\n", "    source: shopx\n")
    text = text.replace("      job: daily_refresh\n", "      job: daily\n")
    manifest.write_text(text)
    result = dltplus(project, "project", "validate")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Found 2 problem(s)" in result.stderr
    assert re.search(
        r"dlt\.yml:\d+: pipelines\.shop_pipeline\.source: source 'shopx' is not "
        r"declared",
        result.stderr,
    )
    assert re.search(
        r"dlt\.yml:\d+: dagster\.schedules\.nightly_refresh\.job: job 'daily' is "
        r"not declared",
        result.stderr,
    )


def test_validate_reports_load_errors(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    (project / "dlt.yml").write_text("pipelines:\n  p: {source: 5}\n")
    result = dltplus(project, "project", "validate")
    assert result.returncode == 1
    assert "pipelines.p.source" in result.stderr and "Traceback" not in result.stderr


def test_config_never_shows_secrets(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    manifest = project / "dlt.yml"
    text = manifest.read_text().replace(
        "    type: duckdb ", "    password: planted-pw-4411\n    type: duckdb "
    )
    manifest.write_text(text)
    assert "planted-pw-4411" in manifest.read_text()
    for args in (
        ("project", "config"),
        ("project", "config", "--format", "json"),
        ("project", "config", "--section", "destinations"),
        ("project", "info"),
    ):
        result = dltplus(project, *args)
        out = ok(result) + result.stderr
        assert SECRET not in out and "planted-pw-4411" not in out, args
    destinations = ok(dltplus(project, "project", "config", "--section", "destinations"))
    assert "password: '***'" in destinations
    sources = ok(dltplus(project, "project", "config", "--section", "sources"))
    assert "n_customers: 10" in sources  # the tests profile is merged in


def test_config_unknown_section(loaded: Path) -> None:
    line = one_line_error(dltplus(loaded, "project", "config", "--section", "nope"))
    assert "sources" in line and "pipelines" in line


def test_project_info(loaded: Path) -> None:
    out = ok(dltplus(loaded, "project", "info"))
    assert "Project name:       shop_analytics" in out
    assert f"Project dir:        {loaded}" in out
    assert "Current profile:    tests (from env WORKSPACE__PROFILE)" in out
    assert f"Data dir:           {loaded / '_data' / 'tests'}" in out


def test_project_list(loaded: Path) -> None:
    out = ok(dltplus(loaded, "project", "list"))
    assert "No installed dlt packages found" in out or "dlt package(s):" in out


def test_project_prepare_fills_the_table_cache(tmp_path: Path) -> None:
    """`project prepare` caches every pipeline's tables (an image build step); a code location
    then loads without calling a source, so without its secrets. A source that cannot be built
    is one line naming the pipeline, the others are still cached."""
    from dltplus_dagster import build_definitions

    project = copy_example(tmp_path / "shop")
    state = project / ".dlt" / ".dltplus_state.json"
    out = ok(dltplus(project, "project", "prepare"))
    assert "* shop_pipeline: customers, products, orders (discovered)" in out
    assert "* stores_pipeline: stores (discovered)" in out
    assert state.is_file()
    out = ok(dltplus(project, "project", "prepare"))
    assert "* shop_pipeline: customers, products, orders (cached)" in out

    secrets = project / ".dlt" / "secrets.toml"
    secrets.unlink()  # the shop source needs its api_key to be built
    defs = build_definitions(str(project), "tests")
    assert {k.path[-1] for k in defs.resolve_asset_graph().get_all_asset_keys()} >= {
        "customers", "products", "orders", "stores"
    }

    state.unlink()
    result = dltplus(project, "project", "prepare")
    assert result.returncode == 1
    assert "* stores_pipeline: stores (discovered)" in result.stdout
    failure = [line for line in result.stderr.splitlines() if line.startswith("  ! ")]
    assert len(failure) == 1
    assert failure[0].startswith("  ! shop_pipeline: source 'shop' could not be built:")
    assert "api_key" in failure[0]
    assert result.stderr.strip().splitlines()[-1].startswith("Error: 1 pipeline(s)")
    assert "stores_pipeline" in state.read_text() and "shop_pipeline" not in state.read_text()


# --- profiles ---------------------------------------------------------------------------------


def test_profile_list(loaded: Path) -> None:
    out = ok(dltplus(loaded, "profile", "list"))
    assert "  * tests (current)" in out
    assert "  * dev (default)" in out
    assert "  * prod" in out and "  * access" in out
    assert "Pinned profile: (none)" in out


def test_profile_pin_unknown(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    line = one_line_error(dltplus(project, "profile", "pin", "nope"))
    assert "Profile 'nope'" in line
    assert "Available profiles: access, dev, prod, tests" in line
    assert not (project / ".dlt" / "profile-name").exists()


def test_profile_pin(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    ok(dltplus(project, "profile", "pin", "tests", profile=None))
    assert (project / ".dlt" / "profile-name").read_text().strip() == "tests"
    out = ok(dltplus(project, "profile", "list", profile=None))
    assert "  * tests (current, pinned)" in out
    assert "Current profile: tests (from pin file" in out
    info = ok(dltplus(project, "project", "info", profile=None))
    assert "Current profile:    tests (from pin file" in info


def test_error_messages_mask_known_secrets(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    reports = project / "transformations" / "reports.py"
    reports.write_text(
        reports.read_text()
        + "\n\ndef leaky(shop_raw):\n    raise ValueError('rejected key "
        + SECRET
        + "')\n"
    )
    manifest = project / "dlt.yml"
    manifest.write_text(
        manifest.read_text().replace("function: reports.customer_totals", "function: reports.leaky")
    )
    result = dltplus(project, "transformation", "customer_totals", "run")
    assert result.returncode == 1
    assert SECRET not in result.stdout + result.stderr
    assert "ValueError: rejected key ***" in result.stderr


# --- validate_project, in process -------------------------------------------------------------


def _problems(project: Path, profile: str = "tests") -> list[str]:
    from dltplus_dagster.project.project import load_project
    from dltplus_dagster.project.validate import validate_project

    return validate_project(load_project(str(project), profile))


def test_validate_project_transformations_and_jobs(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    assert _problems(project) == []
    manifest = project / "dlt.yml"
    text = manifest.read_text()
    text = text.replace("inputs: [shop_raw]", "inputs: [shop_rawx]")
    text = text.replace("function: reports.customer_totals", "function: reports.nope")
    text = text.replace("pipelines: [shop_pipeline, stores_pipeline]", "pipelines: [shop, x]")
    text = text.replace(
        "destination: [warehouse]\n    description: Reports",
        "destination: [wh2]\n    description: Reports",
    )
    manifest.write_text(text)
    problems = "\n".join(_problems(project))
    assert re.search(
        r"^dlt\.yml:\d+: transformations\.customer_totals\.inputs\.0: dataset "
        r"'shop_rawx' is not declared and no pipeline or transformation writes it",
        problems,
        re.MULTILINE,
    )
    assert "transformations.customer_totals.function: cannot import 'reports.nope'" in problems
    assert "transformations.customer_totals.depends_on.0: dataset 'shop_raw' is not one of" in (
        problems
    )
    assert "dagster.jobs.daily_refresh.pipelines.0: pipeline 'shop' is not declared" in problems
    assert "dagster.jobs.daily_refresh.pipelines.1: pipeline 'x' is not declared" in problems
    assert (
        "datasets.shop_reports.destination.0: destination 'wh2' is not declared and is not "
        "a dlt destination type"
    ) in problems


def test_validate_project_strict_entities(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    manifest = project / "dlt.yml"
    text = manifest.read_text().replace(
        "  name: shop_analytics\n", "  name: shop_analytics\n  allow_undefined_entities: false\n"
    )
    text = text.replace(
        "    destination: warehouse\n    dataset_name: shop_raw\n    schedule",
        "    destination: duckdb\n    dataset_name: shop_raw\n    schedule",
    )
    manifest.write_text(text)
    problems = "\n".join(_problems(project))
    assert (
        "pipelines.shop_pipeline.destination: destination 'duckdb' is not declared and "
        "implicit entities are disabled"
    ) in problems
    assert "Declared destinations: warehouse" in problems
