"""Storing the dlt trace of every run attempt (`run_config.store_trace_info`).

`store_trace_info: true` loads each attempt's trace, failed or not, with a trace pipeline
`_trace_<pipeline>` into dataset `_trace_<dataset>` on the run's own destination; a string names
a declared pipeline whose destination and dataset take the traces instead (its source is not
used). Rows go to table `<pipeline>_trace`, one per attempt (dlt's nested `__steps`... child
tables hold the steps), with the run id, the attempt number, the outcome and the error.

Traces pass `scrub_trace` before they leave the process. A trace that cannot be loaded is kept
as JSON under `<data_dir>/traces/<pipeline>/`, a warning is logged, and the next stored trace
of that pipeline takes it along. Storing a trace never changes the run's result or error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from dltplus_dagster.project.redact import scrub, scrub_secrets

if TYPE_CHECKING:
    import dlt
    import pandas as pd

    from dltplus_dagster.project.dataset import Dataset
    from dltplus_dagster.project.entities import EntityFactory
    from dltplus_dagster.project.project import Project

logger = logging.getLogger(__name__)

TRACE_PREFIX = "_trace_"
TRACE_KEY = ("run_config", "store_trace_info")
TRACE_NESTING = 1
"""Nesting levels loaded as child tables (`<pipeline>_trace__steps`...)."""
SUMMARY_COLUMNS = ("started_at", "run_id", "attempt", "status", "finished_at", "error")


@dataclass(frozen=True)
class TraceTarget:
    """Where the traces of one pipeline go."""

    pipeline_name: str
    """The dlt pipeline that loads the traces (`_trace_<pipeline>` or the named pipeline)."""
    destination: str
    dataset_name: str
    table_name: str


def trace_target(project: Project, name: str) -> TraceTarget | None:
    """Where pipeline `name` stores its traces; None when it stores none. A string that names
    no usable pipeline is a `ManifestError` at `pipelines.<name>.run_config.store_trace_info`."""
    entity = project.pipelines[name]
    setting = entity.run_config.store_trace_info
    if setting is False:
        return None
    table = f"{name}_trace"
    if setting is True:
        return TraceTarget(f"{TRACE_PREFIX}{name}", str(entity.destination),
                           f"{TRACE_PREFIX}{entity.dataset_name}", table)
    if problem := trace_pipeline_problem(project, setting):
        raise project.error_at(("pipelines", name, *TRACE_KEY), problem)
    trace = project.pipelines[setting]
    return TraceTarget(setting, str(trace.destination), str(trace.dataset_name), table)


def trace_pipeline_problem(project: Project, setting: str) -> str | None:
    """Why a `store_trace_info` string cannot name the trace pipeline, or None."""
    if not setting.strip():
        return "an empty string names no pipeline (use true, false or a pipeline name)"
    trace = project.pipelines.get(setting)
    if trace is None:
        declared = ", ".join(sorted(project.pipelines)) or "(none)"
        return f"pipeline '{setting}' is not declared. Declared pipelines: {declared}"
    missing = [k for k in ("destination", "dataset_name") if not getattr(trace, k)]
    if missing:
        return f"trace pipeline '{setting}' sets no {' and no '.join(missing)}"
    return None


def trace_datasets(project: Project) -> dict[str, str]:
    """`_trace_<dataset>` -> destination, for pipelines with `store_trace_info: true` (these
    datasets exist without being declared, whatever `allow_undefined_entities` says)."""
    found: dict[str, str] = {}
    for p in project.pipelines.values():
        if p.run_config.store_trace_info is True and p.dataset_name and p.destination:
            found.setdefault(f"{TRACE_PREFIX}{p.dataset_name}", p.destination)
    return found


def scrub_trace(value: Any, secrets: Sequence[str]) -> Any:
    """A copy of a trace record with every known secret and URL password masked in its
    strings. The one place traces are scrubbed before they are loaded or written."""
    return scrub_secrets(value, secrets)


def _plain(value: Any) -> Any:
    """dlt's trace objects (named tuples with `asdict`) as plain dicts, lists and scalars."""
    import datetime
    import decimal

    if isinstance(value, str | int | float | bool | datetime.date | decimal.Decimal) or (
        value is None
    ):
        return value
    if hasattr(value, "asdict"):
        return _plain(value.asdict())
    if hasattr(value, "_asdict"):
        return _plain(value._asdict())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    return str(value)


class TraceRecorder:
    """Stores the trace of each attempt of one run of a pipeline (see the module docstring)."""

    def __init__(
        self,
        project: Project,
        entities: EntityFactory,
        name: str,
        pipeline: dlt.Pipeline,
        target: TraceTarget,
        secrets: Callable[[], Sequence[str]],
    ) -> None:
        self.project = project
        self.entities = entities
        self.name = name
        self.pipeline = pipeline
        self.target = target
        self.secrets = secrets
        self.run_id = uuid.uuid4().hex
        self.attempts = 0

    @property
    def local_dir(self) -> str:
        """Where traces that could not be loaded wait for the next load."""
        return os.path.join(self.project.data_dir, "traces", self.name)

    def wrap(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """`fn` (one attempt) that stores its trace afterwards, whatever happened."""

        def attempt() -> Any:
            from dlt.common import pendulum

            self.attempts += 1
            seen = self._span_ids()
            started = pendulum.now()
            try:
                result = fn()
            except Exception as e:
                self.store(self.attempts, seen, started, e)
                raise
            self.store(self.attempts, seen, started, None)
            return result

        return attempt

    def _span_ids(self) -> set[str]:
        trace = self.pipeline.last_trace
        return {s.span_id for s in trace.steps} if trace is not None else set()

    def record(
        self, attempt: int, seen: set[str], started: Any, error: BaseException | None
    ) -> dict[str, Any]:
        """The row of one attempt: its run id, number and outcome, and dlt's trace of the steps
        it ran (dlt merges the steps of a standalone retry load into the previous trace)."""
        from dlt.common import pendulum

        trace = self.pipeline.last_trace
        steps = [s for s in trace.steps if s.span_id not in seen] if trace is not None else []
        # no new steps: the attempt failed before dlt ran, the trace is an earlier one
        row: dict[str, Any] = _plain(trace.asdict()) if trace is not None and steps else {}
        row.pop("steps", None)
        row.update(
            run_id=self.run_id,
            attempt=attempt,
            pipeline_name=self.name,
            status="failed" if error is not None else "completed",
            error=f"{type(error).__name__}: {error}" if error is not None else None,
            started_at=started,
            finished_at=pendulum.now(),
            steps=[
                _plain(s.asdict()) for s in steps if s.step != "run" or s.step_exception
            ],
        )
        scrubbed: dict[str, Any] = scrub_trace(row, self.secrets())
        return scrubbed

    def store(
        self, attempt: int, seen: set[str], started: Any, error: BaseException | None
    ) -> None:
        """Load the attempt's trace (with traces kept locally before); on failure keep it as
        a local file and warn. Never raises (but for interrupts)."""
        try:
            row = self.record(attempt, seen, started, error)
        except Exception as e:  # noqa: BLE001 - a trace must never break the run
            logger.warning("pipeline %s: the trace of attempt %d could not be built: %s",
                           self.name, attempt, scrub(str(e), self.secrets()))
            return
        pending = self._pending()
        try:
            self._load([*(rows for _, rows in pending), row])
        except Exception as e:  # noqa: BLE001 - the run's own outcome must stay as it is
            why = (scrub(str(e), self.secrets()).splitlines() or [""])[0]
            try:
                kept = f"kept it in {self._keep(row, attempt)}"
            except OSError as write_error:
                kept = f"it is lost: it could not be kept in {self.local_dir} ({write_error})"
            logger.warning(
                "pipeline %s: storing the trace of attempt %d in %s.%s failed (%s: %s); %s",
                self.name, attempt, self.target.dataset_name, self.target.table_name,
                type(e).__name__, why, kept,
            )
            return
        finally:
            self.pipeline.activate()  # the trace pipeline took over dlt's current pipeline
        for path, _ in pending:
            with contextlib.suppress(OSError):
                os.remove(path)

    def _load(self, rows: list[dict[str, Any]]) -> None:
        import dlt

        work_dir = os.path.join(self.project.data_dir, "tmp", f"trace-{uuid.uuid4().hex}")
        os.makedirs(work_dir, exist_ok=True)
        try:
            pipeline = dlt.pipeline(
                pipeline_name=self.target.pipeline_name,
                destination=self.entities.get_destination(self.target.destination),
                dataset_name=self.target.dataset_name,
                pipelines_dir=work_dir,
            )
            # a schema of its own per traced pipeline (restored from the destination, so the
            # columns of earlier traces stay readable) even when several share a trace pipeline
            schema_name = f"{TRACE_PREFIX}{self.name}"
            # steps and the execution context's list as child tables; deeper lists (jobs,
            # metrics) as JSON: each more table costs the load far more than its rows
            resource = dlt.resource(
                rows, name=self.target.table_name, write_disposition="append",
                max_table_nesting=TRACE_NESTING,
            )
            with _quiet_schema_warnings(schema_name):
                pipeline.run(resource, schema=dlt.Schema(schema_name))
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)

    def _keep(self, row: dict[str, Any], attempt: int) -> str:
        from dlt.common import json

        os.makedirs(self.local_dir, exist_ok=True)
        path = os.path.join(self.local_dir, f"{self.run_id}_attempt_{attempt}_trace.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(row, pretty=True))
        return path

    def _pending(self) -> list[tuple[str, dict[str, Any]]]:
        """Traces kept locally by earlier attempts or runs (the pipeline's run lock is held)."""
        return read_kept_traces(self.local_dir)


@contextlib.contextmanager
def _quiet_schema_warnings(schema_name: str) -> Iterator[None]:
    """Drop dlt's warnings about columns of `schema_name` that got no data: a trace's optional
    fields (an error, a refresh mode) are null in most attempts, and that is no news."""
    from dlt.common import logger as dlt_logger

    marker = f"In schema `{schema_name}`"

    def keep(record: logging.LogRecord) -> bool:
        return marker not in str(record.msg)

    target = dlt_logger.LOGGER
    if target is not None:
        target.addFilter(keep)
    try:
        yield
    finally:
        if target is not None:
            target.removeFilter(keep)


def read_kept_traces(local_dir: str) -> list[tuple[str, dict[str, Any]]]:
    """(path, row) of the trace files kept in `local_dir`, oldest first; unreadable ones are
    left alone."""
    from dlt.common import json

    try:
        names = sorted(n for n in os.listdir(local_dir) if n.endswith("_trace.json"))
    except OSError:
        return []
    found = []
    for n in names:
        path = os.path.join(local_dir, n)
        try:
            with open(path, encoding="utf-8") as f:
                found.append((path, json.loads(f.read())))
        except (OSError, ValueError) as e:
            logger.warning("trace file %s cannot be read (%s); it is left as it is", path, e)
    found.sort(key=lambda item: os.path.getmtime(item[0]))
    return found


def stored_traces_dataset(project: Project, entities: EntityFactory, name: str) -> Dataset:
    """The dataset that holds pipeline `name`'s traces."""
    from dltplus_dagster.project.dataset import Dataset
    from dltplus_dagster.project.model import DatasetEntity

    target = trace_target(project, name)
    if target is None:
        raise project.error_at(
            ("pipelines", name, *TRACE_KEY),
            "this pipeline stores no traces (set store_trace_info: true)",
        )
    entity = project.datasets.get(target.dataset_name) or DatasetEntity(name=target.dataset_name)
    return Dataset(project, entities, entity, target.destination)


def format_stored_traces(
    project: Project, entities: EntityFactory, name: str, limit: int = 10
) -> str:
    """Text of pipeline `name`'s stored traces, newest first (one line per attempt), and of
    the traces kept locally because they could not be loaded: what `dltplus pipeline NAME trace`
    prints."""
    from dltplus_dagster.project.errors import ProjectError

    entities.get_pipeline_entity(name)
    target = trace_target(project, name)
    dataset = stored_traces_dataset(project, entities, name)
    assert target is not None  # stored_traces_dataset refuses a pipeline that stores none
    where = f"{target.dataset_name}.{target.table_name}@{target.destination}"
    lines = [f"Traces of pipeline {name} in {where}:"]
    try:
        if target.table_name in dataset.tables:
            relation = dataset[target.table_name]
            # dlt types df() Optional (an empty chunk iterator); a full fetch yields one frame
            frame = cast("pd.DataFrame", relation.order_by("started_at", "desc").limit(limit).df())
            columns = [c for c in SUMMARY_COLUMNS if c in frame.columns]
            for record in frame[columns].to_dict("records"):
                lines.append("  " + "  ".join(_cell(record.get(c)) for c in columns))
        if len(lines) == 1:
            lines.append("  (none stored yet)")
    except ProjectError as e:
        lines.append(f"  (not readable: {e})")
    kept = read_kept_traces(os.path.join(project.data_dir, "traces", name))
    if kept:
        lines.append(f"{len(kept)} trace(s) not loaded yet, kept in "
                     f"{os.path.join(project.data_dir, 'traces', name)}:")
        for path, row in kept:
            lines.append(f"  {os.path.basename(path)}: {row.get('status')} {row.get('error') or ''}"
                         .rstrip())
    return "\n".join(lines)


def _cell(value: Any) -> str:
    import pandas as pd

    if value is None or (not isinstance(value, list | dict) and pd.isna(value)):
        return "-"
    return str(value).splitlines()[0] if str(value) else ""
