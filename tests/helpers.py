"""Test helpers: write small dlt projects into tmp dirs."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path


def make_project(tmp_path: Path, yml: str, files: dict[str, str] | None = None) -> Path:
    """Write `dlt.yml` (dedented) and `files` (relative path -> text) under `tmp_path/project`.

    Python packages `sources/` and `transformations/` get an `__init__.py` when files are
    written into them. Returns the project dir.
    """
    root = Path(tmp_path) / "project"
    root.mkdir(parents=True, exist_ok=True)
    (root / "dlt.yml").write_text(textwrap.dedent(yml).lstrip("\n"), encoding="utf-8")
    for rel, text in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        top = Path(rel).parts[0]
        if top in ("sources", "transformations") and len(Path(rel).parts) > 1:
            init = root / top / "__init__.py"
            if not init.exists():
                init.write_text("", encoding="utf-8")
    return root


def write(path: Path | str, text: str) -> Path:
    """Write dedented `text` to `path`, creating parent dirs."""
    path = Path(path)
    os.makedirs(path.parent, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


ITEMS_SOURCE = '''
import dlt


@dlt.source
def items(n_items: int = dlt.config.value, api_key: str = dlt.secrets.value):
    """`n_items` rows; the api key must be set."""

    @dlt.resource(primary_key="id", write_disposition="replace")
    def item_rows():
        yield [{"id": i, "value": f"v{i}"} for i in range(n_items)]

    @dlt.resource(write_disposition="append")
    def events():
        for i in range(n_items):
            yield {"event_id": i, "kind": "e"}

    return [item_rows, events]
'''
"""`sources/items.py`: source `items` with config `n_items` and secret `api_key`."""
