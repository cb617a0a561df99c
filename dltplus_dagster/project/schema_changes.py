"""What a pipeline run changed in its tables' schemas, and which contract stopped it.

dlt records in each load package the tables and columns the package added to the schema
(`schema_update`). `run_schema_changes` sorts those columns, per table, into added ones and
changed ones (hints that differ from the schema version stored before the run, read from the
destination's `_dlt_version` by hash). A table the previous version did not have is new: it is
not a change (a first run creates every table). `contract_violation` finds the dlt
`DataValidationError` behind a failed run, when a schema contract refused the data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlt.common.pipeline import LoadInfo
    from dlt.common.schema import Schema

logger = logging.getLogger(__name__)

COMPARED_HINTS = ("data_type", "nullable", "precision", "scale", "timezone", "primary_key",
                  "unique", "merge_key")
"""Column hints whose change counts as a changed column."""


@dataclass(frozen=True)
class TableChange:
    """The columns one run added to a table, or whose hints it changed."""

    table: str
    new_table: bool = False
    added: dict[str, str | None] = field(default_factory=dict)
    """Column -> its data type."""
    changed: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Column -> {hint: [before, after]} for each hint that differs."""

    @property
    def is_change(self) -> bool:
        """True when an existing table got new or changed columns."""
        return not self.new_table and bool(self.added or self.changed)

    def describe(self) -> str:
        if self.new_table:
            return f"table {self.table} is new in this run (not a change)"
        if not self.is_change:
            return f"no column of {self.table} was added or changed"
        parts = []
        if self.added:
            parts.append("added " + ", ".join(f"{c} ({t})" for c, t in self.added.items()))
        if self.changed:
            parts.append("changed " + ", ".join(
                f"{c} ({', '.join(f'{h}: {v[0]} -> {v[1]}' for h, v in hints.items())})"
                for c, hints in self.changed.items()
            ))
        return f"the run {' and '.join(parts)} in {self.table}"


@dataclass(frozen=True)
class ContractViolation:
    """A schema contract that refused a run's data (from dlt's `DataValidationError`)."""

    table: str
    column: str | None
    entity: str
    """`tables`, `columns` or `data_type`."""
    mode: str

    def describe(self) -> str:
        column = f" column {self.column}" if self.column else ""
        return (f"schema contract `{self.entity}: {self.mode}` refused the run's change to "
                f"table {self.table}{column}")


def run_schema_changes(load_info: LoadInfo) -> dict[str, TableChange]:
    """Table -> what the run changed in it, for the tables the run's packages updated."""
    updates: dict[str, dict[str, Any]] = {}
    schema_names: dict[str, str] = {}
    for package in load_info.load_packages:
        for table, partial in (package.schema_update or {}).items():
            updates.setdefault(table, {}).update(partial.get("columns") or {})
            schema_names[table] = package.schema_name
    if not updates:
        return {}
    previous = {name: _previous_schema(load_info, name) for name in set(schema_names.values())}
    changes = {}
    for table, columns in updates.items():
        before = previous.get(schema_names[table])
        old = (before.tables.get(table) or {}).get("columns") if before else None
        changes[table] = _table_change(table, columns, old)
    return changes


def _table_change(
    table: str, columns: dict[str, Any], old: dict[str, Any] | None
) -> TableChange:
    if old is None:
        return TableChange(table, new_table=True)
    added: dict[str, str | None] = {}
    changed: dict[str, dict[str, Any]] = {}
    for name, column in columns.items():
        if name not in old:
            added[name] = column.get("data_type")
            continue
        diff = {
            hint: [old[name].get(hint), column.get(hint)]
            for hint in COMPARED_HINTS
            if hint in column and column.get(hint) != old[name].get(hint)
        }
        if diff:
            changed[name] = diff
    return TableChange(table, added=added, changed=changed)


def _previous_schema(load_info: LoadInfo, schema_name: str) -> Schema | None:
    """The newest version of the schema stored before the run (dlt keeps the hashes of a
    schema's ancestors, newest first); None when there is none (a first run)."""
    import json

    import dlt

    pipeline: Any = load_info.pipeline
    schema = pipeline.schemas.get(schema_name) if pipeline else None
    if schema is None:
        return None
    try:
        with pipeline.destination_client(schema_name) as client:
            if not hasattr(client, "get_stored_schema_by_hash"):
                return None
            for version_hash in schema.previous_hashes:
                stored = client.get_stored_schema_by_hash(version_hash)
                if stored is not None:
                    loaded: Schema = dlt.Schema.from_dict(
                        json.loads(stored.schema), validate_schema=False
                    )
                    return loaded
    except Exception as e:  # noqa: BLE001 - no history (e.g. a file destination): changes unknown
        logger.debug("no stored schema history for %s: %s", schema_name, e)
    return None


def contract_violation(error: BaseException) -> ContractViolation | None:
    """The contract violation in `error`'s chain, if a schema contract failed the run."""
    from dlt.common.schema.exceptions import DataValidationError

    for e in _chain(error):
        if isinstance(e, DataValidationError):
            return ContractViolation(
                table=e.table_name, column=e.column_name or None,
                entity=str(e.schema_entity), mode=str(e.contract_mode),
            )
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
