"""A greenlet that calls a function at a fixed interval: the loop behind every service whose
logic lives in a `run_once(now)` that tests call directly."""

from __future__ import annotations

import logging
from collections.abc import Callable

import gevent

from models.health import DatabaseUnavailable

log = logging.getLogger(__name__)


class Ticker:
    """`Ticker("reaper", 2.5, reaper_tick).start()`; an exception in a tick is logged and the
    next tick runs anyway, so one bad moment never stops a housekeeping loop for good. A tick
    that met a database outage is retried quietly: the store logs the outage once, not every
    loop each second."""

    def __init__(self, name: str, interval_s: float, tick: Callable[[], object]) -> None:
        self.name = name
        self.interval_s = interval_s
        self.tick = tick
        self._loop: gevent.Greenlet | None = None

    def start(self) -> None:
        if self._loop is None:
            self._loop = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.kill()
            self._loop = None

    def _run(self) -> None:
        while True:
            gevent.sleep(self.interval_s)
            try:
                self.tick()
            except DatabaseUnavailable as exc:
                log.debug("%s: tick skipped: %s", self.name, exc)
            except Exception:
                log.exception("%s: tick failed", self.name)
