"""Device methods: reports from hardware and auth agents (meter.update, reading, token.update,
device.status), taps and kegs, readings and devices."""

from __future__ import annotations

from typing import Any

from models.devicestore import TapRecord
from protocol.errors import ErrorCode, RpcError, invalid_params
from protocol.times import parse_iso_utc

from ..devices.beverages import KEG_SIZES_ML, MAX_IMAGE_CHARS, check_image, keg_size
from ..devices.readings import reading_view
from ..devices.taps import keg_view, tap_view
from ..services import Services
from ..session import Session
from .base import (
    Access,
    Args,
    Method,
    boolean,
    collector,
    integer,
    mapping,
    number,
    string,
    text_list,
)

DEVICE_ROLES = ("hardware", "auth")


def _agent(session: Session) -> str:
    client = session.client
    if client is None or client.role not in DEVICE_ROLES:
        raise RpcError(
            ErrorCode.CONFLICT, "only hardware and auth agents report devices", "not_a_device_agent"
        )
    return client.name


METHODS: list[Method] = []
method = collector(METHODS)


@method(
    "meter.update",
    Access.AGENT,
    agents=DEVICE_ROLES,
    params=(
        string("meter", "the meter's name", max_length=64),
        integer("ticks", "the meter's total tick count", minimum=0),
    ),
)
def meter_update(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Agent: a meter's running tick total."""
    meter = p["meter"]
    ticks = p["ticks"]
    return {"delta": services.devices.meter_update(_agent(session), meter, ticks)}


@method(
    "reading",
    Access.AGENT,
    agents=DEVICE_ROLES,
    params=(
        string("sensor", "the sensor's name", max_length=64),
        string("kind", "what it measures (temperature, humidity, …)", "value", max_length=32),
        number("value", "the reading"),
        string("unit", "its unit", "", max_length=16),
    ),
)
def reading(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Agent: one sensor reading (range-checked, stored in batches)."""
    sensor = p["sensor"]
    kind = p["kind"]
    value = p["value"]
    unit = p["unit"]
    services.devices.readings.add(_agent(session), sensor, kind, value, unit, services.clock.wall())
    return {}


@method(
    "token.update",
    Access.AGENT,
    agents=DEVICE_ROLES,
    params=(
        string("reader", "the token reader's name", max_length=64),
        string("token", "the token's id as the reader reports it", max_length=128),
        boolean("present", "whether the token is at the reader now"),
    ),
)
def token_update(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Agent: a token arrived at or left a reader."""
    reader = p["reader"]
    token = p["token"]
    present = p["present"]
    username = services.devices.token_update(_agent(session), reader, token, present)
    return {"username": username}


@method(
    "device.status",
    Access.AGENT,
    agents=DEVICE_ROLES,
    params=(
        string("device", "the device's name", max_length=500),
        boolean("online", "whether the device is reachable"),
        mapping("info", "free-form facts about it", {}),
    ),
)
def device_status(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Agent: its device went online or offline."""
    device = p["device"]
    online = p["online"]
    info = p["info"]
    services.devices.device_status(_agent(session), device, online, info)
    return {}


@method(
    "event.report",
    Access.AGENT,
    agents=DEVICE_ROLES,
    params=(
        string("source", "where the line came from", "", max_length=500),
        string("text", "the line", max_length=64 * 1024),
        mapping("fields", "fields parsed from the line", {}),
    ),
)
def event_report(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Agent: a captured line or event (e.g. from a tailed log), published on topic `events`."""
    source = p["source"]
    text = p["text"]
    fields = p["fields"]
    services.devices.event_report(_agent(session), source, text, fields)
    return {}


@method(
    "events.recent",
    Access.READ,
    params=(integer("limit", "at most this many, newest first", 100, minimum=1, maximum=1000),),
)
def events_recent(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """The latest events agents reported (at most 1000), oldest first."""
    limit = p["limit"]
    return {"events": list(services.devices.recent_events)[-limit:]}


@method("devices.list", Access.READ)
def devices_list(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Devices agents reported, online or not."""
    return {"devices": services.devices.device_list()}


@method(
    "taps.configure",
    Access.ADMIN,
    writes=True,
    params=(
        string("tap", "the tap's name", max_length=64),
        string(
            "meter",
            "the flow meter's name (required for a new tap)",
            None,
            max_length=200,
        ),
        number(
            "ticks_per_ml",
            "the meter's ticks per ml (unchanged, or 2.724 for a new tap)",
            None,
            minimum=0.001,
        ),
        string(
            "output",
            "the valve output's name (unchanged if omitted)",
            None,
            max_length=200,
        ),
        number(
            "idle_s",
            "seconds without flow that end a pour (unchanged, or 10 for a new tap)",
            None,
            minimum=0.1,
            maximum=3600,
        ),
        text_list(
            "auth_agents",
            "auth agents whose tokens open this tap (unchanged if omitted)",
            None,
        ),
    ),
)
def taps_configure(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Create or change a tap: its meter, ticks per ml, valve, idle timeout, auth agents."""
    taps = services.devices.taps
    name = p["tap"]
    old = taps.taps.get(name)
    rec = TapRecord(
        name=name,
        meter=_or(p["meter"], old.rec.meter if old else None),
        ticks_per_ml=_or(p["ticks_per_ml"], old.rec.ticks_per_ml if old else 2.724),
        output=_or(p["output"], old.rec.output if old else None),
        idle_s=_or(p["idle_s"], old.rec.idle_s if old else 10.0),
        auth_agents=_or(p["auth_agents"], old.rec.auth_agents if old else []),
        created=old.rec.created if old else services.clock.wall(),
    )
    if not name.strip():
        raise invalid_params("taps.configure: tap needs a name", "bad_tap")
    if rec.meter is None:
        raise invalid_params("taps.configure: missing parameter 'meter'", "missing_param")
    return tap_view(taps.configure(rec))


def _or(value: Any, unchanged: Any) -> Any:
    """A parameter left out (None) keeps the tap's value (or a new tap's default)."""
    return unchanged if value is None else value


@method("taps.list", Access.READ)
def taps_list(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Every tap with its keg, live flow and valve state; the placed sensors and the fridges."""
    taps = services.devices.taps.taps
    places = services.devices.alerts.places.values()
    latest = services.devices.readings.latest
    sensors = [
        {
            "sensor": place.sensor,
            "tap": place.tap,
            "fridge": place.fridge,
            "reading": reading_view(latest[place.sensor]) if place.sensor in latest else None,
        }
        for place in sorted(places, key=lambda place: place.sensor)
    ]
    return {
        "taps": [tap_view(taps[name]) for name in sorted(taps)],
        "sensors": sensors,
        "fridges": sorted({place.fridge for place in places if place.fridge is not None}),
    }


@method(
    "kegs.start",
    Access.ADMIN,
    writes=True,
    params=(
        string("tap", "the tap's name"),
        string("beverage", "what the keg holds", max_length=200),
        number(
            "volume_ml",
            "the keg's volume in ml (or give size)",
            None,
            minimum=1,
            maximum=10_000_000,
        ),
        string(
            "size",
            f"a named size ({', '.join(KEG_SIZES_ML)}) or a volume (19.5 L, 19500 ml)",
            None,
            max_length=32,
        ),
        number("abv", "alcohol by volume, %", None, minimum=0, maximum=100),
        string("style", "the beer's style (IPA, stout, …)", "", max_length=100),
        number("ibu", "bitterness, IBU", None, minimum=0, maximum=1000),
        number("srm", "colour, SRM (the taps page shows its swatch)", None, minimum=0, maximum=100),
        string(
            "image",
            "an http(s) URL or a data:image/… URI (at most 256 KiB)",
            None,
            max_length=MAX_IMAGE_CHARS,
        ),
    ),
)
def kegs_start(services: Services, session: Session, p: Args) -> dict[str, Any] | None:
    """Put a new keg on a tap: its beverage, volume (or named size), abv, style, ibu, srm."""
    size, volume_ml = "", p["volume_ml"]
    if p["size"] is not None:
        size, sized_ml = keg_size(p["size"])
        volume_ml = volume_ml if volume_ml is not None else sized_ml
    if volume_ml is None:
        raise invalid_params("kegs.start: give volume_ml or size", "missing_param")
    keg = services.devices.taps.start_keg(
        p["tap"], p["beverage"], volume_ml, services.clock.wall(),
        abv=p["abv"], style=p["style"], ibu=p["ibu"], srm=p["srm"], size=size,
        image=check_image(p["image"]),
    )  # fmt: skip
    return keg_view(keg)


@method("kegs.end", Access.ADMIN, writes=True, params=(string("tap", "the tap's name"),))
def kegs_end(services: Services, session: Session, p: Args) -> dict[str, Any] | None:
    """Take the keg off a tap."""
    tap = p["tap"]
    return keg_view(services.devices.taps.end_keg(tap, services.clock.wall()))


@method("kegs.list", Access.READ, params=(boolean("active", "only kegs on tap", False),))
def kegs_list(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Kegs, on tap and finished, newest first."""
    active = p["active"]
    kegs = services.devices.store.load_kegs(active_only=active)
    kegs.sort(key=lambda keg: -keg.id)
    return {"kegs": [keg_view(keg) for keg in kegs]}


@method(
    "readings.query",
    Access.READ,
    params=(
        string("sensor", "only this sensor (else the latest value of each)", None, max_length=64),
        string("since", "only from this ISO 8601 UTC time on", None, max_length=64),
        string("until", "only before this ISO 8601 UTC time", None, max_length=64),
        integer("limit", "at most this many", 1000, minimum=1, maximum=100_000),
    ),
)
def readings_query(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Stored readings (oldest first) of one sensor or all, since a time, up to a limit."""
    sensor = p["sensor"]
    since = p["since"]
    until = p["until"]
    limit = p["limit"]
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
