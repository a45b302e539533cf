"""Device methods: reports from hardware and auth agents (meter.update, reading, token.update,
device.status), taps and kegs, readings and devices."""

from __future__ import annotations

from typing import Any

from models.devicestore import TapRecord
from protocol.errors import ErrorCode, RpcError, invalid_params
from protocol.times import parse_iso_utc

from ..devices.readings import reading_view
from ..devices.taps import keg_view, tap_view
from ..params import Params
from ..services import Services
from ..session import Session
from .base import Access, method

DEVICE_ROLES = ("hardware", "auth")


def _agent(session: Session) -> str:
    client = session.client
    if client is None or client.role not in DEVICE_ROLES:
        raise RpcError(
            ErrorCode.CONFLICT, "only hardware and auth agents report devices", "not_a_device_agent"
        )
    return client.name


@method("meter.update", Access.AGENT, agents=DEVICE_ROLES)
def meter_update(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Agent: a meter's running tick total."""
    meter = p.text("meter", max_length=64)
    ticks = p.integer("ticks", minimum=0)
    p.finish()
    return {"delta": services.devices.meter_update(_agent(session), meter, ticks)}


@method("reading", Access.AGENT, agents=DEVICE_ROLES)
def reading(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Agent: one sensor reading (range-checked, stored in batches)."""
    sensor = p.text("sensor", max_length=64)
    kind = p.text("kind", "value", max_length=32)
    value = p.number("value")
    unit = p.text("unit", "", max_length=16)
    p.finish()
    services.devices.readings.add(_agent(session), sensor, kind, value, unit, services.clock.wall())
    return {}


@method("token.update", Access.AGENT, agents=DEVICE_ROLES)
def token_update(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Agent: a token arrived at or left a reader."""
    reader = p.text("reader", max_length=64)
    token = p.text("token", max_length=128)
    present = p.boolean("present")
    p.finish()
    username = services.devices.token_update(_agent(session), reader, token, present)
    return {"username": username}


@method("device.status", Access.AGENT, agents=DEVICE_ROLES)
def device_status(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Agent: its device went online or offline."""
    device = p.text("device", max_length=500)
    online = p.boolean("online")
    info = p.mapping("info", {})
    p.finish()
    services.devices.device_status(_agent(session), device, online, info)
    return {}


@method("event.report", Access.AGENT, agents=DEVICE_ROLES)
def event_report(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Agent: a captured line or event (e.g. from a tailed log), published on topic `events`."""
    source = p.text("source", "", max_length=500)
    text = p.text("text", max_length=64 * 1024)
    fields = p.mapping("fields", {})
    p.finish()
    services.devices.event_report(_agent(session), source, text, fields)
    return {}


@method("events.recent", Access.READ)
def events_recent(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """The latest events agents reported (at most 1000), oldest first."""
    limit = p.integer("limit", 100, minimum=1, maximum=1000)
    p.finish()
    return {"events": list(services.devices.recent_events)[-limit:]}


@method("devices.list", Access.READ)
def devices_list(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Devices agents reported, online or not."""
    p.finish()
    return {"devices": services.devices.device_list()}


@method("taps.configure", Access.ADMIN, writes=True)
def taps_configure(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Create or change a tap: its meter, ticks per ml, valve, idle timeout, auth agents."""
    taps = services.devices.taps
    name = p.text("tap", max_length=64)
    old = taps.taps.get(name)
    rec = TapRecord(
        name=name,
        meter=p.text("meter", old.rec.meter if old else None, max_length=200),
        ticks_per_ml=p.number(
            "ticks_per_ml", old.rec.ticks_per_ml if old else 2.724, minimum=0.001
        ),
        output=p.text("output", old.rec.output if old else None, max_length=200),
        idle_s=p.number("idle_s", old.rec.idle_s if old else 10.0, minimum=0.1, maximum=3600),
        auth_agents=p.text_list("auth_agents", old.rec.auth_agents if old else []),
        created=old.rec.created if old else services.clock.wall(),
    )
    p.finish()
    if not name.strip():
        raise invalid_params("taps.configure: tap needs a name", "bad_tap")
    if rec.meter is None:
        raise invalid_params("taps.configure: missing parameter 'meter'", "missing_param")
    return tap_view(taps.configure(rec))


@method("taps.list", Access.READ)
def taps_list(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Every tap with its keg, live flow and valve state."""
    p.finish()
    taps = services.devices.taps.taps
    return {"taps": [tap_view(taps[name]) for name in sorted(taps)]}


@method("kegs.start", Access.ADMIN, writes=True)
def kegs_start(services: Services, session: Session, p: Params) -> dict[str, Any] | None:
    """Put a new keg on a tap."""
    tap = p.text("tap")
    beverage = p.text("beverage", max_length=200)
    volume_ml = p.number("volume_ml", minimum=1, maximum=10_000_000)
    p.finish()
    return keg_view(
        services.devices.taps.start_keg(tap, beverage, volume_ml, services.clock.wall())
    )


@method("kegs.end", Access.ADMIN, writes=True)
def kegs_end(services: Services, session: Session, p: Params) -> dict[str, Any] | None:
    """Take the keg off a tap."""
    tap = p.text("tap")
    p.finish()
    return keg_view(services.devices.taps.end_keg(tap, services.clock.wall()))


@method("kegs.list", Access.READ)
def kegs_list(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Kegs, on tap and finished, newest first."""
    active = p.boolean("active", False)
    p.finish()
    kegs = services.devices.store.load_kegs(active_only=active)
    kegs.sort(key=lambda keg: -keg.id)
    return {"kegs": [keg_view(keg) for keg in kegs]}


@method("readings.query", Access.READ)
def readings_query(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Stored readings (oldest first) of one sensor or all, since a time, up to a limit."""
    sensor = p.text("sensor", None, max_length=64)
    since = p.text("since", None, max_length=64)
    until = p.text("until", None, max_length=64)
    limit = p.integer("limit", 1000, minimum=1, maximum=100_000)
    p.finish()
    bounds = []
    for name, text in (("since", since), ("until", until)):
        try:
            bounds.append(None if text is None else parse_iso_utc(text))
        except ValueError:
            raise invalid_params(
                f"readings.query: {name} must be an ISO 8601 time, not {text!r}", "bad_time"
            ) from None
    devices = services.devices
    devices.readings.flush()  # what was accepted is visible to the next query
    rows = devices.store.query_readings(sensor, bounds[0], bounds[1], limit)
    latest = devices.readings.latest
    return {
        "readings": [reading_view(row) for row in rows],
        "latest": [
            reading_view(latest[name])
            for name in sorted(latest)
            if sensor is None or name == sensor
        ],
    }
