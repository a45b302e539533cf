"""The farm's supervised processes as the master knows them: the latest `procs.update` of each
node, kept in memory (nodes resend everything on reconnect, so nothing is stored). A registry
watcher marks a node's report stale when the node goes offline, and a report stale for longer
than `offline_ttl_s` is dropped (a node that is gone for good leaves no rows behind); changes go
out on topic `procs`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from protocol.errors import invalid_params, not_found
from protocol.times import iso_utc

from .events import EventBus
from .registry import RuntimeClient

log = logging.getLogger(__name__)

NODE_ROLE = "node"
MAX_PROCS_PER_NODE = 1000
# How long the stale report of an offline node is kept (0 keeps it until the node is forgotten).
PROCS_OFFLINE_TTL_S = 3600.0
# The fields a node reports per process, with the types the master accepts.
PROC_FIELDS: dict[str, tuple[type, ...]] = {
    "agent": (str,),
    "state": (str,),
    "pid": (int, type(None)),
    "uptime_s": (int, float, type(None)),
    "restarts": (int,),
    "last_exit": (int, type(None)),
    "failures": (int,),
    "program": (str,),
    "error": (str,),
    "retry_in_s": (int, float),
}


@dataclass
class NodeReport:
    node: str
    procs: list[dict[str, Any]]
    received_mono: float
    received_wall: float
    online: bool = True
    agents: set[str] = field(default_factory=set)
    offline_since_mono: float | None = None


class ProcBoard:
    def __init__(
        self,
        events: EventBus,
        wall: Callable[[], float],
        mono: Callable[[], float],
        offline_ttl_s: float = PROCS_OFFLINE_TTL_S,
    ) -> None:
        self._events = events
        self._wall = wall
        self._mono = mono
        self.offline_ttl_s = offline_ttl_s
        self.reports: dict[str, NodeReport] = {}

    # -- reports from nodes -------------------------------------------------------------------
    def update(self, node: str, procs: list[Any]) -> None:
        if len(procs) > MAX_PROCS_PER_NODE:
            raise invalid_params(
                f"procs.update: at most {MAX_PROCS_PER_NODE} processes per node", "too_many"
            )
        rows = [_checked(item) for item in procs]
        old = self.reports.get(node)
        report = NodeReport(
            node=node,
            procs=rows,
            received_mono=self._mono(),
            received_wall=self._wall(),
            agents={row["agent"] for row in rows},
        )
        self.reports[node] = report
        if old is None or not old.online or _states(old) != _states(report):
            log.info(
                "node %s reports %s",
                node,
                ", ".join(f"{r['agent']}={r['state']}" for r in rows) or "no agents",
            )
        self._publish(report)

    def client_changed(self, client: RuntimeClient, change: str) -> None:
        report = self.reports.get(client.name)
        if report is None:
            return
        if change == "offline" and report.online:
            report.online = False
            report.offline_since_mono = self._mono()
            log.info(
                "node %s offline: its %d process(es) are now stale", client.name, len(report.procs)
            )
            self._publish(report)
        elif change == "forgotten":
            del self.reports[client.name]
            log.info("node %s forgotten with its process report", client.name)

    def expire(self, now_mono: float) -> list[str]:
        """Drop the reports of nodes offline for longer than `offline_ttl_s`; their names."""
        if self.offline_ttl_s <= 0:
            return []
        expired = [
            report.node
            for report in self.reports.values()
            if report.offline_since_mono is not None
            and now_mono - report.offline_since_mono >= self.offline_ttl_s
        ]
        for name in expired:
            report = self.reports.pop(name)
            log.info(
                "node %s offline for %.0fs: dropped its %d stale process(es)",
                name,
                now_mono - (report.offline_since_mono or now_mono),
                len(report.procs),
            )
            if self._events.has_subscribers("procs"):
                self._events.publish(
                    "procs", {"node": name, "online": False, "procs": [], "expired": True}
                )
        return expired

    # -- queries (each first drops what has expired, so no timer is needed) ------------------
    def rows(self, node: str | None = None) -> list[dict[str, Any]]:
        self.expire(self._mono())
        if node is not None and node not in self.reports:
            raise not_found(f"no node named {node!r} has reported processes", "no_such_node")
        now = self._mono()
        chosen = [self.reports[node]] if node is not None else list(self.reports.values())
        rows = []
        for report in sorted(chosen, key=lambda r: r.node):
            rows += [_row(report, proc, now) for proc in report.procs]
        return rows

    def nodes(self) -> list[dict[str, Any]]:
        self.expire(self._mono())
        return [
            {
                "node": report.node,
                "online": report.online,
                "reported": iso_utc(report.received_wall),
                "procs": len(report.procs),
            }
            for report in sorted(self.reports.values(), key=lambda r: r.node)
        ]

    def owner(self, agent: str, node: str | None) -> str:
        """The node that supervises `agent`: the one given, or the only one reporting it."""
        self.expire(self._mono())
        if node is not None:
            return node
        owners = sorted(r.node for r in self.reports.values() if agent in r.agents)
        if len(owners) == 1:
            return owners[0]
        if not owners:
            raise invalid_params(
                f"no node reports an agent named {agent!r}: give its node", "node_required"
            )
        raise invalid_params(
            f"agent {agent!r} runs on several nodes ({', '.join(owners)}): give its node",
            "node_required",
        )

    def _publish(self, report: NodeReport) -> None:
        if self._events.has_subscribers("procs"):
            now = self._mono()
            self._events.publish(
                "procs",
                {
                    "node": report.node,
                    "online": report.online,
                    "procs": [_row(report, proc, now) for proc in report.procs],
                },
            )


def _checked(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict) or not isinstance(item.get("agent"), str):
        raise invalid_params("procs.update: each process must be an object with an agent name")
    row = {}
    for name, kinds in PROC_FIELDS.items():
        if name in item:
            value = item[name]
            if not isinstance(value, kinds) or isinstance(value, bool):
                raise invalid_params(
                    f"procs.update: {item['agent']}: field {name!r} has the wrong type", "bad_param"
                )
            row[name] = value
    row.setdefault("state", "unknown")
    return row


def _row(report: NodeReport, proc: dict[str, Any], now_mono: float) -> dict[str, Any]:
    uptime = proc.get("uptime_s")
    # Uptime grows between reports: count the time since this one, unless the node is gone.
    if uptime is not None and report.online:
        uptime = round(uptime + max(0.0, now_mono - report.received_mono), 3)
    return {
        "node": report.node,
        "agent": proc["agent"],
        "state": proc["state"],
        "pid": proc.get("pid"),
        "uptime_s": uptime,
        "restarts": proc.get("restarts", 0),
        "last_exit": proc.get("last_exit"),
        "stale": not report.online,
        **{key: proc[key] for key in ("program", "error", "retry_in_s") if key in proc},
    }


def _states(report: NodeReport) -> list[tuple[str, str]]:
    return [(row["agent"], row["state"]) for row in report.procs]
