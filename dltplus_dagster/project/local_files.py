"""dlt file settings for runs whose load files only a local DuckDB reads.

A run into a local DuckDB database writes load files that DuckDB reads once, in the same
process, right after; compressing them only costs CPU (figures: bench/README.md). Runs and
saves into DuckDB therefore write them uncompressed, unless the project or the user set the
option anywhere (env, TOML, manifest).
Other destinations keep dlt's defaults: their files are uploaded or staged.
"""

from __future__ import annotations

LOCAL_FILE_LOADERS = ("duckdb",)
"""Destination types that read load files once from the local disk, in this process."""


def is_local_file_destination(destination_type: str) -> bool:
    """A destination writing one local file (DuckDB): one writer process at a time, and its
    load files are read once, here."""
    return destination_type in LOCAL_FILE_LOADERS

_DEFAULTS: dict[str, tuple[str | bool, tuple[str, ...]]] = {
    # key under `<pipeline>.`: (value, keys that mean someone chose already)
    "data_writer.compression": (
        "none",
        ("data_writer.compression", "sources.data_writer.compression",
         "normalize.data_writer.compression"),
    ),
    "normalize.data_writer.disable_compression": (
        True,
        ("data_writer.disable_compression", "normalize.data_writer.disable_compression"),
    ),
}


def local_file_config(destination_type: str, pipeline_name: str) -> dict[str, str | bool]:
    """Config values (dotted keys) for a run of `pipeline_name`; empty for other destinations."""
    if not is_local_file_destination(destination_type):
        return {}
    return {
        f"{pipeline_name}.{key}": value
        for key, (value, chosen) in _DEFAULTS.items()
        if not _configured(pipeline_name, chosen)
    }


def _configured(pipeline_name: str, keys: tuple[str, ...]) -> bool:
    import dlt

    return any(
        dlt.config.get(f"{prefix}{key}") is not None
        for prefix in ("", f"{pipeline_name}.")
        for key in keys
    )
