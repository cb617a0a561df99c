"""`dltplus project init SOURCE DESTINATION [DIR]`: the real console script scaffolds projects
that validate, run with no edits (`arrow duckdb`, `filesystem duckdb`), materialize through
Dagster, and are never written over an existing project."""

from __future__ import annotations

import tomllib
from pathlib import Path

import duckdb
import pytest
import yaml
from helpers import write
from pg import PgDatabase, pg_db, pg_server  # noqa: F401
from test_cli import dltplus, ok, one_line_error, table_counts

from dltplus_dagster.project.scaffold_templates import DESTINATIONS, SOURCES

SCAFFOLD = {"dlt.yml", ".dlt/config.toml", ".dlt/secrets.toml", ".gitignore"}


def init(where: Path, *args: str) -> str:
    return ok(dltplus(where, "project", "init", *args, profile=None))


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def rows(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_init_arrow_duckdb_runs_with_no_edits(tmp_path: Path) -> None:
    out = init(tmp_path, "arrow", "duckdb", "my_project")
    root = tmp_path / "my_project"
    assert f"Created a dlt project in {root}" in out
    assert SCAFFOLD | {"sources/arrow.py"} <= set(files_of(root))
    manifest = yaml.safe_load((root / "dlt.yml").read_text())
    assert manifest["project"]["name"] == "my_project"
    assert manifest["pipelines"]["my_pipeline"] == {
        "source": "arrow", "destination": "duckdb", "dataset_name": "my_pipeline_dataset"
    }
    assert "_data/" in (root / ".gitignore").read_text()
    assert ".dlt/secrets.toml" in (root / ".gitignore").read_text()
    tomllib.loads((root / ".dlt" / "secrets.toml").read_text())  # valid TOML

    assert "successful" in ok(dltplus(root, "project", "validate", profile=None))
    run = ok(dltplus(root, "pipeline", "my_pipeline", "run", profile=None))
    assert "is LOADED and contains no failed jobs" in run
    counts = table_counts(ok(dltplus(root, "dataset", "my_pipeline_dataset", "row-counts",
                                     profile=None)))
    assert counts == {"items": 100}
    db = root / "_data" / "dev" / "local" / "duckdb.duckdb"
    assert rows(db, "SELECT count(*), min(id), max(id) FROM my_pipeline_dataset.items") == [
        (100, 1, 100)
    ]


def test_init_arrow_duckdb_materializes_in_dagster(tmp_path: Path) -> None:
    from dagster import AssetKey, DagsterInstance
    from dagster_support import materializations, md_value, run_assets

    from dltplus_dagster import build_definitions

    init(tmp_path, "arrow", "duckdb", "dagster_project")
    root = tmp_path / "dagster_project"
    defs = build_definitions(str(root))
    key = AssetKey(["my_pipeline_dataset", "items"])
    with DagsterInstance.ephemeral() as instance:
        result = run_assets(defs, instance)
        assert result.success
        assert md_value(materializations(result)[key], "dagster/row_count") == 100
    db = root / "_data" / "dev" / "local" / "duckdb.duckdb"
    assert rows(db, "SELECT count(*) FROM my_pipeline_dataset.items") == [(100,)]
    # Dagster ran in a per-run dir; the CLI restores the profile working dir with sync
    error = one_line_error(dltplus(root, "pipeline", "my_pipeline", "schema", profile=None))
    assert "sync" in error
    ok(dltplus(root, "pipeline", "my_pipeline", "sync", "--yes", profile=None))
    schema = ok(dltplus(root, "pipeline", "my_pipeline", "schema", profile=None))
    assert "  items:" in schema


def test_init_filesystem_duckdb_runs_offline(tmp_path: Path) -> None:
    init(tmp_path, "filesystem", "duckdb", "files_project")
    root = tmp_path / "files_project"
    ok(dltplus(root, "pipeline", "my_pipeline", "run", profile=None))
    counts = table_counts(ok(dltplus(root, "dataset", "my_pipeline_dataset", "row-counts",
                                     profile=None)))
    assert counts == {"read_csv": 3}


@pytest.mark.parametrize("source", list(SOURCES))
@pytest.mark.parametrize("destination", list(DESTINATIONS))
def test_every_scaffold_validates(tmp_path: Path, source: str, destination: str) -> None:
    root = tmp_path / f"{source}_{destination}"
    out = init(tmp_path, source, destination, str(root))
    assert SCAFFOLD <= set(files_of(root))
    assert "successful" in ok(dltplus(root, "project", "validate", profile=None))
    manifest = yaml.safe_load((root / "dlt.yml").read_text())
    assert set(manifest["sources"]) == {source}
    assert set(manifest["destinations"]) == {destination}
    secrets = (root / ".dlt" / "secrets.toml").read_text()
    tomllib.loads(secrets)
    if destination == "postgres":
        assert "[destination.postgres.credentials]" in secrets and "<configure me>" in secrets
        assert "Before the first run" in out
    if source == "sql_database":
        assert "[sources.sql_database.credentials]" in secrets


def test_init_into_cwd_uses_dir_name(tmp_path: Path) -> None:
    root = tmp_path / "cwd-project"
    root.mkdir()
    init(root, "arrow", "duckdb")
    assert yaml.safe_load((root / "dlt.yml").read_text())["project"]["name"] == "cwd-project"


def test_init_refuses_existing_project(tmp_path: Path) -> None:
    init(tmp_path, "arrow", "duckdb", "proj")
    root = tmp_path / "proj"
    (root / "dlt.yml").write_text("# my edits\n" + (root / "dlt.yml").read_text())
    before = files_of(root)
    for args in (("arrow", "duckdb", "proj"), ("rest_api", "postgres", "proj")):
        error = one_line_error(dltplus(tmp_path, "project", "init", *args, profile=None))
        assert "already holds a dlt project" in error and "nothing was written" in error
    assert files_of(root) == before

    # only a .dlt folder is a project too
    other = tmp_path / "settings_only"
    write(other / ".dlt" / "config.toml", "[runtime]\n")
    error = one_line_error(dltplus(tmp_path, "project", "init", "arrow", "duckdb",
                                   "settings_only", profile=None))
    assert "already holds a dlt project (.dlt)" in error
    assert files_of(other) == {".dlt/config.toml": b"[runtime]\n"}


def test_init_refuses_to_overwrite_any_file(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root / ".gitignore", "node_modules/\n")
    write(root / "sources" / "arrow.py", "# mine\n")
    error = one_line_error(dltplus(tmp_path, "project", "init", "arrow", "duckdb", "repo",
                                   profile=None))
    assert ".gitignore" in error and "sources/arrow.py" in error
    assert files_of(root) == {".gitignore": b"node_modules/\n", "sources/arrow.py": b"# mine\n"}


@pytest.mark.parametrize(
    "args, message",
    [
        (("mongodb", "duckdb"), "unknown source 'mongodb'; one of arrow, rest_api"),
        (("arrow", "snowflakes"), "unknown destination 'snowflakes'; one of duckdb"),
        (("arrow", "duckdb", "x", "--project-name", "{env.HOME}"), "project name"),
        (("arrow", "duckdb", "x", "-n", "a b"), "project name"),
        (("arrow", "duckdb", "a_file"), "is not a directory"),
    ],
)
def test_init_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    write(tmp_path / "a_file", "x")
    error = one_line_error(dltplus(tmp_path, "project", "init", *args, profile=None))
    assert message in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_init_arrow_postgres_then_dataset_drop_on_postgres(
    tmp_path: Path, pg_db: PgDatabase  # noqa: F811
) -> None:
    """The postgres scaffold runs once its placeholders are filled in; `dataset drop` then
    really drops the dataset's schema in PostgreSQL."""
    from urllib.parse import urlsplit

    init(tmp_path, "arrow", "postgres", "pg_project")
    root = tmp_path / "pg_project"
    dsn = urlsplit(pg_db.dsn)
    secrets = root / ".dlt" / "secrets.toml"
    text = secrets.read_text()
    for key, value in (("database", pg_db.name), ("username", dsn.username),
                       ("password", dsn.password), ("host", dsn.hostname)):
        text = text.replace(f'{key} = "<configure me>"', f'{key} = "{value}"')
    text = text.replace("port = 5432", f"port = {dsn.port or 5432}")
    secrets.write_text(text)

    ok(dltplus(root, "pipeline", "my_pipeline", "run", profile=None))
    assert pg_db.counts("my_pipeline_dataset", ["items"]) == {"items": 100}
    assert "_dlt_loads" in pg_db.tables("my_pipeline_dataset")

    out = ok(dltplus(root, "dataset", "my_pipeline_dataset", "drop", "--yes", profile=None))
    assert "Dropped dataset my_pipeline_dataset on destination postgres" in out
    assert str(dsn.password) not in out
    assert pg_db.query(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s",
        ("my_pipeline_dataset",),
    ) == [(0,)]


def test_init_arrow_filesystem_row_counts_and_drop(tmp_path: Path) -> None:
    """A filesystem destination's dataset reads (row-counts) and drops like a database's."""
    init(tmp_path, "arrow", "filesystem", "fs_project")
    root = tmp_path / "fs_project"
    ok(dltplus(root, "pipeline", "my_pipeline", "run", profile=None))
    files = root / "_data" / "dev" / "local" / "files" / "my_pipeline_dataset"
    assert (files / "items").is_dir()
    counts = table_counts(ok(dltplus(root, "dataset", "my_pipeline_dataset", "row-counts",
                                     profile=None)))
    assert counts == {"items": 100}
    out = ok(dltplus(root, "dataset", "my_pipeline_dataset", "drop", "--yes", profile=None))
    assert "_dlt_loads" in out and "Dropped dataset my_pipeline_dataset" in out
    assert not files.exists()
