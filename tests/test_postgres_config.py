"""PostgreSQL as users write it: Dagster's documented `postgres_url` instance config, and a
trust-auth DSN without a password in a destination (dlt.yml and TOML, string and mapping)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from helpers import BIN, REPO, clean_env, copy_example, free_port, make_project
from pg import (  # noqa: F401 - fixtures
    VENV_BIN,
    PgDatabase,
    PgServer,
    pg_db,
    pg_server,
    run,
    subprocess_env,
)

from dltplus_dagster.project.entities import EntityFactory
from dltplus_dagster.project.project import load_project
from dltplus_dagster.project.runner import Runner


def passwordless_url(db: PgDatabase) -> str:
    """`postgresql://user@host:port/db`, as a trust-auth server is documented to take it."""
    parts = urlsplit(db.server.url)
    user = parts.username or "postgres"
    return f"postgresql://{user}@{parts.hostname or '127.0.0.1'}:{parts.port or 5432}/{db.name}"


def test_dagster_instance_with_documented_postgres_url(
    tmp_path: Path, pg_server: PgServer  # noqa: F811
) -> None:
    """`storage: postgres: postgres_url: "postgresql://..."` (no driver named): a real
    `dagster asset materialize` records its run in PostgreSQL."""
    storage = pg_server.create_database("url")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "storage:\n"
        "  postgres:\n"
        f'    postgres_url: "{passwordless_url(storage)}"\n'
        "telemetry:\n  enabled: false\n",
        encoding="utf-8",
    )
    project_dir = copy_example(tmp_path / "shop")
    env = subprocess_env(DAGSTER_HOME=str(home), DLT_PROJECT_DIR=str(project_dir))
    run(
        [os.path.join(VENV_BIN, "dagster"), "asset", "materialize", "-f",
         str(REPO / "definitions.py"), "--select", "shop_raw/stores"],
        env=env, cwd=tmp_path, timeout=300,
    )
    rows = storage.query("SELECT status FROM runs")
    assert [r[0] for r in rows] == ["SUCCESS"]
    materialized = storage.query(
        "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
    )
    assert materialized[0][0] == 1


SOURCE = '''
import dlt


@dlt.resource(write_disposition="replace")
def letters():
    yield [{"letter": c} for c in "abc"]
'''

YML = """
project:
  name: trust_project

sources:
  letters:
    type: letters.letters

destinations:
  warehouse:
    type: postgres
{credentials}

pipelines:
  letters_pipeline:
    source: letters
    destination: warehouse
    dataset_name: letters_data
"""


def _forms(db: PgDatabase) -> dict[str, tuple[str, dict[str, str]]]:
    """Credentials without a password: (dlt.yml lines, extra files) per way of writing them."""
    url = passwordless_url(db)
    parts = urlsplit(url)
    mapping = {"host": parts.hostname, "port": parts.port, "username": parts.username,
               "database": db.name}
    yml_mapping = "    credentials:\n" + "".join(
        f"      {k}: {v}\n" for k, v in mapping.items()
    )
    toml_mapping = "[destination.warehouse.credentials]\n" + "".join(
        f'{k} = {v if isinstance(v, int) else chr(34) + str(v) + chr(34)}\n'
        for k, v in mapping.items()
    )
    return {
        "yml_dsn": (f'    credentials: "{url}"', {}),
        "yml_mapping": (yml_mapping, {}),
        "toml_dsn": ("", {".dlt/secrets.toml": f'[destination.warehouse]\ncredentials = "{url}"\n'}),
        "toml_mapping": ("", {".dlt/secrets.toml": toml_mapping}),
    }


@pytest.mark.parametrize("form", ["yml_dsn", "yml_mapping", "toml_dsn", "toml_mapping"])
def test_trust_auth_credentials_without_password_load(
    form: str, tmp_path: Path, pg_db: PgDatabase  # noqa: F811
) -> None:
    credentials, files = _forms(pg_db)[form]
    root = make_project(
        tmp_path, YML.format(credentials=credentials), {"sources/letters.py": SOURCE, **files}
    )
    project = load_project(str(root))
    result = Runner(project, EntityFactory(project)).run_pipeline("letters_pipeline")
    assert result.row_counts == {"letters": 3}
    assert pg_db.count("letters_data", "letters") == 3


@pytest.fixture
def password_server() -> Iterator[str]:
    """A PostgreSQL server of its own (initdb as user postgres) that requires a password
    (scram-sha-256): yields `postgresql://postgres@127.0.0.1:<port>/postgres`, no password."""
    (bin_dir,) = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1:]
    root = tempfile.mkdtemp(prefix="dltplus-pgpw-")  # pytest's tmp dirs are root-only
    shutil.chown(root, "postgres")
    pwfile = os.path.join(root, "pw")
    with open(pwfile, "w") as f:
        f.write("server-pw-5521\n")
    shutil.chown(pwfile, "postgres")
    data = os.path.join(root, "data")

    def as_postgres(*cmd: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True,
                       capture_output=True, timeout=120)

    port = free_port()
    as_postgres(f"{bin_dir}/initdb", "-D", data, "-U", "postgres", "-A", "scram-sha-256",
                f"--pwfile={pwfile}")
    as_postgres(f"{bin_dir}/pg_ctl", "-D", data, "-l", os.path.join(root, "log"), "-w", "-o",
                f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        as_postgres(f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_server_that_wants_a_password_says_so_in_one_line(
    tmp_path: Path, password_server: str
) -> None:
    root = make_project(
        tmp_path, YML.format(credentials=f'    credentials: "{password_server}"'),
        {"sources/letters.py": SOURCE},
    )
    proc = subprocess.run(
        [str(BIN / "dltplus"), "--project", str(root), "pipeline", "letters_pipeline", "run"],
        env=clean_env(), capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, proc.stderr
    assert "no password supplied" in errors[0]
    assert "Missing 1 field" not in proc.stderr and "Traceback" not in proc.stderr
