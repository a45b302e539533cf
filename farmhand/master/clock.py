"""The master's sense of time, passed in so that timeouts are testable without sleeping."""

from __future__ import annotations

import time


class Clock:
    """`wall()` for timestamps that are stored and shown; `mono()` for measuring intervals."""

    def wall(self) -> float:
        return time.time()

    def mono(self) -> float:
        return time.monotonic()


class FakeClock(Clock):
    """A clock that tests move by hand."""

    def __init__(self, wall: float = 1_700_000_000.0, mono: float = 1000.0) -> None:
        self._wall = wall
        self._mono = mono

    def wall(self) -> float:
        return self._wall

    def mono(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._wall += seconds
        self._mono += seconds
