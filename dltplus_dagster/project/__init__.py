"""The project layer: dlt.yml projects with profiles, entities, catalog and runner (no Dagster)."""
