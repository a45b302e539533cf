"""The node as an agent: the orders it takes (`proc.start|stop|restart`, `node.reload`; the local
control socket serves the same), and `procs.update` reports to the master.

Reports coalesce: a change only raises a flag, and one greenlet sends the latest snapshot, so a
burst of transitions costs one message, and a (re)connect simply raises the flag again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import Event

from farmhand.agent.link import MasterLink, OrderHandler
from protocol.errors import ErrorCode, RpcError, invalid_params, not_found

from .config import ConfigError, NodeConfig
from .states import State
from .supervisor import Supervisor, UnknownAgent

log = logging.getLogger(__name__)

# An order waits this long for the process to settle, so its reply shows the outcome. The
# master gives up on an order after 10 s: stay well below.
ORDER_SETTLE_S = 5.0
SETTLE_POLL_S = 0.05
UNSETTLED = (State.STOPPING, State.STARTING)


class NodeService:
    def __init__(
        self,
        supervisor: Supervisor,
        load_config: Callable[[], NodeConfig],
        *,
        name: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.supervisor = supervisor
        self.load_config = load_config
        self.name = name
        self.clock = clock
        self._dirty = Event()
        self._link: MasterLink | None = None
        supervisor.on_change = self._dirty.set

    @property
    def handlers(self) -> dict[str, OrderHandler]:
        return {
            "proc.start": self.proc_start,
            "proc.stop": self.proc_stop,
            "proc.restart": self.proc_restart,
            "proc.list": self.proc_list,
            "node.reload": self.node_reload,
        }

    # -- orders -------------------------------------------------------------------------------
    def proc_start(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._order("start", params)

    def proc_stop(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._order("stop", params)

    def proc_restart(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._order("restart", params)

    def proc_list(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"node": self.name, "procs": self.supervisor.views(self.clock())}

    def node_reload(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            return {"node": self.name, **self.reload()}
        except ConfigError as exc:
            raise invalid_params(f"reload refused, agents unchanged: {exc}", "bad_config") from None

    def reload(self) -> dict[str, Any]:
        """Re-read agents.toml and apply it; a bad file keeps every agent as it is."""
        try:
            config = self.load_config()
        except ConfigError as exc:
            log.error("reload refused, keeping the current agents: %s", exc)
            raise
        result = self.supervisor.reload(config, self.clock())
        log.info(
            "reloaded: added %s, removed %s, changed %s, unchanged %s",
            result.added or "-",
            result.removed or "-",
            result.changed or "-",
            result.unchanged or "-",
        )
        return result.as_dict()

    def _order(self, verb: str, params: dict[str, Any]) -> dict[str, Any]:
        agent = params.get("agent")
        if not isinstance(agent, str) or not agent:
            raise invalid_params(f"proc.{verb}: agent must be a non-empty string", "bad_param")
        supervisor = self.supervisor
        try:
            getattr(supervisor, verb)(agent, self.clock())
        except UnknownAgent as exc:
            raise not_found(f"{exc} ({self.name})", "no_such_agent") from None
        log.info("agent %s: %s ordered", agent, verb)
        self._settle(agent, restarting=verb == "restart")
        try:
            view = supervisor.get(agent).view(self.clock())
        except UnknownAgent:
            raise RpcError(ErrorCode.CONFLICT, f"agent {agent!r} was removed", "removed") from None
        return {"node": self.name, **view}

    def _settle(self, agent: str, restarting: bool) -> None:
        """Wait (bounded) until the order's outcome shows: running, backoff, stopped…"""
        deadline = self.clock() + ORDER_SETTLE_S
        while self.clock() < deadline:
            try:
                lifecycle = self.supervisor.get(agent).lifecycle
            except UnknownAgent:
                return
            # A restart first passes through stopping and stopped (start_pending) on its way.
            if lifecycle.state not in UNSETTLED and not (restarting and lifecycle.start_pending):
                return
            gevent.sleep(SETTLE_POLL_S)

    # -- reports ------------------------------------------------------------------------------
    def on_connected(self, link: MasterLink) -> None:
        self._link = link
        self._dirty.set()

    def report_forever(self) -> None:
        while True:
            self._dirty.wait()
            self._dirty.clear()
            self.report_now()

    def report_now(self) -> None:
        link = self._link
        if link is None or link.closed:
            return  # supervised locally; the state goes up at the next connect
        try:
            link.notify("procs.update", {"procs": self.supervisor.views(self.clock())})
        except RpcError as exc:
            log.debug("procs.update not sent: %s", exc.message)
