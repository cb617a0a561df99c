"""Table and column names a write may use: never dlt's own, never two names for one identifier.

A destination only knows normalized identifiers, so two different names that a naming
convention maps to one identifier (`Orders` and `orders`, `a-b` and `a_b`, every non-ASCII
name that becomes `x`) would silently write into the same table. `check_table_name` and
`check_column_names` are the gates `Dataset.save()` passes every name through; both find such
names with `names.collisions`.

The originals of a dataset's tables are remembered in the dlt schema itself, as the table hint
`x-original-name` (`ORIGINAL_NAME_HINT`): it is stored with every schema version in
`_dlt_version`, travels with the schema wherever dlt copies it, and needs no table of our own.
A table without the hint (loaded by a pipeline, or before the hint existed) counts as named by
its normalized name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dltplus_dagster.project.errors import ProjectError
from dltplus_dagster.project.names import find_collisions

ORIGINAL_NAME_HINT = "x-original-name"
DLT_PREFIX = "_dlt"


class ReservedTableName(ProjectError):
    """A table or column name that normalizes into dlt's own `_dlt*` namespace."""


class TableNameCollision(ProjectError):
    """Two different names that normalize to one identifier."""

    def __init__(self, message: str, normalized: str, originals: Iterable[str]) -> None:
        self.normalized = normalized
        self.originals = sorted(set(originals))
        super().__init__(message)


def is_dlt_name(normalized: str, naming: Any = None) -> bool:
    """True for an identifier in dlt's namespace (`_dlt_loads`, `_DLT_x`, `__dlt_x`...)."""
    prefix = naming.normalize_tables_path(DLT_PREFIX) if naming is not None else DLT_PREFIX
    folded = normalized.casefold()
    if folded.startswith(prefix.casefold()):
        return True
    # any run of leading underscores: another naming convention may keep `__dlt_x` as it is
    return folded.startswith("_") and folded.lstrip("_").startswith("dlt")


def originals_of(schemas: Iterable[Any]) -> dict[str, str]:
    """Normalized table name -> the name it was first written under, over `schemas`."""
    originals: dict[str, str] = {}
    for schema in schemas:
        for name in schema.data_table_names(include_incomplete=True):
            table = schema.tables[name]
            originals.setdefault(name, str(table.get(ORIGINAL_NAME_HINT) or name))
    return originals


def check_table_name(
    original: str,
    naming: Any,
    existing: Mapping[str, str],
    *,
    where: str = "save()",
    argument: str = "table_name",
    dataset: str = "",
) -> str:
    """The identifier `original` is written under; raises before anything is written when
    it is dlt's or when another name already holds that identifier."""
    normalized: str = naming.normalize_tables_path(original)
    if not normalized.strip("_"):
        raise ProjectError(f"{where}: {argument} {original!r} has no usable characters")
    if is_dlt_name(normalized, naming):
        raise ReservedTableName(
            f"{where}: {argument} {original!r} normalizes to {normalized!r}, a name of dlt's own "
            "tables (`_dlt*`); user data never goes there. Choose another table name."
        )
    clash = find_collisions([original], naming.normalize_tables_path, existing)
    if clash:
        others = [o for o in clash[normalized] if o != original]
        in_dataset = f" of dataset '{dataset}'" if dataset else ""
        raise TableNameCollision(
            f"{where}: {argument} {original!r} and the existing table {others[0]!r}{in_dataset} "
            f"both normalize to {normalized!r}; one would overwrite the other. Use "
            f"{others[0]!r} to write that table, or a name that normalizes differently.",
            normalized,
            [original, *others],
        )
    return normalized


def dlt_columns(columns: list[Any], naming: Any) -> list[Any]:
    """The columns in dlt's namespace (`_dlt_id`, `_dlt_load_id`...): dlt sets those itself."""
    return [c for c in columns if isinstance(c, str) and is_dlt_name(
        naming.normalize_identifier(c), naming)]


def check_column_names(columns: list[Any], naming: Any, *, where: str = "save()",
                       table: str = "") -> None:
    """Refuse columns that are empty, repeated or that normalize to one identifier: dlt would
    drop or merge them silently."""
    of = f" of table {table!r}" if table else ""
    bad = [repr(c) for c in columns if c is None or not str(c).strip()]
    if bad:
        raise ProjectError(f"{where}: the data{of} has empty column names: {', '.join(bad)}; "
                           "name every column")
    names = [str(c) for c in columns]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise ProjectError(f"{where}: the data{of} has repeated column names: "
                           f"{', '.join(map(repr, repeated))}; each column needs its own name")
    clashes = find_collisions(names, naming.normalize_identifier)
    if clashes:
        normalized, originals = next(iter(clashes.items()))
        raise TableNameCollision(
            f"{where}: the data{of} has columns {', '.join(map(repr, originals))} that all "
            f"normalize to {normalized!r}; rename all but one",
            normalized,
            originals,
        )
