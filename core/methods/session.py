"""Session methods: hello, heartbeat, ping, subscribe/unsubscribe, status."""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any

from protocol.errors import ErrorCode, RpcError, conflict, invalid_params, unauthorized
from protocol.times import iso_utc
from protocol.version import PROTOCOL_VERSION, SOFTWARE_VERSION

from ..events import validate_topic
from ..exposure import exposure_warnings, refuse_key_in_clear
from ..keys import KEY_ROLES
from ..params import Params
from ..registry import AGENT_ROLES
from ..services import Services
from ..session import Session
from .base import Access, method

log = logging.getLogger(__name__)

# Client names appear in selectors and tables: no spaces, no glob characters.
CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:+-]{0,199}")


@method("hello", Access.OPEN)
def hello(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Identify this connection: an agent (worker, hardware, auth, node) or an API client."""
    role = p.text("role")
    name = p.text("name", "")
    key = p.text("key", None)
    proto = p.integer("proto", PROTOCOL_VERSION)
    info = p.mapping("info", {})
    # A worker lists the attempts it still holds, so the master keeps exactly those.
    attempts = p.text_list("attempts", [])
    p.finish()
    if role not in KEY_ROLES:
        raise invalid_params(
            f"hello: unknown role {role!r}: expected one of {', '.join(KEY_ROLES)}", "bad_role"
        )
    if proto != PROTOCOL_VERSION:
        raise invalid_params(
            f"hello: protocol version {proto} is not supported (this master speaks "
            f"{PROTOCOL_VERSION})",
            "bad_proto",
        )
    if key is not None:
        refuse_key_in_clear(services, session, key)
        record = services.keys.verify(key)
        if record is None:
            log.warning("hello from %s: invalid or revoked key", session.peer)
            raise unauthorized("hello: invalid or revoked key", "bad_key")
        if record.role not in (role, "api"):
            raise unauthorized(
                f"hello: this key is for role {record.role!r}, not {role!r}", "wrong_role"
            )
        session.authorized = True
        session.key_id = record.key_id
    elif not session.trusted:
        raise unauthorized("hello: a key is required from this address", "key_required")
    if session.client is not None and session.client.name != name:
        raise conflict(
            f"hello: this connection is already {session.client.name!r}", "already_hello"
        )
    session.role = role
    heartbeat_s = services.config.heartbeat_s
    if role == "api":
        return {"client_id": None, "name": name, "enabled": True, "heartbeat_s": heartbeat_s}
    if not CLIENT_NAME.fullmatch(name):
        raise invalid_params(
            f"hello: bad name {name!r}: 1-200 characters of letters, digits and ._@:+- "
            "starting with a letter or digit",
            "bad_name",
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
    session.client = client
    if replaced is not None and replaced is not session.connection:
        replaced.close(f"replaced by a new connection from {session.peer}")
    if role == "worker":
        services.farm.reconcile_worker(client, attempts)
    return {
        "client_id": client.id,
        "name": client.name,
        "enabled": client.enabled,
        "heartbeat_s": heartbeat_s,
    }


@method("heartbeat", Access.AGENT)
def heartbeat(services: Services, session: Session, p: Params) -> None:
    """An agent is alive; `running` lists the attempt ids it runs now."""
    running = p.text_list("running", None)
    p.finish()
    assert session.client is not None
    if session.client.connection is not session.connection:
        return  # a late heartbeat from a connection that was replaced says nothing true
    services.registry.heard_from(session.client, services.clock.wall(), services.clock.mono())
    if running is not None:
        services.registry.set_running(session.client, running)


@method("ping", Access.READ)
def ping(services: Services, session: Session, p: Params) -> str:
    """Answers "pong"."""
    p.finish()
    return "pong"


@method("subscribe", Access.READ)
def subscribe(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Receive `event` notifications for the given topics."""
    topics = [validate_topic(topic) for topic in p.text_list("topics")]
    p.finish()
    if session.connection is None or not hasattr(session.connection, "send_bytes"):
        raise RpcError(
            ErrorCode.CONFLICT, "subscribe: this session cannot receive events", "no_events"
        )
    services.events.subscribe(session.connection, topics)
    session.topics.update(topics)
    return {"topics": sorted(session.topics)}


@method("unsubscribe", Access.READ)
def unsubscribe(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Stop receiving events for the given topics (all topics if none are given)."""
    topics = p.text_list("topics", None)
    p.finish()
    dropped = sorted(session.topics) if topics is None else topics
    if session.connection is not None:
        services.events.unsubscribe(session.connection, dropped)
    session.topics.difference_update(dropped)
    return {"topics": sorted(session.topics)}


@method("status", Access.READ)
def status(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """The master's version, uptime, database and client counts."""
    p.finish()
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
        # backend, url, healthy, since, last_error, reconnects, pending_writes (core/durability.py)
        "database": services.durability.status(),
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
    }
