"""Taps, kegs and the Life of a Pour.

Theory of operation. A tap maps one meter (`<agent>.<meter>`) to millilitres, and may own a
valve (`<agent>.<output>`). A token presented at a reader of one of the tap's auth agents
authorises its owner at the tap and opens the valve. Meter ticks then accumulate into the tap's
flow; a flow that starts without anyone authorised is anonymous and is taken over by the first
person who authenticates while it runs. The flow ends when the meter has been idle for `idle_s`,
or when a captive token (an iButton: `core.onewire`) is lifted. Then the valve closes and, if at
least 10 ml went through, a pour is recorded for the user (or the guest) and the keg on the tap
loses its volume. A captive token still on its reader keeps its owner at the tap, so a later
flow is theirs too, until it is lifted. `run_once(now_mono)` ends idle flows and expired
authorisations, so tests drive time without sleeping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from models.devicestore import DeviceStore, KegRecord, PourRecord, TapRecord
from protocol.errors import conflict, invalid_params, not_found
from protocol.times import iso_utc

from ..events import EventBus
from ..registry import ClientRegistry
from .beverages import srm_colour
from .levels import notify_levels
from .people import People

log = logging.getLogger(__name__)

MIN_POUR_ML = 10.0
CAPTIVE_READERS = ("core.onewire",)
# An authorisation without any flow lapses after this long (Kegbot closes the valve too).
AUTH_TIMEOUT_S = 30.0


@dataclass
class Flow:
    tap: str
    username: str | None
    start: float
    last_tick_mono: float
    ticks: int = 0


@dataclass
class Tap:
    rec: TapRecord
    keg: KegRecord | None = None
    flow: Flow | None = None
    # Who is authorised here now, and until when (monotonic) if no flow keeps it alive.
    user: str | None = None
    reader: tuple[str, str] | None = None
    auth_expires: float = 0.0
    valve_open: bool = False
    readers: set[str] = field(default_factory=set)

    @property
    def meter_agent(self) -> str:
        return self.rec.meter.split(".", 1)[0]

    @property
    def auth_agents(self) -> list[str]:
        return self.rec.auth_agents or [self.meter_agent]


def split_endpoint(text: str, what: str) -> tuple[str, str]:
    agent, sep, name = text.partition(".")
    if not sep or not agent or not name:
        raise invalid_params(
            f"{what} must read <agent>.<name>, e.g. keg1.flow0, not {text!r}", f"bad_{what}"
        )
    return agent, name


class TapBoard:
    def __init__(
        self, store: DeviceStore, people: People, registry: ClientRegistry, events: EventBus
    ) -> None:
        self.store = store
        self.people = people
        self.registry: ClientRegistry = registry
        self.events = events
        self.taps: dict[str, Tap] = {}
        self._by_meter: dict[tuple[str, str], Tap] = {}
        self._next_keg_id = 1
        self._next_pour_id = 1
        self.pours_total = 0
        # Told of every recorded pour, after it is stored (the stats and sessions).
        self.pour_watchers: list[Callable[[PourRecord], object]] = []

    def load(self, max_ids: dict[str, int]) -> None:
        for rec in self.store.load_taps():
            self._add(Tap(rec))
        for keg in self.store.load_kegs(active_only=True):
            if keg.tap in self.taps:
                self.taps[keg.tap].keg = keg
        self._next_keg_id = max_ids.get("keg", 0) + 1
        self._next_pour_id = max_ids.get("pour", 0) + 1

    def _add(self, tap: Tap) -> None:
        self.taps[tap.rec.name] = tap
        self._by_meter[split_endpoint(tap.rec.meter, "meter")] = tap

    def tap(self, name: str) -> Tap:
        tap = self.taps.get(name)
        if tap is None:
            raise not_found(f"no tap {name!r}", "no_such_tap")
        return tap

    # -- configuration -------------------------------------------------------------------------
    def configure(self, rec: TapRecord) -> Tap:
        split_endpoint(rec.meter, "meter")
        if rec.output is not None:
            split_endpoint(rec.output, "output")
        old = self.taps.get(rec.name)
        if old is not None:
            self._by_meter.pop(split_endpoint(old.rec.meter, "meter"), None)
        clash = self._by_meter.get(split_endpoint(rec.meter, "meter"))
        if clash is not None and clash.rec.name != rec.name:
            if old is not None:
                self._add(old)
            raise conflict(
                f"meter {rec.meter} already belongs to tap {clash.rec.name!r}", "meter_in_use"
            )
        self.store.save_tap(rec)
        tap = old or Tap(rec)
        tap.rec = rec
        self._add(tap)
        log.info(
            "tap %s: meter %s, %.3f ticks/ml, valve %s, idle %.0fs",
            rec.name,
            rec.meter,
            rec.ticks_per_ml,
            rec.output or "none",
            rec.idle_s,
        )
        return tap

    def start_keg(
        self, tap_name: str, beverage: str, volume_ml: float, now: float, **more: Any
    ) -> KegRecord:
        """Put a keg on the tap; `more`: the beverage's abv, style, ibu, srm, size and image."""
        tap = self.tap(tap_name)
        if tap.keg is not None:
            raise conflict(
                f"tap {tap_name!r} already has keg {tap.keg.id} ({tap.keg.beverage}); end it first",
                "keg_on_tap",
            )
        keg = KegRecord(
            id=self._next_keg_id,
            tap=tap_name,
            beverage=beverage,
            volume_ml=volume_ml,
            poured_ml=0.0,
            started=now,
            ended=None,
            **more,
        )
        self.store.save_keg(keg)
        self._next_keg_id += 1
        tap.keg = keg
        log.info("keg %d (%s, %.0f ml) started on tap %s", keg.id, beverage, volume_ml, tap_name)
        return keg

    def end_keg(self, tap_name: str, now: float) -> KegRecord:
        tap = self.tap(tap_name)
        if tap.keg is None:
            raise conflict(f"tap {tap_name!r} has no keg", "no_keg")
        keg, tap.keg = tap.keg, None
        keg.ended = now
        self.store.save_keg(keg)
        log.info(
            "keg %d ended on tap %s with %.0f ml left",
            keg.id,
            tap_name,
            keg.volume_ml - keg.poured_ml,
        )
        self.events.notify("keg.ended", {"keg": keg_view(keg), "tap": tap_name, "reason": "ended"})
        return keg

    # -- events from agents --------------------------------------------------------------------
    def meter_ticks(self, agent: str, meter: str, delta: int, now: float, now_mono: float) -> None:
        tap = self._by_meter.get((agent, meter))
        if tap is None or delta <= 0:
            return
        if tap.flow is None:
            user = tap.user if tap.user is not None else None
            tap.flow = Flow(tap.rec.name, user, now, now_mono)
            log.info("tap %s: flow started (%s)", tap.rec.name, user or "guest")
        tap.flow.ticks += delta
        tap.flow.last_tick_mono = now_mono
        self._publish_flow(tap)

    def token_present(
        self, agent: str, reader: str, token: str, now: float, now_mono: float
    ) -> str | None:
        """Authorise the token's owner at the agent's taps; returns the username or None."""
        user = self.people.owner(reader, token)
        if user is None:
            seen = self.people.note_unknown(reader, token, agent, now)
            log.warning(
                "unknown token %s at %s.%s (seen %d times): nothing opened; assign it "
                "with tokens.assign",
                token,
                agent,
                reader,
                seen["count"],
            )
            return None
        for tap in self._taps_of(agent):
            if tap.flow is not None and tap.flow.username not in (None, user.username):
                self.end_flow(tap, now, "another user authenticated")
            if tap.flow is not None and tap.flow.username is None:
                tap.flow.username = user.username
                log.info("tap %s: anonymous flow taken over by %s", tap.rec.name, user.username)
            tap.user = user.username
            tap.reader = (agent, reader)
            tap.auth_expires = now_mono + max(AUTH_TIMEOUT_S, tap.rec.idle_s)
            self._set_valve(tap, True)
        log.info("%s present at %s.%s", user.username, agent, reader)
        return user.username

    def token_removed(self, agent: str, reader: str, token: str, now: float) -> None:
        if reader not in CAPTIVE_READERS:
            return  # RFID cards report removal at once: the session lasts until the flow ends
        user = self.people.owner(reader, token)
        for tap in self._taps_of(agent):
            if tap.reader == (agent, reader) and (user is None or tap.user == user.username):
                if tap.flow is not None:
                    self.end_flow(tap, now, "token removed")
                self._end_session(tap)

    def agent_online(self, agent: str) -> None:
        """Re-send valve states to an agent that (re)connected."""
        for tap in self.taps.values():
            if tap.valve_open and tap.rec.output and tap.rec.output.startswith(agent + "."):
                self._send_output(tap, True)

    # -- time ----------------------------------------------------------------------------------
    def run_once(self, now: float, now_mono: float) -> list[str]:
        ended = []
        for tap in self.taps.values():
            if tap.flow is not None and now_mono - tap.flow.last_tick_mono >= tap.rec.idle_s:
                self.end_flow(tap, now, f"idle for {tap.rec.idle_s:.0f}s")
                ended.append(tap.rec.name)
            elif tap.flow is None and tap.user is not None and now_mono >= tap.auth_expires:
                if tap.valve_open or not _captive(tap):
                    log.info("tap %s: %s did not pour; closing", tap.rec.name, tap.user)
                self._close_session(tap)
        return ended

    def end_flow(self, tap: Tap, now: float, reason: str) -> PourRecord | None:
        flow, tap.flow = tap.flow, None
        self._close_session(tap)
        if flow is None:
            return None
        volume = flow.ticks / tap.rec.ticks_per_ml
        if volume < MIN_POUR_ML:
            log.info(
                "tap %s: flow of %.1f ml ended (%s): under %.0f ml, not recorded",
                tap.rec.name,
                volume,
                reason,
                MIN_POUR_ML,
            )
            self._publish_flow(tap)
            return None
        pour = PourRecord(
            id=self._next_pour_id,
            tap=tap.rec.name,
            keg_id=tap.keg.id if tap.keg else None,
            username=flow.username,
            ticks=flow.ticks,
            volume_ml=round(volume, 1),
            start=flow.start,
            end=now,
        )
        self._next_pour_id += 1
        poured_before = tap.keg.poured_ml if tap.keg is not None else 0.0
        if tap.keg is not None:
            tap.keg.poured_ml += pour.volume_ml
        self.store.record_pour(pour, tap.keg)
        self.pours_total += 1
        for watcher in self.pour_watchers:
            watcher(pour)
        self.events.notify("pour", {"pour": pour_view(pour), "tap": tap_view(tap)})
        if tap.keg is not None:
            notify_levels(self.events, tap.keg, poured_before, keg_view(tap.keg))
        log.info(
            "pour %d: %.1f ml on tap %s by %s (%s)",
            pour.id,
            pour.volume_ml,
            tap.rec.name,
            pour.username or "guest",
            reason,
        )
        if self.events.has_subscribers("pours"):
            self.events.publish("pours", {"pour": pour_view(pour), "tap": tap_view(tap)})
        return pour

    def _close_session(self, tap: Tap) -> None:
        """Close the valve. A captive token still sitting on its reader keeps its owner at the
        tap (a later flow is theirs) until it is lifted; other sessions end here."""
        if _captive(tap):
            self._set_valve(tap, False)
        else:
            self._end_session(tap)

    def _end_session(self, tap: Tap) -> None:
        tap.user = None
        tap.reader = None
        self._set_valve(tap, False)

    def _taps_of(self, agent: str) -> list[Tap]:
        return [tap for tap in self.taps.values() if agent in tap.auth_agents]

    def _set_valve(self, tap: Tap, on: bool) -> None:
        if tap.rec.output is None or tap.valve_open == on:
            return
        tap.valve_open = on
        self._send_output(tap, on)

    def _send_output(self, tap: Tap, on: bool) -> None:
        assert tap.rec.output is not None
        agent, output = split_endpoint(tap.rec.output, "output")
        client = self.registry.get(agent)
        if client is None or not client.online or client.connection is None:
            log.warning(
                "tap %s: valve %s should be %s but %s is offline",
                tap.rec.name,
                tap.rec.output,
                "open" if on else "closed",
                agent,
            )
            return
        log.info("tap %s: valve %s %s", tap.rec.name, tap.rec.output, "open" if on else "closed")
        client.connection.call_async(
            "output.set",
            {"output": output, "on": on},
            lambda result, error: _log_refusal(tap, error),
        )

    def _publish_flow(self, tap: Tap) -> None:
        if self.events.has_subscribers("pours"):
            self.events.publish("pours", {"flow": flow_view(tap), "tap": tap_view(tap)})


def _captive(tap: Tap) -> bool:
    return tap.reader is not None and tap.reader[1] in CAPTIVE_READERS


def _log_refusal(tap: Tap, error: Any) -> None:
    if error is not None:
        log.warning("tap %s: output.set refused: %s", tap.rec.name, error.message)


def keg_view(keg: KegRecord | None) -> dict[str, Any] | None:
    if keg is None:
        return None
    return {
        "id": keg.id,
        "tap": keg.tap,
        "beverage": keg.beverage,
        "volume_ml": keg.volume_ml,
        "poured_ml": round(keg.poured_ml, 1),
        "remaining_ml": round(max(0.0, keg.volume_ml - keg.poured_ml), 1),
        "started": iso_utc(keg.started),
        "ended": iso_utc(keg.ended),
        "abv": keg.abv,
        "style": keg.style,
        "ibu": keg.ibu,
        "srm": keg.srm,
        "srm_colour": srm_colour(keg.srm),
        "size": keg.size or None,
        "image": keg.image,
    }


def flow_view(tap: Tap) -> dict[str, Any] | None:
    flow = tap.flow
    if flow is None:
        return None
    return {
        "tap": flow.tap,
        "username": flow.username,
        "ticks": flow.ticks,
        "volume_ml": round(flow.ticks / tap.rec.ticks_per_ml, 1),
        "start": iso_utc(flow.start),
    }


def tap_view(tap: Tap) -> dict[str, Any]:
    return {
        "name": tap.rec.name,
        "meter": tap.rec.meter,
        "ticks_per_ml": tap.rec.ticks_per_ml,
        "output": tap.rec.output,
        "idle_s": tap.rec.idle_s,
        "auth_agents": tap.auth_agents,
        "keg": keg_view(tap.keg),
        "flow": flow_view(tap),
        "user": tap.user,
        "valve_open": tap.valve_open,
    }


def pour_view(pour: PourRecord) -> dict[str, Any]:
    return {
        "id": pour.id,
        "tap": pour.tap,
        "keg_id": pour.keg_id,
        "username": pour.username,
        "ticks": pour.ticks,
        "volume_ml": pour.volume_ml,
        "start": iso_utc(pour.start),
        "end": iso_utc(pour.end),
        "spill": bool(pour.spill),
        "canceled": bool(pour.canceled),
    }
