"""Tables that fit the terminal: every row on one line, no number split, least needed columns hidden first.

A :class:`FitTable` is built like a rich ``Table`` (``add_column``, ``add_row``) and chooses its layout when
it is printed, from the width the console offers: all columns with full labels if they fit, else with the
short labels (``ort-cpu`` for ``onnxruntime-cpu``), else it hides columns from the highest ``priority``
number down, trying full then short labels at each step, and says below the table which ones it hid.
Numbers never wrap: a column wraps only when it is declared ``wrap`` (free text such as a JSON value), and
a ``shrink`` column (a file name) is cut with an ellipsis only as a last resort.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, List, Optional, Sequence, Tuple

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from rich.text import JustifyMethod

# Wider than any table we print: the natural width is measured without the console's limit.
_UNLIMITED = 10_000
_SHRINK_FLOOR = 8  # a shrunk name keeps at least this many cells ("fer2013…")


@dataclass
class FitColumn:
    header: str
    priority: int = 0  # 0: never hidden; among the rest, the highest number is hidden first
    justify: JustifyMethod = "right"
    short_header: Optional[str] = None
    short: Optional[Callable[[str], str]] = None  # the cell's short form, used when the full one does not fit
    wrap: bool = False  # free text that may wrap at spaces; numbers and names never do
    shrink: bool = False  # may be cut with an ellipsis when nothing else is left to hide
    style: Optional[str] = None
    name: Optional[str] = None  # what the note on hidden columns calls it (default: the header)

    def label(self, compact: bool) -> str:
        return self.short_header if compact and self.short_header is not None else self.header

    def text(self, value: str, compact: bool) -> str:
        return self.short(value) if compact and self.short is not None else value


@dataclass
class _Row:
    cells: List[str]
    style: Optional[str] = None
    end_section: bool = False


@dataclass
class Layout:
    """What :meth:`FitTable.layout` chose for one width."""

    columns: List[int]  # indexes of the shown columns, in table order
    compact: bool
    hidden: List[str] = field(default_factory=list)  # names of the hidden columns, for the note
    shrink_to: Optional[int] = None  # width of the shrink columns, when they had to be cut


class FitTable:
    """A rich table that fits the width it is printed at; ``wide=True`` prints every column at full width
    (print it with ``console.print(table, crop=False)``, or the console cuts the lines at its edge)."""

    def __init__(
        self,
        title: Optional[str] = None,
        *,
        show_header: bool = True,
        wide: bool = False,
        wide_hint: str = "--wide shows all columns",
        notes: Iterable[str] = (),
    ) -> None:
        self.title = title
        self.show_header = show_header
        self.wide = wide
        self.wide_hint = wide_hint
        self.notes = list(notes)
        self.columns: List[FitColumn] = []
        self.rows: List[_Row] = []

    def add_column(
        self,
        header: str,
        *,
        priority: int = 0,
        justify: JustifyMethod = "right",
        short_header: Optional[str] = None,
        short: Optional[Callable[[str], str]] = None,
        wrap: bool = False,
        shrink: bool = False,
        style: Optional[str] = None,
        name: Optional[str] = None,
    ) -> None:
        self.columns.append(FitColumn(header, priority, justify, short_header, short, wrap, shrink, style, name))

    def add_row(self, *cells: str, style: Optional[str] = None, end_section: bool = False) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(_Row([str(c) for c in cells], style, end_section))

    def add_section(self) -> None:
        if self.rows:
            self.rows[-1].end_section = True

    # ---- layout --------------------------------------------------------------------------------
    def _table(self, layout: Layout) -> Table:
        table = Table(
            title=self.title,
            show_header=self.show_header,
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            collapse_padding=True,
        )
        for i in layout.columns:
            col = self.columns[i]
            label = col.label(layout.compact)
            natural = max([_width(label)] + [_width(col.text(r.cells[i], layout.compact)) for r in self.rows])
            if col.wrap:
                table.add_column(label, justify=col.justify, style=col.style, overflow="fold")
            elif col.shrink and layout.shrink_to is not None and natural > layout.shrink_to:
                table.add_column(
                    label,
                    justify=col.justify,
                    style=col.style,
                    no_wrap=True,
                    overflow="ellipsis",
                    width=layout.shrink_to,
                )
            else:
                # min_width: the measured minimum is the whole cell, so "fits" means "nothing is cut".
                table.add_column(
                    label,
                    justify=col.justify,
                    style=col.style,
                    no_wrap=True,
                    overflow="ellipsis",
                    min_width=natural,
                )
        for row in self.rows:
            table.add_row(
                # Text, not markup: a cell such as "[1, 48, 48]" is data.
                *[Text(self.columns[i].text(row.cells[i], layout.compact)) for i in layout.columns],
                style=row.style,
                end_section=row.end_section,
            )
        return table

    def _min_width(self, console: Console, options: ConsoleOptions, layout: Layout) -> int:
        return Measurement.get(console, options.update_width(_UNLIMITED), self._table(layout)).minimum

    def layout(self, console: Console, options: ConsoleOptions, width: int) -> Layout:
        everything = list(range(len(self.columns)))
        if self.wide:
            return Layout(everything, compact=False)
        drop_order = sorted(
            (i for i, c in enumerate(self.columns) if c.priority > 0),
            key=lambda i: (-self.columns[i].priority, -i),
        )
        candidate: Layout = Layout(everything, compact=True)
        for n_dropped in range(len(drop_order) + 1):
            dropped = set(drop_order[:n_dropped])
            shown = [i for i in everything if i not in dropped]
            hidden = [_name(self.columns[i]) for i in everything if i in dropped]
            for compact in (False, True):
                candidate = Layout(shown, compact, hidden)
                if self._min_width(console, options, candidate) <= width:
                    return candidate
        # Nothing left to hide: cut the names, never the numbers.
        names = [
            _width(self.columns[i].text(r.cells[i], True))
            for i in candidate.columns
            if self.columns[i].shrink
            for r in self.rows
        ]
        if names:
            excess = self._min_width(console, options, candidate) - width
            candidate.shrink_to = max(_SHRINK_FLOOR, max(names) - excess)
        return candidate

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        layout = self.layout(console, options, width)
        table = self._table(layout)
        if self.wide:
            # Every column at its natural width, even past the terminal's edge (it wraps the line there).
            natural = Measurement.get(console, options.update_width(_UNLIMITED), table).maximum
            yield from console.render(table, options.update_width(max(width, natural)))
        else:
            yield table
        if layout.hidden:
            hint = f" ({self.wide_hint})" if self.wide_hint else ""
            n = len(layout.hidden)
            yield Text(
                f"{n} column{'s' if n > 1 else ''} hidden to fit {width} columns: {', '.join(layout.hidden)}{hint}",
                style="dim",
            )
        for note in self.notes:
            yield Text(note)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(1, options.max_width)


def _name(column: FitColumn) -> str:
    return column.name or column.header.replace("\n", " ")


def _width(text: str) -> int:
    return max((cell_len(line) for line in text.split("\n")), default=0)


def shorten(replacements: Sequence[Tuple[str, str]]) -> Callable[[str], str]:
    """A ``short`` function for :class:`FitColumn` that applies the replacements in order."""

    def short(text: str) -> str:
        for old, new in replacements:
            text = text.replace(old, new)
        return text

    return short
