"""Markdown tables: one writer, so every report escapes cells and aligns numbers the same way."""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

ALIGN = {"l": "---", "r": "---:", "c": ":---:"}


def escape_cell(value: object) -> str:
    """A cell on one line: ``|`` escaped, newlines as spaces (a Markdown row cannot break)."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]], align: Optional[str] = None) -> str:
    """A GitHub-flavoured Markdown table, one line a row, no trailing newline.

    ``align``: one letter per column, ``l`` (default), ``r`` (numbers) or ``c``; e.g. ``"llrr"``.
    """
    spec = (align or "").ljust(len(headers), "l")
    if len(spec) != len(headers) or any(a not in ALIGN for a in spec):
        raise ValueError(f"align {align!r} does not fit {len(headers)} columns of l, r or c")
    lines = [
        "| " + " | ".join(escape_cell(h) for h in headers) + " |",
        "|" + "|".join(ALIGN[a] for a in spec) + "|",
    ]
    for row in rows:
        cells = list(row)
        if len(cells) != len(headers):
            raise ValueError(f"a row has {len(cells)} cells for {len(headers)} columns")
        lines.append("| " + " | ".join(escape_cell(c) for c in cells) + " |")
    return "\n".join(lines)
