"""Fleet pieces that need no server: password redaction, store labels, the emotion columns."""

from __future__ import annotations

import pytest

from fer_edge.core.errors import FerEdgeError
from fer_edge.fleet.conninfo import describe_error, is_conninfo, redact_conninfo
from fer_edge.fleet.outbox import validate_store


@pytest.mark.parametrize(
    ("conninfo", "shown"),
    [
        ("postgresql://fer:s3cret@db.example/mood", "postgresql://fer:***@db.example/mood"),
        (
            "postgres://fer:p%40ss@db:5433/mood?sslmode=verify-full",
            "postgres://fer:***@db:5433/mood?sslmode=verify-full",
        ),
        (
            "postgresql://fer@db/mood?password=s3cret&sslmode=require",
            "postgresql://fer@db/mood?password=***&sslmode=require",
        ),
        (
            "host=db dbname=mood password=s3cret sslmode=verify-full",
            "host=db dbname=mood password=*** sslmode=verify-full",
        ),
        ("host=db password = 'with space' user=fer", "host=db password = *** user=fer"),
        ("postgresql://fer@db/mood", "postgresql://fer@db/mood"),
        ("service=chain", "service=chain"),
        ("mysql://fer:s3cret@db/x", "mysql://fer:***@db/x"),
    ],
)
def test_redact_conninfo(conninfo: str, shown: str) -> None:
    assert redact_conninfo(conninfo) == shown


def test_error_text_is_scrubbed_of_the_password() -> None:
    exc = RuntimeError("connection failed: bad thing with s3cret inside\nsecond line")
    assert describe_error(exc, "postgresql://fer:s3cret@db/mood") == "bad thing with *** inside"


def test_is_conninfo_tells_urls_from_paths() -> None:
    assert is_conninfo("postgresql://db/mood") and is_conninfo("service=chain") and is_conninfo("host=db")
    assert not is_conninfo("mood.db") and not is_conninfo("/var/lib/mood.db") and not is_conninfo("mysql://x/y")


def test_store_labels() -> None:
    assert validate_store(" berlin-01 ") == "berlin-01"
    for bad in ("", "   ", "a\nb", "x" * 300):
        with pytest.raises(FerEdgeError, match="--store"):
            validate_store(bad)


def test_which_connection_failures_are_retried() -> None:
    psycopg = pytest.importorskip("psycopg", reason="the fleet extra (psycopg) is not installed")
    from fer_edge.fleet.conninfo import is_transient

    def failure(text: str) -> Exception:
        return psycopg.OperationalError(text)

    for text in (
        'connection to server at "10.0.0.5", port 5432 failed: Connection refused',
        "server closed the connection unexpectedly",
        "terminating connection due to administrator command",
        'could not translate host name "db" to address: Temporary failure in name resolution',
    ):
        assert is_transient(failure(text)), text
    for text in (
        'password authentication failed for user "fer"',
        'database "mood" does not exist',
        "server does not support SSL, but SSL was required",
        'could not translate host name "dbb" to address: Name or service not known',
        "SSL error: certificate verify failed",
    ):
        assert not is_transient(failure(text)), text
    assert not is_transient(ValueError("connection refused"))  # not a connection failure at all
