"""PostgreSQL (and Redis) for the production-readiness tests: servers, throwaway databases.

The server comes from `DLTPLUS_TEST_PG` (default `postgresql://postgres@127.0.0.1:5432/test`).
Each test session works in databases of its own, named `dltplus_test_<random>_<n>`, created on
demand and dropped afterwards. A missing server fails the tests (never skips them) with a
message saying how to start it.

Import the fixtures into a test module with `from pg import pg, ...  # noqa: F401`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from helpers import REPO, clean_env

VENV_BIN = os.path.dirname(sys.executable)

PG_ENV = "DLTPLUS_TEST_PG"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_ENV = "DLTPLUS_TEST_REDIS"
DEFAULT_REDIS = "redis://127.0.0.1:6379"
DSN_PASSWORD = "dltplus-test-pw"  # dlt requires one; a trust-auth server ignores it

START_HINT = (
    "start it with `bash tests/services/ensure_services.sh` (or "
    "`pg_ctlcluster --skip-systemctl-redirect <version> main start`; versions: ls /etc/postgresql)"
)

# the example project's expected rows (profile prod: the base manifest's source config)
SHOP_ROWS = {"customers": 50, "orders": 500, "products": 20, "stores": 5}
REPORT_ROWS = {"customer_totals": 50}


def server_url() -> str:
    return os.environ.get(PG_ENV) or DEFAULT_PG


def _connect(url: str, **kwargs: Any) -> Any:
    import psycopg2

    conn = psycopg2.connect(url, connect_timeout=5, **kwargs)
    conn.autocommit = True
    return conn


def with_database(url: str, database: str, password: str | None = None) -> str:
    """`url` pointing at `database`. dlt's postgres credentials require a password, so one is
    filled in when the url has none (a trust-auth server ignores it)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if password is not None and "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" not in userinfo:
            netloc = f"{userinfo}:{quote(password)}@{host}"
    return urlunsplit((parts.scheme, netloc, "/" + database, parts.query, parts.fragment))


@dataclass
class PgServer:
    """Admin access to the test server and the databases this session created."""

    url: str
    prefix: str
    created: list[str] = field(default_factory=list)

    def admin(self) -> Any:
        return _connect(self.url)

    def create_database(self, tag: str = "") -> PgDatabase:
        name = f"{self.prefix}_{len(self.created)}{('_' + tag) if tag else ''}"
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        self.created.append(name)
        return PgDatabase(self, name)

    def drop_database(self, name: str) -> None:
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
                cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            conn.close()


@dataclass
class PgDatabase:
    """One throwaway database: `dsn` (for dlt, with a password) and `url` (for libpq tools)."""

    server: PgServer
    name: str

    @property
    def dsn(self) -> str:
        return with_database(self.server.url, self.name, password=DSN_PASSWORD)

    @property
    def url(self) -> str:
        return with_database(self.server.url, self.name)

    def connect(self) -> Any:
        return _connect(self.url)

    def query(self, sql: str, params: Any = None) -> list[tuple]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def count(self, schema: str, table: str) -> int:
        return self.query(f'SELECT count(*) FROM "{schema}"."{table}"')[0][0]

    def counts(self, schema: str, tables: Any) -> dict[str, int]:
        return {t: self.count(schema, t) for t in tables}

    def tables(self, schema: str) -> set[str]:
        rows = self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        )
        return {r[0] for r in rows}

    @contextmanager
    def locked(self, table: str) -> Iterator[None]:
        """Hold an ACCESS EXCLUSIVE lock on `table` (`schema.table`) while the block runs."""
        conn = self.connect()
        conn.autocommit = False
        try:
            with conn.cursor() as cur:
                cur.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            yield
        finally:
            conn.rollback()
            conn.close()

    def lock_waiters(self) -> list[tuple]:
        """The backends of this database waiting on a lock."""
        return self.query(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )


def _check_server(url: str) -> None:
    try:
        conn = _connect(url)
    except Exception as e:  # noqa: BLE001 - any connection problem: say how to fix it
        pytest.fail(
            f"PostgreSQL is not reachable at {url} ({PG_ENV}): {type(e).__name__}: "
            f"{str(e).strip()}\nThese tests need a PostgreSQL server; {START_HINT}. "
            f"Point {PG_ENV} at another server (a user that may CREATE DATABASE).",
            pytrace=False,
        )
    conn.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The PostgreSQL server; every database created through it is dropped at the end."""
    url = server_url()
    _check_server(url)
    server = PgServer(url, f"dltplus_test_{uuid.uuid4().hex[:8]}")
    yield server
    for name in server.created:
        try:
            server.drop_database(name)
        except Exception as e:  # noqa: BLE001 - report, keep dropping the others
            print(f"could not drop test database {name}: {e}", file=sys.stderr)


@pytest.fixture
def pg_db(pg_server: PgServer) -> Iterator[PgDatabase]:
    """A fresh database for one test (the warehouse)."""
    db = pg_server.create_database()
    yield db
    pg_server.drop_database(db.name)


@pytest.fixture
def redis_url() -> str:
    """The Redis server (the Celery broker); fails with how to start it when absent."""
    import redis

    url = os.environ.get(REDIS_ENV) or DEFAULT_REDIS
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except Exception as e:  # noqa: BLE001
        pytest.fail(
            f"Redis is not reachable at {url} ({REDIS_ENV}): {e}\nThe Celery tests need it; "
            "start it with `bash tests/services/ensure_services.sh` (or `redis-server "
            "--daemonize yes`).",
            pytrace=False,
        )
    return url


# --- projects and Dagster homes ------------------------------------------------------------


def dagster_home(path: Path, storage_db: PgDatabase, extra: str = "") -> Path:
    """A DAGSTER_HOME whose run, event log and schedule storage live in `storage_db`."""
    parts = urlsplit(storage_db.server.url)
    params = {
        "username": parts.username or "postgres",
        "password": parts.password or "",
        "hostname": parts.hostname or "127.0.0.1",
        "db_name": storage_db.name,
        "port": parts.port or 5432,
        # SQLAlchemy 2.1 maps plain `postgresql` to psycopg 3, which dagster-postgres does not
        # install (it depends on psycopg2): name the driver
        "scheme": "postgresql+psycopg2",
    }
    db_block = "\n".join(f"      {k}: {json.dumps(v)}" for k, v in params.items() if v)
    path.mkdir(parents=True, exist_ok=True)
    (path / "dagster.yaml").write_text(
        "storage:\n  postgres:\n    postgres_db:\n"
        + db_block
        + "\ntelemetry:\n  enabled: false\n"
        + textwrap.dedent(extra),
        encoding="utf-8",
    )
    _create_storage_tables(path)
    return path


def _create_storage_tables(home: Path) -> None:
    """Create the instance's tables now, from one process. Several processes that open a fresh
    PostgreSQL storage at once (two celery workers starting together) race on `CREATE TABLE`
    and one dies with `type "jobs" already exists`; Dagster's answer is `dagster instance
    migrate` before the fleet starts, which is what this does."""
    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(home))
    try:
        instance.upgrade()
    finally:
        instance.dispose()


def subprocess_env(**extra: str) -> dict[str, str]:
    """The test process env without project selection, plus `extra`; the repo on PYTHONPATH."""
    env = clean_env()
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), str(REPO / "tests"), env.get("PYTHONPATH", "")) if p
    )
    env.update(extra)
    return env


def run(cmd: list[str], env: dict[str, str], timeout: float = 180, cwd: Path | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run `cmd`; on failure (when `check`) fail the test with its output."""
    started = time.monotonic()
    proc = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited {proc.returncode} after {time.monotonic() - started:.1f}s\n"
            f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
        )
    return proc


def wait_for(predicate: Any, timeout: float, interval: float = 0.1, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")


# --- a project whose source can fail, flake, crawl or be killed ------------------------------

NUMBERS_ROWS = 100

NUMBERS_YML = """\
project:
  name: numbers_project

sources:
  numbers:
    type: numbers.numbers
    n_rows: 100
  secured:
    type: numbers.secured
  twin:                       # the same source code under another name (dlt schema `twin`)
    type: numbers.numbers
    n_rows: 100

destinations:
  warehouse:
    type: postgres
    credentials: "{env.NUMBERS_PG_DSN}"
    # replace atomically: load into a staging dataset, swap in one transaction (dlt's default
    # truncate-and-insert empties the table first, visible to readers until the load ends)
    replace_strategy: insert-from-staging
  unreachable:
    type: postgres
    credentials: "postgresql://loader:s3cr3t-pw@127.0.0.1:1/nowhere"

pipelines:
  numbers_pipeline:
    source: numbers
    destination: warehouse
    dataset_name: numbers_data
    run_config:
      retry_policy: {type: fixed, max_attempts: 3}
      retry_pipeline_steps: [extract]
  secured_pipeline:
    source: secured
    destination: warehouse
    dataset_name: secured_data
    run_config:
      retry_policy: {type: fixed, max_attempts: 3}
      retry_pipeline_steps: [extract, load]
  copy_pipeline:
    source: numbers
    destination: warehouse
    dataset_name: numbers_copy
    run_config:
      retry_policy: {type: fixed, max_attempts: 3}
      retry_pipeline_steps: [load]
  twin_pipeline:              # loads into numbers_data too, next to numbers_pipeline
    source: twin
    destination: warehouse
    dataset_name: numbers_data
    table_names: {rows: twin_rows, events: twin_events, audit: twin_audit}
  unreachable_pipeline:
    source: numbers
    destination: unreachable
    dataset_name: unreachable_data
    run_config:
      retry_policy: {type: fixed, max_attempts: 3}
      retry_pipeline_steps: [extract]

profiles:
  other:
    pipelines:
      numbers_pipeline:
        dataset_name: numbers_other
  patient:
    pipelines:
      numbers_pipeline:
        run_config:
          lock_timeout: 120
"""

NUMBERS_SOURCE = '''\
"""Numbered rows. Env/config knobs (sources.numbers.<name>): fail_after (raise once that many
rows were yielded), transient_failures (the first N attempts fail; attempts counted in
counter_file), sleep (seconds between batches), marker_file (written when extraction starts),
tag (a value written into every row)."""

import os
import time

import dlt


def bump(path):
    n = int(open(path).read() or 0) if os.path.exists(path) else 0
    with open(path, "w") as f:
        f.write(str(n + 1))
    return n + 1


@dlt.source
def numbers(
    n_rows: int = dlt.config.value,
    batch: int = 10,
    fail_after: int = -1,
    transient_failures: int = 0,
    counter_file: str = "",
    sleep: float = 0.0,
    marker_file: str = "",
    tag: str = "v1",
):
    attempt = bump(counter_file) if counter_file else 1

    @dlt.resource(primary_key="id", write_disposition="replace")
    def rows():
        if marker_file:
            with open(marker_file, "a") as f:
                f.write(f"{os.getpid()}\\n")
        for start in range(0, n_rows, batch):
            if attempt <= transient_failures:
                raise ConnectionError(f"numbers source: connection reset (attempt {attempt})")
            if 0 <= fail_after <= start:
                raise RuntimeError(f"numbers source: upstream API broke after {start} rows")
            if sleep:
                time.sleep(sleep)
            yield [{"id": i, "tag": tag} for i in range(start, min(start + batch, n_rows))]

    @dlt.resource(primary_key="id", write_disposition="merge")
    def events():
        yield [{"id": i, "kind": "created", "tag": tag} for i in range(n_rows)]

    @dlt.resource(write_disposition="append")
    def audit():
        yield [{"id": i, "tag": tag} for i in range(n_rows)]

    return [rows, events, audit]


@dlt.source
def secured(counter_file: str = ""):
    """Needs a secret (sources.secured.token) that nobody configured."""
    if counter_file:
        bump(counter_file)

    @dlt.resource
    def private_rows(token: str = dlt.secrets.value):
        yield [{"id": 1, "token_len": len(token)}]

    return private_rows
'''


def make_numbers_project(root: Path) -> Path:
    """The `numbers` project under `root` (its warehouse DSN comes from NUMBERS_PG_DSN)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dlt.yml").write_text(NUMBERS_YML, encoding="utf-8")
    (root / "sources").mkdir(exist_ok=True)
    (root / "sources" / "__init__.py").write_text("", encoding="utf-8")
    (root / "sources" / "numbers.py").write_text(NUMBERS_SOURCE, encoding="utf-8")
    (root / ".dlt").mkdir(exist_ok=True)
    (root / ".dlt" / "config.toml").write_text('[runtime]\nlog_level = "WARNING"\n')
    return root


RUN_PIPELINE_SCRIPT = """\
import sys, time
from dltplus_dagster.project.entities import EntityFactory
from dltplus_dagster.project.project import load_project
from dltplus_dagster.project.runner import Runner

project_dir, profile, name, start_at = sys.argv[1:5]
project = load_project(project_dir, profile)
runner = Runner(project, EntityFactory(project))
time.sleep(max(0.0, float(start_at) - time.time()))  # a common start time for racing runs
result = runner.run_pipeline(name)
print("RESULT", result)
"""


def runner_cmd(project_dir: Path, name: str, profile: str = "dev",
               start_at: float = 0.0) -> list[str]:
    """A process that runs pipeline `name` through the project Runner (not before the
    `time.time()` value `start_at`, once the imports are done)."""
    return [sys.executable, "-c", RUN_PIPELINE_SCRIPT, str(project_dir), profile, name,
            str(start_at)]
