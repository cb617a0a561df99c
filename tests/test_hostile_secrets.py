"""Hostile and unlucky input: secrets in zero places, who may change what at run time, faults a
person can act on.

The `hostile` project plants secrets where key names do not give them away:

- an API token from the env var `HOSTILE_API_TOKEN`, substituted with `{env.HOSTILE_API_TOKEN}`
  into an `endpoint` URL (a dlt config value of a custom source) and into a `rest_api` header
  `X-Api`;
- a `client_label` in `.dlt/secrets.toml` (a secret by origin, not by name);
- the password of a PostgreSQL DSN (`postgresql://user:<pw>@127.0.0.1:5432/<db>`).

A local HTTP server answers the API (401 for the `denied` endpoint: requests puts the whole URL,
token included, into its error). After failing and successful runs through the runner, the CLI
and `dagster asset materialize` (SQLite and PostgreSQL instance storage), no surface may show a
planted value, while hosts, database names and key columns stay readable.

    .venv/bin/pytest tests/test_hostile_secrets.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from helpers import BIN, clean_env, make_project, no_daemon_dagster_home
from pg import PgDatabase, PgServer, dagster_home, pg_db, pg_server, with_database  # noqa: F401
from test_prod_secrets import assert_clean, assert_files_clean

TOKEN = "PLANTED-tok-3q9zR"
LABEL = "PLANTED-label-77cW"
PG_PASSWORD = "PLANTED-pgpw-300x"
PLANTED = {
    "env HOSTILE_API_TOKEN ({env.*} in an endpoint URL and a header)": TOKEN,
    ".dlt/secrets.toml sources.*.client_label": LABEL,
    "dlt.yml destinations.pg.credentials (DSN password)": PG_PASSWORD,
}
SECRET_ENV = {"HOSTILE_API_TOKEN": TOKEN, "RUNTIME__DLTHUB_TELEMETRY": "false"}

API_SOURCE = '''
import dlt
import requests


@dlt.source
def api(endpoint: str = dlt.config.value, client_label: str = dlt.secrets.value):
    """Items from `endpoint` (a URL that carries the token); the label is a TOML secret."""

    @dlt.resource(write_disposition="replace", primary_key="id")
    def items():
        response = requests.get(f"{endpoint}&label={client_label}", timeout=30)
        response.raise_for_status()  # a 401 names the whole URL: token and label
        yield response.json()

    return items
'''

MANIFEST = """
sources:
  api:
    type: api.api
    endpoint: "{base}/v1/items?token={{env.HOSTILE_API_TOKEN}}"
  api_fail:
    type: api.api
    endpoint: "{base}/v1/denied?token={{env.HOSTILE_API_TOKEN}}"
  rest:
    type: rest_api
    with_args:
      client:
        base_url: "{base}/v1/"
        headers:
          X-Api: "{{env.HOSTILE_API_TOKEN}}"
      resources:
        - name: things
          endpoint: {{path: things, paginator: single_page}}

destinations:
  warehouse:
    type: duckdb
  pg:
    type: postgres
    credentials: "{dsn}"

pipelines:
  api_ok: {{source: api, destination: warehouse, dataset_name: api_data}}
  api_fail: {{source: api_fail, destination: warehouse, dataset_name: api_fail_data}}
  rest_pg: {{source: rest, destination: pg, dataset_name: rest_data}}
"""

OK_KEYS = ["api_data/items", "rest_data/things"]
FAIL_KEY = "api_fail_data/items"


class _Api(BaseHTTPRequestHandler):
    """`/v1/items?token=T&label=L` and `/v1/things` (header `X-Api: T`) answer when the token is
    right; `/v1/denied` always answers 401."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/v1/items" and query.get("token") == [TOKEN] and query.get("label") == [LABEL]:
            self._answer(200, [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
        elif url.path == "/v1/things" and self.headers.get("X-Api") == TOKEN:
            self._answer(200, [{"id": 1, "kind": "thing"}])
        else:
            self._answer(401, {"error": "unauthorized"})

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:  # the test output stays quiet
        pass


@pytest.fixture
def api_base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hostile(
    tmp_path: Path, api_base: str, pg_server: PgServer, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> Path:
    database = pg_server.create_database("hostile")
    dsn = with_database(pg_server.url, database.name, password=PG_PASSWORD)
    assert PG_PASSWORD in dsn
    root = make_project(
        tmp_path,
        MANIFEST.format(base=api_base, dsn=dsn),
        {
            "sources/api.py": API_SOURCE,
            ".dlt/secrets.toml": f'[sources.api]\nclient_label = "{LABEL}"\n\n'
                                 f'[sources.api_fail]\nclient_label = "{LABEL}"\n',
            ".dlt/config.toml": '[runtime]\nlog_level = "INFO"\n',
        },
    )
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    return root


def clean(where: str, text: str) -> None:
    assert_clean(where, text, PLANTED)


def cli(project: Path, *args: str, debug: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "dltplus"), *(["--debug"] if debug else []), *args[:1],
         "--project", str(project), *args[1:]],
        capture_output=True, text=True, env=clean_env(**SECRET_ENV), timeout=300, check=False,
    )


def data_dir(project: Path) -> Path:
    from dltplus_dagster.project.project import load_project

    return Path(load_project(str(project)).data_dir)


# --- the project layer and the CLI -------------------------------------------------------------


def test_config_masks_substituted_and_toml_secrets_and_keeps_hosts_readable(hostile: Path) -> None:
    from dltplus_dagster import current

    config = current.project(str(hostile)).config
    for label, text in {
        "project.config": str(config),
        "project.config (yaml)": yaml.safe_dump(config),
        "project.config (json)": json.dumps(config, default=str),
    }.items():
        clean(label, text)
    # what is not secret stays readable: where the endpoint and the DSN point
    endpoint = config["sources"]["api"]["endpoint"]
    assert endpoint.startswith("http://127.0.0.1:") and endpoint.endswith("?token=***"), endpoint
    assert config["sources"]["rest"]["with_args"]["client"]["headers"] == {"X-Api": "***"}
    credentials = config["destinations"]["pg"]["credentials"]
    assert credentials.startswith("postgresql://") and ":***@127.0.0.1" in credentials, credentials

    for args in (("project", "config"), ("project", "config", "--format", "json")):
        proc = cli(hostile, *args)
        assert proc.returncode == 0, proc.stderr
        assert "token=***" in proc.stdout
        clean(f"`dltplus {' '.join(args)}`", proc.stdout + proc.stderr)


def test_runs_through_runner_and_cli_leave_no_secret(hostile: Path) -> None:
    from dltplus_dagster import current

    # a failing run: requests names the URL, token and TOML label included
    with pytest.raises(Exception) as failed:
        current.runner(str(hostile)).run_pipeline("api_fail")
    text = "".join(traceback.format_exception(failed.value))
    assert "401 Client Error" in text and "token=***" in text, text
    clean("the runner's exception", text)

    for debug in (False, True):
        proc = cli(hostile, "pipeline", "api_fail", "run", debug=debug)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "401 Client Error" in proc.stderr
        clean(f"`dltplus {'--debug ' if debug else ''}pipeline api_fail run`",
              proc.stdout + proc.stderr)

    # successful runs: the token reaches the API (URL and header), the password PostgreSQL
    for name in ("api_ok", "rest_pg"):
        proc = cli(hostile, "pipeline", name, "run")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        clean(f"`dltplus pipeline {name} run`", proc.stdout + proc.stderr)

    # dlt's trace of the successful run recorded the endpoint config value: kept, masked
    traces = [p for p in data_dir(hostile).rglob("trace.pickle") if "api_ok" in str(p)]
    assert traces, "the successful run's trace is kept"
    files = assert_files_clean("data dir", data_dir(hostile), PLANTED)
    assert any(p.name == "trace.pickle" for p in files)
    from dlt.pipeline.trace import load_trace

    trace = load_trace(str(traces[0].parent))
    resolved = {v.key: v.value for v in trace.resolved_config_values}
    assert resolved["endpoint"].endswith("?token=***"), resolved


# --- Dagster: `dagster asset materialize` with SQLite and PostgreSQL instance storage ----------


def _defs_file(tmp_path: Path, project: Path) -> Path:
    path = tmp_path / "hostile_defs.py"
    path.write_text(
        "from dltplus_dagster import build_definitions\n\n"
        f"defs = build_definitions({str(project)!r})\n",
        encoding="utf-8",
    )
    return path


def materialize_cli(defs: Path, home: Path, select: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(**SECRET_ENV, DAGSTER_HOME=str(home))
    return subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-f", str(defs), "--select", select],
        capture_output=True, text=True, env=env, timeout=600, check=False, cwd=defs.parent,
    )


def test_dagster_asset_materialize_leaves_no_secret_in_output_or_storage(
    hostile: Path, tmp_path: Path, pg_db: PgDatabase  # noqa: F811
) -> None:
    defs = _defs_file(tmp_path, hostile)
    home = no_daemon_dagster_home(tmp_path / "dagster_home")
    ok = materialize_cli(defs, home, ",".join(OK_KEYS))
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-6000:]
    clean("`dagster asset materialize` (success)", ok.stdout + ok.stderr)
    failed = materialize_cli(defs, home, FAIL_KEY)
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert "401 Client Error" in output, output[-6000:]
    clean("`dagster asset materialize` (failure)", output)
    files = assert_files_clean("DAGSTER_HOME", home, PLANTED)
    assert any(p.suffix == ".db" for p in files), files  # run and event log storage were read
    assert any(p.suffix in (".err", ".out", ".complete") for p in files), files  # compute logs
    assert_files_clean("data dir", data_dir(hostile), PLANTED)

    # PostgreSQL instance storage: the failed run's events and run records
    pg_home = dagster_home(tmp_path / "pg_home", pg_db)
    failed = materialize_cli(defs, pg_home, FAIL_KEY)
    assert failed.returncode != 0 and "401 Client Error" in failed.stdout + failed.stderr
    clean("`dagster asset materialize` (PostgreSQL storage)", failed.stdout + failed.stderr)
    events = pg_db.query("SELECT event FROM event_logs")
    runs = pg_db.query("SELECT run_body FROM runs")
    assert events and runs
    stored = "\n".join(str(r[0]) for r in [*events, *runs])
    assert "401 Client Error" in stored  # the failure is stored, masked
    clean("PostgreSQL event log and run storage", stored)
