"""Planted secrets never show: config dumps, the CLI, Dagster events, errors, logs, GraphQL.

A copy of the example project gets four secrets, each from a different place dlt reads them:

- the example secret in `.dlt/secrets.toml` (`sources.shop.api_key`, used by `shop_pipeline`),
- `sources.vault.api_key` in `.dlt/tests.secrets.toml` (the `tests` profile's secrets file),
- `sources.vault.token` from the env var `SOURCES__VAULT__TOKEN`,
- a password inside a destination `credentials` URL in `dlt.yml` (an unused postgres),
- the password of the PostgreSQL destination `shop_to_pg` really loads into, in `dlt.yml`
  (the local test server trusts loopback, so any password connects; see `tests/pg.py`).

`vault_pipeline` loads with the TOML and env secrets; `vault_broken` fails the way an HTTP
client does, with both secrets in the URL of its error message. Then every surface a user or an
operator sees is scanned for the planted values: `current.project().config`, `dltplus project
config`, CLI errors, Dagster materialization metadata and event records of an in-process run,
the exception a failing run raises, Python logging at DEBUG, and the GraphQL API, run storage
and compute logs of a `dagster-webserver` that ran the assets in its own processes.

    .venv/bin/pytest tests/test_prod_secrets.py
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import textwrap
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import BIN, REPO, clean_env, copy_example, free_port, no_daemon_dagster_home
from helpers import webserver as start_webserver
from pg import PgServer, pg_server, with_database  # noqa: F401 - fixture

EXAMPLE_SECRET = "shop-demo-key-7f3a9c"
TOML_SECRET = "PLANTED-toml-k3y-51d"
ENV_SECRET = "PLANTED-env-t0k-8q2"
URL_PASSWORD = "PLANTED-pw-9x7"
PG_PASSWORD = "PLANTED-pgpw-4k1"
PLANTED = {
    ".dlt/secrets.toml": EXAMPLE_SECRET,
    ".dlt/tests.secrets.toml": TOML_SECRET,
    "env SOURCES__VAULT__TOKEN": ENV_SECRET,
    "dlt.yml destinations.unused_pg.credentials": URL_PASSWORD,
    "dlt.yml destinations.pg_wh.credentials": PG_PASSWORD,
}
SECRET_ENV = {
    "SOURCES__VAULT__TOKEN": ENV_SECRET,
    "SOURCES__VAULT_FAIL__TOKEN": ENV_SECRET,
    "SOURCES__VAULT_QUIET__TOKEN": ENV_SECRET,
    "RUNTIME__DLTHUB_TELEMETRY": "false",  # the runs stay on this machine
}

VAULT_SOURCE = '''
import dlt


@dlt.source
def vault(
    api_key: str = dlt.secrets.value, token: str = dlt.secrets.value, fail: bool = False,
    leak: bool = True,
):
    """One row that needs two secrets; `fail` fails the call like an HTTP client's 401 does
    (with the secrets in the URL of the message, unless not `leak`)."""

    @dlt.resource(write_disposition="replace")
    def secrets_used():
        if fail and not leak:
            raise RuntimeError("401 Client Error: Unauthorized")
        if fail:
            raise RuntimeError(
                f"401 Client Error: Unauthorized for url: https://vault.example/api?key={api_key}"
                f"&token={token}"
            )
        yield [{"id": 1, "key_length": len(api_key), "token_length": len(token)}]

    return secrets_used
'''

EXTRA_MANIFEST = {
    "sources": {
        "vault": {"type": "vault.vault"},
        "vault_fail": {"type": "vault.vault", "with_args": {"fail": True}},
        "vault_quiet": {"type": "vault.vault", "with_args": {"fail": True, "leak": False}},
    },
    "destinations": {
        "unused_pg": {
            "type": "postgres",
            "credentials": f"postgresql://loader:{URL_PASSWORD}@127.0.0.1:1/nowhere",
        }
    },
    "pipelines": {
        "vault_pipeline": {
            "source": "vault", "destination": "warehouse", "dataset_name": "vault_data",
        },
        "vault_broken": {
            "source": "vault_fail", "destination": "warehouse", "dataset_name": "vault_broken_data",
        },
        "vault_quiet": {
            "source": "vault_quiet", "destination": "warehouse", "dataset_name": "vault_quiet_data",
        },
        "shop_to_pg": {"source": "shop", "destination": "pg_wh", "dataset_name": "shop_pg"},
    },
}

OK_ASSETS = [
    ("shop_raw", "customers"), ("shop_raw", "orders"), ("shop_raw", "products"),
    ("vault_data", "secrets_used"), ("shop_pg", "customers"), ("shop_pg", "orders"),
]
BROKEN_ASSET = ("vault_broken_data", "secrets_used")


def find_planted(text: str, planted: dict[str, str] | None = None) -> dict[str, str]:
    """Planted secrets (`PLANTED`, or origin -> value) found in `text`: origin -> a snippet
    around the first hit."""
    hits = {}
    for origin, secret in (PLANTED if planted is None else planted).items():
        i = text.find(secret)
        if i >= 0:
            hits[origin] = text[max(0, i - 150) : i + len(secret) + 50]
    return hits


def assert_clean(where: str, text: str, planted: dict[str, str] | None = None) -> None:
    hits = find_planted(text, planted)
    assert not hits, f"{where} shows planted secret(s):\n" + "\n".join(
        f"  from {origin}: ...{snippet}..." for origin, snippet in hits.items()
    )


def assert_files_clean(
    where: str, root: Path, planted: dict[str, str] | None = None
) -> list[Path]:
    """Every file under `root` (SQLite storage, pickles, logs: read as bytes) free of the
    planted secrets; returns the files scanned."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        assert_clean(f"{where} file {path.relative_to(root)}",
                     path.read_bytes().decode("utf-8", errors="replace"), planted)
    return files


@pytest.fixture
def project_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_server: PgServer  # noqa: F811
) -> Path:
    """The example project with the planted secrets; the env secrets set for this test."""
    root = copy_example(tmp_path / "shop_project")
    assert EXAMPLE_SECRET in (root / ".dlt" / "secrets.toml").read_text()
    (root / "sources" / "vault.py").write_text(textwrap.dedent(VAULT_SOURCE))
    (root / ".dlt" / "tests.secrets.toml").write_text(
        f'[sources.vault]\napi_key = "{TOML_SECRET}"\n\n'
        f'[sources.vault_fail]\napi_key = "{TOML_SECRET}"\n\n'
        f'[sources.vault_quiet]\napi_key = "{TOML_SECRET}"\n'
    )
    manifest = yaml.safe_load((root / "dlt.yml").read_text())
    for section, entities in EXTRA_MANIFEST.items():
        manifest.setdefault(section, {}).update(entities)
    database = pg_server.create_database("secrets")
    dsn = with_database(pg_server.url, database.name, password=PG_PASSWORD)
    assert PG_PASSWORD in dsn, f"the test server url {pg_server.url} has a password already"
    manifest["destinations"]["pg_wh"] = {"type": "postgres", "credentials": dsn}
    (root / "dlt.yml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    return root


# --- the project layer and the CLI -------------------------------------------------------------


def test_project_config_redacts_secrets(project_dir: Path) -> None:
    from dltplus_dagster import current

    project = current.project(str(project_dir), "tests")
    config = project.config
    # the destination is shown, its credentials are not
    assert config["destinations"]["unused_pg"]["type"] == "postgres"
    assert URL_PASSWORD not in str(config["destinations"]["unused_pg"])
    for label, text in {
        "project.config (str)": str(config),
        "project.config (yaml)": yaml.safe_dump(config),
        "project.config (json)": json.dumps(config, default=str),
        "repr(project)": repr(project),
        "str(project)": str(project),
    }.items():
        assert_clean(label, text)


def run_cli(
    project_dir: Path, *args: str, debug: bool = False
) -> subprocess.CompletedProcess[str]:
    env = clean_env(**SECRET_ENV)
    return subprocess.run(
        [str(BIN / "dltplus"), *(["--debug"] if debug else []), *args[:1],
         "--project", str(project_dir), "--profile", "tests", *args[1:]],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )


def test_cli_output_hides_secrets(project_dir: Path) -> None:
    assert (BIN / "dltplus").exists(), "the `dltplus` console script is not installed in .venv"
    for args in (("project", "config"), ("project", "config", "--format", "json"),
                 ("project", "info"), ("project", "validate")):
        proc = run_cli(project_dir, *args)
        assert proc.returncode == 0, (
            f"`dltplus {' '.join(args)}` failed ({proc.returncode}): {proc.stderr}"
        )
        assert_clean(f"`dltplus {' '.join(args)}`", proc.stdout + proc.stderr)
    config = run_cli(project_dir, "project", "config").stdout
    assert "unused_pg" in config and "postgres" in config  # the destination is shown, masked

    # a failing pipeline: the error says what failed, without the secrets in its message
    for debug in (False, True):
        proc = run_cli(project_dir, "pipeline", "vault_broken", "run", debug=debug)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "401 Client Error" in proc.stderr, proc.stderr
        if debug:
            assert "Traceback" in proc.stderr, proc.stderr
        assert_clean(f"`dltplus {'--debug ' if debug else ''}pipeline vault_broken run`",
                     proc.stdout + proc.stderr)

    for args in (("pipeline", "vault_pipeline", "run"), ("pipeline", "shop_to_pg", "run"),
                 ("dataset", "shop_pg", "info"), ("dataset", "shop_pg", "row-counts")):
        proc = run_cli(project_dir, *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert_clean(f"`dltplus {' '.join(args)}`", proc.stdout + proc.stderr)


def test_runner_errors_hide_secrets_and_other_errors_keep_their_type(project_dir: Path) -> None:
    """`current.runner()` (the CLI's and Dagster's runner): an error showing a secret becomes a
    `RedactedError` chain with the same messages masked; other errors are left alone."""
    from dlt.pipeline.exceptions import PipelineStepFailed

    from dltplus_dagster import current
    from dltplus_dagster.project.redact import RedactedError

    runner = current.runner(str(project_dir), "tests")
    with pytest.raises(RedactedError) as exc:
        runner.run_pipeline("vault_broken")
    text = "".join(traceback.format_exception(exc.value))
    assert "PipelineStepFailed" in str(exc.value)
    assert "401 Client Error: Unauthorized for url: https://vault.example/api?key=***" in text
    assert "vault.py" in text  # the stack frames are kept, down to the source's line
    assert exc.value.__context__ is None  # the original (with the secrets) is not chained
    assert_clean("the runner's error", text)

    with pytest.raises(PipelineStepFailed, match="401 Client Error: Unauthorized"):
        runner.run_pipeline("vault_quiet")
    _assert_local_state_clean(project_dir, expect_trace=True)


def _assert_local_state_clean(project_dir: Path, expect_trace: bool = False) -> None:
    """dlt pickles each run's trace, error messages included, into the pipeline's working dir:
    no file under the profile's data dir may hold a secret (a trace that did is removed)."""
    from dltplus_dagster import current

    data_dir = Path(current.project(str(project_dir), "tests").data_dir)
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    if expect_trace:
        assert any(p.name == "trace.pickle" for p in files)  # clean traces are kept
    for path in files:
        assert_clean(f"local state file {path}", path.read_bytes().decode("utf-8", "replace"))


# --- Dagster, in process -------------------------------------------------------------------------


def _event_text(instance: Any, run_id: str) -> str:
    parts = []
    for record in instance.all_logs(run_id):
        parts.append(str(record))
        event = record.dagster_event
        if event is not None and event.is_step_failure:
            parts.append(event.step_failure_data.error.to_string())
    return "\n".join(parts)


def test_dagster_run_metadata_events_errors_and_logs_hide_secrets(
    project_dir: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    from dagster import AssetKey, DagsterInstance

    from dltplus_dagster import build_definitions

    caplog.set_level(logging.DEBUG)
    defs = build_definitions(str(project_dir), "tests")
    job = defs.resolve_implicit_global_asset_job_def()
    with DagsterInstance.ephemeral() as instance:
        ok = job.execute_in_process(
            instance=instance, asset_selection=[AssetKey(list(k)) for k in OK_ASSETS]
        )
        assert ok.success
        materialized = {
            tuple(m.asset_key.path): m for m in ok.asset_materializations_for_node(
                "dlt_pipeline_vault_pipeline")
        }
        assert ("vault_data", "secrets_used") in materialized  # the secrets were really used
        metadata_text = "\n".join(
            f"{key}={value!r}"
            for event in ok.get_asset_materialization_events()
            for key, value in event.materialization.metadata.items()
        )
        assert "dagster/row_count" in metadata_text
        assert_clean("materialization metadata", metadata_text)
        assert_clean("event records of the successful run", _event_text(instance, ok.run_id))

        with pytest.raises(Exception) as failed:  # Dagster wraps the user error
            job.execute_in_process(instance=instance, asset_selection=[AssetKey(list(BROKEN_ASSET))])
        error_text = "".join(traceback.format_exception(failed.value))
        assert "401 Client Error: Unauthorized" in error_text  # the error still says what failed
        assert_clean("the exception a failing run raises", error_text)
        failed_run = next(
            r for r in instance.get_runs() if r.run_id != ok.run_id
        )
        events = _event_text(instance, failed_run.run_id)
        assert "401 Client Error" in events
        assert_clean("event records of the failed run", events)
        assert_clean("run records", "\n".join(str(r) for r in instance.get_runs()))
    _assert_local_state_clean(project_dir)

    log_text = caplog.text + "\n".join(
        f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records
    )
    assert log_text.strip(), "no log records were captured"
    assert_clean("Python logging at DEBUG", log_text)
    out, err = capfd.readouterr()
    assert_clean("stdout/stderr of the runs", out + err)


# --- Dagster webserver --------------------------------------------------------------------------


def graphql(base: str, query: str, variables: dict[str, Any] | None = None) -> tuple[dict, str]:
    """The `data` of a GraphQL answer, and the answer's raw text (what a client receives)."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(
        f"{base}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read().decode()
    except urllib.error.HTTPError as e:
        raise AssertionError(f"GraphQL HTTP {e.code}: {e.read().decode()[:3000]}") from None
    doc = json.loads(raw)
    assert not doc.get("errors"), f"GraphQL errors: {doc['errors']}"
    return doc["data"], raw


@pytest.fixture
def webserver(tmp_path: Path, project_dir: Path) -> Iterator[tuple[str, Path, Path]]:
    """`dagster-webserver` for the planted project (runs launch in subprocesses, no daemon)."""
    home = no_daemon_dagster_home(tmp_path / "dagster_home")
    log_path = tmp_path / "webserver.log"
    port = free_port()
    env = {
        **os.environ, **SECRET_ENV, "DAGSTER_HOME": str(home),
        "DLT_PROJECT_DIR": str(project_dir), "WORKSPACE__PROFILE": "tests",
    }
    base = f"http://127.0.0.1:{port}"

    def loaded() -> bool:
        data, _ = graphql(base, "{ workspaceOrError { ... on Workspace { locationEntries "
                                "{ loadStatus } } } }")
        entries = data["workspaceOrError"]["locationEntries"]
        return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)

    with start_webserver(
        "definitions.py", port=port, env=env, cwd=REPO, log_path=log_path, ready=loaded
    ):
        yield base, home, log_path


LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}
"""

ERROR_FIELDS = "message className stack causes { message stack } cause { message stack }"
METADATA_FIELDS = """label description __typename
  ... on TextMetadataEntry { text } ... on JsonMetadataEntry { jsonString }
  ... on MarkdownMetadataEntry { mdStr } ... on UrlMetadataEntry { url }
  ... on PathMetadataEntry { path } ... on IntMetadataEntry { intRepr }
  ... on FloatMetadataEntry { floatValue }
  ... on TableSchemaMetadataEntry { schema { columns { name type description } } }"""

RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { runId status runConfigYaml
    tags { key value } stepStats { stepKey status } } }
  logsForRun(runId: $runId, limit: 5000) { __typename
    ... on EventConnection { events { __typename
      ... on MessageEvent { message level stepKey }
      ... on ExecutionStepFailureEvent { error { ERROR_FIELDS } failureMetadata { metadataEntries { METADATA_FIELDS } } }
      ... on RunFailureEvent { error { ERROR_FIELDS } }
      ... on MaterializationEvent { metadataEntries { METADATA_FIELDS } }
      ... on EngineEvent { error { ERROR_FIELDS } metadataEntries { METADATA_FIELDS } }
      ... on LogMessageEvent { message }
    } }
    ... on PythonError { message }
  }
}
""".replace("ERROR_FIELDS", ERROR_FIELDS).replace("METADATA_FIELDS", METADATA_FIELDS)

CATALOG_QUERY = """
{
  assetNodes { assetKey { path } description metadataEntries { METADATA_FIELDS }
    assetMaterializations(limit: 5) { runId metadataEntries { METADATA_FIELDS } } }
  runsOrError { ... on Runs { results { runId status runConfigYaml tags { key value } } } }
  allTopLevelResourceDetailsOrError(repositorySelector: {repositoryLocationName: "definitions.py",
      repositoryName: "__repository__"}) { __typename
    ... on ResourceDetailsList { results { name configuredValues { key value type } } } }
}
""".replace("METADATA_FIELDS", METADATA_FIELDS)


def test_webserver_graphql_and_storage_hide_secrets(
    webserver: tuple[str, Path, Path],
) -> None:
    base, home, log_path = webserver
    keys = [{"path": list(k)} for k in [*OK_ASSETS, BROKEN_ASSET]]
    data, _ = graphql(base, LAUNCH, {"params": {
        "selector": {"repositoryLocationName": "definitions.py",
                     "repositoryName": "__repository__", "jobName": "__ASSET_JOB",
                     "assetSelection": keys},
        "runConfigData": {},
        "executionMetadata": {"tags": []},
    }})
    launched = data["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    deadline = time.monotonic() + 90
    while True:
        data, raw_run = graphql(base, RUN_QUERY, {"runId": run_id})
        status = data["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        assert time.monotonic() < deadline, f"run {run_id} still {status}:\n{log_path.read_text()}"
        time.sleep(1)
    # the vault_broken step fails (planted error), the others succeed
    steps = {s["stepKey"]: s["status"] for s in data["runOrError"]["stepStats"]}
    assert status == "FAILURE", steps
    assert steps.get("dlt_pipeline_vault_broken") == "FAILURE", steps
    assert steps.get("dlt_pipeline_vault_pipeline") == "SUCCESS", steps
    assert steps.get("dlt_pipeline_shop_pipeline") == "SUCCESS", steps
    assert steps.get("dlt_pipeline_shop_to_pg") == "SUCCESS", steps
    assert "401 Client Error" in raw_run, "the step failure should still say what failed"
    assert_clean("GraphQL run, run config and event log (with error stacks)", raw_run)

    data, raw_catalog = graphql(base, CATALOG_QUERY)
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    assert nodes["vault_data/secrets_used"]["assetMaterializations"], "not materialized"
    resources = data["allTopLevelResourceDetailsOrError"]["results"]
    assert any(v["key"] == "project_dir" for r in resources for v in r["configuredValues"])
    assert_clean("GraphQL asset nodes, materialization metadata, runs and resources", raw_catalog)

    # everything the instance stored: run and event storage (sqlite), compute logs
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        assert_clean(f"DAGSTER_HOME file {path.relative_to(home)}",
                     path.read_bytes().decode("utf-8", errors="replace"))
    assert_clean("the webserver's own output", log_path.read_text(errors="replace"))
