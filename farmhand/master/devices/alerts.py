"""Sensor places and alert rules (Fermentrack's and BrewPi's temperature alerts).

Theory of operation. A sensor can be placed at a tap, in a fridge, or both (the taps page shows
it there). An alert rule watches one target:

| kind     | target                        | raised when                                  |
|----------|-------------------------------|----------------------------------------------|
| `above`  | a sensor                      | its readings stay above `value` for `for_s`  |
| `below`  | a sensor                      | its readings stay below `value` for `for_s`  |
| `silent` | a sensor, agent or agent.dev  | nothing heard from it for `for_s`            |

A raised rule sends `sensor.alert` once, and `sensor.cleared` once it is back in range (a
reading inside the limit, or the target heard again). Readings of watched sensors reach
`reading(sensor, value, now)` straight from the ingest (one dict lookup for every other
sensor); `run_once(now)` raises the rules whose time ran out without a new reading and the
silent ones. Time is passed in, so tests drive it with the fake clock.

What counts as heard: a sensor's newest reading; an agent while it is online (its heartbeats),
else its last message; a device (`agent.device`) while its agent reports it online, else since
it went offline. A target never heard of counts from the rule's creation.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.devicestore import AlertRuleRecord, DeviceStore, SensorPlaceRecord
from protocol.errors import invalid_params, not_found
from protocol.times import iso_utc

from ..events import EventBus

log = logging.getLogger(__name__)

KINDS = ("above", "below", "silent")
MAX_FOR_S = 30 * 86400.0
# When a silent target was last heard (wall time) or None for never: the hub answers it.
HeardFrom = Callable[[str, float], float | None]


@dataclass(slots=True)
class Rule:
    rec: AlertRuleRecord
    out_since: float | None = None  # when the readings left the range (above/below)
    alerting: bool = False
    alert_since: float | None = None
    last_value: float | None = None
    # Copied from `rec` for the ingest's hot path: +limit above, -limit below (so one compare
    # of sign * value serves both), None for silent.
    sign: float = 0.0
    limit: float | None = None

    def __post_init__(self) -> None:
        if self.rec.kind != "silent" and self.rec.value is not None:
            self.sign = 1.0 if self.rec.kind == "above" else -1.0
            self.limit = self.sign * self.rec.value


class AlertBoard:
    def __init__(self, store: DeviceStore, events: EventBus, heard_from: HeardFrom) -> None:
        self.store = store
        self.events = events
        self.heard_from = heard_from
        self.rules: dict[int, Rule] = {}
        # sensor → its above/below/silent rules: the readings' ingest looks sensors up here.
        self.by_sensor: dict[str, list[Rule]] = {}
        self.places: dict[str, SensorPlaceRecord] = {}
        self._next_id = 1

    def load(self) -> None:
        self._next_id = self.store.max_rule_id() + 1
        self.places = {place.sensor: place for place in self.store.load_places()}
        for rec in self.store.load_rules():
            self._add(Rule(rec))

    def _add(self, rule: Rule) -> None:
        # A silent rule's target may be an agent or a device: then no sensor of that name
        # reads and the entry is never looked up.
        self.rules[rule.rec.id] = rule
        self.by_sensor.setdefault(rule.rec.target, []).append(rule)

    # -- configuration -------------------------------------------------------------------------
    def create(self, kind: str, target: str, value: float | None, for_s: float, now: float) -> Rule:
        if kind not in KINDS:
            raise invalid_params(
                f"kind must be one of {', '.join(KINDS)}, not {kind!r}", "bad_kind"
            )
        if not target.strip():
            raise invalid_params("an alert rule needs a target", "bad_target")
        if kind == "silent":
            value = None
        elif value is None or not math.isfinite(value):
            raise invalid_params(f"an {kind!r} rule needs a value", "missing_param")
        if not 0 <= for_s <= MAX_FOR_S:
            raise invalid_params("minutes must be 0 to 43200 (30 days)", "bad_minutes")
        rec = AlertRuleRecord(self._next_id, kind, target, value, for_s, now)
        self.store.save_rule(rec)
        self._next_id += 1
        rule = Rule(rec)
        self._add(rule)
        log.info("alert rule %d: %s", rec.id, describe(rec))
        return rule

    def delete(self, rule_id: int, now: float) -> Rule:
        rule = self.rules.get(rule_id)
        if rule is None:
            raise not_found(f"no alert rule {rule_id}", "no_such_rule")
        self.store.delete_rule(rule_id)
        del self.rules[rule_id]
        watchers = self.by_sensor.get(rule.rec.target, [])
        if rule in watchers:
            watchers.remove(rule)
            if not watchers:
                del self.by_sensor[rule.rec.target]
        if rule.alerting:
            self._clear(rule, now, "rule deleted")
        return rule

    def place(self, sensor: str, tap: str | None, fridge: str | None, now: float) -> None:
        if tap is None and fridge is None:
            self.store.delete_place(sensor)
            self.places.pop(sensor, None)
            return
        old = self.places.get(sensor)
        place = SensorPlaceRecord(sensor, tap, fridge, old.created if old else now)
        self.store.save_place(place)
        self.places[sensor] = place

    # -- evaluation ----------------------------------------------------------------------------
    def reading(self, sensor: str, value: float, now: float) -> None:
        """A watched sensor's new reading (called by the ingest)."""
        for rule in self.by_sensor.get(sensor, ()):
            rule.last_value = value
            limit = rule.limit
            if limit is None:  # silent
                if rule.alerting:
                    self._clear(rule, now, "heard again")
            elif rule.sign * value > limit:
                if rule.out_since is None:
                    rule.out_since = now
                if not rule.alerting and now - rule.out_since >= rule.rec.for_s:
                    self._raise(rule, now)
            else:
                rule.out_since = None
                if rule.alerting:
                    self._clear(rule, now, "back in range")

    def run_once(self, now: float) -> None:
        for rule in list(self.rules.values()):
            if rule.rec.kind != "silent":
                self._check_time(rule, now)
                continue
            heard = self.heard_from(rule.rec.target, now)
            since = rule.rec.created if heard is None else max(heard, rule.rec.created)
            if now - since >= rule.rec.for_s:
                if not rule.alerting:
                    self._raise(rule, now)
            elif rule.alerting:
                self._clear(rule, now, "heard again")

    def _check_time(self, rule: Rule, now: float) -> None:
        since = rule.out_since
        if not rule.alerting and since is not None and now - since >= rule.rec.for_s:
            self._raise(rule, now)

    def _raise(self, rule: Rule, now: float) -> None:
        rule.alerting, rule.alert_since = True, now
        log.warning("alert %d raised: %s", rule.rec.id, describe(rule.rec))
        self.events.notify("sensor.alert", rule_view(rule))

    def _clear(self, rule: Rule, now: float, why: str) -> None:
        rule.alerting, rule.alert_since = False, None
        log.info("alert %d cleared (%s): %s", rule.rec.id, why, describe(rule.rec))
        self.events.notify("sensor.cleared", {**rule_view(rule), "reason": why})

    # -- views ---------------------------------------------------------------------------------
    def active(self) -> list[dict[str, Any]]:
        return [rule_view(rule) for _, rule in sorted(self.rules.items()) if rule.alerting]

    def place_list(self) -> list[dict[str, Any]]:
        return [place_view(place) for _, place in sorted(self.places.items())]


def describe(rec: AlertRuleRecord) -> str:
    minutes = f"{rec.for_s / 60:g} min"
    if rec.kind == "silent":
        return f"{rec.target} not heard from for {minutes}"
    return f"{rec.target} {rec.kind} {rec.value:g} for {minutes}"


def rule_view(rule: Rule) -> dict[str, Any]:
    rec = rule.rec
    return {
        "id": rec.id,
        "kind": rec.kind,
        "target": rec.target,
        "value": rec.value,
        "minutes": round(rec.for_s / 60, 3),
        "summary": describe(rec),
        "alerting": rule.alerting,
        "since": iso_utc(rule.alert_since),
        "last_value": rule.last_value,
        "created": iso_utc(rec.created),
    }


def place_view(place: SensorPlaceRecord) -> dict[str, Any]:
    return {"sensor": place.sensor, "tap": place.tap, "fridge": place.fridge}
