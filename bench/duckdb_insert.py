"""Supporting measurement (not a target): DuckDB inserting one Parquet load file, by row-group
layout and `preserve_insertion_order`.

`python -m bench.duckdb_insert [ROWS]` writes benchmark 1's 1M-row table as dlt writes it (one
row group per 100k-row extracted batch, uncompressed), and as DuckDB-sized row groups (122,880
rows), then times `INSERT INTO ... BY NAME SELECT * FROM read_parquet(...)`, the statement of
dlt's DuckDB copy job, into a fresh database: with DuckDB's default session and with
`preserve_insertion_order=false` (what pipeline runs use, `project/duckdb_load.py`). Prints
medians of 5 alternating repetitions.
"""

from __future__ import annotations

import os
import sys
import tempfile

from bench.common import alternate, median
from bench.data import arrow_table

DUCKDB_ROW_GROUP = 122_880
DDL = (
    "CREATE SCHEMA d; CREATE TABLE d.t (id BIGINT, amount DOUBLE, label VARCHAR, "
    "created_at TIMESTAMPTZ, flag BOOLEAN, qty INTEGER)"
)


def write_parquet(table: object, path: str, batch_rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetWriter(path, table.schema, compression="none") as writer:  # type: ignore[attr-defined]
        for batch in table.to_batches(max_chunksize=batch_rows):  # type: ignore[attr-defined]
            writer.write_table(pa.Table.from_batches([batch]))


def insert_seconds(parquet: str, db: str, session: str) -> float:
    """Seconds of the insert statement alone (connect and DDL before the timing)."""
    import time

    import duckdb

    if os.path.exists(db):
        os.remove(db)
    con = duckdb.connect(db)
    try:
        if session:
            con.execute(session)
        con.execute(DDL)
        t0 = time.perf_counter()
        con.execute("BEGIN")
        con.execute(f"INSERT INTO d.t BY NAME SELECT * FROM read_parquet('{parquet}')")
        con.execute("COMMIT")
        return time.perf_counter() - t0
    finally:
        con.close()


def main(rows: int) -> None:
    table = arrow_table(rows)
    with tempfile.TemporaryDirectory() as work:
        files = {
            "100k-row groups (dlt, one per batch)": 100_000,
            f"{DUCKDB_ROW_GROUP}-row groups (DuckDB's size)": DUCKDB_ROW_GROUP,
        }
        variants = {}
        for label, batch in files.items():
            path = os.path.join(work, f"{batch}.parquet")
            write_parquet(table, path, batch)
            db = os.path.join(work, "insert.duckdb")
            for mode, session in (("default", ""),
                                  ("no order", "SET SESSION preserve_insertion_order = false")):
                variants[f"{label}, {mode}"] = (
                    lambda p=path, s=session, d=db: insert_seconds(p, d, s)
                )
        times = alternate(variants)
    print(f"INSERT of {rows:,} rows from one Parquet file (medians):")
    for name, values in times.items():
        print(f"  {name:<55} {median(values):.3f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
