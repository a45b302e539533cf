"""Heartbeat timeouts: a client silent for heartbeat_misses intervals goes offline.

Silence is counted only while the master was running. A stall of the master itself (SIGSTOP, a
frozen VM, a long pause of the hub) leaves heartbeats waiting unread in the sockets, and the
first sweep after it would run before they are read: each sweep therefore measures how late it
is, and a sweep more than one interval late records the lateness as a stall, which is not held
against anyone. `run_once(now_mono)` does one sweep and returns the names it took offline, so
tests drive it with a fake clock; `start()` sweeps twice per heartbeat interval.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from .registry import ClientRegistry
from .ticker import Ticker

log = logging.getLogger(__name__)


class HeartbeatReaper:
    def __init__(
        self,
        registry: ClientRegistry,
        timeout_s: float,
        interval_s: float,
        mono: Callable[[], float],
        wall: Callable[[], float],
    ) -> None:
        self._registry = registry
        self._timeout_s = timeout_s
        self._interval_s = interval_s
        self._mono = mono
        self._wall = wall
        self._last_sweep: float | None = None
        # (monotonic time the stall ended, its length in seconds), oldest first
        self._stalls: deque[tuple[float, float]] = deque()
        self._ticker = Ticker("heartbeat reaper", interval_s, lambda: self.run_once(mono(), wall()))

    def run_once(self, now_mono: float, now_wall: float) -> list[str]:
        self._note_stall(now_mono)
        reaped = []
        for client in self._registry.online():
            silent_s = now_mono - client.last_heard
            if silent_s <= self._timeout_s:
                continue
            silent_s -= self.stalled_since(client.last_heard)
            if silent_s <= self._timeout_s:
                continue
            connection = client.connection
            reason = f"no heartbeat for {silent_s:.1f}s"
            self._registry.disconnect(client, connection, now_wall, reason)
            if connection is not None:
                connection.close(reason)
            reaped.append(client.name)
        return reaped

    def stalled_since(self, since_mono: float) -> float:
        """Seconds after `since_mono` during which the master did not run."""
        return sum(
            min(length, end - since_mono) for end, length in self._stalls if end > since_mono
        )

    def _note_stall(self, now_mono: float) -> None:
        last, self._last_sweep = self._last_sweep, now_mono
        if last is None:
            return
        late_s = now_mono - last - self._interval_s
        if late_s > self._interval_s:
            log.warning(
                "the master did not run for %.1fs (heartbeat sweep late): that silence is not "
                "held against any client",
                late_s,
            )
            self._stalls.append((now_mono, late_s))
        # A stall stops mattering once a client silent since before it would be over the
        # timeout on running time alone (the later stalls not counted).
        later_s = 0.0
        for index in range(len(self._stalls) - 1, -1, -1):
            end, length = self._stalls[index]
            if now_mono - end - later_s > self._timeout_s:
                for _ in range(index + 1):
                    self._stalls.popleft()
                break
            later_s += length

    def start(self) -> None:
        # The first sweep measures its lateness from here: a stall may come before it.
        self._last_sweep = self._mono()
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()
