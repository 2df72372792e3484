"""One backoff for every retry loop: the camera's reconnect, the mood log's held windows, the
forwarder to the central database.

Delays start at ``first`` and double up to ``cap``. ``jitter`` spreads each delay by up to that
fraction either way, so many devices that lost one server do not all come back in the same second;
without it the delays are exact, which the fake-clock tests rely on. ``wait`` is the way out: it
returns at once when the stop event is set (a signal handler sets it), never after a full delay.
"""

from __future__ import annotations

import random
import threading
from typing import Callable, Optional


class Backoff:
    """``next()`` gives the delay to wait now and doubles the one after it; ``reset()`` after a success."""

    def __init__(
        self,
        first: float = 0.5,
        cap: float = 60.0,
        jitter: float = 0.0,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        if not (0.0 < first <= cap) or not 0.0 <= jitter < 1.0:
            raise ValueError(f"bad backoff: first {first}, cap {cap}, jitter {jitter}")
        self.first, self.cap, self.jitter = first, cap, jitter
        self._uniform = uniform
        self.delay = first  # the next delay, before jitter

    def reset(self) -> None:
        self.delay = self.first

    def next(self) -> float:
        current = self.delay
        if self.jitter:
            current *= self._uniform(1.0 - self.jitter, 1.0 + self.jitter)
        self.delay = min(self.delay * 2, self.cap)
        return min(current, self.cap)

    def wait(self, stop: Optional[threading.Event] = None) -> bool:
        """Sleep the next delay, or less when ``stop`` is set meanwhile; True when stopped."""
        event = stop if stop is not None else threading.Event()
        return event.wait(self.next())
