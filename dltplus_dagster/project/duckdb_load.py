"""DuckDB session settings for the loads of pipeline runs.

DuckDB keeps a table's insertion order by default. An `INSERT ... SELECT * FROM read_parquet()`
of a load file whose row groups are smaller than DuckDB's own (122,880 rows; dlt writes one row
group per extracted batch) then re-packs every row group in file order, a large part of the
load step (figures: bench/README.md, `python -m bench.duckdb_insert`). dlt never
promised a row order (it loads a table's files in parallel threads), so pipeline runs into
DuckDB load with `preserve_insertion_order=false` for dlt's load session only. Reads, `save()`
and the user's own connections keep DuckDB's default. A project that relies on the stored
order sets the option itself in the destination's `credentials.local_config` (or
`global_config`), and that wins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import dlt
    from dlt.common.destination import Destination
    from dlt.destinations.impl.duckdb.configuration import DuckDbBaseCredentials

LOAD_SESSION_SETTINGS: dict[str, bool | int | str] = {"preserve_insertion_order": False}
"""DuckDB settings of a pipeline run's load session (unless the project set them)."""

_DUCKDB = "dlt.destinations.duckdb"


def destination_with_load_settings(pipeline: dlt.Pipeline) -> Destination[Any, Any] | None:
    """`pipeline`'s DuckDB destination with `LOAD_SESSION_SETTINGS` in its credentials.

    The credentials are the ones dlt resolves for this pipeline (same database file, same
    extensions, pragmas and statements), passed explicitly. None for other destinations, a
    connection the caller opened, or credentials that set every option already.
    """
    destination = pipeline.destination
    if destination is None or destination.destination_type != _DUCKDB:
        return None
    try:
        credentials = _resolved_credentials(pipeline, destination)
    except Exception:  # noqa: BLE001 - the run itself reports config errors, as dlt words them
        return None
    if credentials.external_conn() is not None:
        return None  # the caller's connection and its settings are theirs
    chosen = {
        str(k).lower()
        for k in (*(credentials.local_config or {}), *(credentials.global_config or {}))
    }
    missing = {k: v for k, v in LOAD_SESSION_SETTINGS.items() if k not in chosen}
    if not missing:
        return None
    credentials.local_config = {**missing, **(credentials.local_config or {})}
    # the factory copies the fields of a credentials instance; explicit params win over config
    return type(destination)(
        **{**destination.config_params, **destination.caps_params, "credentials": credentials}
    )


def _resolved_credentials(
    pipeline: dlt.Pipeline, destination: Destination[Any, Any]
) -> DuckDbBaseCredentials:
    """The credentials dlt resolves for `pipeline`'s loads: its destination config in the
    pipeline's config section (half the cost of `pipeline.destination_client()`, which also
    builds a schema and a job client)."""
    from dlt.common.configuration import inject_section
    from dlt.common.configuration.specs.config_section_context import ConfigSectionContext

    initial = destination.spec()
    initial.dataset_name = pipeline.dataset_name
    with inject_section(ConfigSectionContext(pipeline_name=pipeline.pipeline_name, sections=())):
        credentials = destination.configuration(initial).credentials
    # the caller checked the destination type: a DuckDB destination's credentials
    return cast("DuckDbBaseCredentials", credentials)
