"""Session methods: hello, heartbeat, ping, subscribe/unsubscribe, status."""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any

from models.store import KeyRecord
from protocol.errors import ErrorCode, RpcError, conflict, invalid_params, unauthorized
from protocol.times import iso_utc
from protocol.version import PROTOCOL_VERSION, SOFTWARE_VERSION

from ..events import validate_topic
from ..exposure import exposure_warnings, refuse_key_in_clear
from ..keys import KEY_ROLES
from ..registry import AGENT_ROLES, CLIENT_NAME
from ..services import Services
from ..session import Session
from .base import Access, Args, Method, collector, integer, mapping, string, text_list

log = logging.getLogger(__name__)


METHODS: list[Method] = []
method = collector(METHODS)


@method(
    "hello",
    Access.OPEN,
    params=(
        string("role", "who connects: an agent role or `api`", choices=KEY_ROLES),
        string("name", "the client's name (agents) or who the api client is", "", max_length=200),
        string("key", "the key (none needed from a trusted peer)", None, max_length=500),
        integer("proto", "the protocol version spoken", PROTOCOL_VERSION),
        mapping("info", "agents: host, slots, tags and other facts", {}),
        text_list("attempts", "workers: the attempt ids still held", []),
        mapping(
            "stopping",
            "workers: the stop order it is carrying out, `{action, when}` (it takes no task)",
            None,
        ),
    ),
)
def hello(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Identify this connection: an agent (worker, hardware, auth, node) or an API client."""
    role = p["role"]
    name = p["name"]
    key = p["key"]
    proto = p["proto"]
    info = p["info"]
    # A worker lists the attempts it still holds, so the master keeps exactly those.
    attempts = p["attempts"]
    if proto != PROTOCOL_VERSION:
        raise invalid_params(
            f"hello: protocol version {proto} is not supported (this master speaks "
            f"{PROTOCOL_VERSION})",
            "bad_proto",
        )
    if session.client is not None and session.client.name != name:
        raise conflict(
            f"hello: this connection is already {session.client.name!r}", "already_hello"
        )
    # Everything is checked before anything changes: a refused hello leaves the session as it
    # was (unauthorised, unless it is a trusted peer) and every client as it was.
    record = _check_key(services, session, role, name, key)
    heartbeat_s = services.config.heartbeat_s
    if role == "api":
        _authorise(session, role, record)
        return {"client_id": None, "name": name, "enabled": True, "heartbeat_s": heartbeat_s}
    if not CLIENT_NAME.fullmatch(name):
        raise invalid_params(
            f"hello: bad name {name!r}: 1-200 characters of letters, digits and ._@:+- "
            "starting with a letter or digit",
            "bad_name",
        )
    services.registry.check_role(name, role)
    if record is not None and not services.keys.bind(record, name):
        raise _refused(  # another first hello with this key bound it meanwhile
            services, session, f"this key belongs to {record.name!r}, not {name!r}", "wrong_name"
        )
    client, replaced = services.registry.connect(
        name=name,
        role=role,
        host=str(info.get("host") or session.peer_host),
        info=info,
        connection=session.connection,
        now=services.clock.wall(),
        now_mono=services.clock.mono(),
    )
    _authorise(session, role, record)
    session.client = client
    if replaced is not None and replaced is not session.connection:
        replaced.close(f"replaced by a new connection from {session.peer}")
    if role == "worker":
        stopping = p["stopping"]
        if stopping is not None:
            # Still draining after a reconnect (a master restart forgot the order): no task.
            action, when = stopping.get("action"), stopping.get("when")
            if action in ("stop", "restart") and when in ("now", "idle"):
                services.registry.begin_stop(client, action, when)
        services.farm.reconcile_worker(client, attempts)
    return {
        "client_id": client.id,
        "name": client.name,
        "enabled": client.enabled,
        "heartbeat_s": heartbeat_s,
    }


def _check_key(
    services: Services, session: Session, role: str, name: str, key: str | None
) -> KeyRecord | None:
    """The key's record when it may say this hello; None for a trusted peer without a key."""
    if key is None:
        if session.trusted:
            return None
        raise _refused(services, session, "a key is required from this address", "key_required")
    guard, now = services.guard, services.clock.mono()
    wait_s = guard.login_failures.wait_s(session.peer_host, now)
    if wait_s > 0:
        # Refused unchecked, and not counted: the host gets one try per refill interval.
        guard.bad_logins.warn(
            session.peer_host, now, "hello from %s refused: throttled", session.peer
        )
        raise RpcError(
            ErrorCode.UNAUTHORIZED,
            f"hello: too many failed hellos from {session.peer_host}: try again in "
            f"{math.ceil(wait_s)} s",
            "too_many_failures",
            {"retry_after_s": math.ceil(wait_s)},
        )
    refuse_key_in_clear(services, session, key)
    record = services.keys.verify(key)
    if record is None:
        raise _refused(services, session, "invalid or revoked key", "bad_key")
    if record.role != role:
        raise _refused(
            services, session, f"this key is for role {record.role!r}, not {role!r}", "wrong_role"
        )
    if role in AGENT_ROLES and record.name and record.name != name:
        raise _refused(
            services, session, f"this key belongs to {record.name!r}, not {name!r}", "wrong_name"
        )
    return record


def _refused(services: Services, session: Session, why: str, reason: str) -> RpcError:
    """A failed hello: counted against the peer's host, logged at a bounded rate."""
    guard, now = services.guard, services.clock.mono()
    guard.login_failures.failed(session.peer_host, now)
    guard.bad_logins.warn(session.peer_host, now, "hello from %s refused: %s", session.peer, why)
    return unauthorized(f"hello: {why}", reason)


def _authorise(session: Session, role: str, record: KeyRecord | None) -> None:
    session.authorized = True
    session.role = role
    session.key = record
    session.key_id = record.key_id if record is not None else None


@method(
    "heartbeat",
    Access.AGENT,
    agents=AGENT_ROLES,
    params=(
        text_list("running", "the attempt ids running now", None),
        mapping(
            "host", "host facts: `cpus`, `mem_total_bytes`, `mem_available_bytes`, `load`", None
        ),
    ),
)
def heartbeat(services: Services, session: Session, p: Args) -> None:
    """An agent is alive; `running` lists the attempt ids it runs now, `host` its machine."""
    running = p["running"]
    assert session.client is not None
    if session.client.connection is not session.connection:
        return  # a late heartbeat from a connection that was replaced says nothing true
    services.registry.heard_from(session.client, services.clock.wall(), services.clock.mono())
    if running is not None:
        services.registry.set_running(session.client, running)
    if p["host"] is not None:
        services.registry.set_host_info(session.client, p["host"])


@method("ping", Access.READ, agents=AGENT_ROLES)
def ping(services: Services, session: Session, p: Args) -> str:
    """Answers "pong"."""
    return "pong"


@method(
    "subscribe",
    Access.READ,
    params=(text_list("topics", "event topics, e.g. `jobs` or `clients.*`"),),
)
def subscribe(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Receive `event` notifications for the given topics."""
    topics = [validate_topic(topic) for topic in p["topics"]]
    if session.connection is None:
        raise RpcError(
            ErrorCode.CONFLICT, "subscribe: this session cannot receive events", "no_events"
        )
    services.events.subscribe(session.connection, topics)
    session.topics.update(topics)
    return {"topics": sorted(session.topics)}


@method(
    "unsubscribe",
    Access.READ,
    params=(text_list("topics", "the topics to drop (all if omitted)", None),),
)
def unsubscribe(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Stop receiving events for the given topics (all topics if none are given)."""
    topics = p["topics"]
    dropped = sorted(session.topics) if topics is None else topics
    if session.connection is not None:
        services.events.unsubscribe(session.connection, dropped)
    session.topics.difference_update(dropped)
    return {"topics": sorted(session.topics)}


@method("status", Access.READ)
def status(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """The master's version, uptime, database and client counts."""
    total: Counter[str] = Counter()
    online: Counter[str] = Counter()
    for client in services.registry.clients():
        total[client.role] += 1
        if client.online:
            online[client.role] += 1
    dialects = Counter(conn.session.dialect for conn in services.connections)
    host, port = services.listen_address
    return {
        "version": SOFTWARE_VERSION,
        "proto": PROTOCOL_VERSION,
        "started": iso_utc(services.started),
        "uptime_s": round(services.clock.wall() - services.started, 3),
        "listen": f"{host}:{port}",
        "listen_tls": f"{services.tls_address[0]}:{services.tls_address[1]}"
        if services.tls_address
        else None,
        "warnings": exposure_warnings(services.config),
        # backend, url, healthy, since, last_error, reconnects, pending_writes (durability.py)
        "database": services.durability.status(),
        # role (active/standby), holder, generation, last_takeover, lease_s (standby.py)
        "master": services.role_view(),
        "clients": {
            "total": sum(total.values()),
            "online": sum(online.values()),
            "by_role": {
                role: {"online": online[role], "total": total[role]}
                for role in sorted(set(total) | set(AGENT_ROLES))
            },
        },
        "connections": {"rpc": dialects["rpc"], "console": dialects["console"]},
        "farm": services.farm.status(),
        "devices": services.devices.status(),
        **{name: part() for name, part in services.status_parts.items()},
    }
