"""Benchmarks of dltplus-dagster against plain dlt, dagster-dlt and the dagster-duckdb IO manager.

`python -m bench` (or `make bench`) runs every benchmark, prints one table, writes
`bench/results/latest.json` and exits non-zero when a target is missed. See bench/README.md.
"""
