"""The Dagster integration: assets, resources, IO manager, schedules from a dlt project."""
