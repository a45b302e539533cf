"""Heartbeat timeouts: a client silent for heartbeat_misses intervals goes offline.

`run_once(now_mono)` does one sweep and returns the names it took offline, so tests can drive
it with a fake clock; `start()` sweeps twice per heartbeat interval.
"""

from __future__ import annotations

import logging
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
        self._ticker = Ticker("heartbeat reaper", interval_s, lambda: self.run_once(mono(), wall()))

    def run_once(self, now_mono: float, now_wall: float) -> list[str]:
        reaped = []
        for client in self._registry.online():
            silent_s = now_mono - client.last_heard
            if silent_s <= self._timeout_s:
                continue
            connection = client.connection
            reason = f"no heartbeat for {silent_s:.1f}s"
            self._registry.disconnect(client, connection, now_wall, reason)
            if connection is not None:
                connection.close(reason)
            reaped.append(client.name)
        return reaped

    def start(self) -> None:
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()
