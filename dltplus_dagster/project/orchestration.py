"""Orchestration settings of pipelines, transformations and dataset tables in `dlt.yml`.

`automation_condition`, `owners`, `tags`, `kinds`, `group`, `description`, `freshness` and
`deps` sit on a pipeline, a transformation or one table (`datasets.<ds>.tables.<t>`); the
table's settings win over its writer's (`merged`). This module is the project layer's half: the
keys (`OrchestrationKeys`, a base of those manifest entries), their checks with Dagster's rules
(`orchestration_problems`, so a manifest that loads never fails at definitions load) and the
duration syntax (`parse_duration`). `dagster/orchestration.py` turns them into Dagster objects.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from dltplus_dagster.project.manifest import KeyPath, Locations
    from dltplus_dagster.project.model import Manifest

AutomationName = Literal["eager", "on_missing"]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Dagster's rules (dagster/_utils/tags.py, dagster/_core/utils.py::is_valid_email); checked
# against Dagster itself in tests/test_orchestration.py so they cannot drift apart
_TAG_KEY = re.compile(r"^([A-Za-z0-9_.-]{1,63}/)?[A-Za-z0-9_.-]{1,63}$")
_TAG_VALUE = re.compile(r"^[A-Za-z0-9_.-]{0,63}$")
_KIND = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Z|a-z]{2,7}\b")
_KEY_PART = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_KINDS = 10
"""Dagster's limit of kinds per asset (the package adds `dlt` and the destination type)."""


@dataclass
class OnCron:
    """`automation_condition: {on_cron: "0 6 * * *", timezone: Europe/Berlin}`."""

    on_cron: str = ""
    timezone: str | None = None


@dataclass
class Freshness:
    """`freshness: {fail_after: 24h, warn_after: 12h}`: Dagster's time-window freshness."""

    fail_after: str = ""
    warn_after: str | None = None


@dataclass
class OrchestrationKeys:
    """The orchestration keys an entry of `pipelines`, `transformations` or
    `datasets.<ds>.tables` takes (a base class of those entries). Unset is None (tags: empty),
    so a table's settings can override its writer's key by key."""

    automation_condition: AutomationName | OnCron | None = None
    """`eager`, `on_missing` or `{on_cron: "<cron>"}`: Dagster's `AutomationCondition`s."""
    owners: list[str] | None = None
    """Emails or `team:<name>`."""
    tags: dict[str, str] = field(default_factory=dict)
    kinds: list[str] | None = None
    """Kinds shown in the UI, next to `dlt` and the destination type."""
    group: str | None = None
    description: str | None = None
    freshness: Freshness | None = None
    deps: list[str] | None = None
    """Upstream asset keys outside the project, as `a/b` (key parts joined by `/`)."""


ORCHESTRATION_KEYS = tuple(f.name for f in fields(OrchestrationKeys))


def merged(entity: OrchestrationKeys, table: OrchestrationKeys | None) -> OrchestrationKeys:
    """The writer's settings with the table's on top: a key the table sets wins; tags merge
    (the table's value wins per tag)."""
    if table is None:
        return entity
    chosen = {k: v for k in ORCHESTRATION_KEYS if (v := getattr(table, k)) is not None}
    chosen["tags"] = {**entity.tags, **table.tags}
    return replace(
        OrchestrationKeys(**{k: getattr(entity, k) for k in ORCHESTRATION_KEYS}), **chosen
    )


def parse_duration(text: str) -> timedelta:
    """`30m`, `12h`, `2d` (also `s` and `w`) as a timedelta; ValueError when malformed."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration: a number and a unit, e.g. 30m, 12h, 2d (s, m, h, d, w)"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def asset_key_parts(text: str) -> list[str]:
    """`crm/accounts` -> `["crm", "accounts"]`."""
    return text.split("/")


def orchestration_problems(keys: OrchestrationKeys) -> Iterator[tuple[KeyPath, str]]:
    """(sub-path, problem) for each setting Dagster would refuse or that cannot work."""
    from dltplus_dagster.project.cron import cron_problem, timezone_problem

    auto = keys.automation_condition
    if isinstance(auto, OnCron):
        if problem := cron_problem(auto.on_cron):
            yield ("automation_condition", "on_cron"), problem
        if auto.timezone is not None and (problem := timezone_problem(auto.timezone)):
            yield ("automation_condition", "timezone"), problem
    for i, owner in enumerate(keys.owners or ()):
        if not (_EMAIL.fullmatch(owner) or (owner.startswith("team:") and len(owner) > 5)):
            yield ("owners", str(i)), (
                f"owner {owner!r} must be an email address or a team name as 'team:<name>'"
            )
    for tag, value in keys.tags.items():
        if not _TAG_KEY.match(tag):
            yield ("tags", tag), (
                f"tag key {tag!r}: Dagster allows letters, digits, '_', '-', '.' (at most 63), "
                "with an optional 'namespace/' prefix"
            )
        elif not _TAG_VALUE.match(value):
            yield ("tags", tag), (
                f"tag value {value!r}: Dagster allows letters, digits, '_', '-', '.' (at most 63)"
            )
    for i, kind in enumerate(keys.kinds or ()):
        if not _KIND.match(kind):
            yield ("kinds", str(i)), (
                f"kind {kind!r}: Dagster allows letters, digits, '_', '-', '.' (at most 63)"
            )
    if len(set(keys.kinds or ())) + 2 > MAX_KINDS:
        yield ("kinds",), (
            f"at most {MAX_KINDS - 2} kinds (Dagster allows {MAX_KINDS} per asset, and every "
            "asset has `dlt` and its destination type)"
        )
    yield from _freshness_problems(keys.freshness)
    for i, dep in enumerate(keys.deps or ()):
        if not all(_KEY_PART.match(p) for p in asset_key_parts(dep)):
            yield ("deps", str(i)), (
                f"{dep!r} is not an asset key: parts of letters, digits, '_', '-', '.' joined "
                "by '/', e.g. crm/accounts"
            )


def _freshness_problems(freshness: Freshness | None) -> Iterator[tuple[KeyPath, str]]:
    if freshness is None:
        return
    if not freshness.fail_after:
        yield ("freshness", "fail_after"), "is required, e.g. fail_after: 24h"
        return
    windows: dict[str, timedelta] = {}
    for key in ("fail_after", "warn_after"):
        text = getattr(freshness, key)
        if text is None:
            continue
        try:
            windows[key] = parse_duration(text)
        except ValueError as e:
            yield ("freshness", key), str(e)
    fail, warn = windows.get("fail_after"), windows.get("warn_after")
    for key, window in windows.items():
        if window < timedelta(minutes=1):
            yield ("freshness", key), "must be at least 1m (Dagster's minimum)"
    if fail is not None and warn is not None and warn >= fail:
        yield ("freshness", "warn_after"), (
            f"must be shorter than fail_after ({freshness.fail_after}): the asset warns first"
        )


def check_orchestration(manifest: Manifest, locations: Locations) -> None:
    """Raise the first problem of any entry's orchestration settings, with file and line."""
    from dltplus_dagster.project.manifest import error_at

    entries: list[tuple[KeyPath, OrchestrationKeys]] = []
    for section in ("pipelines", "transformations"):
        for name, entity in getattr(manifest, section).items():
            entries.append(((section, name), entity))
    for ds_name, ds in manifest.datasets.items():
        assert ds is not None  # build_manifest made empty entities defaults
        entries.extend((("datasets", ds_name, "tables", t), spec) for t, spec in ds.tables.items())
    for path, keys in entries:
        for subpath, problem in orchestration_problems(keys):
            raise error_at(locations, (*path, *subpath), problem)
