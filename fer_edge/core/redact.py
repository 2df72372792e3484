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

# A parameter name that contains any of these (case-insensitive) carries a secret...
_SECRET_NAME = re.compile(
    r"pass|pwd|token|key|auth|secret|sig|credential|session|cookie|private|bearer|nonce|otp", re.I
)
# ... and so does one of these short or vendor-specific names, matched whole (pw=, psk=, ...).
_SECRET_WORDS = frozenset({"pw", "psw", "pword", "pin", "psk", "sid", "code", "jwt", "ticket", "st", "sign"})
# libpq keyword/value conninfo ("host=db password='s e' user=x") and similar "name=value" text.
_KEYWORD_VALUE = re.compile(
    r"(?P<name>\b[\w.-]*(?:pass|pwd|token|key|auth|secret|credential)[\w.-]*|\b(?:pw|psw|pin|psk)\b)"
    r"(?P<eq>\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;]+)",
    re.I,
)
_USER_ONLY_SCHEMES = ("postgresql://", "postgres://")
# RTMP puts the stream key in the last path segment: rtmp://host/app/KEY.
_KEY_IN_PATH_SCHEMES = ("rtmp://", "rtmps://", "rtmpt://", "rtmpe://", "rtmpte://")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# What may follow the user info: a host name or address, an optional port, then the path.
_HOST = re.compile(r"^(?:[A-Za-z0-9._~%!$&'()*+,;=-]+|\[[0-9A-Fa-f:.]+\])(?::\d*)?(?=[/?#]|$)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def is_secret_name(name: str) -> bool:
    plain = unquote(name).strip()
    return bool(_SECRET_NAME.search(plain)) or plain.lower() in _SECRET_WORDS


def _redact_query(query: str) -> str:
    # '?' separates too: "?ch=1?password=x" must not hide the password inside the channel's value.
    parts = []
    for part in re.split(r"([&;?])", query):
        name, eq, value = part.partition("=")
        parts.append(f"{name}={MASK}" if eq and value and is_secret_name(name) else part)
    return "".join(parts)


def _split_userinfo(rest: str) -> tuple[str, str]:
    """``(userinfo, after)`` of the text after ``scheme://``; ``userinfo`` is ``""`` when there is none.

    The password may hold unencoded ``@ / ? #``: the user info ends at the last ``@`` that a host
    follows, and the user name before the first ``:`` holds none of ``/ ? # @``.
    """
    for at in reversed([i for i, c in enumerate(rest) if c == "@"]):
        user = rest[:at].partition(":")[0]
        if _HOST.match(rest[at + 1 :]) and not any(c in user for c in "/?#@"):
            return rest[:at], rest[at:]
    return "", rest


def _redact_url(scheme: str, rest: str) -> str:
    userinfo, rest = _split_userinfo(rest)
    if userinfo:
        user, colon, _ = userinfo.partition(":")
        # A bare user info can be a token (https://TOKEN@host); in a PostgreSQL URL it is only the user.
        bare = user if scheme.lower() in _USER_ONLY_SCHEMES else MASK
        userinfo = f"{user}:{MASK}" if colon else bare
    rest, hash_, fragment = rest.partition("#")
    rest, qmark, query = rest.partition("?")
    if scheme.lower() in _KEY_IN_PATH_SCHEMES:
        head, slash, last = rest.rpartition("/")
        if head.count("/") >= 1 and last:  # host/app/KEY: the key, not the application name
            rest = f"{head}/{MASK}"
    return scheme + userinfo + rest + qmark + _redact_query(query) + hash_ + _redact_query(fragment)


def redact(text: str) -> str:
    """``text`` with every password-like secret replaced by ``***``; other text is left as it was.

    ``rtsp://admin:pw@cam/s?token=x&ch=1`` -> ``rtsp://admin:***@cam/s?token=***&ch=1``. Text that
    looks like a URL but cannot be taken apart (a stray ``://``, control characters) is masked whole.
    """
    match = _SCHEME.match(text)
    if match:
        if _CONTROL.search(text):
            return MASK
        return _redact_url(match.group(0), text[match.end() :])
    if "://" in text:
        return MASK
    if "@" in text and ":" in text.rpartition("@")[0] and "/" not in text.rpartition("@")[0]:
        return MASK + text[text.rfind("@") :]  # user:password@host without a scheme
    return _KEYWORD_VALUE.sub(lambda m: m["name"] + m["eq"] + MASK, text)


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters (ESC of ANSI sequences, BEL, CR, ...) shown as
    escapes (``\\x1b``), so a string from a file cannot clear the screen or retitle the terminal."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)
