"""Secrets out of anything fer-edge prints or stores: passwords in URLs and connection strings.

One function, :func:`redact`, for every place a user-given location is shown or written (camera
sources in the log's ``runs.source`` and every message, database URLs for ``--sync``). It masks
``user:password@`` (the user stays: it helps with "wrong password for user X") and the value of every
query parameter or ``key=value`` pair whose name looks like a secret (``password``, ``pwd``,
``token``, ``api_key``, ``auth``, ``sig``...). It errs on the side of masking.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"

# A parameter name that contains any of these (case-insensitive) carries a secret.
_SECRET_NAME = re.compile(r"pass|pwd|token|key|auth|secret|sig|credential|session|cookie|private", re.I)
# libpq keyword/value conninfo ("host=db password='s e' user=x") and similar "name=value" text.
_KEYWORD_VALUE = re.compile(
    r"(?P<name>\b[\w.-]*(?:pass|pwd|token|key|auth|secret|credential)[\w.-]*)(?P<eq>\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;]+)",
    re.I,
)
_USER_ONLY_SCHEMES = ("postgresql://", "postgres://")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(unquote(name)))


def _redact_query(query: str) -> str:
    parts = []
    for part in re.split(r"([&;])", query):
        name, eq, value = part.partition("=")
        parts.append(f"{name}={MASK}" if eq and value and is_secret_name(name) else part)
    return "".join(parts)


def redact(text: str) -> str:
    """``text`` with every password-like secret replaced by ``***``; other text is left as it was.

    ``rtsp://admin:pw@cam/s?token=x&ch=1`` -> ``rtsp://admin:***@cam/s?token=***&ch=1``.
    """
    match = _SCHEME.match(text)
    if not match:
        return _KEYWORD_VALUE.sub(lambda m: m["name"] + m["eq"] + MASK, text)
    scheme, rest = match.group(0), text[match.end() :]
    rest, hash_, fragment = rest.partition("#")
    rest, qmark, query = rest.partition("?")
    # The user info ends at the last '@' before the query: a password may hold an unencoded '@' or '/'.
    at = rest.rfind("@")
    if at >= 0:
        user, colon, _ = rest[:at].partition(":")
        # A bare user info can be a token (https://TOKEN@host); in a PostgreSQL URL it is only the user.
        bare = user if scheme.lower() in _USER_ONLY_SCHEMES else MASK
        rest = (f"{user}:{MASK}" if colon else bare) + rest[at:]
    return scheme + rest + qmark + _redact_query(query) + hash_ + _redact_query(fragment)
