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
import subprocess
import sys
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

    def do_GET(self) -> None:
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


# --- who may change what at run time -------------------------------------------------------------

TWO_FOLDERS_YML = """
sources:
  rows:
    type: rows.rows
destinations:
  warehouse: {type: duckdb}
pipelines:
  rows_pipeline: {source: rows, destination: warehouse, dataset_name: rows_data}
profiles:
  staging: {}
  patient:
    pipelines:
      rows_pipeline: {run_config: {lock_timeout: 300}}
"""

ROWS_SOURCE = '''
import dlt


@dlt.source
def rows(marker: str = "{marker}"):
    @dlt.resource(write_disposition="replace")
    def numbers():
        yield [{{"n": 1, "marker": marker}}]

    return numbers
'''


def _rows_project(root: Path, marker: str) -> Path:
    return make_project(root, TWO_FOLDERS_YML,
                        {"sources/rows.py": ROWS_SOURCE.format(marker=marker)})


def _run(defs: Any, config: dict[str, Any], instance: Any) -> Any:
    from dagster import AssetKey

    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance, run_config={"resources": {"dlt_project": {"config": config}}},
        asset_selection=[AssetKey(["rows_data", "numbers"])], raise_on_error=False,
    )


def _failure_text(result: Any) -> str:
    parts = []
    for event in result.all_events:
        if event.is_failure:
            error = getattr(event.event_specific_data, "error", None)
            while error is not None:
                parts.append(f"{error.cls_name}: {error.message}")
                error = error.cause or error.context
    return "\n".join(parts)


def test_run_config_may_switch_the_profile_but_not_the_project_dir(
    tmp_path: Path, instance: Any
) -> None:
    from dltplus_dagster import build_definitions

    served = _rows_project(tmp_path / "served", "served-code")
    other = _rows_project(tmp_path / "other", "OTHER-folder-code")
    defs = build_definitions(str(served))

    refused = _run(defs, {"project_dir": str(other)}, instance)
    assert not refused.success
    message = _failure_text(refused)
    assert "a run may not change the project dir" in message, message
    assert str(served) in message and str(other) in message
    # the other folder's code never ran: nothing was written there
    assert not (other / "_data").exists()

    # the profile may change (to a declared one); the same dir spelled differently is fine
    switched = _run(defs, {"project_dir": str(served / "." / ""), "profile": "staging"}, instance)
    assert switched.success, _failure_text(switched)
    [mat] = switched.get_asset_materialization_events()
    assert mat.materialization.metadata["dlt/profile"].value == "staging"

    undeclared = _run(defs, {"profile": "prod_typo"}, instance)
    assert not undeclared.success
    message = _failure_text(undeclared)
    assert "Profile 'prod_typo' is not declared" in message and "staging" in message, message
    assert not (served / "_data" / "prod_typo").exists()


# --- the other side: not secret stays readable ---------------------------------------------------

READABLE_YML = """
sources:
  lookup:
    type: lookup.lookup
    key_column: customer_id
    primary_key: order_id
destinations:
  warehouse: {type: duckdb}
  pg:
    type: postgres
    credentials:
      host: 127.0.0.1
      port: 5432
      database: analytics_db
      username: loader
      password: "{env.HOSTILE_PG_PW}"
pipelines:
  lookup_pipeline: {source: lookup, destination: warehouse, dataset_name: lookup_data}
"""

LOOKUP_SOURCE = '''
import dlt


@dlt.source
def lookup(key_column: str = dlt.config.value, primary_key: str = dlt.config.value,
           host: str = dlt.config.value, token: str = dlt.secrets.value):
    @dlt.resource
    def rows():
        raise RuntimeError(
            f"column {key_column} (primary key {primary_key}) not found on host {host} "
            f"with token {token}"
        )
        yield

    return rows
'''


def test_hosts_databases_and_key_columns_stay_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dltplus_dagster import current

    pw, token = "PLANTED-readable-pw1", "PLANTED-readable-tok2"
    monkeypatch.setenv("HOSTILE_PG_PW", pw)
    project = make_project(tmp_path, READABLE_YML, {
        "sources/lookup.py": LOOKUP_SOURCE,
        ".dlt/config.toml": '[sources.lookup]\nhost = "db.internal.example"\n',
        ".dlt/secrets.toml": f'[sources.lookup]\ntoken = "{token}"\n',
    })
    planted = {"env HOSTILE_PG_PW": pw, "secrets.toml token": token}

    config = current.project(str(project)).config
    assert config["sources"]["lookup"]["key_column"] == "customer_id"
    assert config["sources"]["lookup"]["primary_key"] == "order_id"
    creds = config["destinations"]["pg"]["credentials"]
    assert creds == {"host": "127.0.0.1", "port": 5432, "database": "analytics_db",
                     "username": "loader", "password": "***"}, creds
    assert_clean("project.config", json.dumps(config), planted)

    proc = subprocess.run(
        [str(BIN / "dltplus"), "pipeline", "--project", str(project), "lookup_pipeline", "run"],
        capture_output=True, text=True, env=clean_env(HOSTILE_PG_PW=pw), timeout=300,
        check=False,
    )
    assert proc.returncode == 1
    assert_clean("`dltplus pipeline lookup_pipeline run`", proc.stdout + proc.stderr, planted)
    assert ("column customer_id (primary key order_id) not found on host db.internal.example "
            "with token ***") in proc.stderr, proc.stderr


def test_redact_key_names_both_sides() -> None:
    from dltplus_dagster.project.redact import is_secret_key

    for secret in ("password", "api_key", "apikey", "X-Api-Key", "access_token", "client_secret",
                   "aws_secret_access_key", "credentials", "private_key", "Authorization"):
        assert is_secret_key(secret), secret
    for readable in ("key", "primary_key", "merge_key", "key_column", "token_url", "host",
                     "aws_access_key_id", "database", "keyspace", "monkey"):
        assert not is_secret_key(readable), readable


def test_scrub_secrets_walks_a_dlt_trace_like_object() -> None:
    from dlt.pipeline.trace import SerializableResolvedValueTrace

    from dltplus_dagster.project.redact import scrub_secrets

    value = SerializableResolvedValueTrace(
        "endpoint", f"https://api.example/v1?token={TOKEN}", None, False, ("sources", "api"),
        "dlt.yml", "ApiConfiguration",
    )
    nested = {"steps": [value, (f"x{TOKEN}", {TOKEN.encode()})], "n": 3}
    clean_copy = scrub_secrets(nested, [TOKEN])
    assert clean_copy["steps"][0].value == "https://api.example/v1?token=***"
    assert isinstance(clean_copy["steps"][0], SerializableResolvedValueTrace)
    assert clean_copy["steps"][1] == ("x***", {b"***"}) and clean_copy["n"] == 3
    assert nested["steps"][0].value.endswith(TOKEN)  # the original is left alone


# --- faults: messages a person can act on ----------------------------------------------------------

HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE IF NOT EXISTS held (x INT)")
print("holding", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


@pytest.fixture
def rows_project(tmp_path: Path) -> Path:
    return _rows_project(tmp_path / "rows", "rows")


@pytest.fixture
def held_duckdb(rows_project: Path) -> Iterator[tuple[Path, int]]:
    """The rows project's DuckDB file, held by a second process with a write connection."""
    from dltplus_dagster.project.project import load_project

    local = Path(load_project(str(rows_project)).local_dir)
    local.mkdir(parents=True, exist_ok=True)
    path = local / "warehouse.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        yield path, holder.pid
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)


def test_duckdb_file_held_by_another_process_names_file_and_pid(
    rows_project: Path, held_duckdb: tuple[Path, int], instance: Any
) -> None:
    from dagster import AssetKey

    from dltplus_dagster import build_definitions
    from dltplus_dagster.project.errors import DestinationFault

    path, pid = held_duckdb
    proc = subprocess.run(
        [str(BIN / "dltplus"), "pipeline", "--project", str(rows_project), "rows_pipeline", "run"],
        capture_output=True, text=True, env=clean_env(), timeout=300, check=False,
    )
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    [line] = lines
    assert line.startswith("Error: pipeline 'rows_pipeline' failed at step "), line
    assert f"DuckDB file {path} of destination 'warehouse' is locked by another process" in line
    assert f"(PID {pid}," in line
    assert "internet" not in line and "credentials" not in line, line

    from dltplus_dagster import current

    with pytest.raises(DestinationFault) as fault:
        current.runner(str(rows_project)).run_pipeline("rows_pipeline")
    assert fault.value.holder_pid == pid and fault.value.pipeline == "rows_pipeline"

    job = build_definitions(str(rows_project)).resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance, asset_selection=[AssetKey(["rows_data", "numbers"])],
        raise_on_error=False,
    )
    assert not result.success
    [failure] = result.get_step_failure_events()
    error = failure.step_failure_data.error.cause  # Dagster wraps the op's error once
    assert error.cls_name == "DestinationFault", error.cls_name
    assert f"(PID {pid}," in error.message and str(path) in error.message, error.message
    assert error.cause is None and error.context is None  # no nested dlt chain below it
    assert "internet" not in _failure_text(result)


def test_a_held_duckdb_file_is_waited_for_up_to_lock_timeout(rows_project: Path) -> None:
    from dltplus_dagster.project.project import load_project

    local = Path(load_project(str(rows_project), "patient").local_dir)
    local.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(local / "warehouse.duckdb")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    run = subprocess.Popen(
        [str(BIN / "dltplus"), "pipeline", "--project", str(rows_project), "--profile",
         "patient", "rows_pipeline", "run"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(),
    )
    try:
        assert run.stderr is not None
        waiting = run.stderr.readline()  # the run tells it waits: then the holder lets go
        assert f"(PID {holder.pid}," in waiting and "waiting up to lock_timeout" in waiting
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, waiting + err
    assert "rows_pipeline: loaded numbers=1" in out, out


KILLER_TRIGGER = """
CREATE OR REPLACE FUNCTION {schema}.hostile_kill_me() RETURNS trigger AS $$
BEGIN
  PERFORM pg_terminate_backend(pg_backend_pid());
  RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER hostile_kill_me AFTER INSERT ON {schema}._dlt_loads
  FOR EACH STATEMENT EXECUTE FUNCTION {schema}.hostile_kill_me();
"""


def test_postgres_going_away_mid_load_is_one_line_and_the_rerun_finishes(
    tmp_path: Path, pg_db: PgDatabase, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """The server terminates the loader's connection while dlt completes the load (a trigger
    on dlt's `_dlt_loads` calls `pg_terminate_backend` on its own backend)."""
    from pg import make_numbers_project

    from dltplus_dagster.project.project import load_project

    monkeypatch.setenv("NUMBERS_PG_DSN", pg_db.dsn)
    project = make_numbers_project(tmp_path / "numbers")
    cmd = [str(BIN / "dltplus"), "pipeline", "--project", str(project), "numbers_pipeline", "run"]
    env = clean_env(NUMBERS_PG_DSN=pg_db.dsn)
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert first.returncode == 0, first.stderr
    with pg_db.connect() as con, con.cursor() as cur:
        cur.execute(KILLER_TRIGGER.format(schema="numbers_data"))
        con.commit()
    for debug in (False, True):
        killed = subprocess.run([*cmd[:1], *(["--debug"] if debug else []), *cmd[1:]],
                                capture_output=True, text=True, env=env, timeout=300,
                                check=False)
        assert killed.returncode == 1
        last = killed.stderr.strip().splitlines()[-1]
        assert last.startswith("Error: pipeline 'numbers_pipeline' failed at step load: "
                               "destination 'warehouse' closed the connection ("), last
        assert last.endswith("the load package stays pending and the next run in the same "
                             "working dir loads it first"), last
        if not debug:
            assert len(killed.stderr.strip().splitlines()) == 1, killed.stderr
        else:
            assert len(killed.stderr.splitlines()) < 150, killed.stderr  # not 900 lines
    import dlt

    pipelines_dir = Path(load_project(str(project)).pipelines_dir)
    pending = dlt.attach("numbers_pipeline", pipelines_dir=str(pipelines_dir))
    assert pending.has_pending_data  # the load package waits for the next run
    with pg_db.connect() as con, con.cursor() as cur:
        cur.execute("DROP TRIGGER hostile_kill_me ON numbers_data._dlt_loads")
        con.commit()
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert not dlt.attach("numbers_pipeline", pipelines_dir=str(pipelines_dir)).has_pending_data
    loads = pg_db.query("SELECT count(*) FROM numbers_data._dlt_loads WHERE status = 0")[0][0]
    assert loads == 3  # the first run, the terminated one (finished by the rerun), the rerun


# --- the bad manifest corpus: an `{env.*}` value is never quoted in an error -----------------------


def _corpus() -> list[Path]:
    from helpers import MANIFESTS

    return [p for p in MANIFESTS if p.name[:3].isdigit() and 300 <= int(p.name[:3]) <= 399]


@pytest.mark.parametrize("manifest", _corpus(), ids=[p.stem for p in _corpus()])
def test_corpus_errors_do_not_quote_env_values(
    manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpers import bad_project, manifest_env, manifest_headers

    from dltplus_dagster.project.errors import ProjectError
    from dltplus_dagster.project.project import load_project

    unset, set_env = manifest_env(manifest, manifest_headers(manifest))
    assert set_env, "the 3xx corpus plants secrets through `# env:`"
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    for name, value in set_env.items():
        monkeypatch.setenv(name, value)
    root = bad_project(tmp_path / "project", manifest)
    with pytest.raises(ProjectError) as exc:
        load_project(str(root))
    assert_clean("the manifest error", str(exc.value), {f"env {k}": v for k, v in set_env.items()})
    proc = subprocess.run(
        [str(BIN / "dltplus"), "project", "--project", str(root), "validate"],
        capture_output=True, text=True, env=clean_env(**set_env), timeout=120, check=False,
    )
    assert proc.returncode == 1 and "***" in proc.stderr, proc.stderr
    assert_clean("`dltplus project validate`", proc.stdout + proc.stderr,
                 {f"env {k}": v for k, v in set_env.items()})
