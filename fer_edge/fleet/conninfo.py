"""Connection strings for the central PostgreSQL: redaction, one-line errors, the optional import.

A URL (``postgresql://user:pw@host/db?sslmode=verify-full&sslrootcert=...``) or a libpq keyword
string (``host=... dbname=...``, ``service=chain``) is handed to libpq unchanged, so TLS options,
``PGPASSWORD``, ``~/.pgpass`` and service files work as they do for psql. Whatever is shown to a
user passes through :func:`redact_conninfo` first.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from fer_edge.core.errors import FerEdgeError, first_line, missing_dependency
from fer_edge.core.redact import redact

URL_SCHEMES = ("postgresql://", "postgres://")
_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
MASK = "***"


def is_conninfo(text: str) -> bool:
    """True for a PostgreSQL URL or a libpq keyword string; False for a file path."""
    text = text.strip()
    return text.lower().startswith(URL_SCHEMES) or bool(re.match(r"^\w+\s*=", text))


def redact_conninfo(conninfo: str) -> str:
    """The connection string with any password replaced by ``***`` (URL userinfo, query or keyword)."""
    return redact(conninfo.strip())


def secrets_of(conninfo: str) -> list[str]:
    """Password strings in a connection string, so that error text can be scrubbed of them."""
    found = [m.group(2).strip("'") for m in _KEYWORD_PASSWORD.finditer(conninfo)]
    if conninfo.strip().lower().startswith(URL_SCHEMES):
        parts = urlsplit(conninfo.strip())
        if parts.password:
            found.append(parts.password)
    return [s for s in found if s]


def import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise missing_dependency("psycopg 3", "syncing to PostgreSQL", "pip install 'fer-edge[fleet]'") from None
    return psycopg


def describe_error(exc: BaseException, conninfo: str) -> str:
    """psycopg's message as one line, with the password scrubbed and libpq's prefix dropped."""
    text = first_line(exc)
    text = re.sub(r"^connection failed:\s*", "", text)
    for secret in secrets_of(conninfo):
        text = text.replace(secret, MASK)
    return text


def is_transient(exc: BaseException) -> bool:
    """A dropped or refused connection is worth retrying; a refused login or a bad database is not."""
    psycopg = import_psycopg()
    if not isinstance(exc, psycopg.OperationalError):
        return False
    text = str(exc).lower()
    permanent = ("password authentication failed", "authentication failed", "no password supplied",
                 "does not exist", "no pg_hba.conf entry", "permission denied", "certificate",
                 "invalid", "does not support ssl", "ssl was required", "sslmode",
                 "name or service not known")  # fmt: skip
    return not any(word in text for word in permanent)


def connect(conninfo: str, *, connect_timeout: int = 10) -> Any:
    """A psycopg connection (transactions on); a failure is a FerEdgeError naming the redacted target."""
    psycopg = import_psycopg()
    if not is_conninfo(conninfo):
        raise FerEdgeError(
            f"{redact_conninfo(conninfo)!r} is not a PostgreSQL URL; use postgresql://USER@HOST/DB "
            "(password from PGPASSWORD or ~/.pgpass) or a libpq string like 'service=NAME'"
        )
    try:
        params = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as exc:
        raise FerEdgeError(
            f"bad PostgreSQL URL {redact_conninfo(conninfo)} ({describe_error(exc, conninfo)})"
        ) from None
    params.setdefault("connect_timeout", connect_timeout)
    params.setdefault("application_name", "fer-edge")
    try:
        return psycopg.connect(**params)
    except psycopg.Error as exc:
        raise CentralUnavailable(
            f"cannot connect to {redact_conninfo(conninfo)}: {describe_error(exc, conninfo)}",
            transient=is_transient(exc),
        ) from None


class CentralUnavailable(FerEdgeError):
    """The server could not be reached or refused the session; ``transient`` says whether a retry may help."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient
