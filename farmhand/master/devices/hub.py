"""The device hub assembled: meters, taps and pours, people, presence, readings, device states.

Agents report through `meter_update`, `token_update`, `reading` and `device_status`; the hub
keeps presence (who is at which reader) and ticks time with `run_once(now, now_mono)`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from models.devicestore import DeviceStore, PourRecord
from protocol.times import iso_utc

from ..events import EventBus
from ..registry import ClientRegistry, RuntimeClient
from ..ticker import Ticker
from .alerts import AlertBoard
from .corrections import PourCorrections
from .meters import MeterTracker
from .people import People, normalise_token
from .readings import ReadingSink
from .stats import DRINK_SESSION_GAP_S, PourStats
from .taps import AUTH_TIMEOUT_S, CAPTIVE_READERS, TapBoard

log = logging.getLogger(__name__)

TICK_S = 0.25
RECENT_EVENTS = 1000
# At start every stored pour is replayed once into the stats (farmhand/master/devices/stats.py).
ALL_POURS = 1 << 62


class DeviceHub:
    def __init__(
        self,
        store: DeviceStore,
        registry: ClientRegistry,
        events: EventBus,
        wall: Callable[[], float],
        mono: Callable[[], float],
        drink_session_gap_s: float = DRINK_SESSION_GAP_S,
    ) -> None:
        self.store = store
        self.events = events
        self.wall = wall
        self.mono = mono
        self.meters = MeterTracker()
        self.people = People(store)
        self.taps = TapBoard(store, self.people, registry, events)
        self.readings = ReadingSink(store, events)
        self.registry = registry
        self.alerts = AlertBoard(store, events, self._heard_from)
        self.readings.watch(self.alerts.by_sensor, self.alerts.reading)
        self.stats = PourStats(drink_session_gap_s)
        self.taps.pour_watchers.append(self._count_pour)
        self.corrections = PourCorrections(store, self.taps, self.people, self.stats, events)
        # (agent, reader) → who is there; `expires` (monotonic) for non-captive tokens
        self.presence: dict[tuple[str, str], dict[str, Any]] = {}
        # (agent, device) → {"online", "info", "since"}
        self.devices: dict[tuple[str, str], dict[str, Any]] = {}
        # Lines and events agents captured (the `tail` driver), newest last.
        self.recent_events: deque[dict[str, Any]] = deque(maxlen=RECENT_EVENTS)
        self._ticker = Ticker("device hub", TICK_S, lambda: self.run_once(wall(), mono()))

    def load(self) -> None:
        max_ids = self.store.max_ids()
        self.people.load(max_ids)
        self.taps.load(max_ids)
        self.stats.load(self.store.query_pours(limit=ALL_POURS))
        self.readings.load()
        self.alerts.load()

    def _count_pour(self, pour: PourRecord) -> None:
        sessions = len(self.stats.sessions)
        session = self.stats.add(pour)
        if len(self.stats.sessions) > sessions:
            self.events.notify("session.started", {"session": session.view()})

    def _heard_from(self, target: str, now: float) -> float | None:
        """When a silent rule's target was last heard (wall): a sensor, agent or agent.device."""
        reading = self.readings.latest.get(target)
        if reading is not None:
            return reading.time
        client = self.registry.get(target)
        if client is not None:
            return now if client.online else client.last_seen
        agent, _, device = target.partition(".")
        state = self.devices.get((agent, device))
        if state is not None:  # marked offline with its agent (client_changed)
            return now if state["online"] else float(state["since"])
        return None

    def start(self) -> None:
        self.readings.start()
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()
        self.readings.stop()

    def run_once(self, now: float, now_mono: float) -> None:
        self.taps.run_once(now, now_mono)
        self.alerts.run_once(now)
        for key, seen in list(self.presence.items()):
            if seen["expires"] is not None and seen["expires"] <= now_mono:
                del self.presence[key]
                self._publish_presence("left", key, seen)

    # -- registry watcher ----------------------------------------------------------------------
    def client_changed(self, client: RuntimeClient, change: str) -> None:
        if client.role not in ("hardware", "auth"):
            return
        if change == "online":
            self.meters.forget_agent(client.name)
            self.taps.agent_online(client.name)
        elif change == "offline":
            for key, state in self.devices.items():
                if key[0] == client.name and state["online"]:
                    state.update(online=False, since=self.wall())

    # -- reports from agents -------------------------------------------------------------------
    def meter_update(self, agent: str, meter: str, ticks: int) -> int:
        delta = self.meters.update(agent, meter, ticks)
        if delta:
            self.taps.meter_ticks(agent, meter, delta, self.wall(), self.mono())
        return delta

    def token_update(self, agent: str, reader: str, token: str, present: bool) -> str | None:
        reader, token = normalise_token(reader, token)
        now, now_mono = self.wall(), self.mono()
        if not present:
            self.taps.token_removed(agent, reader, token, now)
            if reader in CAPTIVE_READERS:
                seen = self.presence.pop((agent, reader), None)
                if seen is not None:
                    self._publish_presence("left", (agent, reader), seen)
            return None
        username = self.taps.token_present(agent, reader, token, now, now_mono)
        if username is None:
            if self.events.has_subscribers("presence"):
                self.events.publish(
                    "presence",
                    {"change": "unknown_token", "agent": agent, "reader": reader, "token": token},
                )
            return None
        captive = reader in CAPTIVE_READERS
        seen = {
            "username": username,
            "token": token,
            "since": now,
            "captive": captive,
            "expires": None if captive else now_mono + AUTH_TIMEOUT_S,
        }
        self.presence[(agent, reader)] = seen
        self._publish_presence("arrived", (agent, reader), seen)
        return username

    def device_status(self, agent: str, device: str, online: bool, info: dict[str, Any]) -> None:
        state = self.devices.get((agent, device))
        if state is None or state["online"] != online:
            log.info("device %s of %s is %s", device, agent, "online" if online else "offline")
        self.devices[(agent, device)] = {"online": online, "info": info, "since": self.wall()}

    def event_report(self, agent: str, source: str, text: str, fields: dict[str, Any]) -> None:
        event = {
            "agent": agent,
            "source": source,
            "text": text,
            "fields": fields,
            "time": iso_utc(self.wall()),
        }
        self.recent_events.append(event)
        if self.events.has_subscribers("events"):
            self.events.publish("events", event)

    def _publish_presence(self, change: str, key: tuple[str, str], seen: dict[str, Any]) -> None:
        if self.events.has_subscribers("presence"):
            self.events.publish("presence", {"change": change, **presence_view(key, seen)})

    # -- views ---------------------------------------------------------------------------------
    def presence_list(self) -> list[dict[str, Any]]:
        return [presence_view(key, seen) for key, seen in sorted(self.presence.items())]

    def device_list(self) -> list[dict[str, Any]]:
        return [
            {
                "agent": agent,
                "device": device,
                "online": state["online"],
                "info": state["info"],
                "since": iso_utc(state["since"]),
            }
            for (agent, device), state in sorted(self.devices.items())
        ]

    def status(self) -> dict[str, Any]:
        return {
            "taps": len(self.taps.taps),
            "users": len(self.people.users),
            "readings_accepted": self.readings.accepted_total,
            "readings_dropped": self.readings.dropped_total,
            "readings_stored": self.readings.stored_total,
            "pours_recorded": self.taps.pours_total,
        }


def presence_view(key: tuple[str, str], seen: dict[str, Any]) -> dict[str, Any]:
    return {
        "agent": key[0],
        "reader": key[1],
        "username": seen["username"],
        "token": seen["token"],
        "captive": seen["captive"],
        "since": iso_utc(seen["since"]),
    }
