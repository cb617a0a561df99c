"""End to end in a real browser: `dagster dev` on the example project, headless Chromium.

Starts `dagster dev` (webserver + daemon) on loopback for a copy of the example project with the
`tests` profile, served by each of the two code locations the repo ships: the root
`definitions.py` (`build_definitions`) and the component-based `examples/dg_project`
(`DltProjectComponent`), each with the user asset `shop_reports/big_orders`. It opens the asset catalog in Debian's Chromium through Playwright, checks the
project's assets are listed, clicks "Materialize all" on the lineage page, waits for the run to
succeed (GraphQL) and for the UI to show the assets materialized, and saves screenshots under
`test-artifacts/`. Chromium is installed by `tests/services/ensure_browser.sh` when missing; a
machine where it cannot be installed fails this test (it is never skipped).

    .venv/bin/pytest tests/test_prod_browser.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO, copy_example, free_port, stop_group

DG_EXAMPLE = REPO / "examples" / "dg_project"

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ASSETS = [
    "shop_raw / customers",
    "shop_raw / orders",
    "shop_raw / products",
    "shop_raw / stores",
    "shop_reports / customer_totals",
    "shop_reports / big_orders",  # the user asset next to the project's (IO manager)
]
STARTUP_TIMEOUT = 90
RUN_TIMEOUT = 120


def ensure_chromium() -> str | None:
    """Installs Debian's Chromium when missing; why it is unusable, or None when it is there."""
    if not os.access(CHROMIUM, os.X_OK):
        script = REPO / "tests" / "services" / "ensure_browser.sh"
        proc = subprocess.run(
            ["bash", str(script)], capture_output=True, text=True, timeout=600, check=False
        )
        if proc.returncode != 0 or not os.access(CHROMIUM, os.X_OK):
            return (
                f"Chromium is required at {CHROMIUM} and could not be installed by {script} "
                f"(exit {proc.returncode}): {proc.stderr.strip()[-2000:]}\n"
                "Install it with: apt-get update && apt-get install -y chromium"
            )
    return None


def graphql(base: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(
        f"{base}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        doc = json.loads(resp.read())
    if doc.get("errors"):
        raise AssertionError(f"GraphQL errors: {doc['errors']}")
    return doc["data"]


class DagsterDev:
    """`dagster dev` in its own process group, output to a log file."""

    def __init__(
        self, tmp_path: Path, project_dir: Path, target: tuple[str, ...] = ("-f", "definitions.py"),
        cwd: Path = REPO,
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        home = tmp_path / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
        self.log_path = tmp_path / "dagster_dev.log"
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "DLT_PROJECT_DIR": str(project_dir),
            "WORKSPACE__PROFILE": "tests",
        }
        dagster = Path(sys.executable).parent / "dagster"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [str(dagster), "dev", "-h", "127.0.0.1", "-p", str(self.port), *target],
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:]

    def wait_ready(self) -> None:
        """Until the webserver answers and the code location has loaded."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"dagster dev exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                data = graphql(
                    self.base,
                    "{ workspaceOrError { ... on Workspace { locationEntries { name "
                    "loadStatus locationOrLoadError { __typename ... on PythonError "
                    "{ message } } } } } }",
                )
                entries = data["workspaceOrError"]["locationEntries"]
                last = str(entries)
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    errors = [
                        e for e in entries if e["locationOrLoadError"]["__typename"] == "PythonError"
                    ]
                    assert not errors, f"code location failed to load: {errors}"
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        pytest.fail(f"dagster dev not ready in {STARTUP_TIMEOUT}s ({last}):\n{self.log_tail()}")

    def stop(self) -> None:
        stop_group(self.proc)
        self._log.close()


@pytest.fixture
def chromium_problem() -> str | None:
    """Installs Chromium if needed; the test (not its setup) fails when that did not work."""
    return ensure_chromium()


def component_location(tmp_path: Path) -> tuple[Path, tuple[str, ...], Path]:
    """A copy of `examples/dg_project` next to a copy of the shop project (as in the repo):
    (the shop project, `dagster dev`'s target arguments, its working dir)."""
    dg_root = Path(shutil.copytree(
        DG_EXAMPLE, tmp_path / "examples" / "dg_project",
        ignore=shutil.ignore_patterns(".local_defs_state", "__pycache__", "*.egg-info"),
    ))
    project = copy_example(tmp_path / "examples" / "shop_project" / "shop_project")
    return project, ("-m", "dg_shop.definitions", "-d", str(dg_root / "src")), dg_root


@pytest.fixture(params=["definitions.py", "dg_component"])
def dagster_dev(
    request: pytest.FixtureRequest, tmp_path: Path, chromium_problem: str | None
) -> Iterator[DagsterDev | None]:
    if chromium_problem:
        yield None  # no browser: no server either; the test fails with the reason
        return
    if request.param == "dg_component":
        project, target, cwd = component_location(tmp_path)
        server = DagsterDev(tmp_path, project, target, cwd)
    else:
        server = DagsterDev(tmp_path, copy_example(tmp_path / "shop_project"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


RUNS_QUERY = """
{ runsOrError { __typename ... on Runs { results { runId status jobName assetSelection { path } } } } }
"""

RUN_EVENTS_QUERY = """
query Events($runId: ID!) {
  logsForRun(runId: $runId, limit: 1000) {
    __typename
    ... on EventConnection { events { __typename message
      ... on ExecutionStepFailureEvent { error { message } } } }
  }
}
"""


def wait_for_run(server: DagsterDev) -> dict[str, Any]:
    """The one run launched from the UI, once it finished; fails on a failed run or timeout."""
    deadline = time.monotonic() + RUN_TIMEOUT
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = graphql(server.base, RUNS_QUERY)["runsOrError"]["results"]
        if runs and runs[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            run = runs[0]
            if run["status"] != "SUCCESS":
                events = graphql(server.base, RUN_EVENTS_QUERY, {"runId": run["runId"]})
                pytest.fail(f"run {run['runId']} ended {run['status']}: {events}")
            return run
        time.sleep(1)
    pytest.fail(f"no finished run after {RUN_TIMEOUT}s: {runs}\n{server.log_tail()}")


def dismiss_popups(page: Any) -> None:
    """Close Dagster's newsletter dialog if this instance still shows it."""
    skip = page.get_by_role("button", name="Skip")
    if skip.count() and skip.first.is_visible():
        skip.first.click()


def test_materialize_all_from_the_browser(
    request: pytest.FixtureRequest, chromium_problem: str | None, dagster_dev: DagsterDev | None
) -> None:
    from playwright.sync_api import expect, sync_playwright

    if chromium_problem or dagster_dev is None:
        pytest.fail(chromium_problem or "no dagster dev server", pytrace=False)
    ARTIFACTS.mkdir(exist_ok=True)
    base = dagster_dev.base
    shot = "prod_browser" if request.node.callspec.id == "definitions.py" else "prod_browser_dg"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(30_000)

            # the catalog lists every table of the project as `<dataset> / <table>`
            page.goto(f"{base}/assets")
            for name in ASSETS:
                expect(page.get_by_text(name, exact=True).first).to_be_visible()
            dismiss_popups(page)
            expect(page.get_by_text("Never materialized").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / f"{shot}_catalog_before.png"))

            # the lineage page shows the pipelines' groups; materialize everything from there
            page.goto(f"{base}/asset-groups")
            button = page.get_by_role("button", name="Materialize all")
            expect(button).to_be_enabled()
            dismiss_popups(page)
            for group in ("shop_pipeline", "stores_pipeline", "customer_totals"):
                expect(page.get_by_text(group, exact=True).first).to_be_visible()
            button.click()
            expect(page.get_by_text("Launched run").first).to_be_visible()

            run = wait_for_run(dagster_dev)
            assert run["jobName"] == "__ASSET_JOB"
            selected = {"/".join(a["path"]) for a in run["assetSelection"] or []}
            assert {n.replace(" / ", "/") for n in ASSETS} <= selected, selected

            # back in the catalog, every asset shows as materialized (the UI polls)
            page.goto(f"{base}/assets")
            for name in ASSETS:
                expect(page.get_by_text(name, exact=True).first).to_be_visible()
            dismiss_popups(page)
            expect(page.get_by_text("Never materialized")).to_have_count(0, timeout=30_000)
            expect(page.get_by_text("Materialized").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / f"{shot}_catalog.png"))

            # the run page of the launched run shows it succeeded
            page.goto(f"{base}/runs/{run['runId']}")
            expect(page.get_by_text("Success").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / f"{shot}_run.png"))
        finally:
            browser.close()
