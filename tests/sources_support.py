"""Helpers for the tests of sources built from config and of tables decided at run time: a
small paginated JSON API on 127.0.0.1, the `dltplus` CLI in a subprocess, reads of a project's
DuckDB file, and one pipeline run three ways (CLI, `current.runner()`, Dagster)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import duckdb
from dagster import AssetKey, DagsterInstance
from dagster_support import materializations, md_value, run_assets
from helpers import BIN, clean_env

from dltplus_dagster import build_definitions, current
from dltplus_dagster.project import run_context

# --- a paginated JSON API ---------------------------------------------------------------------

USERS_PAGES = 2
USERS_PER_PAGE = 3
ORDERS_PER_USER = 2


def _users_page(page: int) -> list[dict[str, Any]]:
    return [
        {
            "id": page * 10 + i,
            "name": f"user{page}-{i}",
            "orders": [{"sku": f"sku{j}", "qty": j + 1} for j in range(ORDERS_PER_USER)],
        }
        for i in range(USERS_PER_PAGE)
    ]


class _ApiHandler(BaseHTTPRequestHandler):
    """`/users?page=N` (two pages, `total_pages`) and `/pets` (one page)."""

    def do_GET(self) -> None:
        url = urlparse(self.path)
        page = int(parse_qs(url.query).get("page", ["1"])[0])
        if url.path == "/users":
            body: dict[str, Any] = {"items": _users_page(page), "total_pages": USERS_PAGES}
        elif url.path == "/pets":
            body = {"items": [{"id": 1, "kind": "dog"}, {"id": 2, "kind": "cat"}],
                    "total_pages": 1}
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@contextmanager
def json_api() -> Iterator[str]:
    """The API in a thread on 127.0.0.1 (a free port); yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ApiHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --- the project's data ------------------------------------------------------------------------


def duckdb_path(root: Path, profile: str = "dev", name: str = "warehouse") -> Path:
    return root / "_data" / profile / "local" / f"{name}.duckdb"


def table_counts(root: Path, dataset: str, profile: str = "dev") -> dict[str, int]:
    """Rows per data table of `dataset` in the project's `warehouse` DuckDB file."""
    con = duckdb.connect(str(duckdb_path(root, profile)), read_only=True)
    try:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [dataset]
        ).fetchall() if not r[0].startswith("_dlt")]
        return {n: con.execute(f'SELECT COUNT(*) FROM "{dataset}"."{n}"').fetchone()[0]
                for n in names}
    finally:
        con.close()


def forget_local_data(root: Path) -> None:
    """Drop the project's local data (pipeline state, DuckDB files): the next run starts over."""
    shutil.rmtree(root / "_data", ignore_errors=True)
    run_context.reset()


def pipeline_keys(defs: Any, pipeline: str) -> list[AssetKey]:
    """The asset keys of one pipeline's tables."""
    return [
        key
        for assets_def in defs.assets or []
        for key, spec in getattr(assets_def, "specs_by_key", {}).items()
        if (spec.metadata or {}).get("dlt/pipeline") == pipeline
    ]


# --- running ----------------------------------------------------------------------------------


def cli(root: Path, *args: str, env: dict[str, str] | None = None,
        timeout: float = 240) -> subprocess.CompletedProcess:
    """`dltplus --project root ARGS` in a subprocess (no project or profile from the env)."""
    return subprocess.run(
        [str(BIN / "dltplus"), "--project", str(root), *args],
        env=clean_env(**(env or {})), capture_output=True, text=True, timeout=timeout,
        check=False,
    )


def run_three_ways(
    root: Path,
    pipeline: str,
    dataset: str,
    expected: dict[str, int],
    instance: DagsterInstance,
    check: Callable[[], None] | None = None,
) -> dict[AssetKey, dict[str, Any]]:
    """Run `pipeline` from scratch through the CLI, `current.runner()` and a Dagster
    materialization; each time the DuckDB dataset holds `expected` rows per table (and `check`
    passes). Returns the materialization metadata by asset key."""
    forget_local_data(root)
    proc = cli(root, "pipeline", pipeline, "run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert table_counts(root, dataset) == expected
    if check:
        check()

    forget_local_data(root)
    result = current.runner(str(root)).run_pipeline(pipeline)
    assert result.row_counts == expected
    assert table_counts(root, dataset) == expected
    if check:
        check()

    forget_local_data(root)
    defs = build_definitions(str(root))
    run = run_assets(defs, instance, pipeline_keys(defs, pipeline))
    assert run.success
    assert table_counts(root, dataset) == expected
    mats = materializations(run)
    for table, rows in expected.items():
        md = mats[AssetKey([dataset, table])]
        assert md_value(md, "dagster/row_count") == rows, table
        assert md_value(md, "dlt/rows_loaded") == rows, table
        assert md_value(md, "dagster/table_name") == f"warehouse.{dataset}.{table}"
    if check:
        check()
    return mats
