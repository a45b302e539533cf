"""The MQTT bridge (`master.py --mqtt mqtt://HOST:PORT`): the farm's state, events and Home
Assistant discovery configs published to a broker (topics: farmhand/master/mqttstate.py).

Theory of operation. The master is gevent without monkey-patching, so `threading` is real: the
paho-mqtt client lives in one OS thread of its own (`MqttLink`), which alone calls paho, connects
(with the one backoff), runs paho's loop and publishes. The hub never waits on the broker: it
hands over events through a bounded deque (drop-oldest, counted in `dropped`) and retained state
as a dict under a lock held only to swap it (latest wins, so state is never lost to the bound).
The thread remembers every retained payload and publishes them all again after each (re)connect.
On the hub, `MqttBridge` subscribes to the master's events and, every FLUSH_S, builds the state
from the owners' views and hands over what changed.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import gevent
import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from protocol.backoff import Backoff

from . import mqttstate
from .devices.readings import reading_view
from .devices.taps import tap_view
from .events import EventBus
from .jobs.states import JobStatus, TaskStatus
from .mqttstate import OFFLINE, ONLINE, Topics
from .services import Services
from .ticker import Ticker

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
PASSWORD_ENV = "FARMHAND_MQTT_PASSWORD"
EVENT_QUEUE_LIMIT = 10_000
FLUSH_S = 0.5
KEEPALIVE_S = 30
LOOP_S = 0.05
STOP_TIMEOUT_S = 3.0
# The master's event topics the bridge listens to (readings and tasks are read as state).
EVENT_TOPICS = ("pours", "clients", "jobs", "presence")


@dataclass(frozen=True)
class MqttTarget:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca: str | None = None
    topics: Topics = field(default_factory=Topics)

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_mqtt_url(url: str, environ: Mapping[str, str] | None = None) -> MqttTarget:
    """`mqtt://[user[:password]@]host[:port][?prefix=P&discovery=D&ca=FILE]`; `mqtts://` for
    TLS. ValueError (one line) for anything else."""
    env = os.environ if environ is None else environ
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError(f"bad MQTT URL {url!r}: expected mqtt://HOST:PORT or mqtts://HOST:PORT")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ValueError(f"bad MQTT URL {url!r}: the port is not a number 1-65535") from None
    if not parts.hostname:
        raise ValueError(f"bad MQTT URL {url!r}: no host")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = set(query) - {"prefix", "discovery", "ca"}
    if unknown:
        raise ValueError(f"bad MQTT URL {url!r}: unknown option {sorted(unknown)[0]!r}")
    topics = Topics(query.get("prefix", "farmhand"), query.get("discovery", "homeassistant"))
    for prefix in (topics.prefix, topics.discovery):
        if not prefix or set(prefix) & set("+#/"):
            raise ValueError(f"bad MQTT topic prefix {prefix!r}: one level, no + # or /")
    password = unquote(parts.password) if parts.password else env.get(PASSWORD_ENV)
    return MqttTarget(
        host=parts.hostname,
        port=port,
        tls=parts.scheme == "mqtts",
        username=unquote(parts.username) if parts.username else None,
        password=password,
        ca=query.get("ca"),
        topics=topics,
    )


class MqttLink:
    """One broker connection in its own OS thread. `set_retained` and `send_event` are called
    from the hub and never block on the network."""

    def __init__(
        self,
        target: MqttTarget,
        client_id: str,
        *,
        event_limit: int = EVENT_QUEUE_LIMIT,
        backoff: Backoff | None = None,
    ) -> None:
        self.target = target
        self.client_id = client_id
        self.event_limit = event_limit
        self.backoff = backoff or Backoff(initial_s=0.5, maximum_s=30.0)
        self.dropped = 0  # events dropped (oldest first) because the queue was full
        self.connects = 0  # CONNACKs received: 1 after the first connect, +1 per reconnect
        self.connected = False
        self._events: deque[tuple[str, bytes]] = deque()
        self._retained_lock = threading.Lock()
        self._retained_new: dict[str, bytes] = {}
        self._retained: dict[str, bytes] = {}  # thread-owned: what the broker should hold
        self._unsent: dict[str, bytes] = {}  # thread-owned: retained, not yet published
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)

    # -- the hub's side ------------------------------------------------------------------------
    def set_retained(self, topic: str, payload: bytes) -> None:
        """Latest wins; an empty payload clears the topic on the broker."""
        with self._retained_lock:
            self._retained_new[topic] = payload

    def send_event(self, topic: str, payload: bytes) -> None:
        if len(self._events) >= self.event_limit:
            try:
                self._events.popleft()
                self.dropped += 1
            except IndexError:
                pass  # the thread emptied it meanwhile
        self._events.append((topic, payload))

    @property
    def queued(self) -> int:
        return len(self._events)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Publish `offline`, disconnect, end the thread. Joining a real thread would block the
        hub: the caller runs this through gevent's threadpool (see MqttBridge.stop)."""
        self._stop.set()
        self._thread.join(timeout_s)

    # -- the thread ----------------------------------------------------------------------------
    def _new_client(self) -> paho.Client:
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True
        )
        if self.target.username is not None:
            client.username_pw_set(self.target.username, self.target.password)
        if self.target.tls:
            client.tls_set_context(ssl.create_default_context(cafile=self.target.ca))
        client.will_set(self.target.topics.status, OFFLINE, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        return client

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, *_: Any
    ) -> None:
        if reason.is_failure:
            log.warning("MQTT broker %s refused the connection: %s", self.target, reason)
            return
        self.connects += 1
        self.connected = True
        self.backoff.reset()
        log.info("MQTT connected to %s (connect %d)", self.target, self.connects)
        client.publish(self.target.topics.status, ONLINE, qos=1, retain=True)
        # The broker may have lost everything: all again (and the clearings not yet sent).
        cleared = {topic: b"" for topic, payload in self._unsent.items() if not payload}
        self._unsent = {**cleared, **self._retained}

    def _on_disconnect(self, client: paho.Client, userdata: Any, *args: Any) -> None:
        if self.connected:
            log.warning("MQTT connection to %s lost", self.target)
        self.connected = False

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            client = self._new_client()
            try:
                client.connect(self.target.host, self.target.port, keepalive=KEEPALIVE_S)
            except (OSError, ssl.SSLError, ValueError) as exc:
                failures += 1
                if failures == 1 or failures % 20 == 0:
                    log.warning(
                        "MQTT broker %s unreachable (%d tries): %s", self.target, failures, exc
                    )
                self._take_handoff()
                self._stop.wait(self.backoff.next_delay())
                continue
            failures = 0
            self._serve(client)
            if not self._stop.is_set():
                self._stop.wait(self.backoff.next_delay())

    def _serve(self, client: paho.Client) -> None:
        """Run one connection until it drops or the link stops."""
        while not self._stop.is_set():
            if client.loop(timeout=LOOP_S) != paho.MQTT_ERR_SUCCESS:
                self.connected = False
                client.disconnect()
                return
            self._take_handoff()
            if self.connected:
                self._publish_pending(client)
        if self.connected:
            self._take_handoff()
            self._publish_pending(client)
            info = client.publish(self.target.topics.status, OFFLINE, qos=1, retain=True)
            for _ in range(40):  # up to 2 s for the last messages to leave
                if info.is_published() or client.loop(timeout=LOOP_S) != paho.MQTT_ERR_SUCCESS:
                    break
        self.connected = False  # before disconnect(): its callback would report a lost link
        client.disconnect()
        log.info("MQTT disconnected from %s", self.target)

    def _take_handoff(self) -> None:
        with self._retained_lock:
            fresh, self._retained_new = self._retained_new, {}
        for topic, payload in fresh.items():
            if self._retained.get(topic) == payload:
                continue
            if payload:
                self._retained[topic] = payload
            else:
                self._retained.pop(topic, None)
            self._unsent[topic] = payload

    def _publish_pending(self, client: paho.Client) -> None:
        # Retained state first (in the order it came), then events while paho's buffer is empty:
        # a slow broker keeps events in our bounded deque, not in paho's unbounded one.
        while self._unsent:
            topic = next(iter(self._unsent))
            client.publish(topic, self._unsent.pop(topic), qos=1, retain=True)
        while self._events and not client.want_write():
            topic, payload = self._events.popleft()
            client.publish(topic, payload, qos=0)


class _TopicListener:
    """The bridge as an EventBus subscriber of one topic (the bus hands over encoded bytes)."""

    def __init__(self, topic: str, deliver: Callable[[str, bytes], None]) -> None:
        self.topic = topic
        self._deliver = deliver

    def send_bytes(self, data: bytes) -> None:
        self._deliver(self.topic, data)


class MqttBridge:
    """The hub's half: listens to the master's events and turns state into retained topics."""

    def __init__(self, target: MqttTarget, services: Services, client_id: str) -> None:
        self.topics = target.topics
        self.services = services
        self.events: EventBus = services.events
        self.link = MqttLink(target, client_id)
        self._listeners = [_TopicListener(topic, self._event) for topic in EVENT_TOPICS]
        self._sent: dict[str, bytes] = {}
        self._ticker = Ticker("mqtt", FLUSH_S, self.flush)

    def start(self) -> None:
        for listener in self._listeners:
            self.events.subscribe(listener, [listener.topic])
        self.flush()
        self.link.start()
        self._ticker.start()
        log.info("publishing to MQTT broker %s under %s/", self.link.target, self.topics.prefix)

    def stop(self) -> None:
        self._ticker.stop()
        for listener in self._listeners:
            self.events.unsubscribe(listener)
        self.flush()
        # The thread's last publishes and its join must not block the hub's other greenlets.
        gevent.get_hub().threadpool.apply(self.link.stop)

    def status(self) -> dict[str, Any]:
        """The counters: the `mqtt` part of the master's `status`."""
        return {
            "broker": str(self.link.target),
            "mqtt_connected": self.link.connected,
            "mqtt_connects": self.link.connects,
            "mqtt_events_queued": self.link.queued,
            "mqtt_events_dropped": self.link.dropped,
        }

    def _event(self, topic: str, data: bytes) -> None:
        params = orjson.loads(data).get("params") or {}
        message = mqttstate.event_message(self.topics, topic, params.get("data"))
        if message is not None:
            self.link.send_event(*message)

    def flush(self) -> None:
        """Hand over every retained topic whose payload changed; clear those that are gone."""
        current = mqttstate.retained_messages(
            self.topics, self._taps(), self._readings(), self._workers(), self._jobs()
        )
        for topic, payload in current.items():
            if self._sent.get(topic) != payload:
                self.link.set_retained(topic, payload)
        for topic in self._sent.keys() - current.keys():
            self.link.set_retained(topic, b"")
        self._sent = current

    # -- the owners' views ---------------------------------------------------------------------
    def _taps(self) -> Iterable[dict[str, Any]]:
        return [tap_view(tap) for tap in self.services.devices.taps.taps.values()]

    def _readings(self) -> Iterable[dict[str, Any]]:
        return [reading_view(r) for r in self.services.devices.readings.latest.values()]

    def _workers(self) -> Iterable[dict[str, Any]]:
        return [
            {
                "name": client.name,
                "online": client.online,
                "status": client.status,
                "enabled": client.enabled,
                "running": len(client.running),
                "slots": client.slots,
            }
            for client in self.services.registry.clients()
            if client.role == "worker"
        ]

    def _jobs(self) -> dict[str, Any]:
        board = self.services.farm.board
        jobs = [state.rec.status for state in board.jobs.values()]
        queued = sum(state.counts[TaskStatus.QUEUED] for state in board.jobs.values())
        return {
            "jobs_active": jobs.count(JobStatus.ACTIVE),
            "jobs_queued": jobs.count(JobStatus.QUEUED),
            "jobs_paused": jobs.count(JobStatus.PAUSED),
            "tasks_running": len(board.attempts),
            "tasks_queued": queued,
        }
