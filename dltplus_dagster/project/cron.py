"""Cron string validation for manifest schedules (no Dagster import in the project layer)."""

from __future__ import annotations

import re

_ALIASES = {"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight"}
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES = ("minute", "hour", "day of month", "month", "day of week")
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_ATOM = re.compile(r"^(\*|[0-9a-z]+(-[0-9a-z]+)?)(/[0-9]+)?$")


def cron_problem(expr: str) -> str | None:
    """None when `expr` is a valid 5-field cron string (or alias), else what is wrong."""
    if not isinstance(expr, str) or not expr.strip():
        return "a cron string is required, e.g. '0 6 * * *'"
    expr = expr.strip().lower()
    if expr in _ALIASES:
        return None
    parts = expr.split()
    if len(parts) != 5:
        return f"'{expr}' is not a cron string: expected 5 fields (minute hour day month weekday)"
    for part, (lo, hi), name in zip(parts, _RANGES, _NAMES):
        names = _MONTHS if name == "month" else _DAYS if name == "day of week" else []
        for atom in part.split(","):
            if not _ATOM.match(atom):
                return f"'{expr}': bad {name} field '{part}'"
            base = atom.split("/")[0]
            if base == "*":
                continue
            for v in base.split("-"):
                n = names.index(v) + (1 if name == "month" else 0) if v in names else None
                if n is None:
                    if not v.isdigit():
                        return f"'{expr}': bad {name} value '{v}'"
                    n = int(v)
                if not lo <= n <= hi:
                    return f"'{expr}': {name} value {n} is outside {lo}-{hi}"
    return None
