"""Sensor readings: range-checked, kept as the latest value per sensor, stored in batches.

A reading outside its kind's plausible range (a thermometer saying 4000 °C) is logged and
dropped. Accepted readings wait in memory and are inserted together, one transaction per flush,
every FLUSH_INTERVAL_S or as soon as FLUSH_ROWS are waiting.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import gevent
from gevent.event import Event

from models.devicestore import DeviceStore, ReadingRecord
from models.health import DatabaseUnavailable
from protocol.errors import invalid_params
from protocol.times import iso_utc

from ..events import EventBus

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.2
FLUSH_ROWS = 5000
# Readings kept in memory while the database is failing, before the oldest are dropped.
MAX_PENDING = 500_000
# (low, high) per kind and unit; anything outside is a broken sensor, not weather.
PLAUSIBLE: dict[tuple[str, str], tuple[float, float]] = {
    ("temperature", "C"): (-80.0, 200.0),
    ("temperature", "F"): (-112.0, 392.0),
    ("temperature", "K"): (193.0, 473.0),
    ("humidity", "%"): (0.0, 100.0),
    ("humidity", "%RH"): (0.0, 100.0),
}


def check_plausible(kind: str, value: float, unit: str) -> str | None:
    """Why the value cannot be real, or None."""
    if not math.isfinite(value):
        return "not a finite number"
    bounds = PLAUSIBLE.get((kind, unit))
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        return f"outside {bounds[0]:g}..{bounds[1]:g} {unit}"
    return None


class ReadingSink:
    def __init__(self, store: DeviceStore, events: EventBus) -> None:
        self.store = store
        self.events = events
        self.latest: dict[str, ReadingRecord] = {}
        self._pending: list[ReadingRecord] = []
        self._writing = 0
        self._wanted = Event()
        self._loop: gevent.Greenlet | None = None
        self.accepted_total = 0
        self.dropped_total = 0
        self.stored_total = 0
        # Sensors someone watches (alert rules) and whom to tell of their readings.
        self._watched: Mapping[str, object] = {}
        self._on_watched: Callable[[str, float, float], None] | None = None

    def watch(
        self, watched: Mapping[str, object], on_reading: Callable[[str, float, float], None]
    ) -> None:
        """Call `on_reading(sensor, value, now)` for each accepted reading of a sensor that is
        in `watched` (a live mapping: its owner adds and removes sensors)."""
        self._watched, self._on_watched = watched, on_reading

    def load(self) -> None:
        self.latest = {reading.sensor: reading for reading in self.store.latest_readings()}

    def add(self, agent: str, sensor: str, kind: str, value: float, unit: str, now: float) -> None:
        problem = check_plausible(kind, value, unit)
        if problem is not None:
            self.dropped_total += 1
            log.warning("reading %s=%r %s from %s dropped: %s", sensor, value, unit, agent, problem)
            raise invalid_params(
                f"implausible {kind} {value!r} {unit}: {problem}", "implausible_reading"
            )
        reading = ReadingRecord(
            sensor=sensor, kind=kind, value=float(value), unit=unit, time=now, agent=agent
        )
        self.latest[sensor] = reading
        self._pending.append(reading)
        self.accepted_total += 1
        if len(self._pending) >= FLUSH_ROWS:
            self._wanted.set()
        if sensor in self._watched and self._on_watched is not None:
            self._on_watched(sensor, reading.value, now)
        if self.events.has_subscribers("readings"):
            self.events.publish("readings", reading_view(reading))

    @property
    def pending(self) -> int:
        """Readings not stored yet, those being written now included."""
        return len(self._pending) + self._writing

    def flush(self) -> int:
        batch, self._pending = self._pending, []
        if not batch:
            return 0
        self._writing += len(batch)
        try:
            self.store.insert_readings(batch)
        except Exception as exc:
            if not isinstance(exc, DatabaseUnavailable):  # an outage is logged by the Store
                log.exception("storing %d readings failed; will retry", len(batch))
            self._pending = (batch + self._pending)[-MAX_PENDING:]
            return 0
        finally:
            self._writing -= len(batch)
        self.stored_total += len(batch)
        return len(batch)

    def start(self) -> None:
        self._loop = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.kill()
            self._loop = None
        self.flush()

    def _run(self) -> None:
        while True:
            self._wanted.wait(timeout=FLUSH_INTERVAL_S)
            self._wanted.clear()
            self.flush()


def reading_view(reading: ReadingRecord) -> dict[str, Any]:
    return {
        "sensor": reading.sensor,
        "kind": reading.kind,
        "value": reading.value,
        "unit": reading.unit,
        "time": iso_utc(reading.time),
        "agent": reading.agent,
    }
