"""Cron strings and timezones of manifest schedules, checked the way Dagster checks them.

Dagster's `is_valid_cron_string` (dagster/_utils/schedules.py) accepts what croniter's
`is_valid` accepts, if it expands to 5 fields and is not the 30th/31st of February; a
`ScheduleDefinition` also needs a timezone that `zoneinfo` loads. This module applies the same
rules with croniter and zoneinfo (the project layer does not import Dagster), so a manifest that
loads never fails later at definitions load. It is also stricter in two places: a day-of-month
that no listed month has (`0 0 31 4 *`: it never fires), and `W` (nearest weekday), which
croniter accepts but Dagster's vendored croniter refuses. `tests/test_hostile_loader.py`
compares it with Dagster's own checks so the two cannot drift apart.
"""

from __future__ import annotations

from functools import lru_cache

_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February: leap years
_FIELDS = (("minute", "0-59"), ("hour", "0-23"), ("day of month", "1-31"), ("month", "1-12"),
           ("day of week", "0-7"))
_HELP = "expected 5 fields (minute hour day-of-month month day-of-week) or @hourly, @daily, ..."


@lru_cache(maxsize=256)
def cron_problem(expr: str) -> str | None:
    """None when Dagster accepts `expr` as a schedule's cron string and it fires at some
    point; else what is wrong."""
    if not isinstance(expr, str) or not expr.strip():
        return "a cron string is required, e.g. '0 6 * * *'"
    from croniter import CroniterError, croniter  # not at import: keep the package light

    try:
        expanded, *_ = croniter.expand(expr)
    except (CroniterError, ValueError, TypeError, OverflowError) as e:
        return f"'{expr}' is not a valid cron string: {_which_field(expr) or _HELP} ({e})"
    if len(expanded) != 5:
        return f"'{expr}' has {len(expanded)} fields; {_HELP}"
    fields = expr.split()
    if len(fields) == 5 and "w" in fields[2].lower():
        return f"'{expr}': 'W' (nearest weekday) in the day of month is not supported by Dagster"
    days, months, weekdays = expanded[2], expanded[3], expanded[4]
    if months == [2] and days in ([30], [31]):  # Dagster's own never-fires check
        return f"'{expr}': February has no day {days[0]} (Dagster refuses it: it never fires)"
    day_numbers = [d for d in days if isinstance(d, int)]
    if weekdays == ["*"] and day_numbers and len(day_numbers) == len(days):
        listed = range(1, 13) if months == ["*"] else [m for m in months if isinstance(m, int)]
        if all(min(day_numbers) > _DAYS_IN_MONTH[m - 1] for m in listed):
            return f"'{expr}' never fires: no month it lists has day {min(day_numbers)}"
    return None


def _which_field(expr: str) -> str | None:
    """Which field croniter refuses, to say more than croniter does (it is asked field by
    field, so the verdict stays croniter's)."""
    from croniter import croniter

    fields = expr.split()
    if len(fields) != 5:
        return None
    for i, (name, allowed) in enumerate(_FIELDS):
        alone = " ".join(fields[i] if j == i else "*" for j in range(5))
        if not croniter.is_valid(alone):
            return f"bad {name} field '{fields[i]}' (values {allowed}, steps above 0)"
    return None


@lru_cache(maxsize=256)
def timezone_problem(name: str) -> str | None:
    """None when `name` is a timezone Dagster can load (an IANA name such as
    `Europe/Berlin`, or `UTC`), else what is wrong."""
    if not isinstance(name, str) or not name.strip():
        return "a timezone name is required, e.g. 'Europe/Berlin' or 'UTC'"
    if name in ("UTC", "utc"):
        return None
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(name)
    except Exception:  # noqa: BLE001 - ValueError, ZoneInfoNotFoundError, OSError: all "no"
        return f"unknown timezone {name!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'"
    return None
