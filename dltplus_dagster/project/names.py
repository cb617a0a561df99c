"""Names: dlt's naming convention for datasets and tables, and the one Dagster-safe mapping.

Every dataset and table name of a project passes the naming convention of its destination
(dlt's `NamingConvention`, snake_case unless the destination or `schema.naming` config says
otherwise), so two names that land in the same identifier (`Orders` and `orders`, `a-b` and
`a_b`, non-ASCII names that all become `x`) are found before anything is written:
`collisions` is the one check, for manifest entities, asset keys, a dataset's tables and a
frame's columns alike.

Dagster accepts op and group names matching `^[A-Za-z0-9_]+$` only, and derives multi-asset
output names from asset keys. `dagster_name` maps any name to that alphabet in one documented
way (every other character becomes `_`); the translator applies it to key parts, op names and
groups, and `validate` refuses two entities whose mapped names coincide. This module imports
no Dagster.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from dltplus_dagster.project.errors import ProjectError

if TYPE_CHECKING:
    from dlt.common.normalizers.naming import NamingConvention

_NOT_DAGSTER = re.compile(r"[^A-Za-z0-9_]")


def dagster_name(name: str) -> str:
    """`name` in Dagster's name alphabet: each character outside `[A-Za-z0-9_]` becomes `_`."""
    return _NOT_DAGSTER.sub("_", name) or "_"


def naming_for(destination: Any) -> NamingConvention:
    """The naming convention dlt uses for datasets and tables on `destination` (a dlt
    `Destination`, or None for dlt's default): explicit `schema.naming` config first, then
    the destination's capabilities, then snake_case: dlt's own `import_normalizers`."""
    import contextlib

    from dlt.common.configuration.container import Container
    from dlt.common.schema.normalizers import configured_normalizers, import_normalizers

    caps = destination.capabilities() if destination is not None else None
    scope = Container().injectable_context(caps) if caps else contextlib.nullcontext()
    with scope:
        _, naming, _ = import_normalizers(configured_normalizers())
    return naming


@functools.lru_cache(maxsize=8192)
def stored_table_name(naming: NamingConvention, table: str) -> str:
    """`table` as `naming` stores it (`normalize_tables_path`), remembered: definitions ask
    for each table's stored name several times (key, spec, checks)."""
    return naming.normalize_tables_path(table)


def normalize_table_name(name: str) -> str:
    """The table name dlt's default naming (snake_case) gives `name`; quotes and SQL are never
    passed through. Raises `ProjectError` for a name with no usable characters."""
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    normalized = NamingConvention().normalize_tables_path(name)
    if not normalized.strip("_"):
        raise ProjectError(f"table name {name!r} has no usable characters")
    return normalized


def collisions(
    names: Iterable[tuple[str, str]],
    normalize: Callable[[str], str],
    taken: Mapping[str, str] | None = None,
) -> list[tuple[str, list[tuple[str, str]]]]:
    """Groups of `(name, who)` whose different `name`s normalize to one identifier.

    `taken` maps identifiers already in use to the name that holds them (e.g. a dataset's
    tables, `table_names.originals_of`); each joins its group first, as `(name, "existing")`.
    Returns `(identifier, [(name, who), ...])` for each identifier reached by two or more
    distinct names (the same name twice is no collision), in first-seen order.
    """
    by_ident: dict[str, list[tuple[str, str]]] = {}
    for ident, name in (taken or {}).items():
        by_ident.setdefault(ident, []).append((name, "existing"))
    for name, who in names:
        by_ident.setdefault(normalize(name), []).append((name, who))
    return [
        (ident, entries)
        for ident, entries in by_ident.items()
        if len({n for n, _ in entries}) > 1
    ]


def find_collisions(
    names: Iterable[str],
    normalize: Callable[[str], str],
    existing: Mapping[str, str] | None = None,
) -> dict[str, list[str]]:
    """`collisions` for plain names: identifier -> its distinct names (existing one first)."""
    groups = collisions(((n, n) for n in names), normalize, taken=existing)
    return {ident: list(dict.fromkeys(n for n, _ in group)) for ident, group in groups}
