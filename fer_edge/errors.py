"""One exception type for problems a user can fix; the CLI prints it as one line."""

from __future__ import annotations

from pathlib import Path


class FerEdgeError(Exception):
    """A user-facing error: bad input, missing file, missing optional dependency.

    The message is one line and names the file (and line) where there is one.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f":{line}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.line = line


def missing_dependency(package: str, feature: str, install: str) -> FerEdgeError:
    """The error for an optional dependency that a feature needs but is not installed."""
    return FerEdgeError(f"{feature} needs {package}, which is not installed; install it with: {install}")
