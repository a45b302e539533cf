"""Runtime clients: every known client lives here in memory, loaded once from the database.

Commands read this registry, never the database. It is the only code that changes a client: its
verbs are connect, heard_from, set_running, set_host_info, disconnect, set_enabled,
set_schedule, begin_stop, forget and prune (watchers hear of each change). Changes mark a
client dirty; the saver (farmhand.master.saver) writes dirty clients behind in batches.
Heartbeats touch memory only.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from models.store import ClientRecord
from protocol.errors import conflict, not_found
from protocol.schedule import Schedule, parse_schedule
from protocol.selector import Selector
from protocol.times import iso_utc

from .events import NOTICE_TOPIC, EventBus
from .ports import Peer

log = logging.getLogger(__name__)

AGENT_ROLES = ("worker", "hardware", "auth", "node")
# Client names appear in selectors and tables: no spaces, no glob characters.
CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:+-]{0,199}")


# The fields of a client's row that change rarely: the row is kept built (clients.list over
# 10,000 agents copies 10,000 rows instead of building them) and dropped when one is set.
_ROW_FIELDS = frozenset(
    (
        "enabled",
        "host",
        "id",
        "name",
        "online",
        "role",
        "running",
        "sleep",
        "slots",
        "stopping",
        "tags",
    )
)


class RuntimeClient:
    """One client as the master sees it now. `connection` is set while it is online."""

    __slots__ = (
        "_row",
        "connection",
        "enabled",
        "first_seen",
        "host",
        "host_info",
        "id",
        "info",
        "last_heard",
        "last_seen",
        "name",
        "online",
        "role",
        "running",
        "sleep",
        "slots",
        "stopping",
        "tags",
    )

    def __init__(self, record: ClientRecord) -> None:
        self._row: dict[str, Any] | None = None
        self.id = record.id
        self.name = record.name
        self.role = record.role
        self.host = record.host
        self.enabled = record.enabled
        self.tags = list(record.tags)
        self.slots = record.slots
        self.first_seen = record.first_seen
        self.last_seen = record.last_seen
        self.info = record.info
        self.online = False
        self.connection: Peer | None = None
        self.running: tuple[str, ...] = ()
        self.last_heard = 0.0  # monotonic seconds; meaningful only while online
        # The sleep schedule, parsed (None: never asleep); stored as its canonical text.
        self.sleep: Schedule | None = _stored_schedule(record.schedule)
        # A stop the master ordered: {"action": "stop"|"restart", "when": "now"|"idle"};
        # a stopping worker gets no new task. Cleared when the worker says hello again.
        self.stopping: dict[str, str] | None = None
        # CPU count, memory and load as the agent last reported them (heartbeats).
        self.host_info: dict[str, Any] = _host_info(record.info.get("host_info"))

    def asleep(self, now: float) -> bool:
        """In a window of its sleep schedule at wall time `now` (the master's local time)."""
        return self.sleep is not None and self.sleep.asleep(*week_minute(now))

    @property
    def status(self) -> str:
        if not self.online:
            return "offline"
        return "busy" if self.running else "idle"

    def record(self) -> ClientRecord:
        return ClientRecord(
            id=self.id,
            name=self.name,
            role=self.role,
            host=self.host,
            enabled=self.enabled,
            tags=self.tags,
            slots=self.slots,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            info=self.info,
            schedule=self.sleep.text if self.sleep is not None else None,
        )

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in _ROW_FIELDS:
            object.__setattr__(self, "_row", None)

    def view(self, now: float | None = None) -> dict[str, Any]:
        """The `clients.list` row (also the `client` of a `clients` event, docs/events.md);
        `asleep` is whether wall time `now` is in its sleep schedule (False without `now`)."""
        row = self._row
        if row is None:
            row = self._row = self._build_row()
        view = row.copy()
        view["last_seen"] = iso_utc(self.last_seen)
        sleep = self.sleep
        view["asleep"] = sleep is not None and now is not None and sleep.asleep(*week_minute(now))
        return view

    def _build_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "host": self.host,
            "enabled": self.enabled,
            "online": self.online,
            "status": self.status,
            "last_seen": None,  # filled by view(), like asleep
            "tags": list(self.tags),
            "slots": self.slots,
            "running": list(self.running),
            "schedule": self.sleep.text if self.sleep is not None else None,
            "asleep": False,
            "stopping": dict(self.stopping) if self.stopping is not None else None,
        }


class ClientWatcher(Protocol):
    """Told about presence changes (the job farm keeps its set of dispatchable workers)."""

    def client_changed(self, client: RuntimeClient, change: str) -> None: ...


class ClientRegistry:
    def __init__(self, events: EventBus, wall: Callable[[], float] = time.time) -> None:
        self._events = events
        self._wall = wall  # for `asleep` in the views of events
        self._watchers: list[ClientWatcher] = []
        self._by_name: dict[str, RuntimeClient] = {}
        self._dirty: set[RuntimeClient] = set()
        self._next_id = 1

    def watch(self, watcher: ClientWatcher) -> None:
        """Tell `watcher` of every presence change from now on (in the order they watch)."""
        self._watchers.append(watcher)

    # -- loading and saving -------------------------------------------------------------------
    def load(self, records: Iterable[ClientRecord]) -> None:
        for record in records:
            self._by_name[record.name] = RuntimeClient(record)
            self._next_id = max(self._next_id, record.id + 1)

    def take_dirty(self) -> list[ClientRecord]:
        """Records changed since the last call, for the write-behind saver."""
        dirty, self._dirty = self._dirty, set()
        return [client.record() for client in dirty]

    def mark_dirty(self, records: Iterable[ClientRecord]) -> None:
        """Put back records whose save failed, so the next flush retries them."""
        for record in records:
            client = self._by_name.get(record.name)
            if client is not None and client.id == record.id:
                self._dirty.add(client)

    def all_records(self) -> list[ClientRecord]:
        return [client.record() for client in self._by_name.values()]

    @property
    def dirty_count(self) -> int:
        return len(self._dirty)

    def dirty_names(self) -> list[str]:
        """Clients changed since their last save, by name: what the saver still owes."""
        return sorted(client.name for client in self._dirty)

    # -- queries ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> RuntimeClient | None:
        return self._by_name.get(name)

    def clients(self) -> Iterable[RuntimeClient]:
        return self._by_name.values()

    def select(self, selector: Selector) -> list[RuntimeClient]:
        if selector.is_empty:
            return []
        return [client for client in self._by_name.values() if selector.matches(client)]

    def online(self) -> list[RuntimeClient]:
        return [client for client in self._by_name.values() if client.online]

    # -- changes ------------------------------------------------------------------------------
    def connect(
        self,
        *,
        name: str,
        role: str,
        host: str,
        info: dict[str, Any],
        connection: Peer | None,
        now: float,
        now_mono: float,
    ) -> tuple[RuntimeClient, Peer | None]:
        """A `hello`: a known name goes online (its `enabled` kept), a new name is created.

        Returns the client and the connection it replaces (None if it was offline). A name
        online with another role is refused (-32009) and keeps its connection and role: a
        node and a worker on one machine must not take each other's place (docs/protocol.md).
        """
        client = self._by_name.get(name)
        self.check_role(name, role)
        if client is None:
            client = RuntimeClient(
                ClientRecord(
                    id=self._next_id,
                    name=name,
                    role=role,
                    host=host,
                    enabled=True,
                    tags=[],
                    slots=1,
                    first_seen=now,
                    last_seen=now,
                    info={},
                )
            )
            self._next_id += 1
            self._by_name[name] = client
            log.info("client %s (id %d, %s) registered from %s", name, client.id, role, host)
            self._publish("created", client)
        replaced = client.connection
        client.role = role
        client.host = host
        client.info = info
        client.tags = _string_list(info.get("tags"))
        slots = info.get("slots")
        client.slots = slots if isinstance(slots, int) and not isinstance(slots, bool) else 1
        client.connection = connection
        client.online = True
        client.running = ()
        client.last_seen = now
        client.last_heard = now_mono
        client.stopping = None  # a new process: whatever stop was ordered is done
        client.host_info = _host_info(info.get("host_info"))
        self._dirty.add(client)
        if replaced is None:
            log.info("client %s (id %d) online from %s", name, client.id, host)
        else:
            log.info(
                "client %s (id %d) reconnected from %s, replacing its old connection",
                name,
                client.id,
                host,
            )
        self._publish("online", client)
        return client, replaced

    def check_role(self, name: str, role: str) -> None:
        """-32009 when `name` is online with a role other than `role`."""
        client = self._by_name.get(name)
        if client is not None and client.online and client.role != role:
            raise conflict(
                f"{name!r} is online as a {client.role}: a {role} cannot take its name",
                "name_taken_by_role",
            )

    def heard_from(self, client: RuntimeClient, now: float, now_mono: float) -> None:
        client.last_seen = now
        client.last_heard = now_mono

    def set_running(self, client: RuntimeClient, running: Iterable[str]) -> None:
        client.running = tuple(running)

    def set_host_info(self, client: RuntimeClient, host_info: dict[str, Any]) -> None:
        """A heartbeat's host facts (memory only, like the rest of a heartbeat)."""
        client.host_info = _host_info(host_info)

    def disconnect(
        self, client: RuntimeClient, connection: Peer | None, now: float, reason: str
    ) -> bool:
        """Mark offline if `connection` is still the client's current one."""
        if client.connection is not connection or not client.online:
            return False
        client.connection = None
        client.online = False
        client.running = ()
        client.last_seen = now
        self._dirty.add(client)
        log.info("client %s (id %d) offline: %s", client.name, client.id, reason)
        self._publish("offline", client, reason=reason)
        if self._events.has_subscribers(NOTICE_TOPIC):
            self._events.notify("client.offline", {**client.view(), "reason": reason})
        return True

    def set_enabled(self, selector: Selector, enabled: bool) -> tuple[list[str], list[str]]:
        """Returns (matched names, names whose flag changed)."""
        matched = self.select(selector)
        changed = []
        for client in matched:
            if client.enabled != enabled:
                client.enabled = enabled
                self._dirty.add(client)
                changed.append(client.name)
                log.info(
                    "client %s (id %d) %s",
                    client.name,
                    client.id,
                    "enabled" if enabled else "disabled",
                )
                self._publish("enabled" if enabled else "disabled", client)
        return [client.name for client in matched], changed

    def set_schedule(
        self, selector: Selector, schedule: Schedule | None
    ) -> tuple[list[str], list[str]]:
        """Set (None: clear) the sleep schedule. Returns (matched names, names changed)."""
        matched = self.select(selector)
        text = schedule.text if schedule is not None else None
        changed = []
        for client in matched:
            if (client.sleep.text if client.sleep is not None else None) != text:
                client.sleep = schedule
                self._dirty.add(client)
                changed.append(client.name)
                log.info("client %s (id %d) sleep schedule: %s", client.name, client.id, text)
                self._publish("schedule", client)
        return [client.name for client in matched], changed

    def begin_stop(self, client: RuntimeClient, action: str, when: str) -> None:
        """An online worker was told to stop or restart: it gets no new task from now on."""
        client.stopping = {"action": action, "when": when}
        log.info("client %s (id %d): %s ordered (%s)", client.name, client.id, action, when)
        self._publish("stopping", client)

    def prune(self, offline_for_s: float, now: float) -> list[RuntimeClient]:
        """Forget every client offline for longer than `offline_for_s`; online ones stay."""
        stale = [
            client
            for client in self._by_name.values()
            if not client.online
            and (client.last_seen is None or now - client.last_seen > offline_for_s)
        ]
        return [self.forget(client.name) for client in stale]

    def forget(self, name: str) -> RuntimeClient:
        client = self._by_name.get(name)
        if client is None:
            raise not_found(f"no client named {name!r}", "no_such_client")
        if client.online:
            raise conflict(
                f"client {name!r} is online: only offline clients can be forgotten", "client_online"
            )
        del self._by_name[name]
        self._dirty.discard(client)
        log.info("client %s (id %d) forgotten", name, client.id)
        self._publish("forgotten", client)
        return client

    def _publish(self, change: str, client: RuntimeClient, **extra: Any) -> None:
        for watcher in self._watchers:
            watcher.client_changed(client, change)
        if self._events.has_subscribers("clients"):
            self._events.publish(
                "clients", {"change": change, "client": client.view(self._wall()), **extra}
            )


def week_minute(now: float) -> tuple[int, int]:
    """(weekday, minute of the day) of wall time `now` in the master's local time."""
    local = time.localtime(now)
    return local.tm_wday, local.tm_hour * 60 + local.tm_min


def _stored_schedule(text: str | None) -> Schedule | None:
    if not text:
        return None
    try:
        return parse_schedule(text)
    except ValueError:
        log.warning("ignoring a stored sleep schedule that does not parse: %r", text)
        return None


HOST_INFO_KEYS = ("cpus", "mem_total_bytes", "mem_available_bytes", "load")


def _host_info(value: Any) -> dict[str, Any]:
    """The known host facts of an agent's report, numbers only (a peer's junk is dropped)."""
    if not isinstance(value, dict):
        return {}
    facts: dict[str, Any] = {}
    for key in HOST_INFO_KEYS:
        item = value.get(key)
        if key == "load":
            if isinstance(item, list) and all(_is_number(x) for x in item[:3]):
                facts[key] = [float(x) for x in item[:3]]
        elif _is_number(item):
            facts[key] = item
    return facts


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return []
    return [item.strip() for item in value if isinstance(item, str) and item.strip()]
