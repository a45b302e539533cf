"""Process methods: nodes report (`procs.update`); operators list the farm's supervised processes
and order a node to start, stop or restart one (`proc.*`) or to reload its agents.toml."""

from __future__ import annotations

import logging
from typing import Any

import gevent

from protocol.errors import ErrorCode, RpcError, not_found

from ..procs import NODE_ROLE
from ..services import Services
from ..session import Session
from .base import Access, Args, Method, anything, collector, string

log = logging.getLogger(__name__)

# Below the node's 10 s link timeout is its own 5 s settle wait; this covers both.
NODE_ORDER_TIMEOUT_S = 9.0


METHODS: list[Method] = []
method = collector(METHODS)


@method(
    "procs.update",
    Access.AGENT,
    agents=("node",),
    params=(anything("procs", "the state of every process the node supervises"),),
)
def procs_update(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Node: the state of every process it supervises (sent on each change and reconnect)."""
    procs = p["procs"]
    client = session.client
    if client is None or client.role != NODE_ROLE:
        raise RpcError(ErrorCode.CONFLICT, "only nodes report processes", "not_a_node")
    if client.connection is not session.connection:
        return {}  # a late report from a replaced connection says nothing true
    if not isinstance(procs, list):
        raise RpcError(ErrorCode.INVALID_PARAMS, "procs.update: procs must be a list", "bad_param")
    services.procs.update(client.name, procs)
    return {}


@method(
    "procs.list",
    Access.READ,
    params=(string("node", "only this node's processes", None, max_length=200),),
)
def procs_list(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Every supervised process of the farm (or of one node): state, pid, uptime, restarts."""
    node = p["node"]
    return {"procs": services.procs.rows(node), "nodes": services.procs.nodes()}


# The parameters of procs.start, procs.stop and procs.restart (procs.reload needs `node`).
_NODE_DOC = "the node's name (needed only when the agent name is on several nodes)"
_ORDER_PARAMS = (
    string("node", _NODE_DOC, None, max_length=200),
    string("agent", "the supervised process's name", max_length=200),
)


def _order(services: Services, p: Args, order: str) -> dict[str, Any]:
    node = p["node"]
    agent = p["agent"]
    owner = services.procs.owner(agent, node)
    return {"node": owner, **_forward(services, owner, order, {"agent": agent})}


def _forward(services: Services, node: str, order: str, params: dict[str, Any]) -> Any:
    client = services.registry.get(node)
    if client is None or client.role != NODE_ROLE:
        raise not_found(f"no node named {node!r}", "no_such_node")
    if not client.online or client.connection is None:
        raise RpcError(ErrorCode.CONFLICT, f"node {node!r} is offline", "offline")
    log.info("ordering %s on node %s: %s", order, node, params)
    try:
        return client.connection.call(order, params, timeout=NODE_ORDER_TIMEOUT_S)
    except gevent.Timeout:
        raise RpcError(
            ErrorCode.CONFLICT, f"node {node!r} did not answer {order} in time", "timeout"
        ) from None


@method("procs.start", Access.ADMIN, writes=True, params=_ORDER_PARAMS)
def procs_start(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Start a node's agent (also out of `fatal`); `node` may be left out if the name is unique."""
    return _order(services, p, "proc.start")


@method("procs.stop", Access.ADMIN, writes=True, params=_ORDER_PARAMS)
def procs_stop(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Stop a node's agent (SIGTERM, SIGKILL after its stop timeout); it stays stopped."""
    return _order(services, p, "proc.stop")


@method("procs.restart", Access.ADMIN, writes=True, params=_ORDER_PARAMS)
def procs_restart(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Restart a node's agent."""
    return _order(services, p, "proc.restart")


@method(
    "procs.reload",
    Access.ADMIN,
    writes=True,
    params=(string("node", _NODE_DOC, max_length=200),),
)
def procs_reload(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Make a node re-read its agents.toml: new agents start, removed ones stop, changed ones
    restart; a bad file changes nothing (the error says why)."""
    node = p["node"]
    return {"node": node, **_forward(services, node, "node.reload", {})}
