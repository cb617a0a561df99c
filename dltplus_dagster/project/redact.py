"""Keeping secrets out of anything shown: config dumps, CLI output, Dagster metadata, logs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "***"

_SECRET_KEY = re.compile(
    r"(^|_)(password|passwd|secret|secrets|token|credentials|api_key|apikey|private_key|"
    r"access_key|secret_key|client_secret|auth|authorization|key|passphrase|dsn|conn_str|"
    r"connection_string)($|_)",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@")


_NOT_SECRET_KEY = re.compile(r"(^|_)(primary|merge)_key$", re.IGNORECASE)
"""dlt's key hints and the `is_primary_key` check: column names, not secrets."""


def is_secret_key(key: str) -> bool:
    """True for keys whose values are secrets by name (`password`, `credentials`, `*_token`...)."""
    return bool(_SECRET_KEY.search(str(key))) and not _NOT_SECRET_KEY.search(str(key))


def mask_url(text: str) -> str:
    """Replace the password of any `scheme://user:password@host` in `text`."""
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)


def redact(value: Any) -> Any:
    """A copy of `value` with secret-named keys replaced and URL passwords masked."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if is_secret_key(k) and v not in (None, "", {}) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return mask_url(value)
    return value


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Remove each known secret value from `text` (for messages built from foreign errors)."""
    text = mask_url(text)
    for s in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(s, REDACTED)
    return text


NOT_SECRET_FIELDS = frozenset(
    {"host", "port", "username", "user", "database", "dbname", "drivername", "driver",
     "schema", "warehouse", "role", "region", "account", "project_id", "client_email"}
)
"""Fields of a credentials mapping that are not secret (kept in error messages)."""


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


def secret_values(
    settings_dir: str,
    profile: str,
    manifest: Any = None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Values that must never be shown for a project: values of secret-named keys in
    `.dlt/secrets.toml`, `.dlt/<profile>.secrets.toml` and the (resolved) manifest, and env vars
    that set secret-named dlt config (`SOURCES__SHOP__API_KEY`, `...__PASSWORD`)."""
    import os
    import tomllib

    values: list[str] = []
    for file_name in ("secrets.toml", f"{profile}.secrets.toml"):
        try:
            with open(os.path.join(settings_dir, file_name), "rb") as f:
                values.extend(_secret_strings(tomllib.load(f)))
        except (OSError, tomllib.TOMLDecodeError):
            continue
    values.extend(_secret_strings(manifest))
    for name, value in (os.environ if environ is None else environ).items():
        if "__" in name and is_secret_key(name.rsplit("__", 1)[-1]):
            values.append(value)
    return sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)


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
