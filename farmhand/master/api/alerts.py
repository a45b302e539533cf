"""Sensor places and alert rules (Fermentrack's alerts): a sensor above or below a value for N
minutes, or a sensor, agent or device not heard from for N minutes, raises `sensor.alert`."""

from __future__ import annotations

from typing import Any

from ..devices.alerts import KINDS, place_view, rule_view
from ..devices.readings import reading_view
from ..services import Services
from ..session import Session
from .base import Access, Args, Method, collector, integer, number, string

METHODS: list[Method] = []
method = collector(METHODS)


@method(
    "alerts.create",
    Access.ADMIN,
    writes=True,
    params=(
        string("kind", f"one of {', '.join(KINDS)}", max_length=16),
        string("target", "the sensor (silent: or an agent, or agent.device)", max_length=500),
        number("value", "the limit (above and below only)", None),
        number("minutes", "how long before the alert is raised", minimum=0, maximum=43200),
    ),
)
def alerts_create(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Add an alert rule: a sensor above/below a value, or a target silent, for N minutes."""
    alerts = services.devices.alerts
    rule = alerts.create(
        p["kind"], p["target"], p["value"], p["minutes"] * 60.0, services.clock.wall()
    )
    return rule_view(rule)


@method("alerts.list", Access.READ)
def alerts_list(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Every alert rule with its state, and the raised ones (`active`)."""
    alerts = services.devices.alerts
    rules = [rule_view(alerts.rules[rule_id]) for rule_id in sorted(alerts.rules)]
    return {"rules": rules, "active": [rule for rule in rules if rule["alerting"]]}


@method(
    "alerts.delete",
    Access.ADMIN,
    writes=True,
    params=(integer("id", "the rule's id", minimum=1),),
)
def alerts_delete(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Remove an alert rule (a raised one is cleared)."""
    return rule_view(services.devices.alerts.delete(p["id"], services.clock.wall()))


@method(
    "sensors.place",
    Access.ADMIN,
    writes=True,
    params=(
        string("sensor", "the sensor's name", max_length=64),
        string("tap", "the tap it measures", None, max_length=64),
        string("fridge", "the fridge it is in", None, max_length=64),
    ),
)
def sensors_place(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Say where a sensor is: at a tap, in a fridge (neither: forget its place)."""
    sensor, tap, fridge = p["sensor"], p["tap"], p["fridge"]
    if tap is not None:
        services.devices.taps.tap(tap)  # -32004 for an unknown tap
    services.devices.alerts.place(sensor, tap, fridge, services.clock.wall())
    place = services.devices.alerts.places.get(sensor)
    return place_view(place) if place else {"sensor": sensor, "tap": None, "fridge": None}


@method("sensors.list", Access.READ)
def sensors_list(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Every sensor placed or heard from: its place, latest reading and raised alerts."""
    devices = services.devices
    latest, places = devices.readings.latest, devices.alerts.places
    views = []
    for sensor in sorted(set(latest) | set(places)):
        place = places.get(sensor)
        reading = latest.get(sensor)
        views.append(
            {
                "sensor": sensor,
                "tap": place.tap if place else None,
                "fridge": place.fridge if place else None,
                "latest": reading_view(reading) if reading else None,
                "alerts": [
                    rule_view(rule)
                    for rule in devices.alerts.by_sensor.get(sensor, ())
                    if rule.alerting
                ],
            }
        )
    return {"sensors": views}
