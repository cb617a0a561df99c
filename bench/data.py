"""Benchmark data (six mixed-type columns) and the generated dlt projects it is loaded through."""

from __future__ import annotations

import os
import textwrap
from typing import Any

import numpy as np

COLUMNS = "id int64, amount float64, label string, created_at timestamp, flag bool, qty int32"


def arrow_table(rows: int, seed: int = 7) -> Any:
    """A pyarrow table of `rows` rows: int64, float64, string, timestamp, bool, int32."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    ids = np.arange(rows, dtype=np.int64)
    labels = np.array([f"label_{i}" for i in range(1000)], dtype=object)
    return pa.table(
        {
            "id": ids,
            "amount": rng.random(rows) * 1000,
            "label": pa.array(labels[ids % 1000], pa.string()),
            "created_at": pa.array(
                np.datetime64("2026-01-01T00:00:00", "us") + ids.astype("timedelta64[s]"),
                pa.timestamp("us", tz="UTC"),
            ),
            "flag": ids % 3 == 0,
            "qty": (ids % 1000).astype(np.int32),
        }
    )


def frame(rows: int, seed: int = 7) -> Any:
    """The same data as a pandas DataFrame."""
    return arrow_table(rows, seed).to_pandas()


SOURCE_MODULE = '''\
"""Benchmark source: one resource yielding a pyarrow table (or Python dicts) in batches."""

import dlt

_CACHE = {}


def _table(rows):
    if rows not in _CACHE:
        from bench.data import arrow_table

        _CACHE[rows] = arrow_table(rows)
    return _CACHE[rows]


def _dicts(rows):
    key = ("dicts", rows)
    if key not in _CACHE:
        _CACHE[key] = _table(rows).to_pylist()
    return _CACHE[key]


@dlt.source
def arrow_source(rows: int = 1000, kind: str = "arrow", batch: int = 100_000):
    """The benchmark rows."""

    @dlt.resource(name="rows_table", write_disposition="replace", file_format="parquet")
    def rows_table():
        if kind == "arrow":
            for b in _table(rows).to_batches(max_chunksize=batch):
                yield b
        else:
            data = _dicts(rows)
            for i in range(0, rows, batch):
                yield data[i : i + batch]

    return rows_table


def warm(rows, kind):
    """Build the data outside of any timing."""
    _dicts(rows) if kind != "arrow" else _table(rows)
'''

THREE_MODULE = '''\
"""A source with three resources; nothing is extracted at definitions load."""

import dlt


@dlt.source
def three(n: int = 10):
    """Users, orders and items."""

    @dlt.resource(primary_key="id", write_disposition="merge")
    def users():
        """Users."""
        yield [{"id": i, "name": f"user {i}"} for i in range(n)]

    @dlt.resource(primary_key="id", write_disposition="merge")
    def orders():
        """Orders."""
        yield [{"id": i, "user_id": i % 7} for i in range(n)]

    @dlt.resource(write_disposition="append")
    def items():
        """Order items."""
        yield [{"order_id": i, "sku": f"sku{i}"} for i in range(n)]

    return users, orders, items
'''

WIDE_MODULE = '''\
"""A source with many small resources (one table each)."""

import dlt


@dlt.source
def wide(tables: int = 200, rows: int = 10):
    """`tables` tables of `rows` rows."""

    def make(i):
        @dlt.resource(name=f"t_{i:03d}", write_disposition="replace")
        def r():
            yield [{"id": j, "value": j * i} for j in range(rows)]

        return r

    return [make(i) for i in range(tables)]
'''


def write_project(root: str, manifest: str, modules: dict[str, str]) -> str:
    """A project folder: dlt.yml, `sources/<name>.py` modules and an empty `.dlt/`."""
    os.makedirs(os.path.join(root, "sources"), exist_ok=True)
    os.makedirs(os.path.join(root, ".dlt"), exist_ok=True)
    with open(os.path.join(root, "dlt.yml"), "w") as f:
        f.write(textwrap.dedent(manifest))
    with open(os.path.join(root, "sources", "__init__.py"), "w") as f:
        f.write("")
    for name, text in modules.items():
        with open(os.path.join(root, "sources", f"{name}.py"), "w") as f:
            f.write(text)
    return root


def many_pipelines_manifest(n: int) -> str:
    """`n` pipelines, each with its own 3-resource source entity and dataset."""
    lines = ["project:", f"  name: bench_defs_{n}", "destinations:", "  warehouse:",
             "    type: duckdb", "sources:"]
    for i in range(n):
        lines += [f"  src_{i}:", "    type: three.three"]
    lines.append("pipelines:")
    for i in range(n):
        lines += [f"  p_{i}:", f"    source: src_{i}", "    destination: warehouse",
                  f"    dataset_name: ds_{i}"]
    return "\n".join(lines) + "\n"
