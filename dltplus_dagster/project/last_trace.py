"""dlt's trace of a pipeline's last run, kept next to its state, with the project's secrets masked."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dltplus_dagster.project.redact import scrub_secrets

if TYPE_CHECKING:
    import dlt

logger = logging.getLogger(__name__)

TRACE_FILE = "trace.pickle"
"""dlt's file name of the last trace in a pipeline's working dir."""


def _holds_secret(path: str, secrets: Sequence[str]) -> bool:
    try:
        with open(path, "rb") as f:
            content = f.read()
    except OSError:
        return False
    # pickle stores str as UTF-8, so a secret is a plain byte run in the file
    return any(s.encode("utf-8") in content for s in secrets if s and len(s) >= 4)


def scrub_last_trace(pipeline: dlt.Pipeline, secrets: Sequence[str]) -> None:
    """Mask `secrets` in dlt's trace of `pipeline`'s last run, in memory and on disk.

    dlt keeps the last run's trace next to the pipeline state: raw error messages (a source's
    `401 ... ?token=<secret>`) and, after a successful run too, the config values it resolved
    under non-secret names (an `endpoint` URL holding an `{env.*}` token). The trace is
    rewritten with the secrets masked; a file that still holds one is removed.
    """
    from dlt.pipeline.trace import save_trace

    path = os.path.join(pipeline.working_dir, TRACE_FILE)
    # dlt's own attribute: `last_trace` would load the file, and we replace what it holds
    trace = getattr(pipeline, "_last_trace", None)
    if trace is not None:
        pipeline._last_trace = trace = scrub_secrets(trace, secrets)
    if not _holds_secret(path, secrets):
        return
    if trace is not None:
        save_trace(pipeline.working_dir, trace)
    if _holds_secret(path, secrets):
        os.remove(path)
        logger.warning("removed %s: it showed a secret of the project", path)
