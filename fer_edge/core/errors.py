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


def missing_dependency(package: str, feature: str | None, install: str) -> FerEdgeError:
    """The error for an optional dependency that a feature needs but is not installed:
    ``OpenCV is not installed (the camera pipeline needs it): pip install 'fer-edge[opencv]'``."""
    needs = f" ({feature} needs it)" if feature else ""
    return FerEdgeError(f"{package} is not installed{needs}: {install}")


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (its type name when the message is empty):
    library errors (psycopg, ONNX Runtime, CUDA) run over several lines, ours stay on one."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
