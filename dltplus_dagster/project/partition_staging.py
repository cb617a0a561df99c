"""A partition run's own staging dataset on a server destination.

dlt stages `merge` (and staged `replace`) loads in one `<dataset>_staging` dataset per
dataset: a run truncates the staging tables, loads them, then merges them into the dataset.
Two partitions of one pipeline loading at once share those tables, so one run can merge the
other's rows and lose its own (seen with 4 partitions into PostgreSQL: every run succeeded,
one day was missing). A partition run therefore stages in a dataset of its own, named from
its dlt pipeline name, and drops it after a successful load. A local DuckDB file needs none of
this: its runs take turns (`run_policies.local_destination_lock`).
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dlt
    from dlt.common.destination import Destination

logger = logging.getLogger(__name__)

LAYOUT_FIELD = "staging_dataset_name_layout"


def staging_layout(dlt_name: str) -> str:
    """`%s_staging_p<hash>`: short and fixed in length (PostgreSQL names end at 63 bytes)."""
    digest = hashlib.sha1(dlt_name.encode("utf-8")).hexdigest()[:10]
    return f"%s_staging_p{digest}"


def with_own_staging(destination: Destination[Any, Any], dlt_name: str) -> bool:
    """Give `destination` (a fresh factory) the partition run's staging dataset; False when
    the destination has no staging dataset to share."""
    if LAYOUT_FIELD not in destination.spec.get_resolvable_fields():
        return False
    destination.config_params[LAYOUT_FIELD] = staging_layout(dlt_name)
    return True


def drop_own_staging(pipeline: dlt.Pipeline) -> None:
    """Drop the run's staging dataset, if the load made one. A failure to drop only logs:
    the rows are loaded, and the next run of the partition reuses the dataset."""
    from dlt.destinations.job_client_impl import SqlJobClientWithStagingDataset

    try:
        client = pipeline.destination_client()
        if not isinstance(client, SqlJobClientWithStagingDataset):
            return
        with client, client.with_staging_dataset():
            if client.sql_client.has_dataset():
                client.sql_client.drop_dataset()
    except Exception as e:  # noqa: BLE001  # cleanup after a successful load
        logger.warning(
            "pipeline %s: could not drop its partition staging dataset: %s",
            pipeline.pipeline_name, type(e).__name__,
        )
