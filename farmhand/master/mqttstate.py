"""The farm's state as MQTT messages: retained state topics under `farmhand/` and the Home
Assistant discovery configs under `homeassistant/` that make every tap, sensor and worker an
entity. Pure functions of views (no clock, no sockets): docs/mqtt.md lists every topic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from protocol.version import SOFTWARE_VERSION

STATUS_TOPIC = "status"  # under the prefix: `online` / `offline`, retained (the will)
ONLINE = b"online"
OFFLINE = b"offline"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# Units as Home Assistant spells them.
HASS_UNITS = {"C": "°C", "F": "°F", "K": "K", "%": "%", "hPa": "hPa"}
# The job changes that are events (the others, a job's progress, only change `jobs` state).
JOB_ENDS = ("completed", "failed", "canceled")
HASS_DEVICE_CLASSES = {"temperature": "temperature", "humidity": "humidity", "pressure": "pressure"}


def slug(name: str) -> str:
    """A name as a topic level and a Home Assistant object id: `[A-Za-z0-9_-]` only."""
    return _UNSAFE.sub("_", name) or "_"


def encode(payload: Any) -> bytes:
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True)
class Topics:
    """The two prefixes: farmhand's own and Home Assistant's discovery prefix."""

    prefix: str = "farmhand"
    discovery: str = "homeassistant"

    @property
    def status(self) -> str:
        return f"{self.prefix}/{STATUS_TOPIC}"

    def state(self, kind: str, name: str | None = None) -> str:
        return f"{self.prefix}/{kind}" if name is None else f"{self.prefix}/{kind}/{slug(name)}"

    def event(self, name: str) -> str:
        return f"{self.prefix}/events/{name}"

    def config(self, component: str, object_id: str) -> str:
        return f"{self.discovery}/{component}/{slug(self.prefix)}/{object_id}/config"


# -- state payloads --------------------------------------------------------------------------


def tap_state(tap: dict[str, Any]) -> dict[str, Any]:
    """From a `taps.list` view: the keg's level and whether a flow runs."""
    keg = tap.get("keg") or {}
    volume = keg.get("volume_ml") or 0
    remaining = keg.get("remaining_ml")
    flow = tap.get("flow") or {}
    return {
        "tap": tap["name"],
        "beverage": keg.get("beverage"),
        "volume_ml": volume or None,
        "remaining_ml": remaining,
        "percent": round(100.0 * remaining / volume, 1)
        if volume and remaining is not None
        else None,
        "pouring": bool(flow),
        "flow_ml": flow.get("volume_ml"),
        "user": tap.get("user"),
        "valve_open": bool(tap.get("valve_open")),
    }


def sensor_state(reading: dict[str, Any]) -> dict[str, Any]:
    """From a reading view: the sensor's latest value."""
    return {key: reading[key] for key in ("sensor", "kind", "value", "unit", "time", "agent")}


def worker_state(client: dict[str, Any]) -> dict[str, Any]:
    """From a worker's `name`, `online`, `status`, `enabled`, `running` (a count), `slots`."""
    return {**client, "busy": client["status"] == "busy"}


# -- discovery configs -----------------------------------------------------------------------


def _device(topics: Topics, kind: str, name: str, model: str) -> dict[str, Any]:
    return {
        "identifiers": [f"{slug(topics.prefix)}_{kind}_{slug(name)}"],
        "name": f"{model} {name}",
        "manufacturer": "farmhand",
        "model": model,
        "sw_version": SOFTWARE_VERSION,
    }


def _entity(
    topics: Topics,
    device: dict[str, Any],
    unique: str,
    name: str,
    state_topic: str,
    template: str,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "name": name,
        "unique_id": f"{slug(topics.prefix)}_{unique}",
        "state_topic": state_topic,
        "value_template": template,
        "availability_topic": topics.status,
        "payload_available": ONLINE.decode(),
        "payload_not_available": OFFLINE.decode(),
        "device": device,
        "origin": {"name": "farmhand", "sw_version": SOFTWARE_VERSION},
        **extra,
    }


# One Home Assistant entity of a device: (component, object id suffix, name, value template,
# extra config fields).
Entity = tuple[str, str, str, str, dict[str, Any]]

TAP_ENTITIES: tuple[Entity, ...] = (
    ("sensor", "remaining", "Remaining", "{{ value_json.remaining_ml }}", {
        "unit_of_measurement": "mL", "device_class": "volume_storage",
        "state_class": "measurement", "icon": "mdi:keg",
    }),
    ("sensor", "percent", "Keg level", "{{ value_json.percent }}",
     {"unit_of_measurement": "%", "icon": "mdi:keg"}),
    ("sensor", "beverage", "Beverage", "{{ value_json.beverage }}", {"icon": "mdi:beer"}),
    ("binary_sensor", "pouring", "Pouring", "{{ 'ON' if value_json.pouring else 'OFF' }}",
     {"icon": "mdi:beer"}),
)  # fmt: skip

WORKER_ENTITIES: tuple[Entity, ...] = (
    ("binary_sensor", "online", "Online", "{{ 'ON' if value_json.online else 'OFF' }}",
     {"device_class": "connectivity"}),
    ("binary_sensor", "busy", "Busy", "{{ 'ON' if value_json.busy else 'OFF' }}",
     {"device_class": "running"}),
    ("sensor", "running", "Tasks running", "{{ value_json.running }}",
     {"state_class": "measurement"}),
)  # fmt: skip

JOBS_ENTITIES: tuple[Entity, ...] = tuple(
    ("sensor", key, label, f"{{{{ value_json.{key} }}}}", {"state_class": "measurement"})
    for key, label in (
        ("tasks_running", "Tasks running"),
        ("tasks_queued", "Tasks queued"),
        ("jobs_active", "Jobs active"),
        ("jobs_queued", "Jobs queued"),
    )
)


def _configs(
    topics: Topics, device: dict[str, Any], base: str, state: str, entities: tuple[Entity, ...]
) -> list[tuple[str, dict[str, Any]]]:
    """The discovery topic and config of each entity of one device."""
    return [
        (
            topics.config(component, f"{base}_{suffix}"),
            _entity(topics, device, f"{base}_{suffix}", name, state, template, **extra),
        )
        for component, suffix, name, template, extra in entities
    ]


def tap_configs(topics: Topics, name: str) -> list[tuple[str, dict[str, Any]]]:
    device = _device(topics, "tap", name, "Tap")
    return _configs(topics, device, f"tap_{slug(name)}", topics.state("taps", name), TAP_ENTITIES)


def sensor_configs(topics: Topics, reading: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    name = reading["sensor"]
    object_id = f"sensor_{slug(name)}"
    extra: dict[str, Any] = {"state_class": "measurement"}
    unit = HASS_UNITS.get(reading["unit"], reading["unit"])
    if unit:
        extra["unit_of_measurement"] = unit
    device_class = HASS_DEVICE_CLASSES.get(reading["kind"])
    if device_class:
        extra["device_class"] = device_class
    config = _entity(
        topics,
        _device(topics, "sensor", name, "Sensor"),
        object_id,
        reading["kind"].capitalize(),
        topics.state("sensors", name),
        "{{ value_json.value }}",
        **extra,
    )
    return [(topics.config("sensor", object_id), config)]


def worker_configs(topics: Topics, name: str) -> list[tuple[str, dict[str, Any]]]:
    device = _device(topics, "worker", name, "Worker")
    state = topics.state("workers", name)
    return _configs(topics, device, f"worker_{slug(name)}", state, WORKER_ENTITIES)


def jobs_configs(topics: Topics) -> list[tuple[str, dict[str, Any]]]:
    device = _device(topics, "farm", "farm", "Job farm")
    return _configs(topics, device, "jobs", topics.state("jobs"), JOBS_ENTITIES)


def retained_messages(
    topics: Topics,
    taps: Iterable[dict[str, Any]],
    readings: Iterable[dict[str, Any]],
    workers: Iterable[dict[str, Any]],
    jobs: dict[str, Any],
) -> dict[str, bytes]:
    """Every retained topic and its payload for this state of the farm: the bridge publishes
    what changed and clears (empty payload) what is gone."""
    out: dict[str, bytes] = {}

    def add(configs: list[tuple[str, dict[str, Any]]], topic: str, state: Any) -> None:
        for config_topic, config in configs:
            out[config_topic] = encode(config)
        out[topic] = encode(state)

    for tap in taps:
        add(tap_configs(topics, tap["name"]), topics.state("taps", tap["name"]), tap_state(tap))
    for reading in readings:
        add(
            sensor_configs(topics, reading),
            topics.state("sensors", reading["sensor"]),
            sensor_state(reading),
        )
    for client in workers:
        add(
            worker_configs(topics, client["name"]),
            topics.state("workers", client["name"]),
            worker_state(client),
        )
    add(jobs_configs(topics), topics.state("jobs"), jobs)
    return out


def event_message(topics: Topics, topic: str, data: Any) -> tuple[str, bytes] | None:
    """The MQTT event for one of the master's events, or None for those that only change state
    (a flow's running volume, a job's progress)."""
    if topic == "pours" and isinstance(data, dict) and "pour" in data:
        return topics.event("pour"), encode(data["pour"])
    if (
        topic == "clients"
        and isinstance(data, dict)
        and data.get("change") in ("online", "offline")
    ):
        client = data.get("client") or {}
        view = {"change": data["change"], "name": client.get("name"), "role": client.get("role")}
        return topics.event("client"), encode(view)
    if topic == "jobs" and isinstance(data, dict) and data.get("status") in JOB_ENDS:
        keys = ("id", "name", "status")
        return topics.event("job"), encode({key: data.get(key) for key in keys})
    if topic == "presence" and isinstance(data, dict):
        return topics.event("presence"), encode(data)
    return None
