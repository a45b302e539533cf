"""Write-behind for runtime clients: dirty clients are saved in batches, one transaction each.

`run_once()` is one flush (tests call it directly); `start()` runs it every save_interval_s.
A failed save puts the records back so the next flush retries them: nothing is lost.
"""

from __future__ import annotations

import logging

from models.store import Store

from .registry import ClientRegistry
from .ticker import Ticker

log = logging.getLogger(__name__)


class ClientSaver:
    def __init__(self, registry: ClientRegistry, store: Store, interval_s: float) -> None:
        self._registry = registry
        self._store = store
        self._interval_s = interval_s
        self._ticker = Ticker("client saver", interval_s, self.run_once)

    def run_once(self) -> int:
        records = self._registry.take_dirty()
        if not records:
            return 0
        try:
            self._store.save_clients(records)
        except Exception:
            log.exception("saving %d clients failed; will retry", len(records))
            self._registry.mark_dirty(records)
            return 0
        log.debug("saved %d clients", len(records))
        return len(records)

    def save_all(self) -> int:
        """Every runtime client in one transaction (at shutdown)."""
        records = self._registry.all_records()
        self._registry.take_dirty()
        self._store.save_clients(records)
        return len(records)

    def start(self) -> None:
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()
