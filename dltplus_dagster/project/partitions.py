"""Partitions of a pipeline or transformation: the spec's checks, the window of a partition key
or key range, the `{partition_*}` placeholders and the run's isolated dlt pipeline name.

The time windows follow Dagster's `TimeWindowPartitionsDefinition` defaults (one cron tick per
partition: hourly on the hour, daily at midnight, weekly on Sunday, monthly on the 1st, in the
partitions' timezone; keys formatted with `fmt`; the end of a window is the next tick,
exclusive). They are computed here with zoneinfo, so the CLI and the runner need no Dagster;
`tests/test_partitions.py` compares them with Dagster's own, across a DST switch too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dltplus_dagster.project.errors import ProjectError

if TYPE_CHECKING:
    from dltplus_dagster.project.model import PartitionsSpec

WINDOW_PLACEHOLDERS = ("partition_start", "partition_end")

TIME_TYPES = ("hourly", "daily", "weekly", "monthly")
DEFAULT_FMT = {"hourly": "%Y-%m-%d-%H:%M", "daily": "%Y-%m-%d", "weekly": "%Y-%m-%d",
               "monthly": "%Y-%m-%d"}
RANGE_SEPARATOR = "..."

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{\s*(partition_[a-z_]*)\s*\}")

Problem = tuple[tuple[str, ...], str]


class PartitionError(ProjectError):
    """A partition key or range the pipeline's partitions do not have."""


def is_time_window(spec: PartitionsSpec) -> bool:
    return spec.type in TIME_TYPES


def backfill_policy(spec: PartitionsSpec) -> str:
    """`single_run` or `per_partition`: the spec's, else single runs for time windows."""
    return spec.backfill or ("single_run" if is_time_window(spec) else "per_partition")


def timezone_of(spec: PartitionsSpec) -> str:
    return spec.timezone or "UTC"


def fmt_of(spec: PartitionsSpec) -> str:
    return spec.fmt or DEFAULT_FMT.get(spec.type or "", "%Y-%m-%d")


# --- checks -----------------------------------------------------------------------------------


def spec_problems(spec: PartitionsSpec) -> list[Problem]:
    """What is wrong with a `partitions:` block: (key path below it, message)."""
    if spec.type is None:
        return [((), "`type` is required: hourly, daily, weekly, monthly, static or dynamic")]
    problems = _keys_of_other_types(spec)
    if spec.type == "static" and not spec.values:
        problems.append(((), "`values` (the partition keys) is required for static partitions"))
    elif spec.type == "static" and len(set(spec.values or [])) != len(spec.values or []):
        problems.append((("values",), "the partition keys are not unique"))
    elif spec.type == "static" and any(not str(v).strip() for v in spec.values or []):
        # Dagster runs an empty key as no partition at all
        problems.append((("values",), "a partition key is empty"))
    if is_time_window(spec):
        problems += _time_problems(spec)
    return problems


def _keys_of_other_types(spec: PartitionsSpec) -> list[Problem]:
    """Keys the spec's type does not take."""
    problems: list[Problem] = []
    if not is_time_window(spec):
        for key in ("start", "end", "timezone", "fmt"):
            if getattr(spec, key) is not None:
                message = f"only time windows (hourly, daily, weekly, monthly) take `{key}`"
                problems.append(((key,), f"{message}; this type is {spec.type}"))
        if spec.backfill == "single_run":
            message = f"single_run needs a time window; {spec.type} partitions run per_partition"
            problems.append((("backfill",), message))
    if spec.type != "static" and spec.values is not None:
        message = f"only static partitions take `values`; this type is {spec.type}"
        problems.append((("values",), message))
    return problems


def _time_problems(spec: PartitionsSpec) -> list[Problem]:
    """A time window's timezone, key format, start and end."""
    from dltplus_dagster.project.cron import timezone_problem

    if spec.timezone is not None and (problem := timezone_problem(spec.timezone)):
        return [(("timezone",), problem)]
    if spec.fmt is not None and (problem := _fmt_problem(spec.fmt)):
        return [(("fmt",), problem)]
    if spec.start is None:
        message = "`start` (the first partition, e.g. '2024-01-01') is required"
        return [((), f"{message} for {spec.type} partitions")]
    problems: list[Problem] = []
    points: dict[str, dt.datetime] = {}
    for key in ("start", "end"):
        value = getattr(spec, key)
        if value is None:
            continue
        try:
            points[key] = parse_point(value, spec)
        except (ValueError, TypeError) as e:
            problems.append(((key,), str(e)))
    if "start" in points and "end" in points and points["end"] <= points["start"]:
        problems.append((("end",), f"end {spec.end} is not after start {spec.start}"))
    return problems


def _fmt_problem(fmt: str) -> str | None:
    """A key format must round-trip a date-time (Dagster parses keys with it)."""
    probe = dt.datetime(2024, 3, 5, 7, 0)
    try:
        text = probe.strftime(fmt)
        dt.datetime.strptime(text, fmt)
    except ValueError as e:
        return f"'{fmt}' is not a usable strftime format: {e}"
    if text == fmt or "%" not in fmt:
        return f"'{fmt}' has no date fields (e.g. '%Y-%m-%d')"
    return None


def placeholders_in(value: Any) -> Iterator[str]:
    """Names of the `{partition_*}` placeholders in a string, mapping or list."""
    if isinstance(value, str):
        for m in _PLACEHOLDER.finditer(value):
            if m.group(1):
                yield m.group(1)
    elif isinstance(value, dict):
        for v in value.values():
            yield from placeholders_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from placeholders_in(v)


# --- windows ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionWindow:
    """The partition (or range of partitions) one run covers.

    `start`/`end` are the time window (end exclusive) for time-window partitions, else None;
    `key` is the partition key, or `first...last` for a range."""

    first: str
    last: str
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    @property
    def key(self) -> str:
        return self.first if self.first == self.last else f"{self.first}{RANGE_SEPARATOR}{self.last}"

    def values(self) -> dict[str, str]:
        """The placeholder values (ISO 8601 for the window)."""
        values = {"partition_key": self.key}
        if self.start is not None and self.end is not None:
            values["partition_start"] = self.start.isoformat()
            values["partition_end"] = self.end.isoformat()
        return values

    def substitute(self, value: Any) -> Any:
        """`value` (a string, mapping or list) with the `{partition_*}` placeholders filled."""
        if isinstance(value, dict):
            return {k: self.substitute(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v) for v in value]
        if not isinstance(value, str) or "{" not in value:
            return value
        values = self.values()

        def replace(m: re.Match[str]) -> str:
            token = m.group(0)
            if token in ("{{", "}}"):
                return token  # the loader already turned escapes into braces: keep what's left
            name = m.group(1)
            if name not in values:
                raise PartitionError(
                    f"{{{name}}} has no value for partition {self.key} (time windows only)"
                )
            return values[name]

        return _PLACEHOLDER.sub(replace, value)

    def pipeline_name(self, pipeline: str) -> str:
        """The dlt pipeline name of a run of this partition: its own local and destination
        state (incremental cursors), apart from the unpartitioned pipeline's and the other
        partitions'; a file name component (dlt names the working dir after it)."""
        slug = re.sub(r"[^A-Za-z0-9_-]+", "_", self.key.replace(RANGE_SEPARATOR, "__")).strip("_")
        if len(slug) > 60 or slug != self.key.replace(RANGE_SEPARATOR, "__"):
            digest = hashlib.sha256(self.key.encode()).hexdigest()[:8]
            slug = f"{slug[:48]}_{digest}"
        return f"{pipeline}__partition__{slug}"


def parse_point(value: Any, spec: PartitionsSpec) -> dt.datetime:
    """A `start`/`end` value as an aware date-time in the spec's timezone: a YAML date or
    date-time, an ISO 8601 text, or a text in the key format."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(timezone_of(spec)) if timezone_of(spec) not in ("UTC", "utc") else dt.UTC
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            try:
                parsed = dt.datetime.strptime(value, fmt_of(spec))
            except ValueError:
                raise ValueError(
                    f"'{value}' is not a date: use ISO 8601 (e.g. '2024-01-01') or the key "
                    f"format '{fmt_of(spec)}'"
                ) from None
    else:
        raise TypeError(f"expected a date such as '2024-01-01', got {type(value).__name__}")
    return parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed.astimezone(tz)


def window_for(
    spec: PartitionsSpec, first: str, last: str | None = None, owner: str = "pipeline"
) -> PartitionWindow:
    """The window of partition `first`, or of the range `first`..`last` (both included): for
    time windows from the start of `first` to the end of `last`. Raises `PartitionError` for a
    key the partitions do not have (a static key not in `values`, a time key that is not the
    start of a window in `fmt`, before `start` or past `end`)."""
    last = first if last is None else last
    if not is_time_window(spec):
        if last != first:
            raise PartitionError(f"{owner}: {spec.type} partitions run one key at a time, "
                                 "not a range")
        if spec.type == "static" and first not in (spec.values or []):
            known = ", ".join(spec.values or [])
            raise PartitionError(f"{owner}: '{first}' is not one of the partitions: {known}")
        return PartitionWindow(first, last)  # dynamic keys live in the Dagster instance
    start, _ = _time_window(spec, first, owner)
    _, end = _time_window(spec, last, owner)
    if end <= start:
        raise PartitionError(f"{owner}: range {first}...{last} ends before it starts")
    return PartitionWindow(first, last, start, end)


def first_window(spec: PartitionsSpec) -> PartitionWindow:
    """The first partition (a dynamic one has no keys yet: an empty key), to list the tables
    of a partitioned source without running it."""
    if spec.type == "static":
        return window_for(spec, (spec.values or [""])[0])
    if not is_time_window(spec):
        return PartitionWindow("", "")
    first = _boundary_at_or_after(parse_point(spec.start, spec), spec.type or "")
    key = first.strftime(fmt_of(spec))
    return PartitionWindow(key, key, first, _next_boundary(first, spec.type or ""))


def _time_window(spec: PartitionsSpec, key: str, owner: str) -> tuple[dt.datetime, dt.datetime]:
    kind, fmt = spec.type or "", fmt_of(spec)
    try:
        naive = dt.datetime.strptime(key, fmt)
    except ValueError:
        raise PartitionError(
            f"{owner}: '{key}' is not a {kind} partition key (format '{fmt}')"
        ) from None
    start = parse_point(naive, spec)
    aligned = _boundary_at_or_after(start, kind)
    if aligned != start or aligned.strftime(fmt) != key:
        raise PartitionError(
            f"{owner}: '{key}' is not the start of a {kind} partition (next one: "
            f"{aligned.strftime(fmt)})"
        )
    end = _next_boundary(start, kind)
    if start < _boundary_at_or_after(parse_point(spec.start, spec), kind):
        raise PartitionError(f"{owner}: partition '{key}' is before the first one ({spec.start})")
    if spec.end is not None and end > parse_point(spec.end, spec):
        raise PartitionError(f"{owner}: partition '{key}' is past the end ({spec.end})")
    return start, end


# Window boundaries are wall-clock times in the partitions' timezone (Dagster's cron ticks:
# hourly on the hour, daily at midnight, weekly on Sunday, monthly on the 1st); a wall-clock
# time a DST switch skips is no boundary.


def _local(naive: dt.datetime, tz: dt.tzinfo) -> dt.datetime | None:
    """`naive` in `tz`, or None when that wall-clock time does not exist there (DST gap)."""
    aware = naive.replace(tzinfo=tz)
    if aware.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) != naive:
        return None
    return aware


def _step(naive: dt.datetime, kind: str) -> dt.datetime:
    """The next wall-clock boundary after the boundary `naive`."""
    if kind == "hourly":
        return naive + dt.timedelta(hours=1)
    if kind == "daily":
        return naive + dt.timedelta(days=1)
    if kind == "weekly":
        return naive + dt.timedelta(days=7)
    return (naive.replace(day=28) + dt.timedelta(days=4)).replace(day=1)  # monthly


def _boundary_at_or_after(point: dt.datetime, kind: str) -> dt.datetime:
    tz = point.tzinfo or dt.UTC
    naive = point.replace(tzinfo=None)
    floor = naive.replace(minute=0, second=0, microsecond=0)
    if kind != "hourly":
        floor = floor.replace(hour=0)
    if kind == "weekly":
        floor -= dt.timedelta(days=floor.isoweekday() % 7)  # back to Sunday
    elif kind == "monthly":
        floor = floor.replace(day=1)
    candidate = floor
    while True:
        local = _local(candidate, tz)
        if local is not None and local >= point:
            return local
        candidate = _step(candidate, kind)


def _next_boundary(start: dt.datetime, kind: str) -> dt.datetime:
    tz = start.tzinfo or dt.UTC
    candidate = _step(start.replace(tzinfo=None), kind)
    while (local := _local(candidate, tz)) is None:
        candidate = _step(candidate, kind)
    return local


def parse_range(text: str) -> tuple[str, str]:
    """`a...b` (the CLI's `--partition-range`) as (a, b)."""
    first, sep, last = text.partition(RANGE_SEPARATOR)
    if not sep or not first.strip() or not last.strip():
        raise PartitionError(f"'{text}' is not a partition range: write FIRST...LAST")
    return first.strip(), last.strip()
