"""The shop dlt project as a Dagster project, through `DltProjectComponent`."""
