"""Options several commands take, declared once, and the range of every number a command takes.

Every numeric option is declared through :func:`number`, which requires its range (``min``/``max``,
or an open lower bound ``above``) and attaches one shared callback that checks it and refuses ``nan``
and ``inf``, so a new option cannot forget its range. A bad value is refused while the command line
is parsed, before any work, in one line (:class:`OneLineUsageErrors`). ``tests/test_option_ranges.py``
walks every command's numeric options with bad values.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional, Tuple, Type

import typer
from typer.core import TyperCommand
from typing_extensions import Annotated

# Upper bounds shared by several options: far above any real use, below what would exhaust the machine.
MAX_THREADS = 1024
MAX_BATCH = 4096  # as trt.profile.MAX_BATCH: a batch of 48x48 faces beyond this only tests the OOM killer
MAX_SEED = 2**32 - 1  # numpy's and torch's seed range
MAX_FRAME_SIDE = 16_384  # pixels: above any camera sensor
# Typer 0.29 vendors its own Click (typer._click); older Typers (Python 3.8) use click itself.
_USAGE_ERRORS: Tuple[Type[Exception], ...] = tuple(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError" and issubclass(c, Exception)
)
DAY_S = 86_400.0
YEAR_S = 366 * DAY_S


class OneLineUsageErrors(TyperCommand):
    """A bad option is one line on stderr (``error: Invalid value for '--lr': ...``), exit 2, as
    every other user error; Click's usage block and Typer's panel would bury it."""

    def make_context(self, info_name: Optional[str], args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except _USAGE_ERRORS as exc:
            typer.echo(f"error: {exc.format_message()}", err=True)  # type: ignore[attr-defined]
            raise typer.Exit(2) from None


class _Range:
    """``low <= value <= high`` (``low < value`` when ``open_low``), and finite."""

    def __init__(self, low: Optional[float], high: float, open_low: bool) -> None:
        self.low, self.high, self.open_low = low, high, open_low

    def describe(self) -> str:
        if self.low is None:
            return f"x<={self.high:.15g}"
        return f"{self.low:.15g}{'<' if self.open_low else '<='}x<={self.high:.15g}"

    def check(self, value: Any, name: str) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, float) and not math.isfinite(value):
            raise typer.BadParameter(f"must be a finite number, got {value}", param_hint=f"'{name}'")
        below = self.low is not None and (value <= self.low if self.open_low else value < self.low)
        if below or value > self.high:
            raise typer.BadParameter(f"{value:g} is not in the range {self.describe()}", param_hint=f"'{name}'")
        return value


def _range_callback(bounds: _Range) -> Any:
    def check(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
        name = (list(param.opts) or [param.name or "value"])[0]
        if isinstance(value, (list, tuple)):
            return type(value)(bounds.check(v, name) for v in value)
        return bounds.check(value, name)

    return check


def number(
    *param_decls: str,
    help: str,
    min: Optional[float] = None,
    max: float,
    above: Optional[float] = None,
    **kwargs: Any,
) -> Any:
    """A numeric option within ``min <= value <= max`` (``above < value`` for an open bound), and finite.

    ``max`` is required: an unbounded number is how ``bench --batch 1000000`` met the OOM killer. The
    shared callback checks the range itself (Typer's own ``min``/``max`` would call ``nan`` "not less
    than the maximum") and the help shows it.
    """
    bounds = _Range(above if above is not None else min, max, open_low=above is not None)
    return typer.Option(
        *param_decls, help=f"{help} [{bounds.describe()}]", callback=_range_callback(bounds), **kwargs
    )


def _batch_sizes(value: Optional[str]) -> Optional[str]:
    if value is None:
        return value
    for part in value.split(","):
        part = part.strip()
        if not part.lstrip("-").isdigit():
            continue  # not a number: bench.plan.parse_batches says so
        if int(part) < 1:
            raise typer.BadParameter(f"batch size must be at least 1, got {part}", param_hint="'--batch'")
        if int(part) > MAX_BATCH:
            raise typer.BadParameter(f"batch size {part} is above {MAX_BATCH}", param_hint="'--batch'")
    return value


# -- shared aliases -------------------------------------------------------------------------------
Data = Annotated[Path, typer.Option(help="fer2013.csv(.gz) or an image-folder tree (train/<class>/...).")]
OptionalData = Annotated[
    Optional[Path], typer.Option(help="fer2013.csv(.gz) or an image-folder tree (train/<class>/...).")
]
Votes = Annotated[Optional[Path], typer.Option(help="FERPlus votes file fer2013new.csv (for FERPlus).")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or tensorrt.")]
TorchDevice = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
Threads = Annotated[
    Optional[int], number(help="CPU threads (default: all cores).", min=1, max=MAX_THREADS)
]
Seed = Annotated[int, number(help="Random seed: same seed, same result.", min=0, max=MAX_SEED)]
BenchBatches = Annotated[
    str,
    typer.Option(
        "--batch", help=f"Batch sizes for throughput, comma-separated (each 1..{MAX_BATCH}).",
        callback=_batch_sizes,
    ),
]
