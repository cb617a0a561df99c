"""Keeping secrets out of anything shown: config dumps, CLI output, Dagster metadata, logs,
dlt traces.

Two rules decide what is secret. By origin: every value substituted from `{env.*}` (tracked at
placeholder time, whatever the key is called) and every value of a secrets TOML. By name: the
value of a key whose name ends in a secret word (`password`, `api_key`, `access_token`,
`credentials`...). Hosts, ports, database and user names stay readable, so an error can still
say where it failed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

REDACTED = "***"
MIN_SECRET_LENGTH = 4
"""Shorter values are not masked in text: `***` for every `on` or `1` would make text unreadable."""

# the key's *last* words decide: `access_token`, `aws_secret_access_key`, `X-Api-Key`; not
# `primary_key`, `merge_key`, `token_url` or `aws_access_key_id`
_SECRET_KEY = re.compile(
    r"(^|_)(password|passwd|pwd|secret|secrets|token|credentials|api_?key|private_key|"
    r"access_key|secret_key|account_key|sas_key|auth|authorization|passphrase|dsn|conn_str|"
    r"connection_string|session_key|signing_key)$",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@")


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """True for keys whose values are secrets by name (`password`, `credentials`, `*_token`...)."""
    name = str(key).replace("-", "_").strip()
    return bool(_SECRET_KEY.search(name))


def mask_url(text: str) -> str:
    """Replace the password of any `scheme://user:password@host` in `text`."""
    if "@" not in text:  # no URL with a password (most values: redact walks every string)
        return text
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)


NOT_SECRET_FIELDS = frozenset(
    {"host", "port", "username", "user", "database", "dbname", "drivername", "driver",
     "schema", "warehouse", "role", "region", "account", "project_id", "client_email", "type",
     "destination_type", "location", "http_path", "catalog", "name"}
)
"""Fields of a credentials mapping that are not secret (kept in config output and errors)."""


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of `value` for display: values under secret-named keys masked (in a credentials
    mapping all but `NOT_SECRET_FIELDS`; in a DSN the password), URL passwords masked, and every
    known secret value (`secrets`: `{env.*}` values, TOML secrets) masked wherever it shows."""
    known = _usable(secrets)
    return _redact(value, False, "", known)


def _redact(value: Any, inherited: bool, key: str, secrets: list[str]) -> Any:
    if isinstance(value, dict):
        return {
            k: _redact(v, inherited or is_secret_key(k), str(k), secrets) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact(v, inherited, key, secrets) for v in value]
    if isinstance(value, str):
        if inherited and value and key.lower() not in NOT_SECRET_FIELDS:
            masked = mask_url(value)
            # a DSN shows where it points, never its password; anything else goes entirely
            return scrub(masked, secrets) if masked != value and "?" not in value else REDACTED
        return scrub(value, secrets)
    if inherited and value is not None and key.lower() not in NOT_SECRET_FIELDS:
        return REDACTED
    return value


def _usable(secrets: Iterable[str]) -> list[str]:
    return sorted(
        {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH},
        key=len,
        reverse=True,
    )


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Remove each known secret value from `text` (for messages built from foreign errors)."""
    text = mask_url(text)
    for s in _usable(secrets):
        text = text.replace(s, REDACTED)
    return text


def scrub_secrets(value: Any, secrets: Iterable[str]) -> Any:
    """A copy of any nested object with every known secret masked in its strings.

    Walks str, bytes, dicts, lists, sets, tuples and NamedTuples (dlt's `PipelineTrace`,
    `LoadInfo`, `ExceptionTrace`...), and dataclasses; other objects (a pipeline, a datetime)
    are kept as they are. Use it on a dlt trace before it is stored or loaded anywhere.
    """
    known = _usable(secrets)
    raw = [s.encode("utf-8") for s in known]
    memo: dict[int, Any] = {}

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return scrub(v, known) if v else v
        if isinstance(v, bytes):
            for s in raw:
                v = v.replace(s, REDACTED.encode())
            return v
        if id(v) in memo:
            return memo[id(v)]
        out: Any = v
        if isinstance(v, dict):
            out = copy.copy(v)  # keeps the dict subclass (and TypedDicts are dicts)
            memo[id(v)] = out
            for k in list(out):
                out[k] = walk(out[k])
        elif isinstance(v, list):
            out = [walk(i) for i in v]
        elif isinstance(v, tuple) and hasattr(v, "_make"):
            out = v._make(walk(i) for i in v)
        elif isinstance(v, tuple):
            out = tuple(walk(i) for i in v)
        elif isinstance(v, (set, frozenset)):
            out = type(v)(walk(i) for i in v)
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            out = copy.copy(v)
            memo[id(v)] = out
            for f in dataclasses.fields(v):
                with contextlib.suppress(AttributeError, dataclasses.FrozenInstanceError):
                    object.__setattr__(out, f.name, walk(getattr(v, f.name)))
        memo[id(v)] = out
        return out

    return walk(value)


def _secret_strings(value: Any, inherited: bool = False, key: str = "") -> Iterable[str]:
    """Strings under a secret-named key (`api_key`, `credentials.password`, a DSN string), except
    the non-secret fields of a credentials mapping (`host`, `username`...)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _secret_strings(v, inherited or is_secret_key(k), str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _secret_strings(v, inherited, key)
    elif isinstance(value, str) and inherited and key.lower() not in NOT_SECRET_FIELDS:
        yield value


def url_passwords(values: Iterable[str]) -> Iterator[str]:
    """The passwords of `scheme://user:password@host` URLs in `values` (as written and decoded):
    a driver may print the password alone (`password=...`)."""
    for value in values:
        for m in _URL_PASSWORD.finditer(value):
            pw = m["pw"]
            yield pw
            yield unquote(pw)
        with contextlib.suppress(ValueError):
            password = urlsplit(value).password if "://" in value else None
            if password:
                yield password


def toml_secret_values(settings_dir: str) -> list[str]:
    """Every string of every secrets TOML in `settings_dir` (`secrets.toml` and
    `<profile>.secrets.toml` of every profile), whatever its key is called, except the
    `NOT_SECRET_FIELDS` of credentials (`host`, `database`...)."""
    import tomllib

    values: list[str] = []
    try:
        names = sorted(os.listdir(settings_dir))
    except OSError:
        return values
    for name in names:
        if name != "secrets.toml" and not name.endswith(".secrets.toml"):
            continue
        try:
            with open(os.path.join(settings_dir, name), "rb") as f:
                values.extend(_secret_strings(tomllib.load(f), inherited=True))
        except (OSError, tomllib.TOMLDecodeError):
            continue
    return values


def secret_values(
    settings_dir: str,
    profile: str,
    manifest: Any = None,
    environ: Mapping[str, str] | None = None,
    substituted: Iterable[str] = (),
) -> list[str]:
    """Values that must never be shown for a project: every value of the secrets TOML files
    (`toml_secret_values`), values of secret-named keys in the (resolved) manifest, the values
    `{env.*}` placeholders put into the manifest (`substituted`), env vars that set secret-named
    dlt config (`SOURCES__SHOP__API_KEY`, `...__PASSWORD`), and the passwords of their URLs.
    Longest first (so a secret inside another is masked whole)."""
    values: list[str] = list(toml_secret_values(settings_dir))
    values.extend(_secret_strings(manifest))
    values.extend(substituted)
    for name, value in (os.environ if environ is None else environ).items():
        if "__" in name and is_secret_key(name.rsplit("__", 1)[-1]):
            values.append(value)
    values.extend(url_passwords(list(values)))
    return _usable(values)


# --- logs: dlt's logger and ours mask the secrets of the runs in progress -------------------------

_registered: dict[str, int] = {}
_registry_lock = threading.Lock()


class SecretsLogFilter(logging.Filter):
    """Masks the secrets of the runs in progress in a record's message and traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = list(_registered)
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is the logger's problem
            return True
        clean = scrub(message, secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, secrets)
        return True


_FILTER = SecretsLogFilter()
LOGGER_NAMES = ("dlt", "dltplus_dagster", "dagster")
"""Loggers (and their handlers) that get the filter: dlt's, ours and Dagster's."""


def _install_filter() -> None:
    loggers = [logging.getLogger(name) for name in LOGGER_NAMES]
    loggers += [
        logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
        if name.startswith(("dltplus_dagster.", "dlt.", "dagster."))
    ]
    with contextlib.suppress(Exception):  # dlt's logger exists once dlt's runtime is set up
        from dlt.common import logger as dlt_logger

        if dlt_logger.LOGGER is not None:
            loggers.append(dlt_logger.LOGGER)
    for lg in [*loggers, logging.root]:
        # a logger's filters see only its own records; handlers also see propagated ones
        for target in [lg, *lg.handlers]:
            if _FILTER not in target.filters:
                target.addFilter(_FILTER)


@contextlib.contextmanager
def secrets_registered(secrets: Iterable[str]) -> Iterator[None]:
    """Mask `secrets` in dlt's, Dagster's and this package's log records while the block runs
    (a run registers its project's secrets; runs in threads each add theirs)."""
    values = _usable(secrets)
    with _registry_lock:
        for s in values:
            _registered[s] = _registered.get(s, 0) + 1
        _install_filter()
    try:
        yield
    finally:
        with _registry_lock:
            for s in values:
                _registered[s] -= 1
                if not _registered[s]:
                    del _registered[s]


class RedactedError(Exception):
    """Stands in for an error whose message (or a cause's) held a secret: the same chain of
    messages and stack frames, with the secrets masked. The original is not kept."""


def _chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    e: BaseException | None = error
    while e is not None and all(e is not c for c in chain):
        chain.append(e)
        e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
    return chain


def _text(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the real error
        return f"<{type(error).__name__}: message not available>"


def redact_exception(error: BaseException, secrets: Iterable[str]) -> BaseException | None:
    """A `RedactedError` chain standing in for `error` when a message of its chain shows a secret
    (a known value or a URL password); None when nothing needs masking."""
    secrets = list(secrets)
    chain = _chain(error)
    texts = [_text(e) for e in chain]
    if all(scrub(t, secrets) == t for t in texts):
        return None
    redacted: BaseException | None = None
    for e, text in reversed(list(zip(chain, texts))):
        cls = type(e)
        name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
        new = RedactedError(f"{name}: {scrub(text, secrets)}").with_traceback(e.__traceback__)
        new.__cause__ = redacted
        new.__suppress_context__ = True
        redacted = new
    return redacted
