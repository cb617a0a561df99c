"""PostgreSQL credentials without a password, as trust, peer and `.pgpass` setups write them.

dlt's `PostgresCredentials` requires a password, so `postgresql://postgres@host/db` (the DSN a
trust-auth server documents) fails with `Missing 1 field(s) ... credentials` before any
connection is tried. The project's postgres destinations use a spec whose password is optional:
libpq then authenticates as the server allows, and a server that wants a password says so in
one line (`fe_sendauth: no password supplied`).
"""

# no `from __future__ import annotations`: dlt reads the specs' field types at class creation,
# and they are imported inside the function that builds them
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlt.common.destination import Destination

_POSTGRES = "dlt.destinations.postgres"


def allow_passwordless(destination: "Destination[Any, Any]") -> "Destination[Any, Any]":
    """`destination` itself; a dlt postgres destination gets the optional-password spec."""
    if destination.destination_type != _POSTGRES:
        return destination
    from dlt.destinations.impl.postgres.configuration import PostgresClientConfiguration

    if destination.spec is PostgresClientConfiguration:  # not a spec the user chose
        # dlt types `spec` as a read-only property; its destinations set a class attribute
        destination.spec = _passwordless_spec()  # type: ignore[misc]
    return destination


_SPEC: Any = None


def _passwordless_spec() -> Any:
    """The postgres client config spec whose credentials may lack a password (built once)."""
    global _SPEC
    if _SPEC is None:
        from typing import Optional

        from dlt.common.configuration import configspec
        from dlt.common.typing import TSecretStrValue
        from dlt.destinations.impl.postgres.configuration import (
            PostgresClientConfiguration,
            PostgresCredentials,
        )

        @configspec(init=False)
        class PasswordlessPostgresCredentials(PostgresCredentials):
            # optional on purpose (the point of this spec); dlt reads the hint, so no `| None`
            password: Optional[TSecretStrValue] = None  # type: ignore[assignment]  # noqa: UP045

        @configspec
        class PasswordlessPostgresClientConfiguration(PostgresClientConfiguration):
            # dlt's own specs default credentials to None and resolve them before use
            credentials: PasswordlessPostgresCredentials = None  # type: ignore[assignment]

        _SPEC = PasswordlessPostgresClientConfiguration
    return _SPEC
