"""matplotlib set up once: the file-only backend (no display on servers and Jetsons over ssh) and
an atomic PNG save, so a killed run never leaves half a figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

from fer_edge.core.atomic import atomic_path


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (imported on first use: matplotlib is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, target: Union[str, Path], dpi: int = 110, fmt: Optional[str] = "png") -> Path:
    """Write ``fig`` atomically (``fmt=None``: in the format the suffix names, PNG where it names none),
    then close it."""
    target = Path(target)
    try:
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt or target.suffix.lstrip(".").lower() or "png", dpi=dpi)
    finally:
        pyplot().close(fig)
    return target
