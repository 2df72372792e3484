"""What a camera left running shows: on a terminal, one status line kept up to date in place; in a
service or a log file, a line per interval. Lines that matter (a window closed, a problem) are
printed above the status line and stay.

``to_sync`` is a hook for the forwarder to the central database: a callable returning how many
windows wait to be sent (None when there is no sync); it is shown on the status line.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import Optional, TextIO

CLEAR_LINE = "\r\x1b[2K"


class StatusLine:
    def __init__(
        self,
        stream: Optional[TextIO] = None,
        is_tty: Optional[bool] = None,
        refresh_s: float = 0.5,
        to_sync: Callable[[], Optional[int]] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.is_tty = self.stream.isatty() if is_tty is None else is_tty
        self.refresh_s = refresh_s
        self.to_sync = to_sync
        self._clock = clock
        self._shown = ""  # the status line now on the terminal
        self._next_refresh = 0.0

    def windows(self, written: int, held: int) -> str:
        """``windows 12 written, 3 held, 40 to sync``: held (log not writable) and to sync when any."""
        text = f"windows {written} written" + (f", {held} held" if held else "")
        waiting = self.to_sync()
        return text if waiting is None else f"{text}, {waiting} to sync"

    def _fit(self, text: str) -> str:
        # A status line that wraps cannot be redrawn in place: cut it to the terminal's width.
        width = shutil.get_terminal_size((100, 24)).columns
        return text if len(text) < width else text[: max(width - 4, 1)] + "..."

    def _draw(self, text: str) -> None:
        self._shown = self._fit(text)
        self.stream.write(CLEAR_LINE + self._shown)
        self.stream.flush()

    def message(self, text: str) -> None:
        """A line that stays (a closed window, a problem): above the status line on a terminal."""
        if self.is_tty and self._shown:
            self.stream.write(CLEAR_LINE + text + "\n" + self._shown)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def live(self, text: Callable[[], str]) -> None:
        """Called every frame: redraws the terminal's status line at most every ``refresh_s``; nothing
        without a terminal (``text`` is only built when it is shown)."""
        if not self.is_tty:
            return
        now = self._clock()
        if now >= self._next_refresh:
            self._next_refresh = now + self.refresh_s
            self._draw(text())

    def periodic(self, text: str) -> None:
        """Once per stats interval: a line in a log, the status line on a terminal."""
        if self.is_tty:
            self._draw(text)
        else:
            self.message(text)

    def close(self) -> None:
        """Clears the terminal's status line: what follows (the run's summary) is plain lines."""
        if self.is_tty and self._shown:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
            self._shown = ""
