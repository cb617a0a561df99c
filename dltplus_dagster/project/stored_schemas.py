"""Which dlt schemas a dataset holds on its destination, read without creating anything.

A dataset written by several pipelines and by `save()` holds one schema per writer in
`_dlt_version`; dlt's own lookup returns only the newest one when no pipeline is named, so
`stored_schemas` reads them all. A local DuckDB database that does not exist yet holds none, and
asking DuckDB would create the file: `missing_local_database` tells before anyone asks.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlt.common.destination import AnyDestination
    from dlt.common.schema import Schema


def missing_local_database(destination: AnyDestination, dataset_name: str) -> bool:
    """True for a DuckDB destination whose database file does not exist yet."""
    if not str(destination.destination_type).endswith(".duckdb"):
        return False
    from dlt.dataset.utils import get_destination_client_initial_config

    try:
        config = destination.configuration(
            get_destination_client_initial_config(destination, dataset_name)
        )
    except Exception:  # noqa: BLE001 - unresolvable here: let the normal read report it
        return False
    database = getattr(config.credentials, "database", None)
    return isinstance(database, str) and database.endswith(".duckdb") and not os.path.exists(
        database
    )


def stored_schemas(destination: AnyDestination, dataset_name: str) -> list[Schema]:
    """Newest version of every schema stored in the dataset, newest schema first; empty for a
    dataset that does not exist or a destination that stores no schemas."""
    import dlt
    from dlt.common.destination.exceptions import DestinationUndefinedEntity
    from dlt.dataset.utils import get_destination_clients

    with get_destination_clients(
        schema=dlt.Schema(dataset_name),
        destination=destination,
        destination_dataset_name=dataset_name,
    )[0] as client:
        if not hasattr(client, "get_stored_schema") or not hasattr(client, "sql_client"):
            return []
        sql = client.sql_client
        table = sql.make_qualified_table_name(client.schema.version_table_name)
        # SQL job clients open their connection; filesystem's SQL client opens on demand
        opened = sql if sql.native_connection is None else contextlib.nullcontext()
        try:
            with opened:
                rows = sql.execute_sql(
                    f"SELECT schema_name, MAX(inserted_at) AS last_at FROM {table} "
                    "GROUP BY schema_name ORDER BY last_at DESC"
                )
        except DestinationUndefinedEntity:
            return []
        except Exception as e:  # a missing dataset shows up differently per destination
            if "does not exist" in str(e) or "not found" in str(e).lower():
                return []
            raise
        schemas = []
        for name, _ in rows or []:
            stored = client.get_stored_schema(name)
            if stored:
                schemas.append(dlt.Schema.from_dict(json.loads(stored.schema), validate_schema=False))
        return schemas
