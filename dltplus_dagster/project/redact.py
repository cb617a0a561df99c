"""Keeping secrets out of anything shown: config dumps, CLI output, Dagster metadata, logs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "***"

_SECRET_KEY = re.compile(
    r"(^|_)(password|passwd|secret|secrets|token|credentials|api_key|apikey|private_key|"
    r"access_key|secret_key|client_secret|auth|authorization|key|passphrase|dsn|conn_str|"
    r"connection_string)($|_)",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@")


def is_secret_key(key: str) -> bool:
    """True for keys whose values are secrets by name (`password`, `credentials`, `*_token`...)."""
    return bool(_SECRET_KEY.search(str(key)))


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
