"""Write-behind for runtime clients: dirty clients are saved in batches, one transaction each.

`run_once()` is the ticker's flush, every save_interval_s (tests call it directly); `flush()` is
the same for a caller that must know, the write barrier: it raises when the save failed.
Flushes take turns, so one that returns has seen every earlier change stored. A failed save
puts the clients back so the next flush retries them: nothing is lost. While the database is
down the Store refuses at once and logs the outage itself, so the saver stays quiet.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from gevent.lock import BoundedSemaphore

from models.health import DatabaseUnavailable
from models.store import Store
from protocol.backoff import Backoff

from .registry import ClientRegistry
from .ticker import Ticker

log = logging.getLogger(__name__)

# After an unexpected error (a bug, not an outage) the saver waits this long at most.
MAX_RETRY_S = 30.0


class ClientSaver:
    def __init__(
        self,
        registry: ClientRegistry,
        store: Store,
        interval_s: float,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._store = store
        self._interval_s = interval_s
        self._mono = mono
        self._turn = BoundedSemaphore()
        self._backoff = Backoff(initial_s=max(interval_s, 0.1), maximum_s=MAX_RETRY_S)
        self._retry_at = 0.0
        self._writing = 0
        self._ticker = Ticker("client saver", interval_s, self.run_once)

    @property
    def pending(self) -> int:
        """Clients not stored yet, those being written now included."""
        return self._registry.dirty_count + self._writing

    def flush(self) -> int:
        """Save every dirty client now; raise (clients kept dirty) when the save fails."""
        with self._turn:
            records = self._registry.take_dirty()
            if not records:
                return 0
            self._writing = len(records)
            try:
                self._store.save_clients(records)
            except BaseException:  # a timeout of the waiting caller too: retried next flush
                self._registry.mark_dirty(records)
                raise
            finally:
                self._writing = 0
        log.debug("saved %d clients", len(records))
        return len(records)

    def run_once(self, now: float | None = None) -> int:
        now = self._mono() if now is None else now
        if now < self._retry_at:
            return 0
        try:
            saved = self.flush()
        except DatabaseUnavailable:
            return 0  # the Store logs the outage once; the next tick asks again, cheaply
        except Exception:
            delay = self._backoff.next_delay()
            log.exception("saving clients failed; retrying in %.1f s", delay)
            self._retry_at = now + delay
            return 0
        self._backoff.reset()
        return saved

    def save_all(self) -> int:
        """Every runtime client in one transaction (at shutdown); raises when it fails, with
        the clients that had changes still marked dirty."""
        with self._turn:
            records = self._registry.all_records()
            dirty = self._registry.take_dirty()
            try:
                self._store.save_clients(records)
            except BaseException:
                self._registry.mark_dirty(dirty)
                raise
        return len(records)

    def start(self) -> None:
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()
