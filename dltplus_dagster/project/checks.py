"""Data-quality checks of dataset tables: declaration rules, evaluation in SQL, a result table.

A table's `checks` (see `model.TableCheck`) name the reference's checks: `not_empty`,
`unique`/`is_unique`, `not_null`/`is_not_null`, `is_in`, `is_primary_key`, `row_count` and
`case`, each with a severity (`warn` or `error`, default `error`). `declaration_problems` is the
load-time rule set; `run_table_checks` evaluates the checks of one table on its destination
through dlt's SQL client, so they work wherever dlt can query (DuckDB, PostgreSQL, ...).

Identifiers are quoted with the destination's own escaping and `is_in` values become literals
through the destination's own literal escaping: they are data, never SQL. A `case` expression
is the user's own SQL by design: it runs as-is inside `WHERE (<case>) IS NOT TRUE` (a row fails
when the expression is false or null); only a second statement after a `;` is refused. A check
that cannot run (a bad `case`, a missing column) is a failing result with the database's
message, never a crash. The same results feed Dagster asset checks and `dltplus dataset NAME
check`. No dagster import here.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from dltplus_dagster.project.model import TableCheck
from dltplus_dagster.project.redact import scrub

if TYPE_CHECKING:
    from dltplus_dagster.project.dataset import Dataset

Severity = Literal["warn", "error"]

CHECK_NAMES = (
    "not_empty", "unique", "not_null", "is_in", "is_primary_key", "row_count", "case",
)
"""Check names of the manifest, in evaluation order."""

ALIASES = {"is_unique": "unique", "is_not_null": "not_null"}
"""The reference's names for checks that the manifest had before under another name."""

SAMPLE_ROWS = 5
"""Failing rows shown per check (a handful: metadata and terminals stay small)."""

_MAX_VALUE_CHARS = 80


@dataclass(frozen=True)
class PlannedCheck:
    """One check of a table, as declared: what it tests and how bad a failure is."""

    name: str
    """Unique per table: the check name, `case_<n>` for the n-th of a list of `case`s."""
    kind: str
    severity: Severity
    description: str
    columns: tuple[str, ...] = ()
    accepted: dict[str, list[Any]] = field(default_factory=dict)
    bounds: tuple[int | None, int | None] = (None, None)
    expression: str = ""


@dataclass
class CheckResult:
    """The outcome of one check on one table."""

    table: str
    check: str
    severity: Severity
    passed: bool
    failing_rows: int | None = None
    """Rows that fail the check (None for table-level checks: `not_empty`, `row_count`)."""
    sample: list[dict[str, Any]] = field(default_factory=list)
    """A few failing rows, only the columns the check reads."""
    error: str | None = None
    """Why the check could not run (the database's message), secrets masked."""
    details: dict[str, Any] = field(default_factory=dict)
    """Check-specific numbers (`row_count`, `duplicate_keys`, failing rows per column, ...)."""


# --- declarations ---------------------------------------------------------------------------


def _columns(checks: TableCheck, name: str) -> list[str]:
    """The columns of a column-list check, its alias merged in (order kept, no repeats)."""
    names = list(getattr(checks, name) or [])
    for alias, canonical in ALIASES.items():
        if canonical == name:
            names.extend(getattr(checks, alias) or [])
    return list(dict.fromkeys(names))


def _cases(checks: TableCheck) -> list[str]:
    if checks.case is None:
        return []
    return [checks.case] if isinstance(checks.case, str) else list(checks.case)


def declared_names(checks: TableCheck) -> list[str]:
    """Check names (before `case` lists are numbered) that `checks` declares."""
    aliased = {name: getattr(checks, alias) for alias, name in ALIASES.items()}
    declared = {
        "not_empty": checks.not_empty,
        "unique": checks.unique is not None or aliased["unique"] is not None,
        "not_null": checks.not_null is not None or aliased["not_null"] is not None,
        "is_in": checks.is_in is not None,
        "is_primary_key": checks.is_primary_key is not None,
        "row_count": checks.row_count is not None,
        "case": checks.case is not None,
    }
    return [n for n in CHECK_NAMES if declared[n]]


def declaration_problems(checks: TableCheck) -> Iterator[tuple[tuple[str, ...], str]]:
    """Problems of one table's `checks`: (key path below `checks`, message). Types were
    already checked by the typed model; this checks what types cannot say."""
    for name in ("unique", "not_null", "is_primary_key", *ALIASES):
        cols = getattr(checks, name)
        if cols is None:
            continue
        if not cols:
            yield (name,), "empty column list: name at least one column"
        for i, col in enumerate(cols):
            if not col.strip():
                yield (name, str(i)), "empty column name"
    if checks.is_in is not None:
        yield from _is_in_problems(checks.is_in)
    if checks.row_count is not None:
        yield from _row_count_problems(checks.row_count)
    if checks.case is not None:
        yield from _case_problems(checks.case)
    declared = declared_names(checks)
    for key, severity in checks.severity.items():
        name = ALIASES.get(key, key)
        if name not in CHECK_NAMES:
            yield ("severity", key), (
                f"unknown check '{key}'; checks: {', '.join(CHECK_NAMES + tuple(ALIASES))}"
            )
        elif name not in declared:
            yield ("severity", key), (
                f"severity for check '{key}', which this table does not declare "
                f"(declared: {', '.join(declared) or 'none'})"
            )
        elif severity not in ("warn", "error"):  # the typed model already refuses these
            yield ("severity", key), f"severity '{severity}' is not warn or error"


def _is_in_problems(is_in: dict[str, list[Any]]) -> Iterator[tuple[tuple[str, ...], str]]:
    if not is_in:
        yield ("is_in",), "no columns: map each column to its list of accepted values"
    for col, values in is_in.items():
        if not str(col).strip():
            yield ("is_in", col), "empty column name"
        if not values:
            yield ("is_in", col), "empty list of accepted values"
        for i, v in enumerate(values):
            if not _is_literal(v):
                what = repr(v) if isinstance(v, float) else f"a {type(v).__name__}"
                yield ("is_in", col, str(i)), (
                    f"accepted values are strings, finite numbers, true/false, dates or null, "
                    f"not {what}"
                )


def _is_literal(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, int, bool, datetime.date, datetime.time))


def _row_count_problems(bounds: Any) -> Iterator[tuple[tuple[str, ...], str]]:
    if bounds.min is None and bounds.max is None:
        yield ("row_count",), "set `min`, `max` or both"
    for key in ("min", "max"):
        value = getattr(bounds, key)
        if value is not None and value < 0:
            yield ("row_count", key), f"must not be negative, got {value}"
    if bounds.min is not None and bounds.max is not None and bounds.min > bounds.max:
        yield ("row_count",), f"min ({bounds.min}) is greater than max ({bounds.max})"


def _case_problems(case: str | list[str]) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(case, list) and not case:
        yield ("case",), "empty list: give one SQL boolean expression or several"
    items = [((), case)] if isinstance(case, str) else [((str(i),), c) for i, c in enumerate(case)]
    for sub, expression in items:
        if not expression.strip():
            yield ("case", *sub), "empty SQL expression"
        elif _has_second_statement(expression):
            yield ("case", *sub), (
                "must be one SQL boolean expression; a `;` starts another statement"
            )


def _has_second_statement(expression: str) -> bool:
    """True when `expression` holds a `;` outside string literals, quoted names and comments."""
    from sqlglot import Tokenizer, TokenType  # the names sqlglot exports
    from sqlglot.errors import TokenError

    try:
        tokens = Tokenizer().tokenize(expression)
    except TokenError:  # an unterminated string: the database reports it when the check runs
        return False
    return any(t.token_type == TokenType.SEMICOLON for t in tokens)


def plan_checks(checks: TableCheck, secrets: Sequence[str] = ()) -> list[PlannedCheck]:
    """The checks of one table, each with its unique name, severity and description."""

    def severity(name: str) -> Severity:
        for key, value in checks.severity.items():
            if ALIASES.get(key, key) == name:
                return value
        return "error"

    planned: list[PlannedCheck] = []
    if checks.not_empty:
        planned.append(PlannedCheck("not_empty", "not_empty", severity("not_empty"),
                                    "table has rows"))
    for name, text in (
        ("unique", "no duplicates of ({})"),
        ("not_null", "no nulls in {}"),
    ):
        if cols := _columns(checks, name):
            planned.append(PlannedCheck(name, name, severity(name),
                                        text.format(", ".join(cols)), tuple(cols)))
    if checks.is_in:
        cols = list(checks.is_in)
        planned.append(PlannedCheck(
            "is_in", "is_in", severity("is_in"),
            "only accepted values in " + ", ".join(cols), tuple(cols),
            accepted={c: list(v) for c, v in checks.is_in.items()},
        ))
    if checks.is_primary_key:
        cols = list(dict.fromkeys(checks.is_primary_key))
        planned.append(PlannedCheck(
            "is_primary_key", "is_primary_key", severity("is_primary_key"),
            f"({', '.join(cols)}) unique and not null", tuple(cols),
        ))
    if checks.row_count is not None:
        low, high = checks.row_count.min, checks.row_count.max
        text = " and ".join(
            t for t in (f"at least {low}" if low is not None else "",
                        f"at most {high}" if high is not None else "") if t
        )
        planned.append(PlannedCheck("row_count", "row_count", severity("row_count"),
                                    f"{text} rows", bounds=(low, high)))
    cases = _cases(checks)
    for i, expression in enumerate(cases, start=1):
        name = "case" if isinstance(checks.case, str) else f"case_{i}"
        planned.append(PlannedCheck(
            name, "case", severity("case"), "every row satisfies " + scrub(expression, secrets),
            expression=expression,
        ))
    return planned


# --- evaluation -----------------------------------------------------------------------------


def run_table_checks(
    dataset: Dataset,
    table: str,
    checks: TableCheck,
    row_count: int | None = None,
    secrets: Sequence[str] = (),
) -> list[CheckResult]:
    """Evaluate the checks of `table` in `dataset` (`row_count` when the caller knows it)."""
    planned = plan_checks(checks, secrets)
    if not planned:
        return []
    evaluator = _Evaluator(dataset, table, secrets)
    if table not in dataset.tables and _no_database(dataset):
        # nothing loaded yet, and reading must not create an empty database file
        return [evaluator.table_level(p, 0) for p in planned]
    from dlt.destinations.exceptions import DatabaseUndefinedRelation

    with evaluator.client:
        if row_count is None:
            try:  # a table no dlt schema knows (another tool's) is checked all the same
                row_count = evaluator.count()
            except DatabaseUndefinedRelation:
                return [evaluator.table_level(p, 0) for p in planned]
        return [evaluator.evaluate(p, row_count) for p in planned]


def _no_database(dataset: Dataset) -> bool:
    from dltplus_dagster.project.stored_schemas import missing_local_database

    destination = dataset.entities.get_destination(dataset.destination_name)
    return missing_local_database(destination, dataset.name)


def check_dataset(dataset: Dataset, tables: Sequence[str] | None = None,
                  secrets: Sequence[str] = ()) -> list[CheckResult]:
    """Evaluate the declared checks of every table of `dataset` (or of `tables`)."""
    from dltplus_dagster.project.errors import TableNotFound

    declared = dataset.entity.tables
    if tables and (unknown := [t for t in tables if t not in declared]):
        raise TableNotFound(dataset.name, unknown[0], declared)
    names = list(tables) if tables else list(declared)
    results: list[CheckResult] = []
    for table in names:
        stored = _stored_name(dataset, table)
        for result in run_table_checks(dataset, stored, declared[table].checks, secrets=secrets):
            result.table = table
            results.append(result)
    return results


def _stored_name(dataset: Dataset, table: str) -> str:
    """The loaded table a declared name means: as written, else in dlt's naming (`Orders`)."""
    from dltplus_dagster.project.errors import ProjectError
    from dltplus_dagster.project.names import normalize_table_name

    if table in dataset.tables:
        return table
    try:
        normalized = normalize_table_name(table)
    except ProjectError:
        return table
    return normalized if normalized in dataset.tables else table


def failed_errors(results: Sequence[CheckResult]) -> list[CheckResult]:
    """Failed checks of error severity (these make `dltplus dataset NAME check` exit 1)."""
    return [r for r in results if not r.passed and r.severity == "error"]


def format_results(results: Sequence[CheckResult]) -> str:
    """A plain-text table: table, check, severity, passed, failing rows (and why it failed)."""
    header = ("table", "check", "severity", "passed", "failing rows", "details")
    rows = [
        (
            r.table,
            r.check,
            r.severity,
            "yes" if r.passed else "NO",
            "-" if r.failing_rows is None else str(r.failing_rows),
            _one_line(r.error) if r.error else ("" if r.passed else _detail(r)),
        )
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
             for line in (header, *rows)]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def dataset_check_report(dataset: Dataset, tables: Sequence[str] | None = None,
                         secrets: Sequence[str] = ()) -> tuple[str, int]:
    """What `dltplus dataset NAME check` prints and its exit code: 1 when a check of
    severity `error` fails, 0 when all pass or only `warn` checks fail."""
    results = check_dataset(dataset, tables, secrets)
    if not results:
        return f"Dataset {dataset.name} declares no checks.", 0
    errors = failed_errors(results)
    warned = [r for r in results if not r.passed and r.severity == "warn"]
    summary = (
        f"{len(results)} check(s) on dataset {dataset.name} "
        f"(destination {dataset.destination_name}): {len(results) - len(errors) - len(warned)} "
        f"passed, {len(errors)} failed, {len(warned)} warning(s)"
    )
    return f"{format_results(results)}\n{summary}", 1 if errors else 0


def _detail(result: CheckResult) -> str:
    if result.sample:
        return "e.g. " + _one_line(", ".join(
            "(" + ", ".join(f"{k}={v!r}" for k, v in row.items()) + ")" for row in result.sample[:2]
        ))
    if "row_count" in result.details:
        return f"row_count={result.details['row_count']}"
    return ""


def _one_line(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Evaluator:
    """SQL for the checks of one table, through dlt's SQL client of the dataset's destination."""

    def __init__(self, dataset: Dataset, table: str, secrets: Sequence[str]) -> None:
        self.dataset = dataset
        self.table = table
        self.secrets = list(secrets)
        self._client: Any = None
        self._columns: list[str] | None = None
        self._columns_read = False

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.dataset.dlt_dataset.sql_client
        return self._client

    @property
    def columns(self) -> list[str] | None:
        """Columns of the table in its stored dlt schema (None when no schema knows it)."""
        if not self._columns_read:
            self._columns_read = True
            for schema in self.dataset.dlt_dataset.schemas:
                if self.table in schema.tables:
                    cols = schema.get_table_columns(self.table, include_incomplete=False)
                    self._columns = list(cols)
                    self._naming = schema.naming
                    break
        return self._columns

    def column(self, declared: str) -> str:
        """The stored column for a declared name, quoted; a clear error when there is none."""
        cols = self.columns
        name = declared
        if cols is not None and declared not in cols:
            normalized = self._naming.normalize_identifier(declared)
            if normalized not in cols:
                raise _CheckCannotRun(
                    f"column '{declared}' is not in table '{self.table}'; its columns: "
                    + ", ".join(c for c in cols if not c.startswith("_dlt_"))
                )
            name = normalized
        return str(self.client.escape_column_name(name))

    def literal(self, value: Any) -> str:
        escape = self.client.capabilities.escape_literal
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if escape is not None:
            return str(escape(value))
        if isinstance(value, str):  # standard SQL: quotes doubled
            return "'" + value.replace("'", "''") + "'"
        return "NULL" if value is None else str(value)

    @property
    def qualified(self) -> str:
        return str(self.client.make_qualified_table_name(self.table))

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.client.execute_sql(sql) or []]

    def count(self) -> int:
        return int(self.rows(f"SELECT COUNT(*) FROM {self.qualified}")[0][0])

    def sample(self, cols: Sequence[str], quoted: Sequence[str], where: str) -> list[dict[str, Any]]:
        select = ", ".join(quoted)
        rows = self.rows(f"SELECT {select} FROM {self.qualified} WHERE {where} LIMIT {SAMPLE_ROWS}")
        return [{c: self._shown(v) for c, v in zip(cols, row)} for row in rows]

    def _shown(self, value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float)):
            return value
        text = scrub(str(value), self.secrets)
        return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."

    # --- one check ---
    def table_level(self, check: PlannedCheck, row_count: int) -> CheckResult:
        result = CheckResult(self.table, check.name, check.severity, True,
                             details={"row_count": row_count})
        if check.kind == "not_empty":
            result.passed = row_count > 0
        elif check.kind == "row_count":
            low, high = check.bounds
            result.passed = (low is None or row_count >= low) and (high is None or row_count <= high)
            result.details.update({k: v for k, v in (("min", low), ("max", high)) if v is not None})
        else:
            result.failing_rows = 0
            result.details = _zero_details(check)
        return result

    def evaluate(self, check: PlannedCheck, row_count: int) -> CheckResult:
        from dlt.destinations.exceptions import DatabaseException

        if check.kind in ("not_empty", "row_count") or row_count == 0:
            return self.table_level(check, row_count)
        try:
            failing, sample, details = getattr(self, "_" + check.kind)(check)
        except _CheckCannotRun as e:
            return self._cannot_run(check, str(e))
        except DatabaseException as e:  # the database refused the SQL: a failing check
            return self._cannot_run(check, str(e))
        except Exception as e:  # noqa: BLE001 - a driver error dlt did not wrap: the same
            return self._cannot_run(check, f"{type(e).__name__}: {e}")
        return CheckResult(self.table, check.name, check.severity, failing == 0, failing,
                           sample, details=details)

    def _cannot_run(self, check: PlannedCheck, message: str) -> CheckResult:
        return CheckResult(self.table, check.name, check.severity, False,
                           error=scrub(message, self.secrets))

    def _quoted(self, check: PlannedCheck) -> list[str]:
        return [self.column(c) for c in check.columns]

    def _duplicates(self, quoted: Sequence[str], where: str = "") -> tuple[int, int]:
        cols = ", ".join(quoted)
        groups = (f"SELECT COUNT(*) AS dltplus_n FROM {self.qualified} {where} "
                  f"GROUP BY {cols} HAVING COUNT(*) > 1")
        keys, rows = self.rows(f"SELECT COUNT(*), SUM(dltplus_n) FROM ({groups}) AS dups")[0]
        return int(keys or 0), int(rows or 0)

    def _dup_sample(self, check: PlannedCheck, quoted: Sequence[str], where: str = ""
                    ) -> list[dict[str, Any]]:
        cols = ", ".join(quoted)
        rows = self.rows(
            f"SELECT {cols}, COUNT(*) FROM {self.qualified} {where} GROUP BY {cols} "
            f"HAVING COUNT(*) > 1 ORDER BY COUNT(*) DESC LIMIT {SAMPLE_ROWS}"
        )
        return [{**{c: self._shown(v) for c, v in zip(check.columns, row)}, "rows": row[-1]}
                for row in rows]

    def _unique(self, check: PlannedCheck) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
        quoted = self._quoted(check)
        keys, rows = self._duplicates(quoted)
        sample = self._dup_sample(check, quoted) if keys else []
        return rows, sample, {"duplicate_keys": keys, "columns": ", ".join(check.columns)}

    def _not_null(self, check: PlannedCheck) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
        quoted = self._quoted(check)
        cond = " OR ".join(f"{q} IS NULL" for q in quoted)
        nulls = int(self.rows(f"SELECT COUNT(*) FROM {self.qualified} WHERE {cond}")[0][0])
        sample = self.sample(check.columns, quoted, cond) if nulls else []
        return nulls, sample, {"rows_with_nulls": nulls}

    def _is_primary_key(self, check: PlannedCheck
                        ) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
        quoted = self._quoted(check)
        null_cond = " OR ".join(f"{q} IS NULL" for q in quoted)
        nulls = int(self.rows(f"SELECT COUNT(*) FROM {self.qualified} WHERE {null_cond}")[0][0])
        complete = "WHERE " + " AND ".join(f"{q} IS NOT NULL" for q in quoted)
        keys, dup_rows = self._duplicates(quoted, complete)
        sample = self.sample(check.columns, quoted, null_cond) if nulls else []
        if keys and len(sample) < SAMPLE_ROWS:
            sample += self._dup_sample(check, quoted, complete)[: SAMPLE_ROWS - len(sample)]
        details = {"rows_with_nulls": nulls, "duplicate_keys": keys, "duplicate_rows": dup_rows}
        return nulls + dup_rows, sample, details

    def _is_in(self, check: PlannedCheck) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
        quoted = self._quoted(check)
        conds = []
        for col, q in zip(check.columns, quoted):
            values = check.accepted[col]
            listed = [self.literal(v) for v in values if v is not None]
            nulls_ok = any(v is None for v in values)
            outside = f"{q} NOT IN ({', '.join(listed)})" if listed else "TRUE"
            conds.append(f"({q} IS NOT NULL AND {outside})" if nulls_ok
                         else f"({q} IS NULL OR {outside})")
        any_cond = " OR ".join(conds)
        sums = ", ".join(f"SUM(CASE WHEN {c} THEN 1 ELSE 0 END)" for c in [any_cond, *conds])
        counts = [int(v or 0) for v in self.rows(f"SELECT {sums} FROM {self.qualified}")[0]]
        failing = counts[0]
        sample = self.sample(check.columns, quoted, any_cond) if failing else []
        per_column = dict(zip(check.columns, counts[1:]))
        return failing, sample, {"failing_rows_by_column": per_column}

    def _case(self, check: PlannedCheck) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
        if _has_second_statement(check.expression):
            raise _CheckCannotRun("`case` must be one SQL expression (it holds a `;`)")
        # newlines: a trailing `-- comment` in the expression cannot swallow the closing paren
        cond = f"(\n{check.expression}\n) IS NOT TRUE"
        failing = int(self.rows(f"SELECT COUNT(*) FROM {self.qualified} WHERE {cond}")[0][0])
        sample: list[dict[str, Any]] = []
        cols = self._case_columns(check.expression)
        if failing and cols:
            try:
                sample = self.sample(cols, [self.client.escape_column_name(c) for c in cols], cond)
            except Exception:  # noqa: BLE001 - a name the parser misread: the count stands
                sample = []
        return failing, sample, {}

    def _case_columns(self, expression: str) -> list[str]:
        """Stored columns the expression names (the sample shows only those)."""
        import sqlglot
        from sqlglot import exp

        try:
            tree = sqlglot.parse_one(expression)
        except sqlglot.errors.SqlglotError:
            return []
        named = list(dict.fromkeys(c.name for c in tree.find_all(exp.Column)))
        known = self.columns
        return named if known is None else [c for c in named if c in known]


def _zero_details(check: PlannedCheck) -> dict[str, Any]:
    if check.kind == "unique":
        return {"duplicate_keys": 0, "columns": ", ".join(check.columns)}
    if check.kind == "not_null":
        return {"rows_with_nulls": 0}
    return {}


class _CheckCannotRun(Exception):
    """A check that cannot be evaluated, with the reason to show."""
